#!/usr/bin/env bash
# Side-by-side proxy benchmark: zenith's router vs HAProxy in front of the same backends,
# loaded by wrk, interleaved rounds, medians and ratios printed as a Markdown report.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"

# Exact command line, for the report.
CMDLINE="bench/router_vs_haproxy.sh"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done

ROUNDS=3 DURATION=10s CONNS=64 THREADS=2 BACKENDS=2 BUILD=1 DIRECT=1 WAIT_QUIET=0 OUT="" ROUTER_BIN=""

usage() {
    cat <<'USAGE'
Usage: bench/router_vs_haproxy.sh [options]

Runs N copies of a tiny HTTP backend on 127.0.0.1, puts HAProxy (2 threads, http-reuse
always, roundrobin) and zenith's router (started from a 2-worker tokio runtime like the
daemon's; it serves connections on its own workers, two per core) in front of them, and
loads each with `wrk -t2 -c64 -d10s --latency`. Rounds are interleaved (haproxy, router,
haproxy, router, ...); the report gives median requests/s and p99 latency per proxy and the
router/haproxy ratios against the targets (throughput >= 0.9x, p99 <= 1.5x).

Options:
  --rounds N       measured rounds per proxy (default 3)
  --duration D     wrk duration per round (default 10s)
  --connections N  wrk connections (default 64)
  --backends N     backend processes (default 2)
  --no-build       use the existing release build of the examples
  --no-direct      skip the baseline rounds straight against one backend
  --router-bin F   run this build of the bench_router example (say, a saved copy of an
                   earlier version) instead of the one in the target directory
  --wait-quiet S   first wait up to S seconds until no cargo/rustc process runs
  --out FILE       also write the report to FILE
  -h, --help       this help

Needs: haproxy and wrk (installed with apt-get when missing), python3, cargo.
USAGE
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNS="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-direct) DIRECT=0; shift ;;
        --router-bin) ROUTER_BIN="$2"; shift 2 ;;
        --wait-quiet) WAIT_QUIET="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { echo "[bench] $*" >&2; }

if ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null; then
    log "installing haproxy and wrk"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy wrk >&2
fi

if [[ $BUILD -eq 1 ]]; then
    log "building the examples (release)"
    (cd "$REPO_ROOT" && cargo build --release -p zenith-router --examples >&2)
fi
TARGET_DIR="$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
BACKEND_BIN="$TARGET_DIR/release/examples/bench_backend"
ROUTER_BIN="${ROUTER_BIN:-$TARGET_DIR/release/examples/bench_router}"
for bin in "$BACKEND_BIN" "$ROUTER_BIN"; do
    [[ -x $bin ]] || { echo "missing $bin: run without --no-build" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/router-bench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

busy_builds() { pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; }
if [[ $WAIT_QUIET -gt 0 ]]; then
    for ((i = 0; i < WAIT_QUIET; i++)); do busy_builds || break; sleep 1; done
fi
CONTENTION="none"
busy_builds && CONTENTION="cargo/rustc running when the benchmark started"

# Free loopback ports, chosen by the kernel.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2; exit 1
}

BACKEND_ADDRS=() SERVERS=""
for ((i = 0; i < BACKENDS; i++)); do
    port="$(free_port)"
    "$BACKEND_BIN" "127.0.0.1:$port" 1 & PIDS+=($!)
    wait_port "$port"
    BACKEND_ADDRS+=("127.0.0.1:$port")
    SERVERS+="    server b$i 127.0.0.1:$port"$'\n'
done

HAPROXY_PORT="$(free_port)"
sed -e "s/@PORT@/$HAPROXY_PORT/" "$SCRIPT_DIR/router/haproxy.cfg.in" \
    | python3 -c 'import sys; print(sys.stdin.read().replace("@SERVERS@", sys.argv[1].rstrip()))' "$SERVERS" \
    > "$WORK/haproxy.cfg"
haproxy -c -q -f "$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" & PIDS+=($!)
wait_port "$HAPROXY_PORT"

