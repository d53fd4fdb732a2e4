#!/usr/bin/env bash
# Ops: API tokens, roles and tenants against a real rushesd and workers.
# Each role can do what it may and gets 403 for what it may not; a tenant
# cannot read, cancel or re-prioritise another tenant's job (ids guessed
# included: 404, like a missing job); a revoked token stops working at once;
# a malformed or missing token is 401 (/healthz needs none); a worker with a
# wrong pool secret is refused and one with the right secret runs tasks.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
farm_init ops-auth
SECRET=pool-secret-$RANDOM
farm_start_daemon --worker-secret "$SECRET" --lease-ttl-ms 3000 --heartbeat-ms 300
ADMIN=$FARM_TOKEN

# req TOKEN METHOD PATH [BODY]: prints the body, status in $FARM/st.
# -q: ignore farm.sh's .curlrc (it carries the farm admin token).
req() {
  local tok=$1 method=$2 path=$3 body=${4:-} out
  local h=()
  [ -n "$tok" ] && h=(-H "Authorization: Bearer $tok")
  out=$(curl -q -s -S -X "$method" -w '\n%{http_code}' -H 'Content-Type: application/json' \
    "${h[@]}" ${body:+--data-binary "$body"} "$API$path")
  printf '%s' "${out##*$'\n'}" >"$FARM/st"
  printf '%s' "${out%$'\n'*}"
}
st() { cat "$FARM/st"; }
expect() { # expect CODE WHAT
  [ "$(st)" = "$1" ] || farm_fail "$2: expected HTTP $1, got $(st)"
}
mktoken() { # mktoken TENANT ROLE -> token
  local out
  out=$(req "$ADMIN" POST /api/v1/tokens "{\"tenant\":\"$1\",\"role\":\"$2\",\"name\":\"$1-$2\"}")
  expect 201 "create $1/$2 token"
  jq -r .token.token <<<"$out"
}

# --- 401s -------------------------------------------------------------------
req "" GET /api/v1/jobs >/dev/null; expect 401 "no token"
req "rsh_nope" GET /api/v1/jobs >/dev/null; expect 401 "malformed token"
req "rsh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" GET /api/v1/jobs >/dev/null
expect 401 "unknown token"
req "" GET /healthz >/dev/null; expect 200 "/healthz without a token"
req "" GET /metrics >/dev/null; expect 401 "/metrics without a token"

A_SUB=$(mktoken acme submit)
A_OP=$(mktoken acme operate)
A_AUD=$(mktoken acme audit)
A_ADM=$(mktoken acme admin)
B_SUB=$(mktoken beta submit)
B_OP=$(mktoken beta operate)

# The token secret is never stored: only its hash is in the database.
if sqlite3 "$FARM/data/rushes.db" "SELECT hash FROM api_token" | grep -q "${A_SUB#rsh_}"; then
  farm_fail "a token secret is stored in the database"
fi
req "$ADMIN" GET /api/v1/tokens | jq -e '[.tokens[] | has("hash") or has("token")] | any | not' \
  >/dev/null || farm_fail "token list leaks hashes or secrets"

