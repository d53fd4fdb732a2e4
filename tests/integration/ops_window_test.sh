#!/usr/bin/env bash
# Ops: a training window on the daemon's injected clock (RUSHES_TEST_CLOCK_FILE).
# A removal_train job with window 22:00 London + 60 min, max_attempts 1:
# submitted at 21:00 it waits (no attempt); at 22:00 it runs; at 23:00:30 its
# attempt is asked to yield, checkpoints, exits 75 and the task is queued again
# (attempt "released", error "yielded ...", no attempt spent: with
# max_attempts 1 a counted failure would fail the job) and is not leased while
# the window stays shut; the next night it resumes from the yielded step
# (result.resumed_from = that step, > 0) and succeeds.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ops-window
CLOCK="$FARM/clock"
ms() { echo $(($(date -u -d "$1" +%s) * 1000)); }
setclock() { ms "$1" >"$CLOCK.tmp" && mv "$CLOCK.tmp" "$CLOCK"; }

mkdir -p "$FARM/media/shot/frames" "$FARM/media/shot/masks"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=96x64:rate=24 -frames:v 4 \
  -start_number 0 "$FARM/media/shot/frames/f.%05d.png"
for i in 0 1 2 3; do
  ffmpeg -loglevel error -f lavfi -i "color=black:size=96x64,drawbox=x=$((40 + i)):y=0:w=3:h=64:color=white:t=fill" \
    -frames:v 1 -pix_fmt gray "$FARM/media/shot/masks/m.$(printf '%05d' "$i").png"
done

setclock "2026-11-25 21:00:00"
RUSHES_TEST_CLOCK_FILE=$CLOCK farm_start_daemon --lease-ttl-ms 4000 --heartbeat-ms 500 --backoff-ms 200
farm_start_worker w1

# Bad windows are refused, naming the field.
bad() {
  local w=$1 want=$2 out
  out=$(api POST /api/v1/jobs "{\"project\":\"win\",\"kind\":\"noop\",\"window\":$w}")
  [ "$(api_status)" = 400 ] || farm_fail "window $w accepted: $out"
  grep -q "$want" <<<"$out" || farm_fail "window $w: error does not name $want: $out"
}
bad '{"cron":"0 25 * * *","duration_min":60}' 'window.cron'
bad '{"cron":"0 22 * * *","duration_min":0}' 'window.duration_min'
bad '{"cron":"0 22 * * *"}' 'window.duration_min'
bad '{"cron":"0 22 * * *","duration_min":60,"tz":"Mars/Olympus"}' 'window.tz'
bad '{"cron":"0 22 * * *","duration_min":60,"x":1}' 'unknown field'
bad '"nightly"' 'window'

CFG='{"depth":2,"base":8,"patch":32,"batch":2,"ckpt_every":10,"chunk":3}'
body=$(jq -cn --arg f "$FARM/media/shot/frames" --arg m "$FARM/media/shot/masks" --argjson c "$CFG" \
  '{project:"win",kind:"removal_train",max_attempts:1,
    window:{cron:"0 22 * * *",duration_min:60,tz:"Europe/London"},
    params:{frames:$f,masks:$m,output:"out",steps:2000,range:3,config:$c}}')
out=$(api POST /api/v1/jobs "$body")
[ "$(api_status)" = 201 ] || farm_fail "submit: HTTP $(api_status): $out"
JOB=$(jq -r .job.id <<<"$out")
job() { api GET "/api/v1/jobs/$JOB"; }
tstate() { job | jq -r '.job.tasks[0].state'; }
natt() { job | jq '.job.tasks[0].attempts | length'; }

# Outside the window: it waits.
sleep 2
[ "$(natt)" = 0 ] || farm_fail "leased outside its window: $(job | jq -c .job.tasks[0])"
[ "$(tstate)" = queued ] || farm_fail "task not queued outside its window"
[ "$(job | jq -r .job.window.open)" = false ] || farm_fail "window shown open: $(job | jq -c .job.window)"
[ "$(job | jq -r .job.window.tz)" = Europe/London ] || farm_fail "window not stored: $(job | jq -c .job.window)"

