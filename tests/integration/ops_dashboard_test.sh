#!/usr/bin/env bash
# Ops: the web dashboard in real headless Chromium (Debian's chromium,
# driven over the DevTools protocol by ops_dashboard.mjs with node's
# built-ins). A daemon, two workers and jobs in every state; each page is
# checked against the API, a job is cancelled and a worker drained through
# the UI, and an audit token's cancel is refused (403 shown). A job page
# (a removal train -> infer pair when the workers run removal) shows its DAG,
# loss curve, contact sheet and ledger events as the API has them; a job
# submitted with the CLI's --window shows its window. Screenshots go to $RS_BINARY_DIR/tests/artifacts/ops_dashboard/;
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

# A windowed job submitted with the CLI's --window (shut now: 03:00 UTC
# for 1 h is checked against the daemon's clock, so pick an hour away).
H=$(( ($(date -u +%-H) + 12) % 24 ))
win=$("$RUSHES" submit noop --project promo --param tasks=1 \
  --window "0 $H * * *" --window-hours 1 --tz Europe/London) || farm_fail "submit --window: $win"
wj=$(api GET "/api/v1/jobs/$win" | jq -c .job.window)
[ "$wj" = "{\"cron\":\"0 $H * * *\",\"duration_min\":60,\"tz\":\"Europe/London\",\"open\":false}" ] ||
  farm_fail "CLI --window stored as $wj"

# A removal train -> infer pair (when the workers run removal): the job page
# draws their DAG, the training loss curve and the contact sheet.
TRAIN=0
INFER=0
if api GET /api/v1/workers | jq -e '[.workers[].kinds[]?] | index("removal_train")' >/dev/null; then
  mkdir -p "$FARM/media/shot/frames" "$FARM/media/shot/masks"
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=96x64:rate=24 -frames:v 4 \
    -start_number 0 "$FARM/media/shot/frames/f.%05d.png"
  for i in 0 1 2 3; do
    ffmpeg -loglevel error -f lavfi -i "color=black:size=96x64,drawbox=x=$((40 + i)):y=0:w=3:h=64:color=white:t=fill" \
      -frames:v 1 -pix_fmt gray "$FARM/media/shot/masks/m.$(printf '%05d' "$i").png"
  done
  CFG='{"depth":2,"base":8,"patch":32,"batch":2,"ckpt_every":50,"chunk":3}'
  out=$("$RUSHES" --json submit removal --project feature \
    --param "frames=$FARM/media/shot/frames" --param "masks=$FARM/media/shot/masks" \
    --param output=out --param steps=300 --param range=3 --param "config=$CFG") ||
    farm_fail "submit removal: $out"
  TRAIN=$(jq -r .train.id <<<"$out")
  INFER=$(jq -r .infer.id <<<"$out")
  farm_wait_jobs 150 "$TRAIN" "$INFER"
  [ "$(api GET "/api/v1/jobs/$INFER" | jq -r .job.state)" = succeeded ] ||
    farm_fail "removal infer: $(api GET "/api/v1/jobs/$INFER" | jq -c .job)"
  npts=$(api GET "/api/v1/jobs/$TRAIN/loss" | jq '.points | length')
  [ "$npts" -ge 2 ] || farm_fail "train job $TRAIN has $npts loss points"
  # The contact sheet comes back as a PNG (curl carries the farm token from
  # $FARM/.curlrc; -q drops it); another tenant's token gets 404.
  code=$(curl -s "$API/api/v1/jobs/$INFER/contact-sheet" -o "$FARM/sheet.png" -w '%{http_code}')
  [ "$code" = 200 ] || farm_fail "GET contact-sheet: HTTP $code $(head -c 300 "$FARM/sheet.png"); result $(api GET "/api/v1/jobs/$INFER" | jq -c .job.result.contact_sheet)"
  file "$FARM/sheet.png" | grep -q 'PNG image' || farm_fail "contact sheet is not a PNG: $(file "$FARM/sheet.png")"
  OTHER=$(api POST /api/v1/tokens '{"tenant":"elsewhere","role":"admin","name":"dash-other"}' | jq -r .token.token)
  code=$(curl -q -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OTHER" "$API/api/v1/jobs/$INFER/contact-sheet")
  [ "$code" = 404 ] || farm_fail "another tenant's contact-sheet request got $code"
  code=$(curl -q -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OTHER" "$API/api/v1/jobs/$TRAIN/loss")
  [ "$code" = 404 ] || farm_fail "another tenant's loss request got $code"
  [ "$(api GET "/api/v1/jobs/$TRAIN/graph" | jq -c '[.graph.edges[] | [.from, .to]]')" = "[[$TRAIN,$INFER]]" ] ||
    farm_fail "graph of $TRAIN: $(api GET "/api/v1/jobs/$TRAIN/graph")"
fi

AUDIT=$(api POST /api/v1/tokens '{"tenant":"*","role":"audit","name":"dash-audit"}' | jq -r .token.token)
node --no-warnings "$RS_SOURCE_DIR/tests/integration/ops_dashboard.mjs" \
  "$API" "$FARM_TOKEN" "$ART" "$run" "$idle" "$AUDIT" "$queued" "$win" "$TRAIN" "$INFER" || farm_fail "dashboard checks failed (screenshots in $ART)"

# The drained worker gets nothing new; the other one still works.
next=$(submit '{"project":"feature","kind":"noop","params":{"tasks":4}}')
farm_wait_jobs 60 "$next"
used=$(api GET "/api/v1/jobs/$next" | jq -r '[.job.tasks[].attempts[].worker] | unique | join(",")')
[ "$used" = "$runner" ] || farm_fail "after draining $idle, tasks ran on: $used"
shots="overview jobs job workers jobs-after-cancel workers-after-drain"
[ "$TRAIN" = 0 ] || shots="$shots job-train job-infer"
for f in $shots; do
  [ -s "$ART/$f.png" ] || farm_fail "screenshot $f.png missing"
done
if [ "${RS_UPDATE_DOCS:-}" = 1 ]; then
  if [ -s "$ART/job-train.png" ]; then
    cp "$ART/job-train.png" "$RS_SOURCE_DIR/docs/dashboard.png"
  else
    cp "$ART/jobs.png" "$RS_SOURCE_DIR/docs/dashboard.png"
  fi
fi
echo "ops dashboard: pages match the API, cancel and drain work through the UI; screenshots in $ART"
