#!/usr/bin/env bash
# Joule's /metrics as Prometheus sees it (issue 12 §3), run by ctest (scripts/test):
#   1. deploy/prometheus-rules.yml passes `promtool check rules` and its unit tests
#      (tests/ops/prometheus-rules.test.yml);
#   2. a real `joule serve` (auth on, admin token) on a private database: `promtool check
#      metrics` passes on its live /metrics, which has build info and process metrics, and
#      needs the token;
#   3. every metric the rules and deploy/grafana-dashboard.json name is exported (or, for
#      the few created at their first event, defined in the sources);
#   4. a real Prometheus (127.0.0.1, free port, 1 s scrape) scrapes Joule with the token and
#      loads the rules; one series is queried back through its HTTP API, every rule
#      evaluates without error and every dashboard query runs.
# Usage: prometheus_test.sh JOULE_BIN   (env JOULE_TEST_PGPORT, JOULE_TEST_REDIS_PORT)
set -euo pipefail
JOULE_BIN=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JOULE_ROOT=$SRC
source "$SRC/scripts/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in promtool prometheus curl jq; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/lib.sh ensure_packages installs it)"
done
: "${JOULE_TEST_PGPORT:?run through scripts/test}"

work=$(mktemp -d /tmp/joule-prom-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$PG_BIN/psql" -h 127.0.0.1 -p "$JOULE_TEST_PGPORT" -U joule -d postgres -qc \
    "DROP DATABASE IF EXISTS joule_test_prom WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. the rules file
promtool check rules "$SRC/deploy/prometheus-rules.yml"
(cd "$SRC/tests/ops" && promtool test rules prometheus-rules.test.yml)

# --- 2. a live server
PGPORT=$JOULE_TEST_PGPORT
"$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc \
  "DROP DATABASE IF EXISTS joule_test_prom WITH (FORCE)" >/dev/null 2>&1
create_database joule_test_prom
export JOULE_DB_URL="postgresql://joule@127.0.0.1:$PGPORT/joule_test_prom"
export JOULE_REDIS_URL="redis://127.0.0.1:${JOULE_TEST_REDIS_PORT:-6379}"
export JOULE_HTTP_LISTEN=127.0.0.1:0
token=$("$JOULE_BIN" token create --scope admin --name prometheus 2>/dev/null | tail -n 1)
[[ $token == jl_* ]] || fail "no admin token from joule token create"
printf '%s' "$token" >"$work/token"

: >"$work/joule.out"  # created now: the background job opens it in its own process, maybe after the first sed
"$JOULE_BIN" serve >"$work/joule.out" 2>"$work/joule.err" &
pids+=($!)
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^joule listening on .*:\([0-9]*\)$/\1/p' "$work/joule.out")
  [ -n "$port" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/joule.err" >&2; fail "joule serve exited"; }
  sleep 0.1
done
[ -n "$port" ] || fail "joule serve did not report its port"
base=http://127.0.0.1:$port
auth=(-H "Authorization: Bearer $token")

# Some traffic, so the request histogram has series (a 200, a 404, a 400).
curl -fsS "${auth[@]}" "$base/admin/status" >/dev/null
curl -sS -o /dev/null "${auth[@]}" "$base/no-such-route"
curl -sS -o /dev/null "${auth[@]}" "$base/analytics/households/nope/energy"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$base/metrics")" = 401 ] ||
  fail "/metrics answered without a token"
curl -fsS "${auth[@]}" "$base/metrics" >"$work/metrics.txt"
# promtool prints one line per problem (and exits 0 for some): both must stay empty.
problems=$(promtool check metrics <"$work/metrics.txt" 2>&1) || fail "promtool check metrics: $problems"
[ -z "$problems" ] || fail "promtool check metrics: $problems"
for family in joule_build_info process_cpu_seconds_total process_resident_memory_bytes \
              process_open_fds process_max_fds process_start_time_seconds \
              joule_http_request_duration_seconds joule_rollup_watermark_timestamp_seconds; do
  grep -q "^# TYPE $family " "$work/metrics.txt" || fail "/metrics has no $family"
done
version=$(sed -n 's/^joule_build_info{version="\([^"]*\)".*} 1$/\1/p' "$work/metrics.txt")
[ -n "$version" ] || fail "joule_build_info has no version: $(grep build_info "$work/metrics.txt")"
# Bounded label sets: no label value looks like an id (UUIDs, long digit runs).
if grep -v '^#' "$work/metrics.txt" | grep -Eq '="[0-9a-f]{8}-[0-9a-f]{4}-|="[0-9]{6,}"'; then
  fail "a label holds an id: $(grep -v '^#' "$work/metrics.txt" | grep -E '="[0-9a-f]{8}-|="[0-9]{6,}"' | head -3)"
fi

# --- 3. every metric the rules and the dashboard use exists
jq -e '.panels | length > 0' "$SRC/deploy/grafana-dashboard.json" >/dev/null ||
  fail "deploy/grafana-dashboard.json has no panels"
jq -r '.panels[].targets[]?.expr' "$SRC/deploy/grafana-dashboard.json" >"$work/dashboard.exprs"
[ "$(wc -l <"$work/dashboard.exprs")" -ge 20 ] || fail "too few dashboard queries"
# Created at their first event (an alert fired, a webhook delivered), so a fresh server does
# not list them yet: they must at least be defined in the sources.
lazy=" joule_alerts_fired_total joule_alert_deliveries_total joule_alert_evaluators "
names=$(cat "$SRC/deploy/prometheus-rules.yml" "$work/dashboard.exprs" |
  grep -v '^ *#' | grep -oE '\b(joule|process)_[a-z0-9_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u)
for n in $names; do
  [[ $n == joule_http_requests ]] && continue   # part of a recording rule's name
  if ! grep -q "^# TYPE $n " "$work/metrics.txt"; then
    [[ $lazy == *" $n "* ]] && grep -rq "\"$n\"" "$SRC/rules" || fail "$n is used by deploy/ but not exported"
  fi
done

# --- 4. a real Prometheus
prom_port=$(free_port prometheus-test)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$SRC/deploy/prometheus-rules.yml"]
scrape_configs:
  - job_name: joule
    authorization: {type: Bearer, credentials_file: "$work/token"}
    static_configs: [{targets: ["127.0.0.1:$port"]}]
EOF
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
prom=http://127.0.0.1:$prom_port
query() { curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$1"; }
got=
for _ in $(seq 150); do
  got=$(query 'joule_build_info{job="joule"}' 2>/dev/null |
    jq -r '.data.result[0].metric.version // empty' 2>/dev/null || true)
  [ -n "$got" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$work/prometheus.log" >&2; fail "prometheus exited"; }
  sleep 0.2
done
[ "$got" = "$version" ] || { cat "$work/prometheus.log" >&2; fail "Prometheus did not scrape joule_build_info (got '$got')"; }
[ "$(query 'up{job="joule"}' | jq -r '.data.result[0].value[1]')" = 1 ] || fail "up{job=\"joule\"} is not 1"
rss=$(query 'process_resident_memory_bytes{job="joule"}' | jq -r '.data.result[0].value[1]')
awk -v v="$rss" 'BEGIN { exit !(v > 1000000) }' || fail "process_resident_memory_bytes = $rss"
health=$(curl -fsS "$prom/api/v1/targets" | jq -r '.data.activeTargets[0].health')
[ "$health" = up ] || fail "target health $health"

# Every rule evaluated at least once, without error.
for _ in $(seq 50); do
  rules=$(curl -fsS "$prom/api/v1/rules")
  unevaluated=$(jq '[.data.groups[].rules[] | select(.lastEvaluation | startswith("0001"))] | length' <<<"$rules")
  [ "$unevaluated" = 0 ] && break
  sleep 0.2
done
[ "$(jq '[.data.groups[].rules[]] | length' <<<"$rules")" -ge 10 ] || fail "rules not loaded"
bad=$(jq -r '.data.groups[].rules[] | select(.health != "ok") | "\(.name): \(.lastError)"' <<<"$rules")
[ -z "$bad" ] || fail "rules with errors: $bad"
[ "$unevaluated" = 0 ] || fail "$unevaluated rules never evaluated"

# Every dashboard query is valid PromQL on real data (Grafana's variables filled in).
n=0
while IFS= read -r expr; do
  e=${expr//\$__rate_interval/1m}; e=${e//\$job/joule}; e=${e//\$instance/.*}
  status=$(query "$e" | jq -r .status) || fail "dashboard query failed: $e"
  [ "$status" = success ] || fail "dashboard query: $e"
  n=$((n + 1))
done <"$work/dashboard.exprs"
echo "prometheus test: promtool ok, $n dashboard queries ok, joule_build_info{version=\"$version\"} scraped"
