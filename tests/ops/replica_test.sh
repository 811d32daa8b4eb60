#!/usr/bin/env bash
# Reads from a streaming standby and failover without restarts (issue 11 §1, §2) on a real
# `joule serve` against its own PostgreSQL primary + streaming standby (scripts/lib.sh
# start_postgres_standby; the shared test server is never stopped), run by ctest:
#   (a) analytics reads (device power, top devices, energy) are served by the standby
#       (joule_db_reads_total{target="standby"} grows) and equal the primary's once replayed;
#   (b) pg_wal_replay_pause() on the standby, new data on the primary: standby answers keep
#       their fresh_as_of at what the standby has (before the new write, without it); after
#       db.read_max_lag reads go to the primary (fresher, with it); pg_wal_replay_resume():
#       back to the standby, the same answer;
#   (c) primary stopped, standby promoted (db.url lists both hosts, target_session_attrs=
#       read-write): ingest and reads resume without restarting Joule within 10 s, in between
#       reads answer 200 or 503 with Retry-After, every acknowledged reading is on the new
#       primary, the change listener LISTENs again and refresh / live tail cycles resume.
# Prints the measured recovery times. Usage: replica_test.sh JOULE_BIN
set -euo pipefail
JOULE_BIN=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JOULE_ROOT=$SRC
source "$SRC/scripts/lib.sh"
fail() {
  echo "FAIL: $*" >&2
  [ -f "${work:-/nonexistent}/joule.err" ] && tail -30 "$work/joule.err" >&2
  exit 1
}
command -v jq >/dev/null || fail "jq is missing (scripts/lib.sh ensure_packages installs it)"

