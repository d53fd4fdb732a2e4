# farm.sh: bash helpers for tests and scripts that run a real farm on
# loopback: rushesd + N rushes-worker processes in a temporary state folder.
# Source it; it needs RS_BINARY_DIR (the build folder). Every process started
# here is killed by farm_cleanup (installed as an EXIT trap by farm_init),
# which also removes the state folder unless FARM_KEEP is set or a step failed.

: "${RS_BINARY_DIR:?RS_BINARY_DIR must name the build folder}"
RUSHESD="$RS_BINARY_DIR/daemon/rushesd"
WORKER="$RS_BINARY_DIR/worker/rushes-worker"
RUSHES="$RS_BINARY_DIR/cli/rushes"
FARM_PIDS=()

farm_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# farm_free_port: prints a TCP port nobody listens on.
farm_free_port() {
  local p
  for _ in $(seq 1 50); do
    # below Linux's ephemeral range (32768-60999), so an outgoing
    # connection of a test running beside this one cannot be holding it
    p=$((10000 + RANDOM % 22000))
    if ! ss -ltnH "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  farm_fail "no free port"
}

# farm_init NAME: temp state folder $FARM, media root $FARM/media, ports.
farm_init() {
  FARM=$(mktemp -d "/tmp/rushes-$1.XXXXXX")
  mkdir -p "$FARM/media" "$FARM/data" "$FARM/logs"
  farm_pick_ports
  trap farm_cleanup EXIT
}

# farm_pick_ports: API/WRK on two free loopback ports.
farm_pick_ports() {
  API_PORT=$(farm_free_port)
  WRK_PORT=$(farm_free_port)
  while [ "$WRK_PORT" = "$API_PORT" ]; do WRK_PORT=$(farm_free_port); done
  API="http://127.0.0.1:$API_PORT"
  WRK="tcp://127.0.0.1:$WRK_PORT"
  export RUSHES_SERVER="$API"
}

