#!/usr/bin/env bash
# The daemon's own figures: time from `zenith deploy` to every replica healthy (first deploy and
# rolling update of 3 replicas of the bundled demo app), and the daemon's resident memory and
# CPU use when idle with 3 apps of 3 replicas. Prints a markdown table.
# Usage: bench/daemon_figures.sh [ROUNDS]   (default 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p zenith
zenith="$root/target/release/zenith"
work="$(mktemp -d)"
export ZENITH_DATA_DIR="$work/data"
daemon_pid=""
cleanup() {
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

spec() { # file app port version
    cat >"$1" <<TOML
[app]
name = "$2"

[services.web]
command = ["$zenith", "demo-app"]
replicas = 3
port = $3
env = { DEMO_VERSION = "$4" }

[services.web.health]
http = "/health"
interval = "100ms"
TOML
}

ms() { date +%s%N | cut -c1-13; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

first=(); update=()
for r in $(seq "$rounds"); do
    app="bench$r"; port=$(free_port)
    spec "$work/$app.toml" "$app" "$port" v1
    t0=$(ms); "$zenith" deploy -q -f "$work/$app.toml" >/dev/null; t1=$(ms)
    first+=($((t1 - t0)))
    spec "$work/$app.toml" "$app" "$port" v2
    t0=$(ms); "$zenith" deploy -q -f "$work/$app.toml" >/dev/null; t1=$(ms)
    update+=($((t1 - t0)))
done
# Idle: 3 apps of 3 replicas (the first three rounds' apps; add more if fewer rounds ran).
for r in $(seq $((rounds + 1)) 3); do
    app="bench$r"; port=$(free_port)
    spec "$work/$app.toml" "$app" "$port" v1
    "$zenith" deploy -q -f "$work/$app.toml" >/dev/null
done
apps=$("$zenith" apps --output-format json | grep -c '"app"')
sleep 5
ticks0=$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")
sleep 10
ticks1=$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")
hz=$(getconf CLK_TCK)
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")
cpu_pct=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" 'BEGIN {printf "%.2f", 100 * t / hz / 10}')

echo "| figure | value |"
echo "|---|---:|"
echo "| deploy → 3/3 healthy, new app (median of $rounds) | $(printf '%s\n' "${first[@]}" | median) ms |"
echo "| deploy → 3/3 healthy, rolling update v1 → v2 (median of $rounds) | $(printf '%s\n' "${update[@]}" | median) ms |"
echo "| daemon resident memory, idle, $apps apps × 3 replicas | $((rss_kib / 1024)) MiB ($rss_kib KiB) |"
echo "| daemon CPU while idle (10 s, health probes every 100 ms) | ${cpu_pct}% of one core |"
