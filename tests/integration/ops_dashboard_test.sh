#!/usr/bin/env bash
# Ops: the web dashboard in real headless Chromium (Debian's chromium,
# driven over the DevTools protocol by ops_dashboard.mjs with node's
# built-ins). A daemon, two workers and jobs in every state; each page is
# checked against the API, a job is cancelled and a worker drained through
# the UI, and an audit token's cancel is refused (403 shown). Screenshots go to $RS_BINARY_DIR/tests/artifacts/ops_dashboard/;
# RS_UPDATE_DOCS=1 also copies the jobs page to docs/dashboard.png.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
command -v chromium >/dev/null || farm_fail "chromium not installed (Debian package chromium)"
farm_init ops-dash
ART="$RS_BINARY_DIR/tests/artifacts/ops_dashboard"
rm -rf "$ART"
mkdir -p "$ART"
farm_start_daemon --heartbeat-ms 500
farm_start_worker w1
farm_start_worker w2

submit() { api POST /api/v1/jobs "$1" | jq -r .job.id; }
ok=$(submit '{"project":"feature","kind":"noop","params":{"tasks":3,"sleep_ms":20}}')
bad=$(submit '{"project":"feature","kind":"noop","params":{"tasks":1,"exit_code":2},"max_attempts":1}')
farm_wait_jobs 60 "$ok" "$bad"
run=$(submit '{"project":"feature","kind":"noop","params":{"tasks":1,"sleep_ms":120000},"priority":50}')
queued=$(submit '{"project":"promo","kind":"noop","params":{"tasks":2},"pool":"nowhere"}')
gone=$(submit '{"project":"promo","kind":"noop","params":{"tasks":1},"pool":"nowhere"}')
api POST "/api/v1/jobs/$gone/cancel" >/dev/null
for _ in $(seq 1 100); do
  [ "$(api GET "/api/v1/jobs/$run" | jq -r .job.state)" = running ] && break
  sleep 0.1
done
[ "$(api GET "/api/v1/jobs/$run" | jq -r .job.state)" = running ] || farm_fail "job $run never ran"
runner=$(api GET "/api/v1/jobs/$run" | jq -r '.job.tasks[0].attempts[-1].worker')
idle=w1
[ "$runner" = w1 ] && idle=w2

AUDIT=$(api POST /api/v1/tokens '{"tenant":"*","role":"audit","name":"dash-audit"}' | jq -r .token.token)
node --no-warnings "$RS_SOURCE_DIR/tests/integration/ops_dashboard.mjs" \
  "$API" "$FARM_TOKEN" "$ART" "$run" "$idle" "$AUDIT" "$queued" || farm_fail "dashboard checks failed (screenshots in $ART)"

# The drained worker gets nothing new; the other one still works.
next=$(submit '{"project":"feature","kind":"noop","params":{"tasks":4}}')
farm_wait_jobs 60 "$next"
used=$(api GET "/api/v1/jobs/$next" | jq -r '[.job.tasks[].attempts[].worker] | unique | join(",")')
[ "$used" = "$runner" ] || farm_fail "after draining $idle, tasks ran on: $used"
for f in overview jobs job workers jobs-after-cancel workers-after-drain; do
  [ -s "$ART/$f.png" ] || farm_fail "screenshot $f.png missing"
done
if [ "${RS_UPDATE_DOCS:-}" = 1 ]; then
  cp "$ART/jobs.png" "$RS_SOURCE_DIR/docs/dashboard.png"
fi
echo "ops dashboard: pages match the API, cancel and drain work through the UI; screenshots in $ART"
