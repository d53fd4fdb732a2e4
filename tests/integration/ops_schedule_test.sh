#!/usr/bin/env bash
# Ops: recurring schedules on the daemon loop with an injected clock
# (RUSHES_TEST_CLOCK_FILE: schedules read "now" from the file). A nightly
# 22:00 schedule does not fire at 21:59, fires once at 22:00 (a job appears,
# made exactly like a POST /api/v1/jobs), not again in the same night, then
# again the next night; a time zone moves its firing; another tenant cannot
# see or remove it; `rushes schedule add|ls|rm` drive it all.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ops-sched
CLOCK="$FARM/clock"
ms() { echo $(($(date -u -d "$1" +%s) * 1000)); }
setclock() { ms "$1" >"$CLOCK.tmp" && mv "$CLOCK.tmp" "$CLOCK"; }
setclock "2026-11-25 21:58:00"
RUSHES_TEST_CLOCK_FILE=$CLOCK farm_start_daemon
njobs() { api GET "/api/v1/jobs?project=nightly&limit=1000" | jq '.jobs | length'; }

out=$("$RUSHES" --json schedule add retrain noop --project nightly --cron "0 22 * * *" --tz UTC \
  --param tasks=1 --priority 5)
sid=$(jq -r .schedule.id <<<"$out")
[ "$(jq -r .schedule.next_at <<<"$out")" = "2026-11-25T22:00:00.000Z" ] ||
  farm_fail "first firing: $(jq -r .schedule.next_at <<<"$out")"
"$RUSHES" schedule ls | grep -q retrain || farm_fail "schedule ls lacks retrain"

setclock "2026-11-25 21:59:00"
sleep 1.5
[ "$(njobs)" = 0 ] || farm_fail "fired before 22:00"
setclock "2026-11-25 22:00:20"
for _ in $(seq 1 50); do [ "$(njobs)" = 1 ] && break; sleep 0.1; done
[ "$(njobs)" = 1 ] || farm_fail "did not fire at 22:00 ($(njobs) jobs)"
job=$(api GET "/api/v1/jobs?project=nightly" | jq '.jobs[0]')
[ "$(jq -r .kind <<<"$job")/$(jq -r .priority <<<"$job")/$(jq -r .tasks_total <<<"$job")" = noop/5/1 ] ||
  farm_fail "scheduled job is not the one asked for: $job"
sched=$("$RUSHES" --json schedule ls | jq ".schedules[] | select(.id == $sid)")
[ "$(jq -r .last_job_id <<<"$sched")" = "$(jq -r .id <<<"$job")" ] || farm_fail "last_job_id not recorded"
[ "$(jq -r .next_at <<<"$sched")" = "2026-11-26T22:00:00.000Z" ] ||
  farm_fail "next firing: $(jq -r .next_at <<<"$sched")"
setclock "2026-11-25 22:00:50"
sleep 1.2
[ "$(njobs)" = 1 ] || farm_fail "fired twice in one night"
setclock "2026-11-26 22:01:00"
for _ in $(seq 1 50); do [ "$(njobs)" = 2 ] && break; sleep 0.1; done
[ "$(njobs)" = 2 ] || farm_fail "did not fire the next night"

# A time zone: 22:00 in Paris is 21:00 UTC in November.
out=$("$RUSHES" --json schedule add paris noop --project nightly --cron "0 22 * * *" \
  --tz Europe/Paris)
[ "$(jq -r .schedule.next_at <<<"$out")" = "2026-11-27T21:00:00.000Z" ] ||
  farm_fail "Paris firing: $(jq -r .schedule.next_at <<<"$out")"
pid=$(jq -r .schedule.id <<<"$out")
if "$RUSHES" schedule add bad noop --project nightly --cron "0 25 * * *" 2>"$FARM/err"; then
  farm_fail "accepted hour 25"
fi
grep -q hour "$FARM/err" || farm_fail "bad cron error does not name the field: $(cat "$FARM/err")"

# Tenancy.
B=$(api POST /api/v1/tokens '{"tenant":"beta","role":"operate"}' | jq -r .token.token)
n=$(RUSHES_TOKEN=$B "$RUSHES" --json schedule ls | jq '.schedules | length')
[ "$n" = 0 ] || farm_fail "beta sees $n schedules"
if RUSHES_TOKEN=$B "$RUSHES" schedule rm "$sid" 2>/dev/null; then
  farm_fail "beta removed another tenant's schedule"
fi
"$RUSHES" schedule rm "$sid" >/dev/null || farm_fail "schedule rm"
"$RUSHES" schedule rm "$pid" >/dev/null || farm_fail "schedule rm"
setclock "2026-11-27 22:30:00"
sleep 1.2
[ "$(njobs)" = 2 ] || farm_fail "a removed schedule fired"
echo "ops schedules: fired on the injected clock exactly when due, zones, tenancy, CLI"
