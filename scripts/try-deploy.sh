#!/usr/bin/env bash
# A first run of zenith's deploy path with its defaults and nothing else installed: build, start
# the daemon in a temporary data directory, deploy the bundled demo app (2 replicas behind
# zenith's router), roll out v2 while requests keep flowing, roll back, show the history and the
# audit log, stop the daemon.
# Usage: scripts/try-deploy.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
zenith="$root/target/release/zenith"
work="$(mktemp -d)"
export ZENITH_DATA_DIR="$work/data"
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# A free port for the app's public listener.
port=$(( 20000 + RANDOM % 20000 ))
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

"$zenith" serve --listen 127.0.0.1:0 --router-host 127.0.0.1 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$ZENITH_DATA_DIR/daemon.json" ] && break; sleep 0.1; done

spec() { # version
    cat >"$work/zenith.toml" <<TOML
[app]
name = "demo"

[services.web]
command = ["$zenith", "demo-app"]
replicas = 2
port = $port
env = { DEMO_VERSION = "$1" }

[services.web.health]
http = "/health"
interval = "500ms"
TOML
}

get() { # one request to the public port, prints the body
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' >&3
    sed -n '$p' <&3
    exec 3<&-
}

load() { # requests until $work/stop appears; counts failures
    local ok=0 failed=0
    while [ ! -e "$work/stop" ]; do
        case "$(get 2>/dev/null)" in
        "hello from "*) ok=$((ok + 1)) ;;
        *) failed=$((failed + 1)) ;;
        esac
    done
    echo "load during the update and the rollback: $ok requests answered, $failed failed"
}

set -x
spec v1
"$zenith" deploy -f "$work/zenith.toml"
get
"$zenith" app status demo
set +x
load & load_pid=$!
set -x
spec v2
"$zenith" deploy -f "$work/zenith.toml" --dry-run
"$zenith" deploy -f "$work/zenith.toml"
get
"$zenith" rollback demo
get
set +x
touch "$work/stop"; wait "$load_pid" || true
set -x
"$zenith" rollout history demo
"$zenith" audit
