#!/usr/bin/env bash
# Integration: the compliance ledger on a real farm (rushesd, one worker, the
# CLI). Consent gate: a likeness job without consent is refused at submit
# naming the performer; with consent it is accepted; revoked between submit
# and dispatch it is blocked before it runs; expired consent is refused;
# non-likeness work needs none. An ingest job records an ingest event that
# binds its MHL. Ledger: export verifies offline with the
# public key and fails when edited; `rushes audit JOB` proves every changed
# pixel of frames recorded through ledger_record_alteration lies in its
# mask, online and offline, and fails naming the frame once one pixel
# outside the mask is changed.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ledger
DATA="$RS_SOURCE_DIR/../shared/data/removal/bmx-trees"
[ -d "$DATA/frames" ] || farm_fail "removal data not found at $DATA"
RECORD="$RS_BINARY_DIR/tests/ledger_record"

farm_start_daemon --lease-ttl-ms 5000
likeness='{"project":"feature","kind":"noop","params":{"likeness":["face"],"performers":["Ada Lovelace"]}}'

# 1. No consent: refused at submit, naming the performer.
out=$(api POST /api/v1/jobs "$likeness")
[ "$(api_status)" = 403 ] || farm_fail "likeness job without consent: HTTP $(api_status): $out"
grep -q "performer 'Ada Lovelace' has no valid consent for face" <<<"$out" ||
  farm_fail "refusal does not name the performer: $out"

# 2. Consent through the CLI; the job is accepted.
echo "signed consent, Ada Lovelace, face, feature film" >"$FARM/consent.txt"
"$RUSHES" consent add --project feature --performer "Ada Lovelace" --kinds face \
  --document "$FARM/consent.txt" --use "feature film" --territory worldwide >"$FARM/c.out" ||
  farm_fail "consent add failed"
cid=$("$RUSHES" --json consent ls --project feature | jq -r '.consents[0].id')
[ "$("$RUSHES" --json consent ls --project feature | jq -r '.consents[0].state')" = valid ] ||
  farm_fail "consent not valid"
