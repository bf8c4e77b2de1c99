#!/usr/bin/env bash
# How fast a bad canary loses its traffic: under steady load, a v2 that fails 20 % of its
# requests is deployed as a canary (first step 10 %); clients record when they first and last
# got an answer from v2. The gap is the time from the first bad step to weight 0, to compare
# with the target of one check interval + 1 s. Also prints what the clients saw fail.
# Usage: bench/canary_abort.sh [INTERVAL_SECONDS...]   (default: 2 5 10)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
intervals=("$@")
[ ${#intervals[@]} -eq 0 ] && intervals=(2 5 10)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p zenith
zenith="$root/target/release/zenith"
work="$(mktemp -d)"
export ZENITH_DATA_DIR="$work/data"
daemon_pid=""
load_pid=""
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$zenith" serve --listen 127.0.0.1:0 --router-host 127.0.0.1 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$ZENITH_DATA_DIR/daemon.json" ] && break; sleep 0.1; done

free_port() {
    local p=$(( 20000 + RANDOM % 20000 ))
    while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

spec() { # file app port version interval extra-env
    cat >"$1" <<TOML
[app]
name = "$2"

[services.web]
command = ["$zenith", "demo-app"]
replicas = 2
port = $3
env = { DEMO_VERSION = "$4"$6 }

[services.web.health]
http = "/health"
interval = "500ms"

[services.web.update]
strategy = "canary"
steps = [10, 25, 50, 75, 100]
interval = "${5}s"
min_requests = 20
max_error_rate = 5
TOML
}

# Clients: 4 threads on keep-alive connections, each answer logged as "time version status".
cat >"$work/load.py" <<'PY'
import http.client, sys, threading, time
port, out = int(sys.argv[1]), sys.argv[2]
lines, lock = [], threading.Lock()
def client():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while True:
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            body = r.read().decode()
            v = "v2" if "v2" in body else "v1"
            with lock:
                lines.append(f"{time.time():.3f} {v} {r.status}")
        except Exception as e:
            with lock:
                lines.append(f"{time.time():.3f} - error")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        time.sleep(0.004)
for _ in range(4):
    threading.Thread(target=client, daemon=True).start()
try:
    while True:
        time.sleep(0.5)
        with lock:
            with open(out, "a") as f:
                f.write("\n".join(lines) + ("\n" if lines else ""))
            lines.clear()
except KeyboardInterrupt:
    pass
PY

echo "| check interval | first v2 answer → last v2 answer | target (interval + 1 s) | requests in that time | failed | failed / requests |"
echo "|---|---|---|---|---|---|"
n=0
for interval in "${intervals[@]}"; do
    n=$((n + 1))
    app="bench$n"
    port=$(free_port)
    spec "$work/v1.toml" "$app" "$port" v1 "$interval" ""
    spec "$work/v2.toml" "$app" "$port" v2 "$interval" ', DEMO_ERROR_RATE = "20"'
    "$zenith" deploy -f "$work/v1.toml" >/dev/null 2>&1
    log="$work/answers-$n.log"
    : >"$log"
    python3 "$work/load.py" "$port" "$log" &
    load_pid=$!
    sleep 2
    "$zenith" deploy -f "$work/v2.toml" >"$work/deploy-$n.out" 2>&1 || true
    sleep 2
    kill "$load_pid"; wait "$load_pid" 2>/dev/null || true; load_pid=""
    grep -q "error rate" "$work/deploy-$n.out" || { cat "$work/deploy-$n.out"; echo "the bad canary was not caught" >&2; exit 1; }
    python3 - "$log" "$interval" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
interval = float(sys.argv[2])
v2 = [float(t) for t, v, s in rows if v == "v2"]
first, last = min(v2), max(v2)
inside = [r for r in rows if first <= float(r[0]) <= last]
failed = [r for r in inside if r[2] != "200"]
print(f"| {interval:g} s | {last - first:.2f} s | {interval + 1:g} s | {len(inside)} | {len(failed)} | {len(failed) / max(1, len(inside)) * 100:.1f} % |")
PY
done
