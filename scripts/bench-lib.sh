# Shared by scripts/bench and scripts/bench-ab: the benchmark dataset in the private
# PostgreSQL, server start-up, and the rollup catch-up wait. Sourced after lib.sh, once
# start_postgres has set PGPORT. Not executed.
#
# Callers set: sim (joule-sim), results (backfill.json goes there, or to backfill_file), and before
# bench_dataset_params: quick (0|1).

# bench_dataset_params: the standard dataset (1,000 households, 24 h at 10 s ≈ 45 M rows) or,
# with quick=1, the small one (100 households, 2 h) in a database of its own so the standard
# one stays. Sets households hours interval seed db_name dataset.
bench_dataset_params() {
  households=1000 hours=24 interval=10s seed=1 db_name=joule_bench
  if ((quick)); then households=100 hours=2 db_name=joule_bench_quick; fi
  dataset="households=$households devices=3-12 hours=$hours interval=$interval seed=$seed"
}

# bench_db_urls: db (libpq key=value, for joule-sim / joule-bench) and db_url (URI, for joule).
bench_db_urls() {
  db="host=127.0.0.1 port=$PGPORT user=joule dbname=$db_name"
  db_url="postgresql://joule@127.0.0.1:$PGPORT/$db_name"
}

# json_field KEY < flat JSON object -> the value (joule-sim prints flat objects; no jq needed).
json_field() { sed -n 's/.*"'"$1"'":"\{0,1\}\([^",}]*\).*/\1/p'; }
psql_db() { PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d "$db_name" -v ON_ERROR_STOP=1 -qtA "$@"; }

