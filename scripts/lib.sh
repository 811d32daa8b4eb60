# Shared set-up for scripts/run, scripts/test and scripts/bench: packages, build,
# and private PostgreSQL / Redis servers on 127.0.0.1. Sourced, not executed.

JOULE_ROOT=${JOULE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_BIN=/usr/lib/postgresql/15/bin
JOULE_PACKAGES=(build-essential cmake pkg-config ccache libcaf-dev libpqxx-dev libhiredis-dev
  rapidjson-dev libboost-dev libboost-system-dev libssl-dev libgtest-dev postgresql-15
  redis-server procps iproute2 curl ninja-build chromium prometheus-alertmanager
  prometheus jq haproxy python3)  # prometheus: promtool and a real server for tests/ops/prometheus_test.sh
# haproxy: scripts/cluster; python3: tests/cluster's webhook receiver and read load

log() { printf '[joule] %s\n' "$*" >&2; }

ensure_packages() {
  local missing=()
  for p in "${JOULE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # Node.js and npm build the dashboard (uPlot) and run the web tests; a machine that has a
  # Node.js of its own (which bundles npm) keeps it.
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' own services (PostgreSQL, Redis, Prometheus, Alertmanager) must not start
    # system-wide (some listen on every address): the scripts run private ones on 127.0.0.1.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    local rc=0
    { apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    if ((own_policy)); then rm -f "$policy"; fi
    return $rc
  fi
}

# ensure_web_tools DIR: the npm packages of the web tests (tests/web/package-lock.json:
# puppeteer-core, ajv, @redocly/cli) in DIR/node_modules, reinstalled only when the lock file
# changed. npm's own cache makes a reinstall quick and offline.
ensure_web_tools() {
  local dir=$1 src=$JOULE_ROOT/tests/web
  mkdir -p "$dir"
  (
    flock 9  # ctest -j: one install at a time
    if [ -f "$dir/.installed" ] && cmp -s "$src/package-lock.json" "$dir/.installed"; then
      exit 0
    fi
    log "npm ci: web test tools into $dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
    cp "$src/package-lock.json" "$dir/.installed"
  ) 9>"$dir/.lock"
}

# build DIR [cmake args...]
build_joule() {
  local dir=$1; shift
  # One compiler cache per machine, shared by every checkout (paths made relative to the
  # checkout), so a second checkout or a CI clone rebuilds in seconds, not half an hour.
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/joule-ccache}
  export CCACHE_BASEDIR=$JOULE_ROOT CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-4G}
  local gen=()
  [ -f "$dir/CMakeCache.txt" ] || gen=(-G Ninja)
  cmake -S "$JOULE_ROOT" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=${JOULE_BUILD_TYPE:-Release} "$@" >/dev/null
  local targets=()
  for t in ${JOULE_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}

# A port derived from the checkout path, then probed upwards until free, so two
# checkouts on one machine never collide. Ports stay below the kernel's ephemeral range
# (32768+ on Debian), where the outgoing connections of every client on the box take their
# source ports: such a port refuses connections (so a connect probe calls it free) yet cannot
# be bound. `ss` also sees sockets that use a port without listening on it.
free_port() {
  local salt=$1
  local lo; lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  local span=$(( lo - 10000 - 600 )); ((span > 1000)) || span=1000
  local base=$(( 10000 + $(printf '%s' "$JOULE_ROOT:$salt" | cksum | cut -d' ' -f1) % span + ${2:-0} ))
  local p
  for ((p = base; p < base + 500; p++)); do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
    if command -v ss >/dev/null && [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      continue
    fi
    echo "$p"; return
  done
  log "no free port near $base"; return 1
}

# The postgres user must be able to reach the data folder; fall back to /var/tmp otherwise.
data_root() {
  local d=$JOULE_ROOT/.data
  mkdir -p "$d"
  if runuser -u postgres -- test -x "$d" 2>/dev/null; then echo "$d"; else
    d=/var/tmp/joule-$(printf '%s' "$JOULE_ROOT" | cksum | cut -d' ' -f1); mkdir -p "$d"; echo "$d"; fi
}

# start_postgres NAME [extra postgres -c options...] -> sets PGPORT, JOULE_PG_DIR
start_postgres() {
  local name=$1; shift
  local root; root=$(data_root)
  JOULE_PG_DIR=$root/pg-$name
  PGPORT=$(free_port "pg-$name")
  if [ ! -f "$JOULE_PG_DIR/PG_VERSION" ]; then
    mkdir -p "$JOULE_PG_DIR"; chown postgres:postgres "$JOULE_PG_DIR"; chmod 700 "$JOULE_PG_DIR"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$JOULE_PG_DIR" -U joule --auth=trust -E UTF8 >/dev/null
  fi
  # Another process may take the probed port before PostgreSQL binds it: try further ports.
  local attempt
  for attempt in 0 1 2 3 4; do
    ((attempt == 0)) || PGPORT=$(free_port "pg-$name" $((attempt * 37)))
    local opts="-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$JOULE_PG_DIR"
    opts+=" -c max_connections=200 -c shared_buffers=512MB -c timezone=UTC"
    for o in "$@"; do opts+=" -c $o"; done
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_DIR" -l "$JOULE_PG_DIR/server.log" \
      -o "$opts" -w -t 60 start >/dev/null && break
    ((attempt < 4)) || { log "PostgreSQL did not start (see $JOULE_PG_DIR/server.log)"; return 1; }
  done
  export PGPORT JOULE_PG_DIR
  log "PostgreSQL on 127.0.0.1:$PGPORT (data $JOULE_PG_DIR)"
}

stop_postgres() {
  [ -n "${JOULE_PG_DIR:-}" ] && [ -f "$JOULE_PG_DIR/postmaster.pid" ] &&
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

# start_postgres_standby NAME [extra postgres -c options...]: a streaming standby of the
# server start_postgres started last (its PGPORT and JOULE_PG_DIR), made fresh each time with
# `pg_basebackup -R` (standby.signal + primary_conninfo) into its own data folder on a free
# port. The primary needs nothing special: PostgreSQL 15's defaults are wal_level=replica,
# max_wal_senders=10 and hot_standby=on, and initdb's pg_hba.conf (--auth=trust) already has
# `host replication all 127.0.0.1/32 trust` for the superuser joule. No replication slot: a
# standby a test forgets must not pin the shared primary's WAL forever.
# Sets (and exports):
#   JOULE_PG_STANDBY_PORT  its port on 127.0.0.1
#   JOULE_PG_STANDBY_DIR   its data folder (server.log inside)
#   JOULE_PG_PRIMARY_PORT  the primary's port it streams from (PGPORT at the time of the call)
# PGPORT and JOULE_PG_DIR stay the primary's.
start_postgres_standby() {
  local name=$1; shift
  : "${PGPORT:?start_postgres first}" "${JOULE_PG_DIR:?start_postgres first}"
  local root; root=$(data_root)
  JOULE_PG_STANDBY_DIR=$root/pg-$name
  JOULE_PG_PRIMARY_PORT=$PGPORT
  if [ -f "$JOULE_PG_STANDBY_DIR/postmaster.pid" ]; then  # left over by an earlier run
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_STANDBY_DIR" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$JOULE_PG_STANDBY_DIR"
  mkdir -p "$JOULE_PG_STANDBY_DIR"; chown postgres:postgres "$JOULE_PG_STANDBY_DIR"
  chmod 700 "$JOULE_PG_STANDBY_DIR"
  # --checkpoint=fast: an empty test cluster copies in about a second.
  # (It warns about the primary's socket files in its data folder: kept out of the output.)
  local out=$root/pg-$name.basebackup.log
  runuser -u postgres -- "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U joule \
    -D "$JOULE_PG_STANDBY_DIR" -R -X stream --checkpoint=fast >"$out" 2>&1 ||
    { cat "$out" >&2; log "pg_basebackup from 127.0.0.1:$PGPORT failed"; return 1; }
  local attempt
  for attempt in 0 1 2 3 4; do
    JOULE_PG_STANDBY_PORT=$(free_port "pg-$name" $((attempt * 37)))
    local opts="-c listen_addresses=127.0.0.1 -c port=$JOULE_PG_STANDBY_PORT"
    opts+=" -c unix_socket_directories=$JOULE_PG_STANDBY_DIR -c max_connections=200"
    opts+=" -c shared_buffers=128MB -c timezone=UTC -c hot_standby=on"
    # Status replies every second keep the primary's pg_stat_replication current; feedback
    # keeps the primary from removing rows a standby query still reads (no query cancels).
    opts+=" -c wal_receiver_status_interval=1 -c hot_standby_feedback=on"
    for o in "$@"; do opts+=" -c $o"; done
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_STANDBY_DIR" \
      -l "$JOULE_PG_STANDBY_DIR/server.log" -o "$opts" -w -t 60 start >/dev/null && break
    ((attempt < 4)) ||
      { log "PostgreSQL standby did not start (see $JOULE_PG_STANDBY_DIR/server.log)"; return 1; }
  done
  export JOULE_PG_STANDBY_PORT JOULE_PG_STANDBY_DIR JOULE_PG_PRIMARY_PORT
  log "PostgreSQL standby on 127.0.0.1:$JOULE_PG_STANDBY_PORT streaming from :$PGPORT" \
    "(data $JOULE_PG_STANDBY_DIR)"
}

# promote_postgres_standby: `pg_ctl promote` the standby of start_postgres_standby and wait
# until it accepts writes (pg_is_in_recovery() false). It keeps its port and data folder.
promote_postgres_standby() {
  : "${JOULE_PG_STANDBY_DIR:?start_postgres_standby first}"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_STANDBY_DIR" -w -t 60 promote \
    >/dev/null ||
    { log "promotion failed (see $JOULE_PG_STANDBY_DIR/server.log)"; return 1; }
  local _
  for _ in $(seq 100); do
    [ "$("$PG_BIN/psql" -h 127.0.0.1 -p "$JOULE_PG_STANDBY_PORT" -U joule -d postgres -qtAc \
      'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
    sleep 0.1
  done
  log "the promoted standby still is in recovery"; return 1
}

stop_postgres_standby() {
  [ -n "${JOULE_PG_STANDBY_DIR:-}" ] && [ -f "$JOULE_PG_STANDBY_DIR/postmaster.pid" ] &&
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$JOULE_PG_STANDBY_DIR" -m fast -w stop \
      >/dev/null 2>&1 || true
}

# start_redis NAME -> sets REDIS_PORT
start_redis() {
  local name=$1
  local root; root=$(data_root)
  REDIS_DIR=$root/redis-$name; mkdir -p "$REDIS_DIR"; REDIS_DIR=$(realpath "$REDIS_DIR")
  # Another process may take the probed port before Redis binds it (then a ping would even
  # reach someone else's server): try further ports until OUR server answers, by its dir.
  local attempt
  for attempt in 0 1 2 3 4; do
    REDIS_PORT=$(free_port "redis-$name" $((attempt * 41)))
    rm -f "$REDIS_DIR/redis.pid"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" || true
    for _ in $(seq 50); do
      [ "$(redis-cli -p "$REDIS_PORT" config get dir 2>/dev/null | sed -n 2p)" = "$REDIS_DIR" ] &&
        break 2
      sleep 0.1
    done
    ((attempt < 4)) || { log "Redis did not start (see $REDIS_DIR/redis.log)"; return 1; }
  done
  export REDIS_PORT REDIS_DIR
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  [ -n "${REDIS_PORT:-}" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

# start_alertmanager NAME -> sets ALERTMANAGER_PORT: a real Prometheus Alertmanager on
# 127.0.0.1 with its own temporary storage, no cluster, and a receiver that sends nothing
# (the tests read its API). resolve_timeout stays at its default (5m).
start_alertmanager() {
  local name=$1
  local root; root=$(data_root)
  ALERTMANAGER_DIR=$root/alertmanager-$name
  rm -rf "$ALERTMANAGER_DIR"; mkdir -p "$ALERTMANAGER_DIR/data"
  cat >"$ALERTMANAGER_DIR/alertmanager.yml" <<'YML'
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
YML
  local attempt
  for attempt in 0 1 2 3 4; do
    ALERTMANAGER_PORT=$(free_port "alertmanager-$name" $((attempt * 41)))
    prometheus-alertmanager --config.file="$ALERTMANAGER_DIR/alertmanager.yml" \
      --storage.path="$ALERTMANAGER_DIR/data" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
      --cluster.listen-address= >"$ALERTMANAGER_DIR/alertmanager.log" 2>&1 &
    ALERTMANAGER_PID=$!
    for _ in $(seq 100); do
      curl -fs "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" >/dev/null 2>&1 && break
      kill -0 "$ALERTMANAGER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if curl -fs "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" >/dev/null 2>&1; then
      export ALERTMANAGER_PORT ALERTMANAGER_PID ALERTMANAGER_DIR
      log "Alertmanager on 127.0.0.1:$ALERTMANAGER_PORT"
      return 0
    fi
    kill "$ALERTMANAGER_PID" 2>/dev/null || true
    wait "$ALERTMANAGER_PID" 2>/dev/null || true
  done
  log "Alertmanager did not start (see $ALERTMANAGER_DIR/alertmanager.log)"; return 1
}

stop_alertmanager() {
  if [ -n "${ALERTMANAGER_PID:-}" ]; then
    kill "$ALERTMANAGER_PID" 2>/dev/null || true
    wait "$ALERTMANAGER_PID" 2>/dev/null || true
  fi
}

create_database() {  # create_database NAME
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 ||
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc "CREATE DATABASE $1" >/dev/null
}

psql_q() {  # psql_q SQL: one value from the running server's database
  "$PG_BIN/psql" "$JOULE_DB_URL" -qtAc "$1"
}