work=$(mktemp -d /tmp/joule-replica-test.XXXXXX)
pid= loops=()
cleanup() {
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  stop_postgres_standby
  stop_postgres
  # JOULE_TEST_KEEP=DIR keeps the server's log and the request logs for a look afterwards.
  [ -n "${JOULE_TEST_KEEP:-}" ] && cp -r "$work/." "$JOULE_TEST_KEEP/" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Synchronous commit stays on (the default): an acknowledged reading is in the WAL the standby
# receives before a clean stop completes. Commit timestamps: the test compares fresh_as_of
# with the commit of a reading the standby has not replayed.
start_postgres replica-primary fsync=off full_page_writes=off track_commit_timestamp=on
db=joule_replica
"$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc \
  "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
create_database $db
start_postgres_standby replica-standby
P=$PGPORT S=$JOULE_PG_STANDBY_PORT
q_primary() { "$PG_BIN/psql" -h 127.0.0.1 -p "$P" -U joule -d $db -qtAc "$1"; }
q_standby() { "$PG_BIN/psql" -h 127.0.0.1 -p "$S" -U joule -d $db -qtAc "$1"; }

export JOULE_DB_URL="postgresql://joule@127.0.0.1:$P,127.0.0.1:$S/$db?target_session_attrs=read-write"
export JOULE_DB_READ_URL="postgresql://joule@127.0.0.1:$S,127.0.0.1:$P/$db?target_session_attrs=prefer-standby"
export JOULE_DB_READ_MAX_LAG=2s JOULE_REDIS_URL= JOULE_HTTP_LISTEN=127.0.0.1:0
export JOULE_AUTH_REQUIRED=false JOULE_LOG_FORMAT=text
# A refresh cycle every second: the failover part checks that refresh resumes.
export JOULE_REFRESH_DEVICE_1M_SCHEDULE_INTERVAL=1s
unset JOULE_URL JOULE_TOKEN JOULE_LOG_LEVEL

: >"$work/joule.out"  # created now: the background job opens it in its own process, maybe after the first sed
"$JOULE_BIN" serve >"$work/joule.out" 2>"$work/joule.err" &
pid=$!
port=
for _ in $(seq 150); do
  port=$(sed -n 's/^joule listening on .*:\([0-9]*\)$/\1/p' "$work/joule.out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "joule serve exited"
  sleep 0.1
done
[ -n "$port" ] || fail "joule serve did not report its port"
base=http://127.0.0.1:$port

now_us() { date +%s%6N; }
to_us() { date -d "$1" +%s%6N; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
reads() {  # reads TARGET: joule_db_reads_total{target=TARGET}
  curl -fsS "$base/metrics" | awk -v t="joule_db_reads_total{target=\"$1\"}" '$1 == t {print $2}' |
    sed 's/\..*//'
}
status() { curl -fsS "$base/admin/status"; }
wait_replayed() {  # until the standby has replayed everything the primary wrote so far
  local lsn; lsn=$(q_primary "SELECT pg_current_wal_insert_lsn()")
  for _ in $(seq 100); do
    [ "$(q_standby "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0
    sleep 0.05
  done
  fail "the standby did not replay up to $lsn"
}

# --- data: one household, two devices, 20 minutes of readings (a window safe at any hour)
H=$(cat /proc/sys/kernel/random/uuid) D=$(cat /proc/sys/kernel/random/uuid)
D2=$(cat /proc/sys/kernel/random/uuid)
q_primary "INSERT INTO devices (id, household_id) VALUES ('$D', '$H'), ('$D2', '$H')" >/dev/null
t0=$(( $(date +%s) / 60 * 60 - 25 * 60 ))  # a whole minute, 25-26 minutes ago
body='{"readings":['
for i in $(seq 0 19); do
  body+="{\"ts\":\"$(iso $((t0 + i * 60)))\",\"device_id\":\"$D\",\"power_w\":$((100 + i)),\"energy_wh\":1.5},"
done
body="${body%,}]}"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  --data "$body" "$base/telemetry")
[ "$code" = 202 ] || fail "POST /telemetry: $code"
power_url="$base/analytics/devices/$D/power?start=$(iso "$t0")&end=$(iso $((t0 + 30 * 60)))&step=1m"
top_url="$base/analytics/households/$H/top-devices"
# Device power at 1 min steps and top devices are joined in memory from the live tail and
# settled parts (issue 9): the routing of database reads is probed with hourly power, which the
# database path answers every time.
probe_url="$base/analytics/devices/$D/power?start=$(iso "$t0")&end=$(iso $((t0 + 30 * 60)))&step=1h"
probe_url2="$base/analytics/devices/$D2/power?start=$(iso "$t0")&end=$(iso $((t0 + 30 * 60)))&step=1h"
energy_url="$base/analytics/households/$H/energy?start=$(iso $((t0 / 3600 * 3600 - 3600)))&end=$(iso $((t0 + 30 * 60)))&step=5m"

# --- (a) standby reads
for _ in $(seq 50); do
  [ "$(status | jq -r .db.read_target)" = standby ] && break
  sleep 0.1
done
[ "$(status | jq -r .db.read_target)" = standby ] || fail "reads never went to the standby: $(status | jq -c .db)"
wait_replayed
before_s=$(reads standby) before_p=$(reads primary)
a_power=$(curl -fsS "$power_url") || fail "power read failed"
a_top=$(curl -fsS "$top_url") || fail "top read failed"
curl -fsS "$probe_url" >/dev/null && curl -fsS "$probe_url2" >/dev/null || fail "probe read failed"
after_s=$(reads standby) after_p=$(reads primary)
((after_s >= before_s + 2)) || fail "standby reads $before_s -> $after_s (primary $before_p -> $after_p)"
[ "$(jq '.series | length' <<<"$a_power")" = 20 ] || fail "standby power answer: $a_power"
[ "$(jq '[.series[].avg] | add' <<<"$a_power")" = 2190 ] || fail "standby power values: $a_power"
lag=$(curl -fsS "$base/metrics" | awk '$1 == "joule_db_replica_lag_seconds" {print $2}')
awk -v l="$lag" 'BEGIN { exit !(l >= 0 && l < 2) }' || fail "replica lag gauge: '$lag'"
echo "standby reads: ok (lag gauge $lag s)"

# --- (b) paused replay holds fresh_as_of back, then reads fall back to the primary
q_standby "SELECT pg_wal_replay_pause()" >/dev/null
for _ in $(seq 50); do
  [ "$(q_standby "SELECT pg_get_wal_replay_pause_state()")" = paused ] && break
  sleep 0.05
done
paused_at=$(now_us)
new_ts=$((t0 + 20 * 60))  # a minute without data so far
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data \
  "{\"readings\":[{\"ts\":\"$(iso $new_ts)\",\"device_id\":\"$D\",\"power_w\":500,\"energy_wh\":9}]}" \
  "$base/telemetry")
[ "$code" = 202 ] || fail "POST /telemetry while paused: $code"
acked_at=$(now_us)
before_s=$(reads standby)
held=$(curl -fsS "$probe_url") || fail "power read while paused failed"
[ "$(reads standby)" -gt "$before_s" ] || fail "the read right after pausing did not go to the standby"
# The standby has not replayed the new reading, so its horizon — and fresh_as_of — is not
# after that commit (track_commit_timestamp). It may be after paused_at: a primary sample taken
# after the pause but before the commit shows nothing newer to replay.
committed=$(q_primary "SELECT (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000000)::bigint
  FROM telemetry WHERE device_id = '$D' AND ts = '$(iso $new_ts)'")
held_fresh=$(to_us "$(jq -r .fresh_as_of <<<"$held")")
((held_fresh <= committed)) ||
  fail "standby fresh_as_of $(jq -r .fresh_as_of <<<"$held") is after the commit it has not replayed"
[ "$(jq '[.series[] | select(.max == 500)] | length' <<<"$held")" = 0 ] ||
  fail "the standby answer has data it has not replayed: $held"
# Reads leave the standby once its lag passes db.read_max_lag (2 s).
before_p=$(reads primary)
moved=
for _ in $(seq 80); do
  body=$(curl -fsS "$probe_url") || fail "power read failed"
  if [ "$(reads primary)" -gt "$before_p" ]; then moved=$(now_us); break; fi
  sleep 0.1
done
[ -n "$moved" ] || fail "reads did not go to the primary while replay was paused"
fallback_s=$(awk -v a="$moved" -v b="$paused_at" 'BEGIN { printf "%.2f", (a - b) / 1e6 }')
awk -v f="$fallback_s" 'BEGIN { exit !(f >= 1 && f < 8) }' ||
  fail "reads moved to the primary ${fallback_s}s after the pause (db.read_max_lag = 2s)"
p_power=$(curl -fsS "$power_url")
p_top=$(curl -fsS "$top_url")
p_energy=$(curl -fsS "$energy_url")
p_fresh=$(to_us "$(jq -r .fresh_as_of <<<"$p_power")")
((p_fresh >= acked_at)) || fail "the primary's fresh_as_of is before the acknowledged write"
[ "$(jq --arg t "$(iso $new_ts)" '[.series[] | select(.t == $t and .avg == 500)] | length' \
  <<<"$p_power")" = 1 ] || fail "the primary answer misses the new reading: $p_power"
[ "$(status | jq -r .db.read_target)" = primary ] || fail "status: $(status | jq -c .db)"
echo "paused replay: fresh_as_of held at the standby's horizon; primary after ${fallback_s}s"

q_standby "SELECT pg_wal_replay_resume()" >/dev/null
resumed_at=$(now_us)
before_s=$(reads standby)
back=
for _ in $(seq 80); do
  curl -fsS "$probe_url" >/dev/null || fail "power read failed"
  if [ "$(reads standby)" -gt "$before_s" ]; then back=$(now_us); break; fi
  sleep 0.1
done
[ -n "$back" ] || fail "reads did not come back to the standby after resuming replay"
s_power=$(curl -fsS "$power_url")
s_top=$(curl -fsS "$top_url")
# Household energy: the live tail's buckets joined with settled parts the standby reads (only
# at the live snapshot's versions) or the whole series from the standby.
s_energy=$(curl -fsS "$energy_url")
[ "$(jq -cS .series <<<"$s_energy")" = "$(jq -cS .series <<<"$p_energy")" ] ||
  fail "standby and primary energy answers differ: $s_energy vs $p_energy"
[ "$(jq '[.series[].v] | add' <<<"$s_energy")" = 39 ] || fail "energy (30 Wh + 9 Wh): $s_energy"
[ "$(jq -cS .series <<<"$s_power")" = "$(jq -cS .series <<<"$p_power")" ] ||
  fail "standby and primary power answers differ: $s_power vs $p_power"
[ "$(jq -cS .devices <<<"$s_top")" = "$(jq -cS .devices <<<"$p_top")" ] ||
  fail "standby and primary top answers differ: $s_top vs $p_top"
back_s=$(awk -v a="$back" -v b="$resumed_at" 'BEGIN { printf "%.2f", (a - b) / 1e6 }')
echo "resumed replay: back on the standby after ${back_s}s, same answers as the primary"

# --- (c) failover: the primary stops, the standby is promoted
listener_connects=$(status | jq .change_listener.connects)
: >"$work/ingest.log"; : >"$work/reads.log"
(
  i=0
  while :; do
    i=$((i + 1))
    ts=$(iso $((t0 + 21 * 60)) | sed "s/Z\$/.$(printf '%06d' "$i")Z/")
    code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      --data "{\"readings\":[{\"ts\":\"$ts\",\"device_id\":\"$D2\",\"power_w\":1,\"energy_wh\":1}]}" \
      "$base/telemetry" 2>/dev/null || echo 000)
    echo "$(date +%s%6N) $i $code $ts" >>"$work/ingest.log"
    sleep 0.05
  done
) &
loops+=($!)
(
  while :; do
    hdr=$(curl -sS -m 10 -D - -o "$work/read.body" "$power_url" 2>/dev/null || echo "HTTP/1.1 000")
    code=$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' <<<"$hdr")
    retry=$(grep -ci '^Retry-After:' <<<"$hdr" || true)
    wrong=0
    if [ "$code" = 200 ]; then
      # Never wrong data: every minute that had readings before the failover is there.
      [ "$(jq '[.series[] | select(.avg != null)] | length' "$work/read.body")" -ge 21 ] || wrong=1
    fi
    echo "$(date +%s%6N) $code $retry $wrong" >>"$work/reads.log"
    sleep 0.05
  done
) &
loops+=($!)
sleep 1
# The primary stops; a failover manager (Patroni) would notice and promote the standby some
# seconds later: longer than db.read_max_lag, so reads leave the lagging standby for the
# missing primary and answer 503 meanwhile.
stopped_at=$(now_us)
stop_postgres
sleep 3
promote_postgres_standby
promoted_at=$(now_us)
first_ok() {  # first_ok LOG FIELD CODE: time of the first line after the promotion with CODE
  awk -v t="$promoted_at" -v f="$2" -v c="$3" '$1 > t && $f == c {print $1; exit}' "$1"
}
ingest_ok= read_ok=
for _ in $(seq 150); do
  ingest_ok=$(first_ok "$work/ingest.log" 3 202)
  read_ok=$(first_ok "$work/reads.log" 2 200)
  [ -n "$ingest_ok" ] && [ -n "$read_ok" ] && break
  sleep 0.1
done
sleep 1  # a few more requests on the new primary
for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
loops=()
[ -n "$ingest_ok" ] || fail "ingest did not resume after the promotion: $(tail -3 "$work/ingest.log")"
[ -n "$read_ok" ] || fail "reads did not resume after the promotion: $(tail -3 "$work/reads.log")"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a - b) / 1e6 }'; }
outage_s=$(secs "$promoted_at" "$stopped_at")
ingest_s=$(secs "$ingest_ok" "$promoted_at") read_s=$(secs "$read_ok" "$promoted_at")
awk -v a="$ingest_s" -v b="$read_s" 'BEGIN { exit !(a < 10 && b < 10) }' ||
  fail "recovery took ingest ${ingest_s}s, reads ${read_s}s after the promotion (limit 10 s)"
