#!/usr/bin/env bash
# Crash: SIGKILL a worker in the middle of a task. Its lease expires, the task
# reruns on the other worker, and the job succeeds exactly once (one
# succeeded attempt, the first one marked lost).
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init wkill
farm_start_daemon --lease-ttl-ms 1500 --heartbeat-ms 300 --backoff-ms 200
farm_start_worker a
pid_a=$LAST_WORKER_PID
farm_start_worker b
pid_b=$LAST_WORKER_PID

id=$(api POST /api/v1/jobs '{"project":"crash","kind":"noop","params":{"sleep_ms":3000}}' | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "submit: HTTP $(api_status)"

# wait until the task is running somewhere
victim=""
for _ in $(seq 1 100); do
  victim=$(api GET "/api/v1/jobs/$id" | jq -r '[.job.tasks[0].attempts[] | select(.state=="leased" or .state=="running")][0].worker // empty')
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || farm_fail "task never started"
sleep 0.5
if [ "$victim" = a ]; then kill -9 "$pid_a"; else kill -9 "$pid_b"; fi

farm_wait_jobs 60 "$id"
job=$(api GET "/api/v1/jobs/$id")
[ "$(jq -r .job.state <<<"$job")" = succeeded ] || farm_fail "job not succeeded: $job"
ok=$(jq '[.job.tasks[0].attempts[] | select(.state=="succeeded")] | length' <<<"$job")
lost=$(jq '[.job.tasks[0].attempts[] | select(.state=="lost")] | length' <<<"$job")
winner=$(jq -r '[.job.tasks[0].attempts[] | select(.state=="succeeded")][0].worker' <<<"$job")
[ "$ok" = 1 ] || farm_fail "expected exactly one succeeded attempt, got $ok"
[ "$lost" -ge 1 ] || farm_fail "the killed worker's attempt is not marked lost"
[ "$winner" != "$victim" ] || farm_fail "task finished on the killed worker?"
echo "worker kill: task lost on $victim, rerun and succeeded once on $winner"
