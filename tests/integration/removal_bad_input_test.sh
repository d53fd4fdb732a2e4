#!/usr/bin/env bash
# Integration: the bad inputs the removal acceptance lists, each through a
# real farm (rushesd + one rushes-worker, `rushes submit removal`) on a tiny
# 64x48 testsrc clip of 6 frames:
#   - masks of another size than the frames: refused at submit, naming the
#     mask, its size and the frame; no job created;
#   - fewer masks than frames: refused at submit, naming the first frame
#     without a mask;
#   - unknown --from model (and unknown model for an infer job alone):
#     refused at submit;
#   - empty masks: both jobs succeed, every output's pixels equal its
#     source, nothing is listed or recorded in the ledger as altered, and
#     the outputs carry rushes:altered "no";
#   - all-white masks (stated behaviour: refused, nothing is left to
#     propagate from or train on): the train job fails with that reason,
#     the infer job depending on it does not run, and nothing is written.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init removal_bad

M="$FARM/media"
mkdir -p "$M/shot/frames" "$M/small" "$M/short" "$M/empty" "$M/white"
ffmpeg -loglevel error -f lavfi -i testsrc=size=64x48:rate=24 -frames:v 6 -pix_fmt rgb24 \
  -start_number 0 "$M/shot/frames/f.%05d.png"
for i in 0 1 2 3 4 5; do
  n=$(printf '%05d' "$i")
  ffmpeg -loglevel error -f lavfi -i "color=black:size=32x24,drawbox=x=10:y=0:w=3:h=24:color=white:t=fill" \
    -frames:v 1 -pix_fmt gray "$M/small/m.$n.png"
  ffmpeg -loglevel error -f lavfi -i color=black:size=64x48 -frames:v 1 -pix_fmt gray "$M/empty/m.$n.png"
  ffmpeg -loglevel error -f lavfi -i color=white:size=64x48 -frames:v 1 -pix_fmt gray "$M/white/m.$n.png"
  if [ "$i" -lt 4 ]; then
    ffmpeg -loglevel error -f lavfi -i "color=black:size=64x48,drawbox=x=30:y=0:w=3:h=48:color=white:t=fill" \
      -frames:v 1 -pix_fmt gray "$M/short/m.$n.png"
  fi
done

farm_start_daemon --lease-ttl-ms 10000 --heartbeat-ms 1000 --backoff-ms 100
farm_start_worker w1
CFG='{"depth":2,"base":4,"patch":16,"batch":1,"ckpt_every":10,"chunk":3}'

# submit_expect_refusal NAME MASKDIR TEXT [extra params...]
submit_expect_refusal() {
  local name=$1 masks=$2 text=$3
  shift 3
  if "$RUSHES" submit removal --project bad --param "frames=$M/shot/frames" \
    --param "masks=$masks" --param "output=out-$name" --param steps=5 --param "config=$CFG" "$@" \
    >"$FARM/logs/$name.out" 2>&1; then
    farm_fail "$name: submit succeeded: $(cat "$FARM/logs/$name.out")"
  fi
  grep -qF -- "$text" "$FARM/logs/$name.out" ||
    farm_fail "$name: the refusal does not say '$text': $(cat "$FARM/logs/$name.out")"
}

submit_expect_refusal size "$M/small" "mask m.00000.png is 32x24 but frame 0 (f.00000.png) is 64x48"
submit_expect_refusal short "$M/short" "4 masks for 6 frames: frame 4 (f.00004.png) has no mask"
submit_expect_refusal from "$M/short" "unknown model 999" --param from=999
# An infer job alone, naming a model nobody registered.
body=$(jq -cn --arg f "$M/shot/frames" --arg m "$M/empty" \
  '{project:"bad",kind:"removal_infer",params:{frames:$f,masks:$m,output:"o",model:999}}')
resp=$(api POST /api/v1/jobs "$body")
[ "$(api_status)" = 400 ] || farm_fail "infer with model 999: HTTP $(api_status): $resp"
grep -q "unknown model 999" <<<"$resp" || farm_fail "infer with model 999: $resp"
# None of the refusals left a job behind.
njobs=$(api GET "/api/v1/jobs?project=bad" | jq '.jobs | length')
[ "$njobs" = 0 ] || farm_fail "refused submits created $njobs job(s)"