ROUTER_PORT="$(free_port)"
"$ROUTER_BIN" --threads 2 "127.0.0.1:$ROUTER_PORT" "${BACKEND_ADDRS[@]}" 2>"$WORK/router.log" & PIDS+=($!)
ROUTER_PID=$!
wait_port "$ROUTER_PORT"

# Runs wrk once; prints "requests_per_s p99_ms errors".
run_wrk() {
    local port="$1" duration="$2" out
    out="$(wrk -t"$THREADS" -c"$CONNS" -d"$duration" --timeout 5s --latency "http://127.0.0.1:$port/")"
    echo "$out" >>"$WORK/wrk.log"
    python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
val, unit = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
p99 = float(val) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors += int(m.group(1)) if m else 0
print(f"{rps:.0f} {p99:.3f} {errors}")
PY
}

declare -A RPS P99 ERRS
SIDES=(haproxy router)
declare -A PORT=([haproxy]=$HAPROXY_PORT [router]=$ROUTER_PORT [direct]="${BACKEND_ADDRS[0]##*:}")
[[ $DIRECT -eq 1 ]] && SIDES+=(direct)

log "warming up (2s each)"
for side in "${SIDES[@]}"; do run_wrk "${PORT[$side]}" 2s >/dev/null; done
for ((round = 1; round <= ROUNDS; round++)); do
    for side in "${SIDES[@]}"; do
        read -r rps p99 errs < <(run_wrk "${PORT[$side]}" "$DURATION")
        log "round $round $side: $rps req/s, p99 $p99 ms, $errs errors"
        RPS[$side]+="$rps " P99[$side]+="$p99 " ERRS[$side]=$(( ${ERRS[$side]:-0} + errs ))
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A MED_RPS MED_P99
for side in "${SIDES[@]}"; do
    MED_RPS[$side]="$(echo "${RPS[$side]}" | median)"
    MED_P99[$side]="$(echo "${P99[$side]}" | median)"
done
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
TPUT_RATIO="$(ratio "${MED_RPS[router]}" "${MED_RPS[haproxy]}")"
P99_RATIO="$(ratio "${MED_P99[router]}" "${MED_P99[haproxy]}")"
verdict() { python3 -c "print('met' if $1 else 'missed')"; }

kill -TERM "$ROUTER_PID" && wait "$ROUTER_PID" 2>/dev/null || true
ROUTER_PROXY_ERRORS="$(awk '/^zenith_router_proxy_errors_total/ {s += $2} END {print s + 0}' "$WORK/router.log")"

REPORT="$(
    echo "Command: \`$CMDLINE\`"
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -sr);" \
        "$(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}');" \
        "load: wrk -t$THREADS -c$CONNS -d$DURATION, $BACKENDS backends (1 thread each), $ROUNDS interleaved rounds;" \
        "concurrent builds: $CONTENTION."
    echo
    echo "| target | req/s (median) | p99 ms (median) | req/s per round | p99 ms per round | errors |"
    echo "|---|---:|---:|---|---|---:|"
    for side in "${SIDES[@]}"; do
        name="$side"; [[ $side == direct ]] && name="direct to one backend (no proxy)"
        [[ $side == router ]] && name="zenith router"
        [[ $side == haproxy ]] && name="HAProxy"
        echo "| $name | ${MED_RPS[$side]} | ${MED_P99[$side]} | ${RPS[$side]% } | ${P99[$side]% } | ${ERRS[$side]} |"
    done
    echo
    echo "| ratio (router / HAProxy) | value | target | result |"
    echo "|---|---:|---:|---|"
    echo "| throughput | ${TPUT_RATIO}x | >= 0.9x | $(verdict "$TPUT_RATIO >= 0.9") |"
    echo "| p99 latency | ${P99_RATIO}x | <= 1.5x | $(verdict "$P99_RATIO <= 1.5") |"
    echo
    echo "Router proxy errors over the whole run (its own metrics): $ROUTER_PROXY_ERRORS."
)"
echo "$REPORT"
[[ -n $OUT ]] && echo "$REPORT" >"$OUT"
exit 0