job=$(api POST /api/v1/jobs "$likeness" | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "likeness job with consent: HTTP $(api_status)"

# 3. Revoked between submit and dispatch: blocked before it runs.
"$RUSHES" consent revoke "$cid" --reason "withdrawn by agent" >/dev/null || farm_fail "revoke failed"
farm_start_worker w1
farm_wait_jobs 60 "$job"
j=$(api GET "/api/v1/jobs/$job")
[ "$(jq -r .job.state <<<"$j")" = cancelled ] || farm_fail "revoked job is $(jq -r .job.state <<<"$j")"
jq -r .job.error <<<"$j" | grep -q "blocked at dispatch: performer 'Ada Lovelace'.*consent revoked" ||
  farm_fail "blocked job's error: $(jq -r .job.error <<<"$j")"
[ "$(jq '[.job.tasks[].attempts[] | select(.state=="succeeded")] | length' <<<"$j")" = 0 ] ||
  farm_fail "the blocked job ran"

# 4. Expired consent: refused.
"$RUSHES" consent add --project feature --performer "Bob Okafor" --kinds face,voice \
  --document-hash sha256:00ff --expires 2001-01-01 >/dev/null || farm_fail "consent add (expired)"
out=$(api POST /api/v1/jobs '{"project":"feature","kind":"noop","params":{"likeness":["voice"],"performers":["Bob Okafor"]}}')
[ "$(api_status)" = 403 ] || farm_fail "expired consent accepted: $out"
grep -q "consent expired" <<<"$out" || farm_fail "expired refusal: $out"

# 5. Non-likeness work needs no consent, and runs.
wire=$(api POST /api/v1/jobs '{"project":"feature","kind":"noop"}' | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "non-likeness job refused"
farm_wait_jobs 60 "$wire"
[ "$(api GET "/api/v1/jobs/$wire" | jq -r .job.state)" = succeeded ] || farm_fail "wire job failed"

# 5b. An ingest job leaves an "ingest" event binding its MHL (by SHA-256).
mkdir -p "$FARM/media/ingest"
cp "$DATA/frames/00000.png" "$DATA/frames/00001.png" "$FARM/media/ingest/"
ing=$(api POST /api/v1/jobs "{\"project\":\"feature\",\"kind\":\"ingest\",\"params\":{\"path\":\"$FARM/media/ingest\"}}" | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "ingest submit: HTTP $(api_status)"
farm_wait_jobs 60 "$ing"
mhl=$(api GET "/api/v1/jobs/$ing" | jq -r .job.result.mhl)
[ -f "$mhl" ] || farm_fail "ingest job has no MHL"
ev=$(api GET "/api/v1/ledger/events?project=feature" | jq -c --argjson j "$ing" \
  '[.events[].payload | select(.type == "ingest" and .job == $j)] | .[0]')
[ "$(jq -r .mhl_sha256 <<<"$ev")" = "$(sha256sum "$mhl" | cut -d' ' -f1)" ] ||
  farm_fail "ingest event does not bind the MHL: $ev"
[ "$(jq '.clips | length' <<<"$ev")" -ge 1 ] || farm_fail "ingest event lists no clips: $ev"

# 6. Alterations recorded by the library call an altering kind makes.
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
mkdir -p "$FARM/media/src" "$FARM/media/out"
args=()
for i in 0 1 2 3 4 5; do
  f=$(printf '%05d' $i)
  cp "$DATA/frames/$f.png" "$FARM/media/src/$f.png"
  args+=("$i" "$FARM/media/src/$f.png" "$DATA/masks/$f.png" "$FARM/media/out/$f.png")
done
"$RECORD" "$FARM/data/rushes.db" "$FARM/data" feature "$wire" "${args[@]}" >"$FARM/logs/record.log" 2>&1 ||
  farm_fail "ledger_record: $(cat "$FARM/logs/record.log")"
farm_start_daemon --lease-ttl-ms 5000

"$RUSHES" ledger pubkey --project feature >"$FARM/project.pub" || farm_fail "pubkey"
"$RUSHES" audit "$wire" --pubkey "$FARM/project.pub" >"$FARM/audit.out" 2>&1 ||
  farm_fail "audit of the recorded job failed: $(cat "$FARM/audit.out")"
grep -q "PASS" "$FARM/audit.out" || farm_fail "no PASS: $(cat "$FARM/audit.out")"
grep -q "frames: 6 .*outside masks: 0 .*coverage: 100.00 %" "$FARM/audit.out" ||
  farm_fail "coverage report: $(cat "$FARM/audit.out")"
"$RUSHES" --json audit "$FARM/media/out/00003.png" --project feature --pubkey "$FARM/project.pub" 2>/dev/null |
  jq -e '.ok and .frames == 1' >/dev/null || farm_fail "audit by OUTPUT"
"$RUSHES" --json audit "$FARM/media/src/00003.png" --project feature --pubkey "$FARM/project.pub" 2>/dev/null |
  jq -e '.ok and .frames == 1' >/dev/null || farm_fail "audit by CLIP (source)"

# 7. Export, verified offline; an edited export fails naming the event.
"$RUSHES" ledger export --project feature --out "$FARM/ledger.jsonl" || farm_fail "export"
"$RUSHES" ledger verify "$FARM/ledger.jsonl" --pubkey "$FARM/project.pub" >"$FARM/verify.out" ||
  farm_fail "verify: $(cat "$FARM/verify.out")"
jq -se 'map(select(.payload.type == "audit")) | length >= 1' "$FARM/ledger.jsonl" >/dev/null ||
  farm_fail "audits are not recorded in the chain"
for t in consent_granted consent_revoked alteration export ingest; do
  jq -se --arg t "$t" 'map(select(.payload.type == $t)) | length >= 1' "$FARM/ledger.jsonl" >/dev/null ||
    farm_fail "no $t event in the export"
done
sed 's/test-grey-fill/test-grey-FILL/' "$FARM/ledger.jsonl" >"$FARM/edited.jsonl"
if "$RUSHES" ledger verify "$FARM/edited.jsonl" --pubkey "$FARM/project.pub" 2>"$FARM/verify.err"; then
  farm_fail "an edited export verified"
fi
grep -q "hash does not match its content (event edited)" "$FARM/verify.err" ||
  farm_fail "edited export message: $(cat "$FARM/verify.err")"
head -n -1 "$FARM/ledger.jsonl" >"$FARM/trunc.jsonl"
if "$RUSHES" ledger verify "$FARM/trunc.jsonl" --pubkey "$FARM/project.pub" 2>"$FARM/verify.err"; then
  farm_fail "a truncated export verified"
fi
grep -q "truncated" "$FARM/verify.err" || farm_fail "truncated message: $(cat "$FARM/verify.err")"

# 8. Offline audit (no farm): export + public key + masks folder.
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
RUSHES_SERVER=http://127.0.0.1:1 "$RUSHES" audit "$wire" --export "$FARM/ledger.jsonl" \
  --pubkey "$FARM/project.pub" --masks "$FARM/data/ledger/masks" >"$FARM/audit2.out" 2>&1 ||
  farm_fail "offline audit: $(cat "$FARM/audit2.out")"

# 9. One pixel changed outside the mask after the fact: audit fails naming the frame.
ffmpeg -loglevel error -y -i "$FARM/media/out/00002.png" \
  -vf "drawbox=x=0:y=0:w=1:h=1:color=red:t=fill" "$FARM/tmp.png"
mv "$FARM/tmp.png" "$FARM/media/out/00002.png"
if RUSHES_SERVER=http://127.0.0.1:1 "$RUSHES" audit "$wire" --export "$FARM/ledger.jsonl" \
  --pubkey "$FARM/project.pub" --masks "$FARM/data/ledger/masks" >"$FARM/audit3.out" 2>&1; then
  farm_fail "audit passed after a pixel outside the mask changed"
fi
grep -q "FAIL $FARM/media/out/00002.png frame 2: 1 changed pixels outside the recorded mask" "$FARM/audit3.out" ||
  farm_fail "audit failure does not name the frame: $(cat "$FARM/audit3.out")"
echo "ledger integration: ok"
