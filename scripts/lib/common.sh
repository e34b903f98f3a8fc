# Shared by scripts/run, scripts/test and scripts/bench: install what the build
# needs, and find or start a PostgreSQL. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_DIR="$ROOT/target/pg"
PG_PORT="${TASKGATE_PG_PORT:-55432}"
# The shared local server's port; overridable to exercise the throwaway path.
LOCAL_PG_PORT="${TASKGATE_LOCAL_PG_PORT:-5432}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install PKG...: installs the Debian packages that are missing, as root.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root || ! command -v apt-get >/dev/null; then
    die "missing packages: ${missing[*]}. Install them (apt-get install ${missing[*]}) or run as root."
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  # policy-rc.d keeps the package from starting a cluster of its own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_toolchain() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
  # gcc links the binary; libpq-dev is what diesel's pq-sys builds against.
  apt_install gcc libc6-dev libpq-dev pkg-config
}

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  return 1
}

ensure_pg_binaries() {
  pg_bindir >/dev/null || apt_install postgresql
  PG_BINDIR=$(pg_bindir) || die "PostgreSQL server binaries not found after install"
  export PG_BINDIR
}

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# run_as_pg CMD...: PostgreSQL refuses to run as root; run as its own user then.
run_as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_throwaway_cluster() {
  ensure_pg_binaries
  mkdir -p "$PG_DIR"
  if is_root; then
    chown postgres: "$PG_DIR"
    # A checkout under /root is not reachable by the postgres user.
    if ! runuser -u postgres -- test -w "$PG_DIR"; then
      PG_DIR="/tmp/taskgate-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
      mkdir -p "$PG_DIR" && chown postgres: "$PG_DIR"
      say "$ROOT is not reachable by the postgres user; using $PG_DIR"
    fi
  fi
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    say "creating a throwaway PostgreSQL cluster in $PG_DIR/data"
    run_as_pg "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1 \
      || die "initdb failed; see $PG_DIR/initdb.log"
  fi
  if ! port_answers "$PG_PORT"; then
    say "starting it on 127.0.0.1:$PG_PORT"
    run_as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
      || die "the throwaway cluster did not start; see $PG_DIR/server.log"
    STARTED_CLUSTER=1
  fi
}

stop_throwaway_cluster() {
  if [ "${STARTED_CLUSTER:-0}" = 1 ]; then
    run_as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
}

# ensure_postgres DBNAME: exports DATABASE_URL for DBNAME on the first of:
# $DATABASE_URL as given; a server on 127.0.0.1:5432; a throwaway cluster.
ensure_postgres() {
  local db=$1
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL"
    return 0
  fi
  local port=$LOCAL_PG_PORT
  if port_answers "$port"; then
    say "using the PostgreSQL on 127.0.0.1:$port"
  else
    start_throwaway_cluster
    port=$PG_PORT
  fi
  local server="postgres://${PGUSER:-postgres}@127.0.0.1:$port"
  if [ "$db" != postgres ]; then
    psql_cmd "$server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || psql_cmd "$server/postgres" -qc "CREATE DATABASE \"$db\"" >/dev/null
  fi
  export DATABASE_URL="$server/$db"
}

psql_cmd() {
  command -v psql >/dev/null || apt_install postgresql-client
  psql "$@"
}

# serve_fresh SERVER_URL NAME FIRST_PORT LOG [VAR=VALUE...]: creates a fresh
# database NAME_<pid>_<random> on the PostgreSQL server of SERVER_URL (any
# database URL of it), starts target/debug/taskgate on it on the first free
# port from FIRST_PORT with the given variables, and waits until it is ready.
# Sets SERVED_URL, SERVED_DB_URL and SERVED_PID; stop_served undoes it all.
serve_fresh() {
  local server=$1 name=$2 port=$3 log=$4; shift 4
  SERVED_DB="${name}_$$_$RANDOM"
  SERVED_SERVER=$server
  psql "$server" -qc "CREATE DATABASE $SERVED_DB" >/dev/null
  while port_answers "$port"; do port=$((port + 1)); done
  SERVED_URL="http://127.0.0.1:$port"
  SERVED_DB_URL="${server%/*}/$SERVED_DB"
  env DATABASE_URL="$SERVED_DB_URL" APP__SERVER__PORT="$port" APP_CONFIG_DIR="$ROOT/config" "$@" \
    "$ROOT/target/debug/taskgate" serve >"$log" 2>&1 &
  SERVED_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "$SERVED_URL/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVED_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  die "the server on $SERVED_URL did not get ready (see $log)"
}

stop_served() {
  [ -n "${SERVED_PID:-}" ] && kill "$SERVED_PID" 2>/dev/null && wait "$SERVED_PID" 2>/dev/null
  [ -n "${SERVED_DB:-}" ] && psql "$SERVED_SERVER" -qc "DROP DATABASE IF EXISTS $SERVED_DB WITH (FORCE)" >/dev/null 2>&1
  SERVED_PID="" SERVED_DB=""
}
