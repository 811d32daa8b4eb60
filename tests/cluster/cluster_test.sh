#!/usr/bin/env bash
# Three instances behind HAProxy, one killed (issue 11, tests): runs `scripts/cluster --no-build`
# (PostgreSQL primary + streaming standby, Redis, three `joule serve`, HAProxy, a simulated fleet
# writing through HAProxy every 2 s), puts a steady read load through HAProxy, creates alert
# rules whose webhooks go to a real receiver (tests/cluster/webhook_receiver.py), fires half of
# them, then `kill -9`s the instance that owns the most rules and fires the other half at once:
#   - reads keep answering: errors (non-200 or no answer) only inside HAProxy's detection
#     window (inter + (fall − 1) × fastinter) plus 1 s of slack, none before the kill;
#   - HAProxy marks the instance DOWN within that window;
#   - the dead instance's rules are owned by the survivors within 2 × lease (/admin/status
#     "instance": {"id","lease_sec","owned_rules","owned_rule_count","peers"}), each rule by
#     exactly one instance before and after;
#   - no alert is lost (every rule's firing reaches the receiver) and none is delivered twice
#     with different ids (one firing alert_id per rule);
#   - the fleet's ingest through HAProxy loses no batch;
#   - then the primary stops and the standby is promoted (`pg_ctl promote`): ingest through
#     HAProxy is back within 10 s of the promotion, reads answer only 200 or 503 meanwhile, and
#     every acknowledged reading (backfill, fleet, test readings) is on the new primary;
# and finally SIGTERM stops everything scripts/cluster started and removes its folders.
# Prints the measured numbers (error window, HAProxy detection, rules moved, alerts delivered,
# ingest back after the promotion).
# Usage: cluster_test.sh BUILD_DIR
set -euo pipefail
BUILD_DIR=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JOULE_ROOT=$SRC
source "$SRC/scripts/lib.sh"
here=$SRC/tests/cluster
command -v jq >/dev/null && command -v haproxy >/dev/null && command -v python3 >/dev/null ||
  { echo "FAIL: jq, haproxy and python3 are needed (scripts/lib.sh ensure_packages)" >&2; exit 1; }

