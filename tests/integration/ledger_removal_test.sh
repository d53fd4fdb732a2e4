#!/usr/bin/env bash
# Integration: a real removal job on a real farm (rushesd, one worker, the
# CLI) under the compliance ledger. A 64x48 testsrc clip with a moving
# vertical bar as the mask goes through `rushes submit removal` with a tiny
# model. Then: the infer job has one "alteration_authorised" event and every
# alteration event cites it; every output carries the labels (altered,
# ledger event, model, project), read back by `rushes probe --json` and by
# ffprobe; `rushes audit JOB` proves 100 % of changed pixels are inside the
# recorded masks; one pixel changed outside the mask of one output after the
# fact makes the audit fail naming that file and frame; a label swapped in
# another output makes it fail naming that file.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ledger_removal
RECORD="$RS_BINARY_DIR/tests/ledger_record"

mkdir -p "$FARM/media/shot/frames" "$FARM/media/shot/masks"
ffmpeg -loglevel error -f lavfi -i testsrc=size=64x48:rate=24 -frames:v 6 -pix_fmt rgb24 \
  -start_number 0 "$FARM/media/shot/frames/f.%05d.png"
for i in 0 1 2 3 4 5; do
  ffmpeg -loglevel error -f lavfi \
    -i "color=black:size=64x48,drawbox=x=$((30 + i)):y=0:w=3:h=48:color=white:t=fill" \
    -frames:v 1 -pix_fmt gray "$FARM/media/shot/masks/m.$(printf '%05d' "$i").png"
done

farm_start_daemon --lease-ttl-ms 5000 --heartbeat-ms 1000 --backoff-ms 200
farm_start_worker w1

CFG='{"depth":2,"base":4,"patch":16,"batch":1,"ckpt_every":10,"chunk":3}'
out=$("$RUSHES" --json submit removal --project lr \
  --param "frames=$FARM/media/shot/frames" --param "masks=$FARM/media/shot/masks" \
  --param output=out --param steps=10 --param range=2 --param "config=$CFG") ||
  farm_fail "submit removal: $out"
TRAIN=$(jq -r .train.id <<<"$out")
INFER=$(jq -r .infer.id <<<"$out")
farm_wait_jobs 120 "$TRAIN" "$INFER"
job=$(api GET "/api/v1/jobs/$INFER")
[ "$(jq -r .job.state <<<"$job")" = succeeded ] || farm_fail "infer job: $(jq -c .job <<<"$job")"
n=$(jq '.job.result.alterations | length' <<<"$job")
[ "$n" = 6 ] || farm_fail "infer result lists $n alterations, expected 6"

# One authorisation for the infer job (none for train: it alters nothing),
# cited by every alteration event of the job.
"$RUSHES" ledger export --project lr --out "$FARM/ledger.jsonl" || farm_fail "export"
auth=$(jq -rs --argjson j "$INFER" \
  '[.[] | select(.payload.type? == "alteration_authorised" and .payload.job == $j) | .hash]' \
  "$FARM/ledger.jsonl")
[ "$(jq length <<<"$auth")" = 1 ] || farm_fail "authorisations of job $INFER: $auth"
[ "$(jq -s '[.[] | select(.payload.type? == "alteration_authorised")] | length' "$FARM/ledger.jsonl")" = 1 ] ||
  farm_fail "the train job was authorised to alter footage"
AUTH=$(jq -r '.[0]' <<<"$auth")
cites=$(jq -cs --argjson j "$INFER" \
  '[.[] | select(.payload.type? == "alteration" and .payload.job == $j) | .payload.authorised_by] | unique' \
  "$FARM/ledger.jsonl")
[ "$cites" = "$(jq -c -n --arg a "$AUTH" '[$a]')" ] ||
  farm_fail "alteration events cite $cites, not $AUTH"

# Labels, with the project's reader and with ffprobe, in every output.
MODELH=$(jq -r .job.result.model <<<"$job")
for o in $(jq -r '.job.result.alterations[].output' <<<"$job"); do
  p=$("$RUSHES" --json probe "$o") || farm_fail "probe $o"
  jq -e --arg a "$AUTH" --arg m "$MODELH" '.reader.metadata["rushes:ledger_event"] == $a and
      .reader.metadata["rushes:altered"] == "yes" and .reader.metadata["rushes:project"] == "lr" and
      .reader.metadata["rushes:model"] == $m' <<<"$p" >/dev/null ||
    farm_fail "labels of $o (rushes probe): $(jq -c .reader.metadata <<<"$p")"
  t=$(ffprobe -v error -show_frames "$o")
  grep -q "^TAG:rushes:ledger_event=$AUTH\$" <<<"$t" || farm_fail "ffprobe does not show the event in $o: $t"
  grep -q "^TAG:rushes:altered=yes\$" <<<"$t" || farm_fail "ffprobe does not show altered=yes in $o"
done

# Audit: 100 % of changed pixels inside the recorded masks, labels checked.
[ "$(farm_audit_job lr "$INFER" "$FARM/audit.json")" = 6 ] || farm_fail "audit report: $(cat "$FARM/audit.json")"
jq -e '.changed_pixels > 0' "$FARM/audit.json" >/dev/null || farm_fail "audit saw no change: $(cat "$FARM/audit.json")"

# One pixel outside the mask (the corner; the bar is at x >= 30) of frame 2.
O2=$(jq -r '.job.result.alterations[] | select(.frame == 2) | .output' <<<"$job")
"$RECORD" --poke "$O2" 0 0 || farm_fail "poke $O2"
if "$RUSHES" audit "$INFER" --pubkey "$FARM/lr.pub" >"$FARM/audit2.out" 2>&1; then
  farm_fail "audit passed after a pixel outside the mask changed: $(cat "$FARM/audit2.out")"
fi
grep -q "FAIL $O2 frame 2: 1 changed pixels outside the recorded mask" "$FARM/audit2.out" ||
  farm_fail "audit failure does not name the frame: $(cat "$FARM/audit2.out")"
if grep "^FAIL" "$FARM/audit2.out" | grep -v "FAIL $O2 " >/dev/null; then
  farm_fail "frames other than 2 failed: $(cat "$FARM/audit2.out")"
fi
grep "FAIL $O2 " "$FARM/audit2.out" | grep -q "label" && farm_fail "the poke broke the labels: $(cat "$FARM/audit2.out")"

# A label swapped in frame 4's output: the audit names the file.
O4=$(jq -r '.job.result.alterations[] | select(.frame == 4) | .output' <<<"$job")
"$RECORD" --relabel "$O4" 0000000000000000000000000000000000000000000000000000000000000000 ||
  farm_fail "relabel $O4"
"$RUSHES" --json audit "$INFER" --pubkey "$FARM/lr.pub" >"$FARM/audit3.json" 2>/dev/null || true
jq -e --arg f "$O4" '.ok == false and ([.failures[] | select(.file == $f and .frame == 4 and
    (.what | test("output label: label rushes:ledger_event names event 0000")))] | length == 1)' \
  "$FARM/audit3.json" >/dev/null || farm_fail "relabelled output: $(cat "$FARM/audit3.json")"

farm_stop_daemon
echo "ledger_removal: $n frames altered under event ${AUTH:0:16}, labels read by rushes probe and ffprobe, audit 100 %, tamper named"
