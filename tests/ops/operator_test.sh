#!/usr/bin/env bash
# Operator comforts (issue 12 §4) on a real `joule serve` (auth on) as a subprocess, run by
# ctest (scripts/test):
#   - log.format=json: every line of the server's stderr is one JSON object; an access line
#     per request with the request id, route, status and token id;
#   - X-Request-Id: a sane one is echoed and logged, a bad one replaced by a generated id;
#   - GET /admin/config: admin only, effective settings, the db.url password redacted (and
#     never in the log);
#   - SIGHUP: live keys applied (DB pool size, rate limit, log level), a key that needs a
#     restart reported, a bad file refused with a message and the old settings kept;
#   - `joule status` with --url/--token and with JOULE_URL/JOULE_TOKEN; a bad token fails;
#   - progress of `joule refresh` and `joule-sim backfill`: plain lines into a file, one
#     redrawn line on a terminal (`script` gives them a pty).
# Usage: operator_test.sh JOULE_BIN [JOULE_SIM_BIN]   (env JOULE_TEST_PGPORT)
set -euo pipefail
JOULE_BIN=$1
SIM_BIN=${2:-}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JOULE_ROOT=$SRC
source "$SRC/scripts/lib.sh"
fail() { echo "FAIL: $*" >&2; [ -f "${work:-/nonexistent}/joule.err" ] && tail -20 "$work/joule.err" >&2; exit 1; }
: "${JOULE_TEST_PGPORT:?run through scripts/test}"
command -v jq >/dev/null || fail "jq is missing (scripts/lib.sh ensure_packages installs it)"

