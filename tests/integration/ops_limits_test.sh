#!/usr/bin/env bash
# Ops: per-project concurrency limits and priority changes. With
# `rushes limit P 1` a project never holds more than one running task even
# with four free slots, while another project uses the rest; lifting the
# limit lets it spread. `rushes priority` moves a queued job ahead.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ops-limits
farm_start_daemon --heartbeat-ms 300
"$RUSHES" limit capped 1 | grep -q "max_running 1" || farm_fail "rushes limit"
farm_start_worker w1 --slots 2
farm_start_worker w2 --slots 2
capped=$(api POST /api/v1/jobs '{"project":"capped","kind":"noop","params":{"tasks":6,"sleep_ms":300}}' | jq -r .job.id)
free=$(api POST /api/v1/jobs '{"project":"free","kind":"noop","params":{"tasks":6,"sleep_ms":300}}' | jq -r .job.id)
max_capped=0
max_free=0
while :; do
  p=$(api GET /api/v1/projects)
  c=$(jq '.projects[] | select(.name=="capped") | .running_tasks' <<<"$p")
  f=$(jq '[.projects[] | select(.name=="free") | .running_tasks] | add // 0' <<<"$p")
  [ "$c" -gt "$max_capped" ] && max_capped=$c
  [ "$f" -gt "$max_free" ] && max_free=$f
  st=$(api GET "/api/v1/jobs/$capped" | jq -r .job.state)
  [ "$st" = succeeded ] && break
  [ "$st" = running ] || [ "$st" = queued ] || farm_fail "capped job $st"
  sleep 0.05
done
[ "$max_capped" = 1 ] || farm_fail "capped project ran $max_capped tasks at once (limit 1)"
[ "$max_free" -ge 2 ] || farm_fail "uncapped project never ran more than $max_free at once"
farm_wait_jobs 60 "$free"

# Lift the limit: the project spreads over the free slots again.
"$RUSHES" limit capped 0 >/dev/null
again=$(api POST /api/v1/jobs '{"project":"capped","kind":"noop","params":{"tasks":8,"sleep_ms":300}}' | jq -r .job.id)
max=0
while [ "$(api GET "/api/v1/jobs/$again" | jq -r .job.state)" != succeeded ]; do
  c=$(api GET /api/v1/projects | jq '.projects[] | select(.name=="capped") | .running_tasks')
  [ "$c" -gt "$max" ] && max=$c
  sleep 0.05
done
[ "$max" -ge 2 ] || farm_fail "after lifting the limit the project still ran at most $max"

# Priority: with both workers drained, two queued jobs; raising the later
# one makes it run first once a worker is undrained.
for w in $(api GET /api/v1/workers | jq -r '.workers[].id'); do "$RUSHES" drain "$w" >/dev/null; done
a=$(api POST /api/v1/jobs '{"project":"order","kind":"noop","params":{"tasks":1}}' | jq -r .job.id)
b=$(api POST /api/v1/jobs '{"project":"order","kind":"noop","params":{"tasks":1}}' | jq -r .job.id)
"$RUSHES" priority "$b" 90 | grep -q "priority 90" || farm_fail "rushes priority"
sleep 0.5
[ "$(api GET "/api/v1/jobs/$a" | jq -r .job.state)" = queued ] || farm_fail "a drained farm ran a job"
w1=$(api GET /api/v1/workers | jq -r '.workers[] | select(.name=="w1") | .id')
"$RUSHES" undrain "$w1" >/dev/null
farm_wait_jobs 30 "$a" "$b"
# Attempt ids follow lease order (started_at may share a millisecond).
sa=$(api GET "/api/v1/jobs/$a" | jq -r '.job.tasks[0].attempts[0].id')
sb=$(api GET "/api/v1/jobs/$b" | jq -r '.job.tasks[0].attempts[0].id')
[ "$sb" -lt "$sa" ] || farm_fail "re-prioritised job $b leased as attempt $sb, after $a's $sa"
echo "ops limits: project cap held at 1 (other project up to $max_free), lifted, priority reorders"
