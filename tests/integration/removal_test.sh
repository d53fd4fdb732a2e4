#!/usr/bin/env bash
# Integration: `rushes submit removal` through a real rushesd and real
# rushes-workers on 6 frames of ../shared/data/removal/bmx-trees (or, when
# that is absent, a textured 96x64 clip made with ffmpeg). The train worker is
# killed (SIGKILL, with its task child) after a checkpoint; the retry on
# another worker resumes from that checkpoint, not step 0. Then: the model is
# in the registry (GET /api/v1/models, `rushes models`) with its lineage; the
# infer job writes every output with every pixel outside its applied mask
# bit-identical to the source; the ledger recorded one alteration per frame;
# the contact sheet exists; an unknown --from model is refused at submit.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init removal

SRC="$RS_SOURCE_DIR/../shared/data/removal/bmx-trees"
mkdir -p "$FARM/media/shot/frames" "$FARM/media/shot/masks"
if [ -d "$SRC/frames" ] && [ -d "$SRC/masks" ]; then
  for i in 0 1 2 3 4 5; do
    f=$(printf '%05d.png' "$i")
    ffmpeg -loglevel error -i "$SRC/frames/$f" -vf scale=216:120 "$FARM/media/shot/frames/f.$f"
    ffmpeg -loglevel error -i "$SRC/masks/$f" -vf scale=216:120:flags=neighbor -pix_fmt gray \
      "$FARM/media/shot/masks/m.$f"
  done
else
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=96x64:rate=24 -frames:v 6 \
    -start_number 0 "$FARM/media/shot/frames/f.%05d.png"
  for i in 0 1 2 3 4 5; do
    ffmpeg -loglevel error -f lavfi -i "color=black:size=96x64,drawbox=x=$((40 + i)):y=0:w=3:h=64:color=white:t=fill" \
      -frames:v 1 -pix_fmt gray "$FARM/media/shot/masks/m.$(printf '%05d' "$i").png"
  done
fi

farm_start_daemon --lease-ttl-ms 4000 --heartbeat-ms 1000 --backoff-ms 200
farm_start_worker w1
W1=$LAST_WORKER_PID

CFG='{"depth":2,"base":8,"patch":32,"batch":2,"ckpt_every":10,"chunk":3}'
out=$("$RUSHES" --json submit removal --project rm \
  --param "frames=$FARM/media/shot/frames" --param "masks=$FARM/media/shot/masks" \
  --param output=out --param steps=600 --param range=3 --param "config=$CFG") ||
  farm_fail "submit removal: $out"
TRAIN=$(jq -r .train.id <<<"$out")
INFER=$(jq -r .infer.id <<<"$out")
[ "$(jq -r .infer.kind <<<"$out")" = removal_infer ] || farm_fail "second job is not removal_infer: $out"

# Wait for a checkpoint in the train job's log, then kill worker w1 and its task.
deadline=$((SECONDS + 120))
until api GET "/api/v1/jobs/$TRAIN/log" | grep -q 'checkpoint step'; do
  [ $SECONDS -lt $deadline ] || farm_fail "no checkpoint logged by the train job"
  sleep 0.2
done
for c in $(pgrep -P "$W1" || true); do kill -9 "$c" 2>/dev/null || true; done
kill -9 "$W1"
# Shorten the rest of training: the retry keeps the same params (steps 600)
# so let it run on a second worker; the lease expires after 4 s.
farm_start_worker w2
farm_wait_jobs 400 "$TRAIN" "$INFER"

job=$(api GET "/api/v1/jobs/$TRAIN")
[ "$(jq -r .job.state <<<"$job")" = succeeded ] || farm_fail "train job: $(jq -c .job <<<"$job")"
resumed=$(jq -r '.job.tasks[0].result.resumed_from // empty' <<<"$job")
if [ -z "$resumed" ]; then
  resumed=$(jq -r '.job.result.model.resumed_from' <<<"$job")
fi
[ "$resumed" -gt 0 ] || farm_fail "the retried training started from step $resumed, not a checkpoint"
nattempts=$(jq '[.job.tasks[0].attempts[]] | length' <<<"$job")
[ "$nattempts" -ge 2 ] || farm_fail "train task ran $nattempts attempt(s), expected a retry"
MODEL=$(jq -r .job.result.model_id <<<"$job")
[ "$MODEL" -gt 0 ] || farm_fail "no model_id in the train result"

# Registry and lineage.
m=$(api GET "/api/v1/models/$MODEL")
[ "$(jq -r .model.task_kind <<<"$m")" = removal ] || farm_fail "model: $m"
[ "$(jq '.model.trained_on | length' <<<"$m")" = 6 ] || farm_fail "model lineage: $m"
[ "$(jq '.model.metrics.masks | length' <<<"$m")" = 6 ] || farm_fail "model mask hashes: $m"
[ "$(jq -r .model.metrics.steps <<<"$m")" = 600 ] || farm_fail "model steps: $m"
"$RUSHES" models --project rm | grep -q "removal" || farm_fail "rushes models does not list it"
# The checkpoint was copied off the daemon's loop and renamed into place.
[ -s "$FARM/data/models/rm/model-$MODEL.safetensors" ] || farm_fail "no registry copy of model $MODEL"
if ls "$FARM"/data/models/rm/.staged-* >/dev/null 2>&1; then
  farm_fail "a staged checkpoint was left behind: $(ls "$FARM"/data/models/rm/)"
