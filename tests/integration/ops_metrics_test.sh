#!/usr/bin/env bash
# Ops: /metrics in Prometheus text format. `promtool check metrics` accepts
# it before and after a run, and its counters move as the test drives jobs:
# dispatches, failed attempts and retries, a lease expiry (worker killed),
# jobs by kind and state, queue wait and run time histograms, workers up,
# HTTP responses by code.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
command -v promtool >/dev/null || farm_fail "promtool not installed (Debian package prometheus)"
farm_init ops-metrics
farm_start_daemon --lease-ttl-ms 1500 --heartbeat-ms 300 --backoff-ms 100

scrape() { # scrape FILE
  curl -s -f "$API/metrics" >"$1" || farm_fail "GET /metrics failed"
  promtool check metrics <"$1" >"$FARM/logs/promtool.log" 2>&1 ||
    farm_fail "promtool check metrics: $(cat "$FARM/logs/promtool.log")"
}
val() { # val FILE SERIES -> value (0 if absent)
  awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }' "$1"
}
scrape "$FARM/m0"
grep -q '^# TYPE rushes_queue_wait_seconds histogram' "$FARM/m0" || farm_fail "no queue wait histogram"

# One worker killed while it runs a task: its lease expires.
farm_start_worker victim
slow=$(api POST /api/v1/jobs '{"project":"m","kind":"noop","params":{"tasks":1,"sleep_ms":30000},"max_attempts":3}' | jq -r .job.id)
for _ in $(seq 1 100); do
  [ "$(api GET "/api/v1/jobs/$slow" | jq -r .job.state)" = running ] && break
  sleep 0.1
done
kill -9 "$LAST_WORKER_PID"
for _ in $(seq 1 100); do
  scrape "$FARM/m1"
  [ "$(val "$FARM/m1" rushes_lease_expiries_total)" -ge 1 ] && break
  sleep 0.1
done
[ "$(val "$FARM/m1" rushes_lease_expiries_total)" -ge 1 ] || farm_fail "lease expiry not counted"
api POST "/api/v1/jobs/$slow/cancel" >/dev/null

farm_start_worker w1
ok=$(api POST /api/v1/jobs '{"project":"m","kind":"noop","params":{"tasks":4,"sleep_ms":50}}' | jq -r .job.id)
bad=$(api POST /api/v1/jobs '{"project":"m","kind":"noop","params":{"tasks":1,"exit_code":3},"max_attempts":2}' | jq -r .job.id)
api GET /api/v1/jobs/999999 >/dev/null # one 404
farm_wait_jobs 60 "$ok" "$bad"
scrape "$FARM/m2"

check() { # check SERIES OP VALUE
  local v
  v=$(val "$FARM/m2" "$1")
  awk -v a="$v" -v b="$3" -v op="$2" 'BEGIN { exit !((op == ">=" && a >= b) || (op == "==" && a == b)) }' ||
    farm_fail "$1 = $v, expected $2 $3"
}
d0=$(val "$FARM/m0" rushes_tasks_dispatched_total)
check rushes_tasks_dispatched_total '>=' $((d0 + 7)) # 1 lost + 4 ok + 2 failed
check rushes_task_attempts_failed_total '>=' 3        # 1 lost + 2 failed
check rushes_tasks_retried_total '>=' 1               # bad's 2nd attempt
check rushes_lease_expiries_total '>=' 1
check 'rushes_jobs{kind="noop",state="succeeded"}' '==' 1
check 'rushes_jobs{kind="noop",state="failed"}' '==' 1
check 'rushes_jobs{kind="noop",state="cancelled"}' '==' 1
check rushes_workers_up '>=' 1
check 'rushes_queue_wait_seconds_count' '>=' 6
check 'rushes_task_run_seconds_count' '>=' 6
check 'rushes_task_run_seconds_bucket{le="+Inf"}' '>=' 6
check 'rushes_http_requests_total{code="201"}' '>=' 3
check 'rushes_http_requests_total{code="404"}' '>=' 1
check 'rushes_http_requests_total{code="200"}' '>=' 5
# Histogram buckets are cumulative.
awk '/^rushes_task_run_seconds_bucket/ { v = $2 + 0; if (v < prev) bad = 1; prev = v } END { exit bad }' \
  "$FARM/m2" || farm_fail "run time buckets are not cumulative"
echo "ops metrics: promtool accepts /metrics and its counters moved"