work=$(mktemp -d /tmp/joule-cluster-test.XXXXXX)
cluster_pid= recv_pid= load_pid=
fail() {
  echo "FAIL: $*" >&2
  for f in "$work/cluster.err" "${CLUSTER_LOG_DIR:-/nonexistent}"/{haproxy,fleet}.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }
  done
  exit 1
}
cleanup() {
  touch "$work/stop"
  for p in $load_pid $recv_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -TERM "$cluster_pid" 2>/dev/null || true
    wait "$cluster_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

# --- the webhook receiver
recv_port=$(free_port cluster-test-webhook)
python3 "$here/webhook_receiver.py" "$recv_port" "$work/deliveries.jsonl" 2>"$work/receiver.err" &
recv_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$recv_port") 2>/dev/null && break; sleep 0.1; done
touch "$work/deliveries.jsonl"

# --- the cluster (lease and private webhook targets through the environment: every instance
# reads JOULE_<KEY>, and a key this build does not know is ignored there)
lease_setting=${JOULE_CLUSTER_TEST_LEASE:-3s}
t0=$(now_ms)
JOULE_CLUSTER_NAME=cluster-test JOULE_CLUSTER_SECONDS=300 JOULE_CLUSTER_FAST=1 \
  JOULE_CLUSTER_HOUSEHOLDS=20 JOULE_CLUSTER_HOURS=1 JOULE_CLUSTER_INTERVAL=2s \
  JOULE_CLUSTER_STATE="$work/state" JOULE_BUILD_DIR="$BUILD_DIR" \
  JOULE_ALERTS_ALLOW_PRIVATE_TARGETS=true JOULE_ALERTS_LEASE="$lease_setting" \
  "$SRC/scripts/cluster" --no-build >"$work/cluster.out" 2>"$work/cluster.err" &
cluster_pid=$!
for _ in $(seq 900); do
  [ -f "$work/state" ] && break
  kill -0 "$cluster_pid" 2>/dev/null || fail "scripts/cluster exited before it was up"
  sleep 0.1
done
[ -f "$work/state" ] || fail "scripts/cluster not up after 90 s"
source "$work/state"
echo "cluster up in $(( $(now_ms) - t0 )) ms: $CLUSTER_URL" >&2
grep -q "use $CLUSTER_URL" "$work/cluster.out" || fail "scripts/cluster did not print its URL"
A=(-H "Authorization: Bearer $CLUSTER_ADMIN_TOKEN")
n=${#CLUSTER_INSTANCE_PIDS[@]}
((n == 3)) || fail "expected 3 instances, got $n"

if [ -n "$CLUSTER_STANDBY_PORT" ]; then  # the standby streams from the primary
  [ "$("$PG_BIN/psql" "$CLUSTER_DB_URL" -qtAc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] ||
    fail "no streaming standby"
fi

# --- a steady read load through HAProxy, 20/s: the household's default 5 min energy window (the
# live tail's path) and a device's power (the answer cache and the database path: the standby)
paths="/analytics/households/$CLUSTER_HOUSEHOLD/energy?step=5m"
paths+=",/analytics/devices/$CLUSTER_DEVICE/power?step=1m"
python3 "$here/read_load.py" "${CLUSTER_URL##*:}" "$paths" "$CLUSTER_ADMIN_TOKEN" 20 \
  "$work/reads.txt" "$work/stop" &
load_pid=$!

# --- alert rules on 12 devices, created through HAProxy (so on any instance)
mapfile -t devs < <("$PG_BIN/psql" "$CLUSTER_DB_URL" -qtAc \
  "SELECT id || ' ' || household_id FROM devices ORDER BY id LIMIT 12")
((${#devs[@]} == 12)) || fail "fewer than 12 devices"
declare -A dev_of hh_of
rules=()
for d in "${devs[@]}"; do
  body=$(jq -nc --arg dev "${d% *}" --arg url "http://127.0.0.1:$recv_port/hook" \
    '{scope:"device",scope_id:$dev,metric:"power_w_max",window:"1m",op:">",value:1000000,
      cooldown_sec:3600,webhook_url:$url,webhook_secret:"cluster-test"}')
  id=$(curl -fsS "${A[@]}" -H 'Content-Type: application/json' -d "$body" \
    "$CLUSTER_URL/alerts/rules" | jq -r .id) || fail "creating a rule"
  rules+=("$id"); dev_of[$id]=${d% *}; hh_of[$id]=${d#* }
done

status_of() {  # status_of INDEX: /admin/status of one instance, directly
  curl -fsS --max-time 2 "${A[@]}" "http://127.0.0.1:${CLUSTER_INSTANCE_PORTS[$1]}/admin/status"
}
owned_by() {  # owned_by INDEX: that instance's owned rule ids, one a line
  status_of "$1" | jq -r '.instance.owned_rules[]'
}
# Each rule owned by exactly one instance (rule changes reach every instance within 2 s).
has_instance=$(status_of 0 | jq 'has("instance")')
declare -A owner
if [ "$has_instance" = true ]; then
  lease_sec=$(status_of 0 | jq -r '.instance.lease_sec')
  lease_ms=$(jq -n --argjson s "$lease_sec" '$s * 1000 | floor')
  ok=0
  for _ in $(seq 60); do
    owner=() all=()
    for i in $(seq 0 $((n - 1))); do
      while read -r r; do [ -n "$r" ] && { owner[$r]=$i; all+=("$r"); }; done < <(owned_by "$i" || true)
    done
    if ((${#all[@]} == 12 && ${#owner[@]} == 12)); then ok=1; break; fi
    sleep 0.1
  done
  ((ok)) || fail "rules not spread over the instances within 6 s: ${#all[@]} owned, ${#owner[@]} distinct"
  # The victim: the instance owning the most rules.
  victim=0 best=-1
  for i in $(seq 0 $((n - 1))); do
    c=0; for r in "${rules[@]}"; do [ "${owner[$r]}" = "$i" ] && c=$((c + 1)); done
    ((c > best)) && { best=$c; victim=$i; }
  done
  ((best >= 2)) || fail "the busiest instance owns only $best rules"
  # Fire half of each instance's rules before the kill, the other half right after it.
  set_a=() set_b=()
  for i in $(seq 0 $((n - 1))); do
    mine=(); for r in "${rules[@]}"; do [ "${owner[$r]}" = "$i" ] && mine+=("$r"); done
    h=$(( ${#mine[@]} / 2 ))
    set_a+=("${mine[@]:0:h}"); set_b+=("${mine[@]:h}")
  done
  victim_rules=(); for r in "${rules[@]}"; do [ "${owner[$r]}" = "$victim" ] && victim_rules+=("$r"); done
else
  echo "NOTE: /admin/status has no instance object in this build: ownership not checked" >&2
  lease_sec= lease_ms=
  victim=1 set_a=("${rules[@]:0:6}") set_b=("${rules[@]:6}") victim_rules=()
fi

spike() {  # spike RULE...: a 5 MW reading now on each rule's device (breaches power_w_max > 1 MW)
  local ts readings=() r
  ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  for r in "$@"; do
    readings+=("$(jq -nc --arg ts "$ts" --arg d "${dev_of[$r]}" --arg h "${hh_of[$r]}" \
      '{ts:$ts,device_id:$d,household_id:$h,power_w:5000000,energy_wh:1}')")
  done
  curl -fsS "${A[@]}" -H 'Content-Type: application/json' \
    -d "{\"readings\":[$(IFS=,; echo "${readings[*]}")]}" "$CLUSTER_URL/telemetry" >/dev/null
}
fired() {  # fired RULE...: how many of them have a firing delivery
  jq -rs --argjson want "$(printf '%s\n' "$@" | jq -R . | jq -sc .)" \
    '[.[] | select(.body.status == "firing") | .body.rule_id] | unique | map(select(. as $r | $want | index($r))) | length' \
    "$work/deliveries.jsonl"
}

spike "${set_a[@]}" || fail "spike before the kill"
for _ in $(seq 150); do
  (( $(fired "${set_a[@]}") == ${#set_a[@]} )) && break
  sleep 0.1
done
(( $(fired "${set_a[@]}") == ${#set_a[@]} )) || fail "alerts before the kill: $(fired "${set_a[@]}") of ${#set_a[@]} fired"
sleep 3  # reads before the kill

# --- kill -9 the busiest instance, fire the rest at once
vpid=${CLUSTER_INSTANCE_PIDS[$victim]} vid=${CLUSTER_INSTANCE_IDS[$victim]}
t_kill=$(now_ms)
kill -9 "$vpid"
spike "${set_b[@]}" || fail "spike after the kill (through HAProxy)"
t_down= t_moved= t_delivered=
[ "$has_instance" = true ] || t_moved=-
limit_ms=$(( ${lease_ms:-10000} * 2 + 20000 ))
while (( $(now_ms) - t_kill < limit_ms )); do
  if [ -z "$t_down" ] && curl -fs "${CLUSTER_STATS_URL};csv" |
      awk -F, -v s="$vid" '$1 == "joule_instances" && $2 == s && $18 ~ /^DOWN/' | grep -q .; then
    t_down=$(( $(now_ms) - t_kill ))
  fi
  if [ -z "$t_moved" ]; then
    survivors=()
    for i in $(seq 0 $((n - 1))); do
      ((i == victim)) || mapfile -t -O "${#survivors[@]}" survivors < <(owned_by "$i" || true)
    done
    moved=1
    for r in "${rules[@]}"; do
      [ "$(printf '%s\n' "${survivors[@]}" | grep -cx "$r")" = 1 ] || { moved=0; break; }
    done
    ((moved && ${#survivors[@]} == 12)) && t_moved=$(( $(now_ms) - t_kill ))
  fi
  if [ -z "$t_delivered" ] && (( $(fired "${set_b[@]}") == ${#set_b[@]} )); then
    t_delivered=$(( $(now_ms) - t_kill ))
  fi
  [ -n "$t_down" ] && [ -n "$t_moved" ] && [ -n "$t_delivered" ] && break
  sleep 0.1
done
sleep 2  # reads after the kill

# --- the primary stops, the standby is promoted: ingest and reads through HAProxy come back
# without restarting anything (HAProxy's no-check backups keep forwarding while /readyz fails)
probes_ok=0 probe_code=
probe() {  # one reading through HAProxy; its status in probe_code
  local ts
  ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  probe_code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "${A[@]}" -H 'Content-Type: application/json' \
    -d "{\"readings\":[{\"ts\":\"$ts\",\"device_id\":\"$CLUSTER_DEVICE\",\"household_id\":\"$CLUSTER_HOUSEHOLD\",\"power_w\":100,\"energy_wh\":0.1}]}" \
    "$CLUSTER_URL/telemetry") || true
  if [ "$probe_code" = 202 ]; then probes_ok=$((probes_ok + 1)); fi
}
t_pstop= db_port=$CLUSTER_PRIMARY_PORT
if [ -n "$CLUSTER_STANDBY_PORT" ]; then
  t_pstop=$(now_ms)
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "${CLUSTER_PG_DIRS[0]}" -m fast -w stop >/dev/null ||
    fail "stopping the primary"
  sleep 1  # a moment without any primary
  t_promoted=$(now_ms)
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "${CLUSTER_PG_DIRS[1]}" -w promote >/dev/null ||
    fail "promoting the standby"
  db_port=$CLUSTER_STANDBY_PORT
  t_ingest=
  while (( $(now_ms) - t_promoted < 20000 )); do
    probe; [ "$probe_code" = 202 ] && { t_ingest=$(( $(now_ms) - t_promoted )); break; }
    sleep 0.1
  done
  [ -n "$t_ingest" ] || fail "ingest through HAProxy not back within 20 s of the promotion"
  sleep 3  # reads after the promotion
fi
touch "$work/stop"; wait "$load_pid" || true; load_pid=

# --- reads: errors only inside HAProxy's detection window
detect_ms=$(( CLUSTER_CHECK_INTER_MS + (CLUSTER_CHECK_FALL - 1) * CLUSTER_CHECK_FASTINTER_MS ))
read -r total errors before first last after < <(awk -v k="$t_kill" -v p="${t_pstop:-0}" '
  { t = $1 * 1000; if (p && t >= p) next; n++; if (t > k) post++
    if ($2 != 200) { e++; if (t < k) pre++; if (!f || t < f) f = t; if (t > l) l = t } }
  END { printf "%d %d %d %d %d %d\n", n, e, pre, f ? f - k : 0, l ? l - k : 0, post }' "$work/reads.txt")
window=$(( errors ? last - first : 0 ))
echo "reads: $total through HAProxy ($after after the kill), $errors errors" \
  "(first $first ms, last $last ms after the kill: window $window ms; bound $((detect_ms + 1000)) ms)" >&2
((total > 100 && after > 40)) || fail "too few reads: $total ($after after the kill)"
((before == 0)) || fail "$before read errors before the kill"
((errors == 0 || last <= detect_ms + 1000)) || fail "read errors until $last ms after the kill"
((errors <= 20)) || fail "$errors read errors"

# --- HAProxy, rule ownership, alerts
[ -n "$t_down" ] || fail "HAProxy never marked $vid DOWN"
echo "HAProxy marked $vid DOWN $t_down ms after kill -9 (detection window $detect_ms ms + a check interval)" >&2
((t_down <= detect_ms + 1500)) || fail "HAProxy took $t_down ms"
if [ "$has_instance" = true ]; then
  [ -n "$t_moved" ] || fail "the rules of $vid (${victim_rules[*]}) did not move within $limit_ms ms"
  echo "rules of $vid (${#victim_rules[@]}) owned by the survivors $t_moved ms after kill -9" \
    "(lease ${lease_sec} s, bound $((lease_ms * 2)) ms)" >&2
  ((t_moved <= lease_ms * 2)) || fail "rules moved after $t_moved ms > 2 x lease"
fi
[ -n "$t_delivered" ] || fail "alerts after the kill: $(fired "${set_b[@]}") of ${#set_b[@]} fired"
in_b=0; for r in "${victim_rules[@]}"; do [[ " ${set_b[*]} " == *" $r "* ]] && in_b=$((in_b + 1)); done
echo "alerts fired after the kill (${#set_b[@]} rules, $in_b of the dead instance's among them)" \
  "all delivered $t_delivered ms after kill -9" >&2
sleep 2  # stragglers: a second delivery would show here
jq -s -e 'map(select(.body.status == "firing")) | group_by(.body.rule_id) | length == 12' \
  "$work/deliveries.jsonl" >/dev/null || fail "not every rule's alert was delivered"
dups=$(jq -sc 'map(select(.body.status == "firing")) | group_by(.body.rule_id)
  | map(select((map(.body.alert_id) | unique | length) > 1) | .[0].body.rule_id)' "$work/deliveries.jsonl")
[ "$dups" = "[]" ] || fail "rules delivered twice with different alert ids: $dups"
jq -s -e 'all(.[]; .header_id == .body.alert_id)' "$work/deliveries.jsonl" >/dev/null ||
  fail "X-Joule-Alert-Id differs from the body's alert_id"
echo "deliveries: $(wc -l <"$work/deliveries.jsonl") POSTs, one firing alert id per rule" >&2

if [ -n "$t_pstop" ]; then
  back=$(( t_promoted + t_ingest ))
  read -r during bad late ok_during < <(awk -v p="$t_pstop" -v b="$back" '
    { t = $1 * 1000; if (t < p) next
      if (t <= b + 2000) { d++; if ($2 != 200 && $2 != 503) x++; if ($2 == 200) o++ }
      else if ($2 != 200) l++ }
    END { printf "%d %d %d %d\n", d, x, l, o }' "$work/reads.txt")
  echo "failover: primary stopped, standby promoted $((t_promoted - t_pstop)) ms later;" \
    "ingest through HAProxy back $t_ingest ms after the promotion; $during reads meanwhile" \
    "($ok_during answered 200, the rest 503), $late errors afterwards" >&2
  grep -q "Running on backup" "$CLUSTER_LOG_DIR/haproxy.log" &&
    echo "(meanwhile /readyz failed everywhere and HAProxy forwarded to its no-check backups)" >&2
  ((t_ingest <= 10000)) || fail "ingest back only $t_ingest ms after the promotion (> 10 s)"
  ((bad == 0)) || fail "$bad reads during the failover answered neither 200 nor 503"
  ((late == 0)) || fail "$late read errors more than 2 s after ingest was back"
fi

# --- reads from the standby (db.read_url), when this build has it
if [ -n "$CLUSTER_STANDBY_PORT" ]; then
  standby_reads=0 metrics=
  for i in $(seq 0 $((n - 1))); do
    ((i == victim)) && continue
    metrics=$(curl -fsS "${A[@]}" "http://127.0.0.1:${CLUSTER_INSTANCE_PORTS[$i]}/metrics") ||
      fail "/metrics of ${CLUSTER_INSTANCE_IDS[$i]}"
    c=$(awk '/^joule_db_reads_total\{.*target="standby"/ { s += $NF } END { print s + 0 }' <<<"$metrics")
    standby_reads=$(( standby_reads + ${c%.*} ))
  done
  if grep -q '^joule_db_reads_total' <<<"$metrics"; then
    echo "reads served by the standby (survivors): $standby_reads" >&2
    ((standby_reads > 0)) || fail "db.read_url is set but no read went to the standby"
  fi
fi

# --- no acknowledged reading lost (through the kill and the promotion): stop the fleet, then
# every reading it, the spikes and the probes had acknowledged is on the (new) primary
kill -TERM "$CLUSTER_SIM_PID"
for _ in $(seq 100); do tail -n 1 "$CLUSTER_LOG_DIR/fleet.log" | jq -e .ticks >/dev/null 2>&1 && break; sleep 0.1; done
fleet=$(tail -n 1 "$CLUSTER_LOG_DIR/fleet.log")
backfilled=$(tail -n 1 "$CLUSTER_LOG_DIR/backfill.log" | jq .rows)
acked=$(( backfilled + $(jq .readings_accepted <<<"$fleet") + 12 + probes_ok ))
rows=$("$PG_BIN/psql" -h 127.0.0.1 -p "$db_port" -U joule -d joule -qtAc "SELECT count(*) FROM telemetry")
echo "readings acknowledged $acked, rows in the database $rows" >&2
((rows >= acked)) || fail "acknowledged readings lost: $acked acknowledged, $rows rows"

# --- SIGTERM: everything scripts/cluster started stops, its folders go
kill -TERM "$cluster_pid"
rc=0; wait "$cluster_pid" || rc=$?; cluster_pid=
((rc == 143)) || fail "scripts/cluster exited with $rc after SIGTERM"
for p in "${CLUSTER_INSTANCE_PIDS[@]}" "$CLUSTER_HAPROXY_PID" "$CLUSTER_SIM_PID"; do
  ! kill -0 "$p" 2>/dev/null || fail "process $p still runs after scripts/cluster stopped"
done
for d in "$CLUSTER_TMP_DIR" "${CLUSTER_PG_DIRS[@]}"; do
  [ -z "$d" ] || [ ! -e "$d" ] || fail "$d left behind"
done
! (exec 3<>"/dev/tcp/127.0.0.1/${CLUSTER_URL##*:}") 2>/dev/null || fail "HAProxy's port still open"
! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CLUSTER_PRIMARY_PORT" || fail "the primary still runs"
jq -e '.failed_batches == 0 and .readings_accepted == .readings_sent and .ticks > 5' <<<"$fleet" \
  >/dev/null || fail "ingest through HAProxy: $fleet"
echo "fleet through HAProxy: $fleet" >&2
echo "PASS" >&2
