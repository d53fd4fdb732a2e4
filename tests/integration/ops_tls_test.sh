#!/usr/bin/env bash
# Ops: TLS. (1) HTTPS through nginx (deploy/nginx/rushes.conf, run as is
# with a self-signed CA on loopback) in front of rushesd: requests/s and
# latency measured through it (no 44 ms stall: DESIGN.md), tokens still
# checked, plain HTTP to the TLS port refused, a client that does not trust
# the certificate refused. (2) The worker socket over tls+tcp:// with the
# certificate from the config: a worker without the right CA is refused, one
# with it registers and runs a job.
set -euo pipefail
. "$RS_SOURCE_DIR/tests/lib/farm.sh"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || farm_fail "nginx not installed (Debian package nginx-light)"
farm_init ops-tls
T="$FARM/tls"
mkdir -p "$T" "$FARM/nginx"

# A CA, a server certificate for 127.0.0.1/localhost signed by it, and an
# unrelated CA a wrong client trusts.
mkca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null
}
mkca rushes-test-ca
mkca other-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/server.key" \
  -out "$T/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/san.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/rushes-test-ca.crt" -CAkey "$T/rushes-test-ca.key" \
  -CAcreateserial -days 2 -extfile "$T/san.ext" -out "$T/server.crt" 2>/dev/null

# ---- (1) HTTPS through nginx -------------------------------------------------
farm_start_daemon
TLS_PORT=$(farm_free_port)
sed -e "s|@UPSTREAM@|127.0.0.1:$API_PORT|" -e "s|@LISTEN@|127.0.0.1:$TLS_PORT|" \
  -e "s|@SERVER_NAME@|localhost|" -e "s|@CERT@|$T/server.crt|" -e "s|@KEY@|$T/server.key|" \
  "$RS_SOURCE_DIR/deploy/nginx/rushes.conf" >"$FARM/nginx/rushes.conf"
# master_process off: one nginx process, so farm_cleanup's kill -9 leaves no
# orphaned worker behind (a test-only setting; production keeps the master).
cat >"$FARM/nginx/nginx.conf" <<CONF
master_process off;
worker_processes 1;
pid $FARM/nginx/nginx.pid;
error_log $FARM/logs/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $FARM/nginx/body;
  proxy_temp_path $FARM/nginx/proxy;
  fastcgi_temp_path $FARM/nginx/fastcgi;
  uwsgi_temp_path $FARM/nginx/uwsgi;
  scgi_temp_path $FARM/nginx/scgi;
  include $FARM/nginx/rushes.conf;
}
CONF
"$NGINX" -t -e "$FARM/logs/nginx-error.log" -c "$FARM/nginx/nginx.conf" >"$FARM/logs/nginx-t.log" 2>&1 ||
  farm_fail "nginx -t: $(cat "$FARM/logs/nginx-t.log")"
"$NGINX" -e "$FARM/logs/nginx-error.log" -c "$FARM/nginx/nginx.conf" -g 'daemon off;' \
  >>"$FARM/logs/nginx.log" 2>&1 &
NGINX_PID=$!
FARM_PIDS+=("$NGINX_PID")
HTTPS="https://127.0.0.1:$TLS_PORT"
for _ in $(seq 1 100); do
  curl -q -s --cacert "$T/rushes-test-ca.crt" "$HTTPS/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done
out=$(curl -q -s -S --cacert "$T/rushes-test-ca.crt" "$HTTPS/healthz") || farm_fail "HTTPS /healthz"
[ "$(jq -r .status <<<"$out")" = ok ] || farm_fail "HTTPS /healthz: $out"
code=$(curl -q -s -o /dev/null -w '%{http_code}' --cacert "$T/rushes-test-ca.crt" "$HTTPS/api/v1/jobs")
[ "$code" = 401 ] || farm_fail "HTTPS without a token: $code"
code=$(curl -q -s -o /dev/null -w '%{http_code}' --cacert "$T/rushes-test-ca.crt" \
  -H "Authorization: Bearer $FARM_TOKEN" "$HTTPS/api/v1/jobs")
[ "$code" = 200 ] || farm_fail "HTTPS with the token: $code"
# The CLI over HTTPS (nng's TLS client with RUSHES_CA_FILE).
# nng's mbedTLS 2.28 matches DNS names only (not IP SANs): use localhost.
RUSHES_CA_FILE="$T/rushes-test-ca.crt" "$RUSHES" --server "https://localhost:$TLS_PORT" workers >/dev/null ||
  farm_fail "rushes over HTTPS"