# Inside (22:00 London = 22:00 UTC in November): it runs and checkpoints.
setclock "2026-11-25 22:00:30"
deadline=$((SECONDS + 120))
until api GET "/api/v1/jobs/$JOB/log" | grep -q 'checkpoint step'; do
  [ $SECONDS -lt $deadline ] || farm_fail "no checkpoint inside the window: $(job | jq -c .job.tasks[0])"
  sleep 0.2
done
[ "$(job | jq -r .job.window.open)" = true ] || farm_fail "window not shown open"
# Training gauges of the running job, from its progress lines.
deadline=$((SECONDS + 30))
until api GET /metrics >"$FARM/metrics.txt" &&
  grep -q "^rushes_training_steps_per_second{job=\"$JOB\",task=\"0\",kind=\"removal_train\"} [0-9.e+-]*[1-9]" "$FARM/metrics.txt"; do
  [ $SECONDS -lt $deadline ] || farm_fail "no steps/s gauge: $(grep training "$FARM/metrics.txt")"
  sleep 0.3
done
grep -q "^rushes_training_last_loss{job=\"$JOB\",task=\"0\",kind=\"removal_train\"} [0-9]" "$FARM/metrics.txt" ||
  farm_fail "no loss gauge: $(grep training "$FARM/metrics.txt")"
if command -v promtool >/dev/null; then
  promtool check metrics <"$FARM/metrics.txt" || farm_fail "promtool rejects /metrics"
fi

# Past its end: yields at a checkpoint, back to queued, attempt not spent.
setclock "2026-11-25 23:00:30"
deadline=$((SECONDS + 30))
until [ "$(job | jq -r '.job.tasks[0].attempts[0].state')" = released ]; do
  [ $SECONDS -lt $deadline ] || farm_fail "did not yield: $(job | jq -c .job.tasks[0])"
  sleep 0.2
done
t=$(job | jq -c '.job.tasks[0]')
[ "$(jq -r .state <<<"$t")" = queued ] || farm_fail "yielded task not queued: $t"
[ "$(jq -r .attempts_used <<<"$t")" = 0 ] || farm_fail "the yield spent an attempt: $t"
jq -r '.attempts[0].error' <<<"$t" | grep -q '^yielded' || farm_fail "attempt error: $t"
[ "$(jq -r '.attempts[0].exit_code' <<<"$t")" = 75 ] || farm_fail "child did not exit 75: $t"
ystep=$(api GET "/api/v1/jobs/$JOB/log" | grep -o 'yielded at step [0-9]*' | head -1 | grep -o '[0-9]*$') ||
  farm_fail "no 'yielded at step' in the log"
[ "$ystep" -gt 0 ] || farm_fail "yielded at step $ystep"
sleep 2
[ "$(natt)" = 1 ] || farm_fail "leased again while the window is shut: $(job | jq -c .job.tasks[0])"
[ "$(job | jq -r .job.state)" != failed ] || farm_fail "job failed on a yield"

# The next night: resumes from the yielded checkpoint and succeeds.
setclock "2026-11-26 22:00:10"
farm_wait_jobs 300 "$JOB"
j=$(job)
[ "$(jq -r .job.state <<<"$j")" = succeeded ] || farm_fail "job: $(jq -c .job <<<"$j")"
resumed=$(jq -r '.job.tasks[0].result.resumed_from' <<<"$j")
[ "$resumed" = "$ystep" ] || farm_fail "resumed from step $resumed, yielded at $ystep"
[ "$resumed" -gt 0 ] || farm_fail "resumed from step 0"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
echo "window: waited outside, ran inside, yielded at step $ystep, resumed from $resumed next window"