work=$(mktemp -d /tmp/joule-ops-test.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  "$PG_BIN/psql" -h 127.0.0.1 -p "$JOULE_TEST_PGPORT" -U joule -d postgres -qc \
    "DROP DATABASE IF EXISTS joule_test_ops WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PGPORT=$JOULE_TEST_PGPORT
"$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc \
  "DROP DATABASE IF EXISTS joule_test_ops WITH (FORCE)" >/dev/null 2>&1
create_database joule_test_ops
# A password PostgreSQL never asks for (trust auth): it must not show anywhere.
export JOULE_DB_URL="postgresql://joule:pw-$RANDOM-s3cret@127.0.0.1:$PGPORT/joule_test_ops"
export JOULE_REDIS_URL=
export JOULE_HTTP_LISTEN=127.0.0.1:0
unset JOULE_LOG_LEVEL JOULE_LOG_FORMAT JOULE_LOG_ACCESS JOULE_URL JOULE_TOKEN
admin_out=$("$JOULE_BIN" token create --scope admin --name ops 2>/dev/null)
admin=$(tail -n 1 <<<"$admin_out")
admin_id=$(sed -n 's/^id: //p' <<<"$admin_out")
reader=$("$JOULE_BIN" token create --scope read 2>/dev/null | tail -n 1)
# For `joule status` (the first admin token's rate gate is spent by the rate-limit check).
admin2=$("$JOULE_BIN" token create --scope admin 2>/dev/null | tail -n 1)
[[ $admin == jl_* && $reader == jl_* && -n $admin_id ]] || fail "no tokens"

conf=$work/joule.conf
printf 'log.format = json\ndb.pool_size = 2\nauth.rate_limit = 1000\n' >"$conf"
: >"$work/joule.out"  # created now: the background job opens it in its own process, maybe after the first sed
"$JOULE_BIN" serve --config "$conf" >"$work/joule.out" 2>"$work/joule.err" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^joule listening on .*:\([0-9]*\)$/\1/p' "$work/joule.out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "joule serve exited"
  sleep 0.1
done
[ -n "$port" ] || fail "joule serve did not report its port"
base=http://127.0.0.1:$port
A=(-H "Authorization: Bearer $admin")

# --- request ids and the access log
hdr=$(curl -sS -D - -o /dev/null "${A[@]}" -H 'X-Request-Id: ops-test-42' "$base/admin/status")
grep -qi '^X-Request-Id: ops-test-42' <<<"$hdr" || fail "sane X-Request-Id not echoed: $hdr"
hdr=$(curl -sS -D - -o /dev/null "${A[@]}" -H 'X-Request-Id: bad id "quoted"' "$base/healthz")
gen=$(sed -n 's/^[Xx]-[Rr]equest-[Ii]d: \([0-9a-f]*\)\r$/\1/p' <<<"$hdr")
[ ${#gen} = 16 ] || fail "a bad X-Request-Id was not replaced by a generated one: $hdr"
hdr=$(curl -sS -D - -o /dev/null "$base/admin/status")  # 401: still has an id
grep -qi '^X-Request-Id: [0-9a-f]\{16\}' <<<"$hdr" || fail "401 without X-Request-Id"
sleep 0.3
while IFS= read -r line; do
  jq -e . >/dev/null 2>&1 <<<"$line" || fail "not a JSON log line: $line"
done <"$work/joule.err"
access=$(jq -c 'select(.component == "access" and .request_id == "ops-test-42")' "$work/joule.err")
[ "$(jq -r .route <<<"$access")" = admin_status ] || fail "access line: $access"
[ "$(jq -r .status <<<"$access")" = 200 ] || fail "access line: $access"
[ "$(jq -r .token_id <<<"$access")" = "$admin_id" ] || fail "access line lacks the token id: $access"
jq -c 'select(.component == "access" and .request_id == "'"$gen"'" and .route == "healthz")' \
  "$work/joule.err" | grep -q . || fail "no access line for the generated id $gen"

# --- GET /admin/config
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$base/admin/config")" = 401 ] || fail "/admin/config open"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $reader" "$base/admin/config")" = 403 ] ||
  fail "/admin/config for a read token"
cfg=$(curl -fsS "${A[@]}" "$base/admin/config")
[ "$(jq -r '.settings["db.pool_size"]' <<<"$cfg")" = 2 ] || fail "config: $cfg"
jq -r '.settings["db.url"]' <<<"$cfg" | grep -q '^postgresql://joule:\*\*\*@' || fail "db.url not redacted: $cfg"
jq -e '.live_keys | index("db.pool_size")' <<<"$cfg" >/dev/null || fail "live keys: $cfg"

# --- SIGHUP: live keys applied, others reported
[ "$(curl -fsS "${A[@]}" "$base/admin/status" | jq .db_pool.workers)" = 2 ] || fail "pool size 2"
printf 'log.format = json\ndb.pool_size = 3\nauth.rate_limit = 0.5\nauth.rate_burst = 2\nhttp.threads = 2\n' >"$conf"
kill -HUP "$pid"
for _ in $(seq 50); do
  grep -q '"reloaded: applied' "$work/joule.err" && break
  sleep 0.1
done
grep '"reloaded: applied' "$work/joule.err" | grep -q 'db.pool_size, auth.rate_limit, auth.rate_burst' ||
  fail "reload did not apply: $(grep config "$work/joule.err")"
grep -q 'only applied at the next start: http.threads' "$work/joule.err" || fail "http.threads not reported"
# Two requests (the new burst), then the rate of 0.5/s answers 429.
[ "$(curl -fsS "${A[@]}" "$base/admin/status" | jq .db_pool.workers)" = 3 ] || fail "pool size not 3"
[ "$(curl -fsS "${A[@]}" "$base/admin/config" | jq -r '.settings["auth.rate_limit"]')" = 0.5 ] || fail "config after reload"
codes=
for _ in 1 2 3; do codes+=$(curl -sS -o /dev/null -w '%{http_code} ' "${A[@]}" "$base/admin/status"); done
[[ $codes == *429* ]] || fail "auth.rate_limit not applied live: $codes"

# A bad file is refused, the old settings stay.
printf 'db.pool_size = lots\n' >"$conf"
kill -HUP "$pid"
for _ in $(seq 50); do
  grep -q 'reload refused' "$work/joule.err" && break
  sleep 0.1
done
grep 'reload refused' "$work/joule.err" | grep -q 'db.pool_size' || fail "bad file not refused"
sleep 2.2
cfg=$(curl -fsS "${A[@]}" "$base/admin/config")
[ "$(jq -r '.settings["db.pool_size"]' <<<"$cfg")" = 3 ] || fail "settings changed by a bad file: $cfg"

# Back to a generous rate limit for `joule status`; log.level=warn hides the access lines.
printf 'log.format = json\nlog.level = warn\ndb.pool_size = 3\n' >"$conf"
kill -HUP "$pid"
sleep 0.5
lines=$(wc -l <"$work/joule.err")
curl -fsS "${A[@]}" "$base/healthz" >/dev/null
sleep 0.2
[ "$(wc -l <"$work/joule.err")" = "$lines" ] || fail "log.level=warn not applied: $(tail -2 "$work/joule.err")"

# --- joule status
out=$("$JOULE_BIN" status --url "$base" --token "$admin2" 2>&1) || fail "joule status failed: $out"
grep -q "^joule .* at $base, up " <<<"$out" || fail "status head: $out"
grep -q '^db_pool: workers=3 ' <<<"$out" || fail "status: $out"
grep -q '^actors: running=[0-9]* not_running=none' <<<"$out" || fail "status: $out"
JOULE_URL=$base JOULE_TOKEN=$admin2 "$JOULE_BIN" status | grep -q '^db_pool: ' || fail "status from env"
if err=$("$JOULE_BIN" status --url "$base" --token "$reader" 2>&1); then fail "status with a read token"; fi
grep -q 'admin token' <<<"$err" || fail "status error: $err"

# --- progress of long jobs
range=(--start 2026-11-20T00:00:00Z --end 2026-11-21T00:00:00Z)
JOULE_PROGRESS_INTERVAL=0 JOULE_REFRESH_MAX_BATCH=6h "$JOULE_BIN" refresh device_1m "${range[@]}" \
  >"$work/refresh.out" 2>"$work/refresh.err" || fail "joule refresh: $(cat "$work/refresh.err")"
jq -e .rows_written "$work/refresh.out" >/dev/null || fail "refresh stdout is not its JSON: $(cat "$work/refresh.out")"
[ "$(grep -c '^refresh device_1m: [0-9.]*% | [0-9]* rows | [0-9]* rows/s | ' "$work/refresh.err")" -ge 4 ] ||
  fail "refresh: no plain progress lines: $(cat "$work/refresh.err")"
grep -q $'\r' "$work/refresh.err" && fail "refresh wrote carriage returns into a file"
grep -q '100.0% .*done in' "$work/refresh.err" || fail "refresh: no final line"
script -qec "JOULE_REFRESH_MAX_BATCH=6h $JOULE_BIN refresh device_1m ${range[*]} 2>&1 >/dev/null" /dev/null \
  >"$work/refresh.tty"
grep -q $'\rrefresh device_1m: 100.0%' "$work/refresh.tty" || fail "refresh on a terminal: $(od -c "$work/refresh.tty" | head)"
if [ -n "$SIM_BIN" ]; then
  JOULE_PROGRESS_INTERVAL=0 "$SIM_BIN" backfill --db "host=127.0.0.1 port=$PGPORT user=joule dbname=joule_test_ops" \
    --households 2 --hours 1 >"$work/sim.out" 2>"$work/sim.err" || fail "joule-sim: $(cat "$work/sim.err")"
  grep -q '^backfill: 100.0% | \([0-9]*\) / \1 rows | [0-9]* rows/s | done in' "$work/sim.err" ||
    fail "joule-sim backfill: no plain progress: $(cat "$work/sim.err")"
  grep -q $'\r' "$work/sim.err" && fail "joule-sim wrote carriage returns into a file"
fi

# The password never reached the log.
! grep -q 's3cret' "$work/joule.err" || fail "the db.url password is in the log"
echo "operator test: request ids, JSON access log, /admin/config, SIGHUP reload, joule status, progress ok"
