#!/usr/bin/env bash
# Integration: `rushes eval removal --method rushes` end to end through a
# real farm (rushesd + one rushes-worker) on 8 frames of
# ../shared/data/removal/dogs_jump scaled to 128x72 (or, when absent, a
# testsrc2 clip made with ffmpeg). The eval draws synthetic wires, submits a
# removal_train job and a removal_infer job depending on it, and scores the
# infer outputs beside stage 1 and the baselines (median, OpenCV Telea and
# Navier-Stokes). Checked on its --json: every method present with finite,
# plausible scores (in-mask PSNR > 10 dB, SSIM in 0..1, flicker >= 0); both
# rushes jobs succeeded (asked of the API by the ids the JSON gives); the
# trained model has the steps asked for; every infer output (kept with
# --keep) is bit-identical to its wired source outside the applied mask and
# differs inside it. Model quality is not judged here (bench/removal does).
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init removal_eval

SRC="$RS_SOURCE_DIR/../shared/data/removal/dogs_jump/frames"
CLIP="$FARM/clip"
mkdir -p "$CLIP"
if [ -d "$SRC" ] && [ -f "$SRC/00000.png" ]; then
  ffmpeg -loglevel error -start_number 0 -i "$SRC/%05d.png" -frames:v 8 -vf scale=128:72 \
    -pix_fmt rgb24 -start_number 0 "$CLIP/c.%05d.png"
else
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=128x72:rate=24 -frames:v 8 -pix_fmt rgb24 \
    -start_number 0 "$CLIP/c.%05d.png"
fi
[ "$(ls "$CLIP" | wc -l)" = 8 ] || farm_fail "could not make the 8-frame clip"

farm_start_daemon --lease-ttl-ms 10000 --heartbeat-ms 1000 --backoff-ms 200
farm_start_worker w1

# A small network so 20 steps take seconds on lavapipe; range 4 covers the clip.
CFG='{"depth":2,"base":8,"patch":32,"batch":2,"ckpt_every":10,"chunk":4}'
t0=$SECONDS
"$RUSHES" --json eval removal --frames "$CLIP" --synth-wires 1 --method rushes \
  --media-root "$FARM/media" --steps 20 --range 4 --config "$CFG" --project ev --keep \
  >"$FARM/eval.json" 2>"$FARM/logs/eval.log" ||
  farm_fail "rushes eval removal --method rushes failed: $(cat "$FARM/logs/eval.log")"
echo "eval took $((SECONDS - t0)) s"
J=$(cat "$FARM/eval.json")
jq -e . >/dev/null <<<"$J" || farm_fail "eval output is not JSON: $J"
[ "$(jq -r .frames <<<"$J")" = 8 ] || farm_fail "eval scored $(jq .frames <<<"$J") frames: $J"
[ "$(jq -r .width <<<"$J")x$(jq -r .height <<<"$J")" = 128x72 ] || farm_fail "size: $J"
hf=$(jq -r .hole_fraction <<<"$J")
awk -v f="$hf" 'BEGIN { exit !(f > 0 && f < 0.5) }' || farm_fail "hole fraction $hf"

# Every method, each with finite plausible numbers (jq prints NaN/inf as null).
for m in rushes stage1 median telea ns; do
  o=$(jq -c --arg m "$m" '.methods[] | select(.name == $m)' <<<"$J")
  [ -n "$o" ] || farm_fail "method $m missing from: $J"
  jq -e '(.psnr | type) == "number" and .psnr > 10 and .psnr < 100
         and (.ssim | type) == "number" and .ssim > 0 and .ssim <= 1
         and (.flicker | type) == "number" and .flicker >= 0
         and (.seconds | type) == "number" and .seconds >= 0' >/dev/null <<<"$o" ||
    farm_fail "implausible scores for $m: $o"
done
# rushes is printed first, above what it must beat.
[ "$(jq -r '.methods[0].name' <<<"$J")" = rushes ] || farm_fail "rushes is not the first row: $J"

# The rushes row names its jobs; both succeeded on the farm.
R=$(jq -c '.methods[] | select(.name == "rushes")' <<<"$J")
[ "$(jq -r .steps <<<"$R")" = 20 ] || farm_fail "rushes trained $(jq .steps <<<"$R") steps, asked 20"
TRAIN=$(jq -r .train_job <<<"$R")
INFER=$(jq -r .infer_job <<<"$R")
MODEL=$(jq -r .model_id <<<"$R")
[ "$TRAIN" -gt 0 ] && [ "$INFER" -gt 0 ] || farm_fail "job ids missing: $R"
[ "$MODEL" -gt 0 ] || farm_fail "no model registered: $R"
tj=$(api GET "/api/v1/jobs/$TRAIN")
ij=$(api GET "/api/v1/jobs/$INFER")
[ "$(jq -r .job.kind <<<"$tj")/$(jq -r .job.state <<<"$tj")" = removal_train/succeeded ] ||
  farm_fail "train job: $(jq -c .job <<<"$tj")"
[ "$(jq -r .job.kind <<<"$ij")/$(jq -r .job.state <<<"$ij")" = removal_infer/succeeded ] ||
  farm_fail "infer job: $(jq -c .job <<<"$ij")"
[ "$(jq -r .job.result.frames <<<"$ij")" = 8 ] || farm_fail "infer wrote $(jq .job.result.frames <<<"$ij") frames"
[ "$(api GET "/api/v1/models/$MODEL" | jq -r .model.task_kind)" = removal ] ||
  farm_fail "model $MODEL is not a removal model"
[ "$(farm_audit_job ev "$INFER")" = 8 ] || farm_fail "audit of the eval's infer job did not cover 8 frames"

# Outputs: bit-identical to the wired source outside the applied mask,
# changed inside it (every frame has a wire).
jq -c '[.job.result.alterations[] | {source, output, mask}]' <<<"$ij" >"$FARM/alterations.json"
[ "$(jq length "$FARM/alterations.json")" = 8 ] || farm_fail "alterations: $(cat "$FARM/alterations.json")"
python3 - "$FARM/alterations.json" <<'PY' || farm_fail "outside-mask pixels changed"
import json, subprocess, sys
def raw(path, fmt):
    return subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo",
                           "-pix_fmt", fmt, "-"], check=True, capture_output=True).stdout
for a in json.load(open(sys.argv[1])):
    s, o, m = raw(a["source"], "rgb24"), raw(a["output"], "rgb24"), raw(a["mask"], "gray")
    assert len(s) == len(o) == 3 * len(m) == 3 * 128 * 72, a
    inside = 0
    for p in range(len(m)):
        same = s[3 * p:3 * p + 3] == o[3 * p:3 * p + 3]
        if m[p] == 0 and not same:
            sys.exit("%s: pixel %d outside the mask changed" % (a["output"], p))
        inside += not same
    if inside == 0:
        sys.exit("%s: nothing changed inside the mask" % a["output"])
PY

farm_stop_daemon
echo "removal eval: $(jq -c '[.methods[] | {name, psnr: (.psnr * 100 | round / 100)}]' <<<"$J")"
