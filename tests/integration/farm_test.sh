#!/usr/bin/env bash
# Integration: a real rushesd and two real rushes-workers on loopback.
# 50 ingest jobs wired as a DAG all succeed, every job's ASC MHL validates
# against the ASC schema and verifies against the files; a missing file fails
# its job naming the file; a failed parent fails its dependants with a reason;
# both workers took part.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init farm
XSD="$RS_SOURCE_DIR/../shared/validators/ascmhl/ASCMHL.xsd"
[ -f "$XSD" ] || farm_fail "ASC MHL schema not found at $XSD"

# Footage: the bundled samples and a 12-frame PNG sequence.
mkdir -p "$FARM/media/samples" "$FARM/media/seq"
cp "$RS_SOURCE_DIR"/samples/*.mp4 "$FARM/media/samples/"
ffmpeg -loglevel error -f lavfi -i testsrc=size=64x36:rate=24 -frames:v 12 \
  "$FARM/media/seq/shot.%04d.png"

farm_start_daemon --lease-ttl-ms 5000
farm_start_worker w1
farm_start_worker w2

paths=("$FARM/media/samples" "$FARM/media/seq" "$FARM/media/samples/clip_02_caminandes.mp4"
  "$FARM/media/seq/shot.%04d.png" "$FARM/media")
ids=()
for k in $(seq 0 49); do
  deps="[]"
  if [ $((k % 5)) -ne 0 ]; then
    deps="[${ids[$((k - 1))]}]"
  fi
  if [ $((k % 10)) -eq 9 ]; then
    deps="[${ids[$((k - 1))]},${ids[$((k - 7))]}]"
  fi
  body=$(jq -cn --arg p "${paths[$((k % 5))]}" --argjson d "$deps" \
    '{project:"farmtest",kind:"ingest",params:{path:$p,files_per_task:2},depends_on:$d}')
  id=$(api POST /api/v1/jobs "$body" | jq -r .job.id)
  [ "$(api_status)" = 201 ] || farm_fail "submit $k: HTTP $(api_status)"
  ids+=("$id")
done

farm_wait_jobs 240 "${ids[@]}"

workers_used=()
for id in "${ids[@]}"; do
  job=$(api GET "/api/v1/jobs/$id")
  st=$(jq -r .job.state <<<"$job")
  [ "$st" = succeeded ] || farm_fail "job $id is $st: $(jq -r .job.error <<<"$job")"
  mhl=$(jq -r .job.result.mhl <<<"$job")
  root=$(jq -r .job.result.root <<<"$job")
  [ -f "$mhl" ] || farm_fail "job $id: MHL $mhl missing"
  xmllint --noout --schema "$XSD" "$mhl" 2>"$FARM/logs/xmllint.log" ||
    farm_fail "job $id: $mhl does not validate: $(cat "$FARM/logs/xmllint.log")"
  "$RUSHES" mhl verify "$mhl" --root "$root" >/dev/null ||
    farm_fail "job $id: MHL does not verify against the files"
  mapfile -t -O "${#workers_used[@]}" workers_used < <(jq -r '.job.tasks[].attempts[].worker' <<<"$job")
done
# every job's dependencies finished before it started
for id in "${ids[@]}"; do
  job=$(api GET "/api/v1/jobs/$id")
  started=$(jq -r .job.started_at <<<"$job")
  for d in $(jq -r '.job.depends_on[]' <<<"$job"); do
    fin=$(api GET "/api/v1/jobs/$d" | jq -r .job.finished_at)
    [[ "$fin" < "$started" || "$fin" == "$started" ]] || farm_fail "job $id started $started before parent $d finished $fin"
  done
done
n_workers=$(printf '%s\n' "${workers_used[@]}" | sort -u | wc -l)
[ "$n_workers" -ge 2 ] || farm_fail "only $n_workers worker(s) ran tasks"

# clips were registered (3 videos + 1 sequence under samples/ and seq/)
nclips=$(api GET "/api/v1/clips?project=farmtest" | jq '[.clips[].path] | unique | length')
[ "$nclips" -ge 4 ] || farm_fail "expected >= 4 distinct clips, got $nclips"

# missing file: the job fails and the error names the file
body=$(jq -cn --arg p "$FARM/media/samples/nope.mov" '{project:"farmtest",kind:"ingest",params:{path:$p}}')
miss=$(api POST /api/v1/jobs "$body" | jq -r .job.id)
[ "$(api_status)" = 201 ] || farm_fail "submit of a missing file: HTTP $(api_status)"
child=$(api POST /api/v1/jobs "{\"project\":\"farmtest\",\"kind\":\"noop\",\"depends_on\":[$miss]}" | jq -r .job.id)
farm_wait_jobs 60 "$miss" "$child"
job=$(api GET "/api/v1/jobs/$miss")
[ "$(jq -r .job.state <<<"$job")" = failed ] || farm_fail "missing-file job not failed"
jq -r '.job.error // ""' <<<"$job" | grep -q nope.mov || farm_fail "error does not name the file: $(jq -r .job.error <<<"$job")"
job=$(api GET "/api/v1/jobs/$child")
[ "$(jq -r .job.state <<<"$job")" = failed ] || farm_fail "dependant of a failed job not failed"
jq -r .job.error <<<"$job" | grep -q "$miss" || farm_fail "dependant's error does not name its parent"

farm_stop_daemon
echo "farm: 50 DAG ingest jobs succeeded on $n_workers workers, MHLs valid and verified"