# In between: 200 (right data) or 503 with Retry-After, nothing else.
bad=$(awk '!(($2 == 200 && $4 == 0) || ($2 == 503 && $3 == 1))' "$work/reads.log")
[ -z "$bad" ] || fail "reads during the failover: $(head -5 <<<"$bad")"
bad=$(awk '!($3 == 202 || $3 == 503)' "$work/ingest.log")
[ -z "$bad" ] || fail "ingest during the failover: $(head -5 <<<"$bad")"
outage_reads=$(awk '$2 == 503' "$work/reads.log" | wc -l)
# Every acknowledged reading is on the new primary.
acked=$(awk '$3 == 202 {print $4}' "$work/ingest.log")
n_acked=$(wc -l <<<"$acked")
list=$(paste -sd, <<<"$acked")
present=$(q_standby "SELECT count(*) FROM telemetry WHERE device_id = '$D2'
  AND ts = ANY(string_to_array('$list', ',')::timestamptz[])")
[ "$present" = "$n_acked" ] || fail "$n_acked readings acknowledged, $present on the new primary"
# The other connections followed: LISTEN again, refresh and live tail cycles on the new primary.
cycles_before=$(status | jq '.["refresh.device_1m"].cycles')
for _ in $(seq 100); do
  st=$(status)
  [ "$(jq .change_listener.connected <<<"$st")" = true ] &&
    [ "$(jq .change_listener.connects <<<"$st")" -gt "$listener_connects" ] &&
    [ "$(jq '.["refresh.device_1m"].cycles' <<<"$st")" -gt "$cycles_before" ] && break
  sleep 0.1
done
jq -e --argjson c "$listener_connects" '.change_listener.connected and .change_listener.connects > $c' \
  <<<"$st" >/dev/null || fail "the change listener did not LISTEN again: $(jq -c .change_listener <<<"$st")"
jq -e --argjson c "$cycles_before" '.["refresh.device_1m"].cycles > $c' <<<"$st" >/dev/null ||
  fail "refresh did not resume: $(jq -c '.["refresh.device_1m"]' <<<"$st")"
jq -e '.live_tail.snapshot_age_ms < 5000' <<<"$st" >/dev/null ||
  fail "the live tail did not resume: $(jq -c .live_tail <<<"$st")"
# Token refreshes (auth actor) read the new primary; no actor had to be restarted for it.
for _ in $(seq 50); do
  st=$(status)
  (($(to_us "$(jq -r .auth.last_refresh <<<"$st")") > promoted_at)) && break
  sleep 0.1
done
(($(to_us "$(jq -r .auth.last_refresh <<<"$st")") > promoted_at)) ||
  fail "the auth actor did not refresh tokens after the failover: $(jq -c .auth <<<"$st")"
[ "$(jq '[.supervisor[].restarts] | add' <<<"$st")" = 0 ] ||
  fail "actors were restarted: $(jq -c .supervisor <<<"$st")"
kill -0 "$pid" || fail "joule exited"
status >"$work/status.json"
echo "failover: primary stopped, standby promoted ${outage_s}s later; after that ingest back in ${ingest_s}s, reads in ${read_s}s;" \
  "$outage_reads reads answered 503 + Retry-After meanwhile; $n_acked acknowledged readings all present"
echo "PASS"