# Empty masks: the jobs succeed and alter nothing.
out=$("$RUSHES" --json submit removal --project bad --param "frames=$M/shot/frames" \
  --param "masks=$M/empty" --param output=out-empty --param steps=5 --param range=2 \
  --param "config=$CFG") || farm_fail "submit with empty masks: $out"
ET=$(jq -r .train.id <<<"$out")
EI=$(jq -r .infer.id <<<"$out")
# All-white masks, submitted at once so both run while we wait.
out=$("$RUSHES" --json submit removal --project bad --param "frames=$M/shot/frames" \
  --param "masks=$M/white" --param output=out-white --param steps=5 --param range=2 \
  --param "config=$CFG") || farm_fail "submit with white masks: $out"
WT=$(jq -r .train.id <<<"$out")
WI=$(jq -r .infer.id <<<"$out")
farm_wait_jobs 180 "$ET" "$EI" "$WT" "$WI"

j=$(api GET "/api/v1/jobs/$ET")
[ "$(jq -r .job.state <<<"$j")" = succeeded ] || farm_fail "train on empty masks: $(jq -c .job <<<"$j")"
j=$(api GET "/api/v1/jobs/$EI")
[ "$(jq -r .job.state <<<"$j")" = succeeded ] || farm_fail "infer on empty masks: $(jq -c .job <<<"$j")"
[ "$(jq -r .job.result.frames <<<"$j")" = 6 ] || farm_fail "infer on empty masks: $(jq -c .job.result <<<"$j")"
[ "$(jq '.job.result.alterations | length' <<<"$j")" = 0 ] ||
  farm_fail "empty masks listed alterations: $(jq -c .job.result.alterations <<<"$j")"
[ "$(farm_audit_job bad "$EI")" = 0 ] || farm_fail "audit of the empty-mask job covered frames"
OUTDIR=$(jq -r .job.result.output <<<"$j")
nout=0
for src in "$M"/shot/frames/f.*.png; do
  o="$OUTDIR/$(basename "$src")"
  [ -f "$o" ] || farm_fail "no output $o"
  cmp -s <(ffmpeg -loglevel error -i "$src" -f rawvideo -pix_fmt rgb24 -) \
    <(ffmpeg -loglevel error -i "$o" -f rawvideo -pix_fmt rgb24 -) ||
    farm_fail "$o differs from its source under an empty mask"
  p=$("$RUSHES" --json probe "$o") || farm_fail "probe $o"
  [ "$(jq -r '.reader.metadata["rushes:altered"]' <<<"$p")" = no ] ||
    farm_fail "$o is not labelled unaltered: $(jq -c .reader.metadata <<<"$p")"
  nout=$((nout + 1))
done
[ "$nout" = 6 ] || farm_fail "$nout outputs"
nalt=$(api GET "/api/v1/ledger/events?project=bad" |
  jq --argjson j "$EI" '[.events[] | select(.payload.type == "alteration" and .payload.job == $j)] | length')
[ "$nalt" = 0 ] || farm_fail "the ledger records $nalt alterations for empty masks"

# All-white masks: refused by the train job with the reason; infer never ran.
j=$(api GET "/api/v1/jobs/$WT")
[ "$(jq -r .job.state <<<"$j")" = failed ] || farm_fail "train on white masks: $(jq -c .job <<<"$j")"
jq -c .job <<<"$j" | grep -q "covers the whole frame" ||
  farm_fail "train on white masks failed without the reason: $(jq -c .job <<<"$j")"
j=$(api GET "/api/v1/jobs/$WI")
st=$(jq -r .job.state <<<"$j")
[ "$st" = failed ] || [ "$st" = cancelled ] || farm_fail "infer after a refused train: $st"
[ ! -d "$FARM/data/removal/bad/out-white" ] || [ -z "$(ls -A "$FARM/data/removal/bad/out-white")" ] ||
  farm_fail "outputs written for all-white masks: $(ls "$FARM/data/removal/bad/out-white")"
nalt=$(api GET "/api/v1/ledger/events?project=bad" |
  jq --argjson j "$WI" '[.events[] | select(.payload.type == "alteration" and .payload.job == $j)] | length')
[ "$nalt" = 0 ] || farm_fail "the ledger records $nalt alterations for white masks"

farm_stop_daemon
echo "removal bad input: size, short, unknown model refused at submit; empty masks alter nothing; all-white refused by the train job"