fi

# Infer outputs: outside the applied mask, bit-identical to the source.
job=$(api GET "/api/v1/jobs/$INFER")
[ "$(jq -r .job.state <<<"$job")" = succeeded ] || farm_fail "infer job: $(jq -c .job <<<"$job")"
n=$(jq '.job.result.alterations | length' <<<"$job")
[ "$n" -ge 1 ] || farm_fail "no alterations in the infer result"
sheet=$(jq -r .job.result.contact_sheet <<<"$job")
[ -s "$sheet" ] || farm_fail "contact sheet $sheet missing"
jq -c .job.result.alterations <<<"$job" >"$FARM/alterations.json"
python3 - "$FARM/alterations.json" <<'PY' || farm_fail "outside-mask pixels changed"
import json, subprocess, sys
alts = json.load(open(sys.argv[1]))
def raw(path, fmt):
    return subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo",
                           "-pix_fmt", fmt, "-"], check=True, capture_output=True).stdout
for a in alts:
    s, o, m = raw(a["source"], "rgb24"), raw(a["output"], "rgb24"), raw(a["mask"], "gray")
    assert len(s) == len(o) == 3 * len(m), a
    inside = 0
    for p in range(len(m)):
        same = s[3 * p:3 * p + 3] == o[3 * p:3 * p + 3]
        if m[p] == 0 and not same:
            sys.exit("%s: pixel %d outside the mask changed" % (a["output"], p))
        inside += (not same)
    assert inside > 0, "%s: nothing changed inside the mask" % a["output"]
PY

# Ledger: one alteration event per altered frame.
nev=$(api GET "/api/v1/ledger/events?project=rm" | jq '[.events[] | select(.payload.type == "alteration")] | length')
[ "$nev" = "$n" ] || farm_fail "ledger has $nev alteration events, result lists $n"

# Unknown --from model: refused at submit.
if "$RUSHES" submit removal --project rm --param "frames=$FARM/media/shot/frames" \
  --param "masks=$FARM/media/shot/masks" --param output=out2 --param from=999 \
  >"$FARM/logs/from.out" 2>&1; then
  farm_fail "submit with an unknown model succeeded"
fi
grep -q "unknown model 999" "$FARM/logs/from.out" || farm_fail "error: $(cat "$FARM/logs/from.out")"

# A second shot can start from the registered model.
out=$("$RUSHES" --json submit removal --project rm \
  --param "frames=$FARM/media/shot/frames" --param "masks=$FARM/media/shot/masks" \
  --param output=out3 --param steps=20 --param "from=$MODEL" --param "config=$CFG") ||
  farm_fail "submit --from: $out"
T2=$(jq -r .train.id <<<"$out")
I2=$(jq -r .infer.id <<<"$out")
farm_wait_jobs 200 "$T2" "$I2"
j2=$(api GET "/api/v1/jobs/$T2")
[ "$(jq -r .job.state <<<"$j2")" = succeeded ] || farm_fail "from-model train: $(jq -c .job <<<"$j2")"
M2=$(jq -r .job.result.model_id <<<"$j2")
[ "$(api GET "/api/v1/models/$M2" | jq -r .model.parent_id)" = "$MODEL" ] ||
  farm_fail "model $M2 does not name its parent $MODEL"
[ "$(api GET "/api/v1/jobs/$I2" | jq -r .job.state)" = succeeded ] || farm_fail "second infer failed"

# An infer job alone, from the registered model.
body=$(jq -cn --arg f "$FARM/media/shot/frames" --arg m "$FARM/media/shot/masks" --argjson id "$MODEL" \
  '{project:"rm",kind:"removal_infer",params:{frames:$f,masks:$m,output:"out4",model:$id,range:3}}')
I3=$(api POST /api/v1/jobs "$body" | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "infer from model $MODEL: HTTP $(api_status)"
farm_wait_jobs 200 "$I3"
[ "$(api GET "/api/v1/jobs/$I3" | jq -r .job.state)" = succeeded ] || farm_fail "infer from model failed"

# The compliance audit of every infer job: all changed pixels inside their masks.
for j in "$INFER" "$I2" "$I3"; do
  [ "$(farm_audit_job rm "$j")" -ge 1 ] || farm_fail "audit of infer job $j covered no frame"
done

farm_stop_daemon
echo "removal: train resumed from step $resumed after a kill, model $MODEL registered, $n frames altered, outside pixels identical"
