#!/usr/bin/env bash
# Ops: `rushes admin backup` while jobs run (SQLite's online backup API over
# a separate read connection: one consistent snapshot). The copy passes
# PRAGMA integrity_check; a daemon started on it (the old one killed -9)
# carries on: every job the backup holds finishes, each task with exactly
# one succeeded attempt, with the old workers reconnecting.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ops-backup
FLAGS=(--lease-ttl-ms 2000 --heartbeat-ms 300 --backoff-ms 100)
farm_start_daemon "${FLAGS[@]}"
farm_start_worker w1 --slots 2
farm_start_worker w2 --slots 2

ids=()
for i in $(seq 1 30); do
  ids+=("$(api POST /api/v1/jobs '{"project":"bk","kind":"noop","params":{"tasks":2,"sleep_ms":150}}' | jq -r .job.id)")
done
# Take the backup mid-run: some jobs done, some running, some queued.
for _ in $(seq 1 100); do
  n=$(api GET "/api/v1/jobs?project=bk&state=succeeded&limit=1000" | jq '.jobs | length')
  [ "$n" -ge 3 ] && break
  sleep 0.1
done
out=$("$RUSHES" admin backup --name mid.db)
[ "$out" = "$FARM/data/backups/mid.db" ] || farm_fail "admin backup printed '$out'"
if "$RUSHES" admin backup --name mid.db 2>/dev/null; then
  farm_fail "a second backup overwrote mid.db"
fi
[ "$(sqlite3 "$out" 'PRAGMA integrity_check')" = ok ] || farm_fail "backup fails integrity_check"
running=$(sqlite3 "$out" "SELECT COUNT(*) FROM job WHERE state IN ('queued','running')")
[ "$running" -ge 1 ] || farm_fail "backup taken too late: no unfinished job in it"
mapfile -t in_backup < <(sqlite3 "$out" "SELECT id FROM job ORDER BY id")
[ "${#in_backup[@]}" -ge 1 ] || farm_fail "backup holds no jobs"

# Disaster: the daemon dies; restore the backup and start on it.
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
mkdir -p "$FARM/restore"
cp "$out" "$FARM/restore/rushes.db"
# A fresh API port: the old one can linger in the kernel after a kill -9
# (workers keep dialing the same worker port and re-register).
API_PORT=$(farm_free_port)
API="http://127.0.0.1:$API_PORT"
export RUSHES_SERVER="$API"
farm_start_daemon "${FLAGS[@]}" --db "$FARM/restore/rushes.db"
farm_wait_jobs 120 "${in_backup[@]}"
for id in "${in_backup[@]}"; do
  job=$(api GET "/api/v1/jobs/$id")
  [ "$(jq -r .job.state <<<"$job")" = succeeded ] || farm_fail "restored job $id is $(jq -r .job.state <<<"$job")"
  dup=$(jq '[.job.tasks[] | [.attempts[] | select(.state == "succeeded")] | length | select(. != 1)] | length' <<<"$job")
  [ "$dup" = 0 ] || farm_fail "restored job $id has a task without exactly one succeeded attempt"
done
n=$(api GET "/api/v1/jobs?project=bk&limit=1000" | jq '.jobs | length')
[ "$n" = "${#in_backup[@]}" ] || farm_fail "restored daemon lists $n jobs, backup had ${#in_backup[@]}"
echo "ops backup: online backup mid-run restored; ${#in_backup[@]} jobs ($running unfinished at backup) all finished"
