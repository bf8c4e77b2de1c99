#!/usr/bin/env bash
# Time of `zenith rollback --with-state` and of a restore drill over SIZE_MB of state (default
# 1024: half incompressible, half text-like, in 1 MiB files), and the overhead
# `snapshot_before_deploy` adds to a deploy when little changed (one file appended to).
# As a reference from the glued-together way, the same run times `restic restore` of the same
# directory (when restic is installed), which is only the restore part of such a rollback.
# Usage: bench/state_rollback.sh [SIZE_MB]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mb="${1:-1024}"
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

echo "generating $size_mb MiB of state…"
mkdir -p "$work/app/state"
python3 - "$work/app/state" "$size_mb" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
words = [b"order", b"customer", b"total", b"status", b"shipped", b"invoice", b"42", b"2026-11-23"]
rnd = random.Random(7)
for i in range(n):
    path = os.path.join(d, f"part-{i // 100:02d}", f"f-{i:05d}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        if i % 2:
            f.write(os.urandom(1 << 20))
        else:
            out = bytearray()
            while len(out) < (1 << 20):
                out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
            f.write(out[: 1 << 20])
PY
sync

"$zenith" serve --listen 127.0.0.1:0 --router-host 127.0.0.1 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$ZENITH_DATA_DIR/daemon.json" ] && break; sleep 0.1; done
port=$(( 20000 + RANDOM % 20000 ))
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

spec() { # version hook(true|false)
    cat >"$work/app/zenith.toml" <<TOML
[app]
name = "bench"

[services.web]
command = ["$zenith", "demo-app"]
port = $port
state_dirs = ["./state"]
env = { DEMO_VERSION = "$1", DEMO_REQUIRE_STATE = "part-00" }
state = { snapshot_before_deploy = $2 }

[services.web.health]
http = "/health"
interval = "100ms"
TOML
}

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
deploy() { "$zenith" deploy -f "$work/app/zenith.toml" >/dev/null; }

spec v1 true
t0=$(now); deploy; t1=$(now)
first=$(secs "$t0" "$t1")
echo "first deploy with snapshot_before_deploy (first snapshot of $size_mb MiB): ${first}s"

# Overhead when little changed: deploys alternating with the hook off and on, one file
# appended to before each, three of each; medians compared.
with=(); without=()
for i in 1 2 3; do
    for hook in false true; do
        echo "change $i $hook" >>"$work/app/state/part-00/f-00000"
        spec "v$i$hook" "$hook"
        t0=$(now); deploy; t1=$(now)
        if [ "$hook" = true ]; then with+=("$(secs "$t0" "$t1")"); else without+=("$(secs "$t0" "$t1")"); fi
    done
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
mw=$(median "${with[@]}"); mo=$(median "${without[@]}")
echo "deploy after a small change: ${mo}s without the hook, ${mw}s with it (runs: ${without[*]} / ${with[*]})"
echo "snapshot_before_deploy overhead: $(secs "$mo" "$mw")s"

# The revision to go back to: the one before the last with the hook on. Then change a tenth
# of the data.
target=$("$zenith" rollout history bench --output-format json | python3 -c 'import json,sys; print(sorted(r["number"] for r in json.load(sys.stdin) if r.get("state_set"))[-2])')
for i in $(seq 0 10 $((size_mb - 1))); do head -c 1048576 /dev/urandom >"$work/app/state/part-$(printf %02d $((i / 100)))/f-$(printf %05d "$i")"; done
t0=$(now)
"$zenith" rollback bench "$target" --with-state
t1=$(now)
rb=$(secs "$t0" "$t1")
echo "rollback --with-state of $size_mb MiB: ${rb}s"
t0=$(now)
"$zenith" recover bench --drill
t1=$(now)
dr=$(secs "$t0" "$t1")
echo "restore drill of $size_mb MiB: ${dr}s"

if command -v restic >/dev/null; then
    export RESTIC_REPOSITORY="$work/restic" RESTIC_PASSWORD=bench
    restic init -q
    restic backup -q "$work/app/state" >/dev/null
    rm -rf "$work/restic-target"
    t0=$(now)
    restic restore -q latest --target "$work/restic-target"
    t1=$(now)
    rr=$(secs "$t0" "$t1")
    echo "restic restore of the same $size_mb MiB (restore step only): ${rr}s"
    echo "ratio rollback --with-state / restic restore: $(echo "$rb / $rr" | bc -l | xargs printf '%.2f')"
fi