# Plain HTTP to the TLS port: nginx answers 400 itself, rushesd sees nothing.
body=$(curl -q -s -w '\n%{http_code}' -H "Authorization: Bearer $FARM_TOKEN" \
  "http://127.0.0.1:$TLS_PORT/api/v1/jobs" || true)
[ "${body##*$'\n'}" = 400 ] || farm_fail "plain HTTP to the TLS port answered ${body##*$'\n'}"
grep -q '"jobs"' <<<"$body" && farm_fail "plain HTTP to the TLS port reached the API"
# A client that does not trust our CA is refused (curl exit 60).
rc=0
curl -q -s --cacert "$T/other-ca.crt" "$HTTPS/healthz" >/dev/null 2>&1 || rc=$?
[ "$rc" = 60 ] || farm_fail "client with the wrong CA: curl exit $rc, expected 60"

load=$(node --no-warnings "$RS_SOURCE_DIR/tests/integration/ops_https_load.mjs" \
  "$HTTPS/api/v1/jobs?limit=10" "$T/rushes-test-ca.crt" "$FARM_TOKEN" 8 3)
echo "HTTPS via nginx, 8 keep-alive clients, GET /api/v1/jobs: $load"
[ "$(jq .errors <<<"$load")" = 0 ] || farm_fail "errors through the proxy: $load"
awk -v p="$(jq .p50_ms <<<"$load")" -v r="$(jq .rps <<<"$load")" 'BEGIN { exit !(p < 20 && r > 200) }' ||
  farm_fail "HTTPS through nginx too slow (p50 >= 20 ms or < 200 req/s): $load"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true
kill -TERM "$NGINX_PID"; wait "$NGINX_PID" || true

# ---- (2) worker socket over tls+tcp ----------------------------------------------
# Refused at start (exit 2, naming the setting): TLS without a certificate,
# a certificate without its key, an https:// API listener.
for bad in "--worker-listen tls+tcp://127.0.0.1:$WRK_PORT" "--tls-cert $T/server.crt" \
  "--api-listen https://127.0.0.1:$API_PORT"; do
  rc=0
  # shellcheck disable=SC2086
  "$RUSHESD" --data-dir "$FARM/data" --no-auth $bad >"$FARM/logs/bad.log" 2>&1 || rc=$?
  [ "$rc" = 2 ] || farm_fail "rushesd $bad: exit $rc, expected 2"
  grep -Eq "tls_cert|tls_key|api_listen" "$FARM/logs/bad.log" ||
    farm_fail "rushesd $bad: message does not name the setting: $(cat "$FARM/logs/bad.log")"
done
WRK="tls+tcp://127.0.0.1:$WRK_PORT"
farm_start_daemon --tls-cert "$T/server.crt" --tls-key "$T/server.key" --heartbeat-ms 300
RUSHES_WORKER_CA_FILE="$T/other-ca.crt" farm_start_worker untrusting
sleep 2
n=$(api GET /api/v1/workers | jq '.workers | length')
[ "$n" = 0 ] || farm_fail "a worker with the wrong CA registered"
RUSHES_WORKER_CA_FILE="$T/rushes-test-ca.crt" farm_start_worker trusting
id=$(api POST /api/v1/jobs '{"project":"tls","kind":"noop","params":{"tasks":2}}' | jq -r .job.id)
farm_wait_jobs 30 "$id"
[ "$(api GET "/api/v1/jobs/$id" | jq -r .job.state)" = succeeded ] || farm_fail "job over tls+tcp"
names=$(api GET /api/v1/workers | jq -r '[.workers[].name] | join(",")')
[ "$names" = trusting ] || farm_fail "workers over TLS: $names"
# Plain tcp to the TLS worker socket gets nowhere either.
WRK="tcp://127.0.0.1:$WRK_PORT" farm_start_worker plain
sleep 1.5
names=$(api GET /api/v1/workers | jq -r '[.workers[].name] | join(",")')
[ "$names" = trusting ] || farm_fail "a plain-tcp worker registered on the TLS socket: $names"
echo "ops tls: nginx HTTPS ok ($(jq -r '"\(.rps|floor) req/s, p50 \(.p50_ms*100|floor/100) ms, p99 \(.p99_ms*100|floor/100) ms"' <<<"$load")), plain HTTP and wrong CA refused; worker TLS ok"