farm_cleanup() {
  local rc=$?
  for p in "${FARM_PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -n "${FARM:-}" ]; then
    echo "--- logs kept in $FARM/logs" >&2
    for f in "$FARM"/logs/*.log; do
      [ -f "$f" ] || continue
      echo "--- tail $f" >&2
      tail -n 30 "$f" >&2
    done
  elif [ -n "${FARM:-}" ] && [ -z "${FARM_KEEP:-}" ]; then
    rm -rf "$FARM"
  fi
  exit $rc
}

# farm_wait_line FILE TEXT SECONDS
farm_wait_line() {
  local i
  for i in $(seq 1 $(($3 * 20))); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  farm_fail "timed out waiting for '$2' in $1"
}

# farm_token: auth is on (rushesd's default), so the farm gets a farm-wide
# admin token once (rushesd --create-admin-token writes it into the
# database). It is exported as RUSHES_TOKEN (the CLI and bench/http_load read
# it), sent by api(), and put in $FARM/.curlrc with CURL_HOME=$FARM so any
# plain curl in a farm script carries it. FARM_AUTH=0 runs the daemon with
# --no-auth instead.
farm_token() {
  [ "${FARM_AUTH:-1}" = 1 ] || return 0
  [ -n "${FARM_TOKEN:-}" ] && [ -f "$FARM/data/rushes.db" ] && return 0
  FARM_TOKEN=$("$RUSHESD" --data-dir "$FARM/data" --create-admin-token farm 2>>"$FARM/logs/token.log") ||
    farm_fail "rushesd --create-admin-token failed: $(cat "$FARM/logs/token.log")"
  export RUSHES_TOKEN=$FARM_TOKEN
  printf 'header = "Authorization: Bearer %s"\n' "$FARM_TOKEN" >"$FARM/.curlrc"
  export CURL_HOME=$FARM
}

# farm_start_daemon [extra flags...]; sets DAEMON_PID. Env passes through
# (RUSHES_CRASH_AT for crash tests).
farm_start_daemon() {
  local log="$FARM/logs/rushesd.$(date +%s%N).log"
  local auth=()
  if [ "${FARM_AUTH:-1}" = 1 ]; then
    farm_token
  else
    auth=(--no-auth)
  fi
  local try
  for try in 1 2 3 4 5; do
    "$RUSHESD" --data-dir "$FARM/data" --media-root "$FARM/media" \
      --api-listen "$API" --worker-listen "$WRK" "${auth[@]}" "$@" >"$log" 2>&1 &
    DAEMON_PID=$!
    FARM_PIDS+=("$DAEMON_PID")
    DAEMON_LOG=$log
    local i
    for i in $(seq 1 400); do
      if grep -q "rushesd: listening" "$log" 2>/dev/null; then
        FARM_STARTED=1
        return 0
      fi
      kill -0 "$DAEMON_PID" 2>/dev/null || break
      sleep 0.05
    done
    # A port picked as free can be taken by a test running beside this one
    # before rushesd binds it: on the first start (no worker knows the ports
    # yet) pick others and try again.
    if [ -z "${FARM_STARTED:-}" ] && grep -q "Address in use" "$log" 2>/dev/null; then
      wait "$DAEMON_PID" 2>/dev/null || true
      farm_pick_ports
      log="$FARM/logs/rushesd.$(date +%s%N).log"
      continue
    fi
    farm_fail "rushesd did not start: $(tail -n 1 "$log" 2>/dev/null)"
  done
  farm_fail "rushesd did not start: no free ports after 5 tries"
}

# farm_stop_daemon [SECONDS]: SIGTERM, and rushesd must exit 0 within
# SECONDS (default 20). A daemon that hangs instead gets its threads'
# backtraces printed (gdb, when installed) before the test fails, so a hang
# reads as a failure with evidence, not as ctest's timeout.
farm_stop_daemon() {
  local secs=${1:-20} i
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  for i in $(seq 1 $((secs * 20))); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    if command -v gdb >/dev/null; then
      gdb -p "$DAEMON_PID" -batch -ex "thread apply all bt" 2>/dev/null | grep '^#\|^Thread' >&2 || true
    fi
    kill -9 "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    farm_fail "rushesd did not stop within ${secs}s of SIGTERM"
  fi
  wait "$DAEMON_PID" || farm_fail "rushesd exited $? on SIGTERM (expected 0)"
}

# farm_start_worker NAME [extra flags...]; prints nothing, appends pid to
# FARM_PIDS and sets LAST_WORKER_PID.
farm_start_worker() {
  local name=$1
  shift
  "$WORKER" --server "$WRK" --name "$name" "$@" >>"$FARM/logs/worker-$name.log" 2>&1 &
  LAST_WORKER_PID=$!
  FARM_PIDS+=("$LAST_WORKER_PID")
}

# api METHOD PATH [JSON] [extra curl args]: prints the body. The status code
# goes to $FARM/http_status (api usually runs in a $(...) subshell, where a
# variable would be lost); read it with api_status.
api() {
  local method=$1 path=$2 body=${3:-}
  shift 3 2>/dev/null || shift $#
  local out
  out=$(curl -s -S -m "${FARM_HTTP_TIMEOUT:-60}" -X "$method" -w '\n%{http_code}' -H 'Content-Type: application/json' \
    ${body:+--data-binary "$body"} "$@" "$API$path") || return 1
  printf '%s' "${out##*$'\n'}" >"$FARM/http_status"
  printf '%s' "${out%$'\n'*}"
}

api_status() {
  cat "$FARM/http_status"
}

# farm_audit_job PROJECT JOB [OUT]: `rushes audit JOB` with the project's
# public key must pass, and every changed pixel must lie inside its recorded
# mask (coverage 1 when anything changed). Writes the --json report to OUT
# (default $FARM/audit-JOB.json) and prints its frame count.
farm_audit_job() {
  local project=$1 id=$2 out=${3:-$FARM/audit-$2.json}
  "$RUSHES" ledger pubkey --project "$project" >"$FARM/$project.pub" 2>"$FARM/$project.pub.err" ||
    farm_fail "ledger pubkey --project $project: $(cat "$FARM/$project.pub.err")"
  "$RUSHES" --json audit "$id" --pubkey "$FARM/$project.pub" >"$out" 2>"$out.err" ||
    farm_fail "audit of job $id failed: $(cat "$out" "$out.err")"
  jq -e '.ok and .outside_pixels == 0 and (.changed_pixels == 0 or .coverage == 1)' "$out" >/dev/null ||
    farm_fail "audit of job $id: $(cat "$out")"
  jq -r .frames "$out"
}

# farm_wait_jobs SECONDS ID...: waits until every job is finished.
farm_wait_jobs() {
  local secs=$1
  shift
  local deadline=$((SECONDS + secs)) id st
  for id in "$@"; do
    while :; do
      st=$(api GET "/api/v1/jobs/$id" | jq -r .job.state)
      case "$st" in succeeded | failed | cancelled) break ;; esac
      [ $SECONDS -lt $deadline ] || farm_fail "job $id still $st after ${secs}s"
      sleep 0.1
    done
  done
}