# --- roles --------------------------------------------------------------------
job='{"project":"acme-shot","kind":"noop","params":{"tasks":1,"sleep_ms":60000}}'
a1=$(req "$A_SUB" POST /api/v1/jobs "$job" | jq -r .job.id); expect 201 "submit role submits"
req "$A_AUD" POST /api/v1/jobs "$job" >/dev/null; expect 403 "audit role submits"
req "$A_AUD" GET "/api/v1/jobs/$a1" >/dev/null; expect 200 "audit role reads"
req "$A_AUD" GET "/api/v1/jobs/$a1/log" >/dev/null; expect 200 "audit role reads logs"
req "$A_SUB" POST "/api/v1/jobs/$a1/cancel" >/dev/null; expect 403 "submit role cancels"
req "$A_AUD" POST "/api/v1/jobs/$a1/priority" '{"priority":5}' >/dev/null
expect 403 "audit role changes priority"
out=$(req "$A_OP" POST "/api/v1/jobs/$a1/priority" '{"priority":7}'); expect 200 "operate priority"
[ "$(jq .job.priority <<<"$out")" = 7 ] || farm_fail "priority not changed: $out"
req "$A_OP" POST "/api/v1/jobs/$a1/priority" '{"priority":500}' >/dev/null
expect 400 "priority out of range"
req "$A_SUB" GET /api/v1/tokens >/dev/null; expect 403 "submit role lists tokens"
req "$A_OP" POST /api/v1/tokens '{"tenant":"acme","role":"submit"}' >/dev/null
expect 403 "operate role makes tokens"
req "$A_ADM" POST /api/v1/tokens '{"tenant":"acme","role":"submit"}' >/dev/null
expect 201 "tenant admin makes its own tokens"
req "$A_ADM" POST /api/v1/tokens '{"tenant":"beta","role":"admin"}' >/dev/null
expect 403 "tenant admin makes another tenant's token"
req "$A_ADM" POST /api/v1/tokens '{"tenant":"*","role":"admin"}' >/dev/null
expect 403 "tenant admin makes a farm-wide token"
n=$(req "$A_ADM" GET /api/v1/tokens | jq '[.tokens[] | select(.tenant != "acme")] | length')
[ "$n" = 0 ] || farm_fail "tenant admin sees $n tokens of other tenants"
req "$A_OP" GET /metrics >/dev/null; expect 403 "tenant token reads farm metrics"
req "$ADMIN" GET /metrics >/dev/null; expect 200 "farm admin reads metrics"
req "$A_ADM" POST /api/v1/admin/backup >/dev/null; expect 403 "tenant admin takes a backup"

# --- tenants ------------------------------------------------------------------
b1=$(req "$B_SUB" POST /api/v1/jobs '{"project":"beta-shot","kind":"noop","params":{"tasks":1}}' |
  jq -r .job.id)
expect 201 "beta submits"
req "$B_SUB" POST /api/v1/jobs "$job" >/dev/null; expect 404 "beta submits into acme's project"
for id in $(seq 1 $((b1 + 3))); do
  [ "$id" = "$b1" ] && continue
  req "$B_OP" GET "/api/v1/jobs/$id" >/dev/null; expect 404 "beta reads job $id"
  req "$B_OP" POST "/api/v1/jobs/$id/cancel" >/dev/null; expect 404 "beta cancels job $id"
  req "$B_OP" POST "/api/v1/jobs/$id/retry" >/dev/null; expect 404 "beta retries job $id"
  req "$B_OP" POST "/api/v1/jobs/$id/priority" '{"priority":1}' >/dev/null
  expect 404 "beta re-prioritises job $id"
  req "$B_OP" GET "/api/v1/jobs/$id/log" >/dev/null; expect 404 "beta reads log of job $id"
done
req "$B_OP" GET "/api/v1/jobs/$b1" >/dev/null; expect 200 "beta reads its job"
# depends_on cannot reach (or probe) another tenant's job either.
miss=$(req "$B_SUB" POST /api/v1/jobs '{"project":"beta-shot","kind":"noop","depends_on":[999999]}')
expect 400 "beta depends on a missing job"
other=$(req "$B_SUB" POST /api/v1/jobs "{\"project\":\"beta-shot\",\"kind\":\"noop\",\"depends_on\":[$a1]}")
expect 400 "beta depends on acme's job"
[ "$(jq -r .error.message <<<"$other" | sed "s/$a1/N/")" = "$(jq -r .error.message <<<"$miss" | sed 's/999999/N/')" ] ||
  farm_fail "another tenant's job and a missing one answer differently: $other vs $miss"
