#!/usr/bin/env bash
# Crash: SIGKILL rushesd at chosen points (after a submit commits, during
# dispatch, while a report is in flight, after it commits, during
# finalisation) and restart it, CRASH_ITERATIONS times (default 20) against
# one database. After each restart: every acknowledged job is still there,
# a client retrying an unacknowledged submit with its Idempotency-Key gets
# exactly one job, every job finishes exactly once (one succeeded attempt per
# task), and every ingest job's MHL verifies against the files.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init dkill
ITER=${CRASH_ITERATIONS:-20}
mkdir -p "$FARM/media/seq"
ffmpeg -loglevel error -f lavfi -i testsrc=size=64x36:rate=24 -frames:v 6 "$FARM/media/seq/f.%04d.png"
points=(submit_committed dispatch_leased report_received report_committed finalize)
FLAGS=(--lease-ttl-ms 1000 --heartbeat-ms 200 --backoff-ms 100)

farm_start_daemon "${FLAGS[@]}"
farm_start_worker a
farm_start_worker b
farm_stop_daemon

submit() { # key body -> prints id or nothing (unacknowledged)
  local out
  out=$(curl -s -m 5 -X POST -H 'Content-Type: application/json' -H "Idempotency-Key: $1" \
    --data-binary "$2" -w '\n%{http_code}' "$API/api/v1/jobs" 2>/dev/null) || return 0
  case "${out##*$'\n'}" in 200 | 201) jq -r .job.id <<<"${out%$'\n'*}" ;; esac
}

crashes=0
for it in $(seq 1 "$ITER"); do
  point=${points[$((it % ${#points[@]}))]}
  nth=$((1 + RANDOM % 3))
  RUSHES_CRASH_AT="$point:$nth" farm_start_daemon "${FLAGS[@]}"
  keys=()
  bodies=()
  acked=()
  for j in 1 2 3 4; do
    keys+=("it$it-j$j")
    if [ "$j" = 4 ]; then
      bodies+=("{\"project\":\"crash\",\"kind\":\"ingest\",\"params\":{\"path\":\"$FARM/media/seq\",\"files_per_task\":2}}")
    else
      bodies+=("{\"project\":\"crash\",\"kind\":\"noop\",\"params\":{\"tasks\":3}}")
    fi
    id=$(submit "${keys[-1]}" "${bodies[-1]}")
    acked+=("$id")
  done
  # let it run until it dies at its crash point (or 4 s pass)
  for _ in $(seq 1 40); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -9 "$DAEMON_PID"
  else
    crashes=$((crashes + 1))
  fi
  wait "$DAEMON_PID" 2>/dev/null || true

  farm_start_daemon "${FLAGS[@]}"
  ids=()
  for j in 0 1 2 3; do
    id=$(submit "${keys[$j]}" "${bodies[$j]}")
    [ -n "$id" ] || farm_fail "iteration $it: resubmit of ${keys[$j]} not acknowledged"
    if [ -n "${acked[$j]}" ] && [ "${acked[$j]}" != "$id" ]; then
      farm_fail "iteration $it: acknowledged job ${acked[$j]} (key ${keys[$j]}) lost or duplicated as $id"
    fi
    ids+=("$id")
  done
  farm_wait_jobs 60 "${ids[@]}"
  for id in "${ids[@]}"; do
    job=$(api GET "/api/v1/jobs/$id")
    [ "$(jq -r .job.state <<<"$job")" = succeeded ] ||
      farm_fail "iteration $it ($point:$nth): job $id $(jq -r .job.state <<<"$job"): $(jq -r .job.error <<<"$job")"
    bad=$(jq '[.job.tasks[] | [.attempts[] | select(.state=="succeeded")] | length | select(. != 1)] | length' <<<"$job")
    [ "$bad" = 0 ] || farm_fail "iteration $it: job $id has a task without exactly one succeeded attempt"
    if [ "$(jq -r .job.kind <<<"$job")" = ingest ]; then
      "$RUSHES" mhl verify "$(jq -r .job.result.mhl <<<"$job")" --root "$(jq -r .job.result.root <<<"$job")" >/dev/null ||
        farm_fail "iteration $it: MHL of job $id does not verify"
    fi
  done
  n=$(api GET "/api/v1/jobs?project=crash&limit=1000" | jq '.jobs | length')
  [ "$n" = $((it * 4)) ] || farm_fail "iteration $it: $n jobs in the store, expected $((it * 4)) (lost or duplicated)"
  farm_stop_daemon
done
# proto/sock.h: how many stops met nng 1.5.2's close deadlock and left it behind
stuck=$(cat "$FARM"/logs/rushesd.*.log | grep -c "nng_close did not return" || true)
echo "daemon kill: $ITER iterations, $crashes crashed at their injected point, no job lost or run twice;" \
  "$stuck stop(s) left a stuck nng_close behind"
