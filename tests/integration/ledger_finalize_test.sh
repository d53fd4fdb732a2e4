#!/usr/bin/env bash
# Integration: finalising a job never blocks rushesd's loop. A noop job with
# the test knob "finalize_ms" (docs/API.md) makes its finalize take seconds,
# as a 1080p removal job's ledger work does; while it runs, /healthz and a
# GET of the job (both answered by the loop) must answer within 500 ms and
# the worker's heartbeats must not time out. Then SIGTERM during a slow
# finalisation: rushesd stops cleanly (exit 0), and after the restart the
# job is finalised exactly once.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init fin
SLOW_MS=4000
LIMIT_MS=500

farm_start_daemon --lease-ttl-ms 3000 --heartbeat-ms 200
farm_start_worker a

# waits until every task of job $1 succeeded (the job is then finalising)
wait_tasks_done() {
  local i job
  for i in $(seq 1 300); do
    job=$(api GET "/api/v1/jobs/$1")
    if [ "$(jq -r '.job.tasks_done == .job.tasks_total' <<<"$job")" = true ]; then
      return 0
    fi
    sleep 0.05
  done
  farm_fail "job $1: tasks not done after 15 s: $job"
}

ms_of() { # curl time_total (seconds) -> integer ms
  awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }'
}

# 1. The loop answers while a job finalises.
job=$(api POST /api/v1/jobs "{\"project\":\"fin\",\"kind\":\"noop\",\"params\":{\"finalize_ms\":$SLOW_MS}}" | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "submit: HTTP $(api_status)"
wait_tasks_done "$job"
t0=$SECONDS
samples=0
during=0
worst=0
while [ $((SECONDS - t0)) -lt 3 ]; do
  for path in /healthz "/api/v1/jobs/$job"; do
    t=$(curl -s -o "$FARM/body" -m 10 -w '%{time_total}' "$API$path") || farm_fail "GET $path failed"
    ms=$(ms_of "$t")
    [ "$ms" -gt "$worst" ] && worst=$ms
    [ "$ms" -le "$LIMIT_MS" ] || farm_fail "GET $path took $ms ms while job $job finalised (limit $LIMIT_MS)"
    samples=$((samples + 1))
  done
  if [ "$(jq -r .job.state "$FARM/body")" = running ]; then
    during=$((during + 1))
  fi
  sleep 0.1
done
[ "$during" -ge 5 ] || farm_fail "only $during probes fell inside the finalisation: it did not take seconds"
farm_wait_jobs 30 "$job"
res=$(api GET "/api/v1/jobs/$job")
[ "$(jq -r .job.state <<<"$res")" = succeeded ] || farm_fail "job $job: $(jq -c .job <<<"$res")"
[ "$(jq -r .job.result.tasks <<<"$res")" = 1 ] || farm_fail "job $job: result $(jq -c .job.result <<<"$res")"
if grep -q "no answer in time" "$FARM"/logs/worker-a.log; then
  farm_fail "a worker request timed out while the job finalised"
fi
echo "finalize: $samples API probes during a ${SLOW_MS} ms finalisation ($during with the job still running), worst $worst ms"

# 2. SIGTERM while a job finalises: a clean stop, and after the restart the
# job is finalised once.
job2=$(api POST /api/v1/jobs "{\"project\":\"fin\",\"kind\":\"noop\",\"params\":{\"finalize_ms\":2000}}" | jq -r .job.id)
wait_tasks_done "$job2"
sleep 0.3
[ "$(api GET "/api/v1/jobs/$job2" | jq -r .job.state)" = running ] || farm_fail "job $job2 finalised too early for the test"
farm_stop_daemon 20
farm_start_daemon --lease-ttl-ms 3000 --heartbeat-ms 200
farm_wait_jobs 30 "$job2"
res=$(api GET "/api/v1/jobs/$job2")
[ "$(jq -r .job.state <<<"$res")" = succeeded ] || farm_fail "job $job2 after restart: $(jq -c .job <<<"$res")"
n=$(jq '[.job.tasks[] | [.attempts[] | select(.state=="succeeded")] | length | select(. != 1)] | length' <<<"$res")
[ "$n" = 0 ] || farm_fail "job $job2: a task ran again after the restart"
farm_stop_daemon 20
echo "finalize: stop during a finalisation exits cleanly; the job completes after the restart"
