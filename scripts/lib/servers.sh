# Throwaway PostgreSQL and Redis servers on loopback for the stores' tests and the fleet
# test. Sourced by scripts/test and scripts/fleet:
#
#   . scripts/lib/servers.sh
#   servers_install                  # Debian's postgresql and redis-server, if missing
#   servers_start DIR                # both servers, data under DIR; exports
#                                    #   REAUTH_POSTGRES_URL, REAUTH_REDIS_URL
#   servers_restart postgres|redis   # a fast restart (connections dropped, data kept);
#                                    #   also DIR/restart-postgres, DIR/restart-redis
#   servers_stop                     # both stopped (also on the caller's EXIT trap)
#
# PostgreSQL refuses to run as root: as root, its data directory belongs to the
# `postgres` user the Debian package creates, and its commands run as that user. Redis
# keeps its data in an append-only file synced on every write, as a credential store
# needs: a restart must not lose a rotation.

servers_install() {
    local missing=() sudo=""
    [ -n "$(servers_pg_bin)" ] || missing+=(postgresql)
    command -v redis-server > /dev/null || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

# The newest PostgreSQL's bin directory Debian installed.
servers_pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1
}

# A free TCP port on loopback.
servers_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a PostgreSQL command as the user that owns the data directory.
servers_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

servers_start() {
    SERVERS_DIR="$1"
    mkdir -p "$SERVERS_DIR"
    local bin
    bin="$(servers_pg_bin)"
    SERVERS_PG_DATA="$SERVERS_DIR/postgres"
    SERVERS_PG_PORT="$(servers_free_port)"
    mkdir -p "$SERVERS_PG_DATA"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$SERVERS_PG_DATA"
        chmod 0755 "$SERVERS_DIR"
    fi
    servers_pg "$bin/initdb" -D "$SERVERS_PG_DATA" -U reauth --auth=trust -E UTF8 > "$SERVERS_DIR/initdb.log" 2>&1 \
        || { cat "$SERVERS_DIR/initdb.log" >&2; return 1; }
    SERVERS_PG_CTL=(servers_pg "$bin/pg_ctl" -D "$SERVERS_PG_DATA" -l "$SERVERS_PG_DATA/server.log" -w -t 30
        -o "-h 127.0.0.1 -p $SERVERS_PG_PORT -k $SERVERS_PG_DATA -c fsync=on -c max_connections=300")
    "${SERVERS_PG_CTL[@]}" start > /dev/null || { cat "$SERVERS_PG_DATA/server.log" >&2; return 1; }
    servers_pg "$bin/createdb" -h 127.0.0.1 -p "$SERVERS_PG_PORT" -U reauth reauth
    export REAUTH_POSTGRES_URL="postgresql://reauth@127.0.0.1:$SERVERS_PG_PORT/reauth"

    SERVERS_REDIS_PORT="$(servers_free_port)"
    SERVERS_REDIS_DIR="$SERVERS_DIR/redis"
    mkdir -p "$SERVERS_REDIS_DIR"
    servers_redis_up
    export REAUTH_REDIS_URL="redis://127.0.0.1:$SERVERS_REDIS_PORT/0"

    # Stand-alone restart commands, for a test that restarts a server mid-run.
    local lib
    lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/servers.sh"
    for kind in postgres redis; do
        cat > "$SERVERS_DIR/restart-$kind" << RESTART
#!/usr/bin/env bash
set -euo pipefail
. "$lib"
SERVERS_DIR="$SERVERS_DIR" SERVERS_PG_DATA="$SERVERS_PG_DATA" SERVERS_PG_PORT="$SERVERS_PG_PORT"
SERVERS_REDIS_PORT="$SERVERS_REDIS_PORT" SERVERS_REDIS_DIR="$SERVERS_REDIS_DIR"
SERVERS_PG_CTL=(servers_pg "$bin/pg_ctl" -D "$SERVERS_PG_DATA" -l "$SERVERS_PG_DATA/server.log" -w -t 30
    -o "-h 127.0.0.1 -p $SERVERS_PG_PORT -k $SERVERS_PG_DATA -c fsync=on -c max_connections=300")
servers_restart $kind
RESTART
        chmod +x "$SERVERS_DIR/restart-$kind"
    done
}

servers_redis_up() {
    redis-server --bind 127.0.0.1 --port "$SERVERS_REDIS_PORT" --dir "$SERVERS_REDIS_DIR" \
        --save '' --appendonly yes --appendfsync always --daemonize yes \
        --pidfile "$SERVERS_REDIS_DIR/redis.pid" --logfile "$SERVERS_REDIS_DIR/redis.log" > /dev/null
    local i
    for i in $(seq 100); do
        redis-cli -p "$SERVERS_REDIS_PORT" ping 2> /dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    cat "$SERVERS_REDIS_DIR/redis.log" >&2
    return 1
}

servers_redis_down() {
    redis-cli -p "$SERVERS_REDIS_PORT" shutdown nosave > /dev/null 2>&1 || true
    local i
    for i in $(seq 100); do
        [ -e "$SERVERS_REDIS_DIR/redis.pid" ] || return 0
        kill -0 "$(cat "$SERVERS_REDIS_DIR/redis.pid" 2> /dev/null)" 2> /dev/null || return 0
        sleep 0.1
    done
}

servers_restart() {
    case "$1" in
        postgres) "${SERVERS_PG_CTL[@]}" -m fast restart > /dev/null ;;
        redis) servers_redis_down && servers_redis_up ;;
        *) echo "servers_restart: postgres or redis, not $1" >&2; return 2 ;;
    esac
}

servers_stop() {
    [ -n "${SERVERS_PG_DATA:-}" ] && "${SERVERS_PG_CTL[@]}" -m immediate stop > /dev/null 2>&1 || true
    [ -n "${SERVERS_REDIS_PORT:-}" ] && servers_redis_down
    return 0
}