bench_migrate() {  # bench_migrate [JOULE_BINARY]
  local bin=${1:-}
  if [ -n "$bin" ] && [ -x "$bin" ]; then
    JOULE_DB_URL=$db_url "$bin" migrate >/dev/null
  else  # no server binary yet: the migrations are idempotent SQL files
    local f
    for f in "$JOULE_ROOT"/db/migrations/*.sql; do psql_db -f "$f" >/dev/null 2>&1; done
  fi
}

# load_bench_dataset [JOULE_BINARY]: bench_dataset remembers what was loaded. Same parameters
# and at most 6 h behind: top up the gap only. Anything else: start from an empty database.
# Sets backfill_json, backfill_note, new_rows; VACUUM ANALYZEs at the end.
load_bench_dataset() {
  local bin=${1:-}
  create_database "$db_name"
  bench_migrate "$bin"
  psql_db -c "CREATE TABLE IF NOT EXISTS bench_dataset (params text PRIMARY KEY,
    end_ts timestamptz NOT NULL, rows bigint NOT NULL, loaded_at timestamptz DEFAULT now())"
  local loaded_end first_household last_tick
  loaded_end=$(psql_db -c "SELECT extract(epoch FROM end_ts)::bigint FROM bench_dataset
    WHERE params = '$dataset' AND end_ts > now() - interval '6 hours'")
  if [ -n "$loaded_end" ]; then
    # `joule-sim live` of earlier runs wrote whole ticks past end_ts: continue after the last
    # one (household 0 of the fleet has a reading in every tick).
    first_household=$("$sim" list --households 1 --seed "$seed" | grep -o '"id":"[^"]*"' |
      head -1 | cut -d'"' -f4)
    last_tick=$(psql_db -c "SELECT extract(epoch FROM max(ts))::bigint FROM telemetry
      WHERE household_id = '$first_household'")
    [ -n "$last_tick" ] && ((last_tick >= loaded_end)) && loaded_end=$((last_tick + ${interval%s}))
  fi
  backfill_note=""
  if [ -n "$loaded_end" ]; then
    _run_backfill --start "$(date -u -d "@$loaded_end" +%Y-%m-%dT%H:%M:%SZ)"
    backfill_note="dataset already loaded; topped up the last $(( ($(date +%s) - loaded_end) / 60 )) min"
  else
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc \
      "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null
    create_database "$db_name"
    bench_migrate "$bin"
    psql_db -c "CREATE TABLE bench_dataset (params text PRIMARY KEY, end_ts timestamptz NOT NULL,
      rows bigint NOT NULL, loaded_at timestamptz DEFAULT now())"
    _run_backfill --hours "$hours"
    backfill_note="loaded now"
  fi
  new_rows=$(json_field rows <<<"$backfill_json")
  local new_end; new_end=$(json_field end <<<"$backfill_json")
  psql_db -c "INSERT INTO bench_dataset (params, end_ts, rows) VALUES ('$dataset', '$new_end', $new_rows)
    ON CONFLICT (params) DO UPDATE SET end_ts = EXCLUDED.end_ts,
    rows = bench_dataset.rows + EXCLUDED.rows, loaded_at = now()"
  # Fresh statistics and visibility map, so autovacuum does not start in the middle of a run.
  log "VACUUM ANALYZE"
  psql_db -c "VACUUM (ANALYZE) telemetry" -c "VACUUM (ANALYZE) devices"
}

_run_backfill() {  # _run_backfill ARGS... -> sets backfill_json
  log "joule-sim backfill $*"
  backfill_json=$("$sim" backfill --households "$households" --interval "$interval" --seed "$seed" \
    --db "$db" --json "$@")
  echo "$backfill_json" >"${backfill_file:-$results/backfill.json}"
  log "backfill: $backfill_json"
}

bench_rows_estimate() {  # the planner's row count of telemetry (cheap on 45 M rows)
  psql_db -c "SELECT sum(c.reltuples)::bigint FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass"
}

http_status() {  # http_status PORT PATH -> prints the status code, fails when nothing answers
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
  local line; IFS=' ' read -r _ line _ <&3 || true
  exec 3<&-
  echo "$line"
}

# start_bench_server BINARY NAME PORT LOG ENV... -> appends its PID to started_pids and waits
# (≤ 90 s: a loaded box, or a catch-up after a top-up) until /readyz answers 200; returns 1 if
# it does not.
start_bench_server() {
  local bin=$1 name=$2 port=$3 logfile=$4; shift 4
  env JOULE_DB_URL="$db_url" JOULE_HTTP_LISTEN="127.0.0.1:$port" "$@" \
    "$bin" serve >"$logfile" 2>&1 &
  started_pids+=($!)
  local i
  for i in $(seq 300); do
    [ "$(http_status "$port" /readyz 2>/dev/null)" = 200 ] && { log "server $name on :$port"; return 0; }
    kill -0 "${started_pids[-1]}" 2>/dev/null || break
    sleep 0.3
  done
  log "server $name did not become ready (see $logfile)"
  return 1
}

# wait_rollups_caught_up: the rollups must have caught up with the backfill before reads mean
# anything (bounded, 5 min): every watermark within its policy's normal lag (end_offset + a
# bucket or two + schedule), so no refresh is still materialising a backlog while the
# scenarios run. Sets caught_up (text for the report).
wait_rollups_caught_up() {
  log "waiting for the rollups to catch up"
  caught_up=no
  local ok lag
  for _ in $(seq 150); do
    ok=$(psql_db -c "SELECT bool_and(watermark IS NOT NULL AND now() - watermark <= CASE name
      WHEN 'device_1m' THEN interval '4 minutes' WHEN 'household_5m' THEN interval '15 minutes'
      ELSE interval '3 hours' END) FROM rollup_state" 2>/dev/null || echo f)
    if [ "$ok" = "t" ]; then
      lag=$(psql_db -c "SELECT string_agg(name || ' ' || extract(epoch FROM now() - watermark)::bigint || ' s', ', ') FROM rollup_state")
      caught_up="yes (watermark lag: $lag)"; break
    fi
    sleep 2
  done
  sleep 5  # let the first policy cycles after the catch-up finish
  log "rollups caught up: $caught_up"
}

# stop_started_pids: TERM every PID in started_pids, KILL what is still there after 5 s.
stop_started_pids() {
  local pid
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