gm=$(req "$B_OP" GET "/api/v1/jobs/999999")
go=$(req "$B_OP" GET "/api/v1/jobs/$a1")
[ "$(jq -r .error.message <<<"$go" | sed "s/$a1/N/")" = "$(jq -r .error.message <<<"$gm" | sed 's/999999/N/')" ] ||
  farm_fail "GET of another tenant's job and of a missing one differ: $go vs $gm"
ids=$(req "$B_OP" GET /api/v1/jobs | jq -c '[.jobs[].id]')
[ "$ids" = "[$b1]" ] || farm_fail "beta's job list shows $ids"
req "$B_OP" GET "/api/v1/jobs?project=acme-shot" >/dev/null; expect 404 "beta lists acme's project"
n=$(req "$B_OP" GET /api/v1/projects | jq '[.projects[].name] | join(",")' -r)
[ "$n" = beta-shot ] || farm_fail "beta sees projects: $n"
req "$A_OP" GET "/api/v1/jobs/$b1" >/dev/null; expect 404 "acme reads beta's job"
req "$ADMIN" GET "/api/v1/jobs/$b1" >/dev/null; expect 200 "farm admin reads beta's job"

# --- revocation takes effect at once -------------------------------------------
req "$A_SUB" GET /api/v1/jobs >/dev/null; expect 200 "before revocation"
tid=$(req "$ADMIN" GET /api/v1/tokens | jq '.tokens[] | select(.name=="acme-submit") | .id')
req "$ADMIN" DELETE "/api/v1/tokens/$tid" >/dev/null; expect 200 "revoke"
req "$A_SUB" GET /api/v1/jobs >/dev/null; expect 401 "revoked token, next request"
req "$A_SUB" POST /api/v1/jobs "$job" >/dev/null; expect 401 "revoked token submits"

# --- CLI with tokens ----------------------------------------------------------
out=$(RUSHES_TOKEN=$ADMIN "$RUSHES" token create --tenant gamma --role audit --name g --json)
G=$(jq -r .token.token <<<"$out")
[ "${G:0:4}" = rsh_ ] || farm_fail "rushes token create printed $out"
RUSHES_TOKEN=$ADMIN "$RUSHES" token ls | grep -q gamma || farm_fail "rushes token ls lacks gamma"
gid=$(jq -r .token.id <<<"$out")
RUSHES_TOKEN=$ADMIN "$RUSHES" token revoke "$gid" >/dev/null || farm_fail "rushes token revoke"
req "$G" GET /api/v1/jobs >/dev/null; expect 401 "token revoked through the CLI"
if RUSHES_TOKEN=$B_SUB "$RUSHES" token ls >/dev/null 2>&1; then
  farm_fail "rushes token ls worked with a submit token"
fi

req "$A_OP" POST "/api/v1/jobs/$a1/cancel" >/dev/null; expect 200 "operate role cancels"

# --- workers: pool secret -------------------------------------------------------
RUSHES_WORKER_SECRET=wrong farm_start_worker bad
RUSHES_WORKER_SECRET=$SECRET farm_start_worker good
farm_wait_line "$DAEMON_LOG" "worker bad refused" 20
farm_wait_jobs 60 "$b1"
[ "$(req "$ADMIN" GET "/api/v1/jobs/$b1" | jq -r .job.state)" = succeeded ] ||
  farm_fail "job $b1 did not succeed on the good worker"
names=$(req "$ADMIN" GET /api/v1/workers | jq -r '[.workers[].name] | join(",")')
[ "$names" = good ] || farm_fail "workers known to the daemon: $names (want only good)"
if sqlite3 "$FARM/data/rushes.db" "SELECT caps FROM worker" | grep -q "$SECRET"; then
  farm_fail "the pool secret was stored with the worker's capabilities"
fi
grep -q "hello refused: forbidden" "$FARM/logs/worker-bad.log" ||
  farm_fail "the bad worker was not told why it was refused"

echo "ops auth: roles, tenants, revocation, CLI tokens and worker secret checked"
