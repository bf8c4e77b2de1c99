#!/usr/bin/env bash
# Side-by-side proxy benchmark: zenith's router vs HAProxy in front of the same backends,
# loaded by wrk, interleaved rounds, medians and ratios printed as a Markdown report, one
# section per scenario (plain proxying; a canary rollout with sticky sessions).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"

# Exact command line, for the report.
CMDLINE="bench/router_vs_haproxy.sh"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done

ROUNDS=3 DURATION=10s WARMUP=2s CONNS=64 THREADS=2 BACKENDS=2 BUILD=1 DIRECT=1 WAIT_QUIET=0 OUT=""
ROUTER_BIN="" SCENARIOS="plain" SMOKE=0

# The rollout scenario: revision 1 (stable) and 2 (canary) at these weights. The router names
# its sticky cookie after its service label, `bench` in bench_router; HAProxy uses the same
# name and the same values (`r1`, `r2`), so one load script replays cookies to both.
STABLE_WEIGHT=90 CANARY_WEIGHT=10 COOKIE="zenith-bench"

usage() {
    cat <<'USAGE'
Usage: bench/router_vs_haproxy.sh [options]

Runs N copies of a tiny HTTP backend on 127.0.0.1, puts HAProxy (2 threads, http-reuse
always, roundrobin) and zenith's router (started from a 2-worker tokio runtime like the
daemon's; it serves connections on its own workers, two per core) in front of them, and
loads each with `wrk -t2 -c64 -d10s --latency`. Rounds are interleaved (haproxy, router,
haproxy, router, ...); the report gives median requests/s and p99 latency per proxy and the
router/haproxy ratios against the targets (throughput >= 0.9x, p99 <= 1.5x), per scenario:

  plain    all backends as one group, no weights, no cookies.
  rollout  the first half of the backends (rounded up) run revision 1, the rest revision 2,
           weighted 90/10 with sticky sessions: the router gets `--weights 1=90,2=10
           --pins 1,2 --sticky`, HAProxy weighted servers and `cookie zenith-bench insert
           indirect nocache httponly attr SameSite=Lax`. The load alternates new clients
           (no cookie: drawn by weight, answered with a Set-Cookie) and returning ones that
           replay `zenith-bench=r1` (9 in 10) or `=r2` between two unrelated cookies.
           HAProxy sticks to a server, the router to a revision: with one backend per
           revision (the default 2 backends) the two are the same.

Options:
  --scenario LIST  plain, rollout, or plain,rollout (default plain)
  --rounds N       measured rounds per proxy (default 3)
  --duration D     wrk duration per round (default 10s)
  --connections N  wrk connections (default 64)
  --backends N     backend processes (default 2)
  --smoke          one 2s round after a 1s warm-up: checks that a scenario works, the
                   figures mean nothing
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
        --scenario) SCENARIOS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNS="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --smoke) SMOKE=1 ROUNDS=1 DURATION=2s WARMUP=1s; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-direct) DIRECT=0; shift ;;
        --router-bin) ROUTER_BIN="$2"; shift 2 ;;
        --wait-quiet) WAIT_QUIET="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for scenario in "${SCENARIO_LIST[@]}"; do
    case "$scenario" in
        plain) ;;
        rollout) [[ $BACKENDS -ge 2 ]] || { echo "--scenario rollout needs --backends 2 or more" >&2; exit 2; } ;;
        *) echo "unknown scenario: $scenario (plain or rollout)" >&2; exit 2 ;;
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

BACKEND_ADDRS=()
for ((i = 0; i < BACKENDS; i++)); do
    port="$(free_port)"
    "$BACKEND_BIN" "127.0.0.1:$port" 1 & PIDS+=($!)
    wait_port "$port"
    BACKEND_ADDRS+=("127.0.0.1:$port")
done
# Rollout revisions: the first half (rounded up) runs 1, the rest 2.
STABLE_COUNT=$(( (BACKENDS + 1) / 2 )) CANARY_COUNT=$(( BACKENDS / 2 ))
revision_of() { if [[ $1 -lt $STABLE_COUNT ]]; then echo 1; else echo 2; fi; }

# The rollout load (see --help); wrk passes the cookie name after `--`.
cat >"$WORK/rollout.lua" <<'LUA'
local requests, n = {}, 0
function init(args)
    for i = 1, 20 do
        if i % 2 == 1 then
            requests[i] = wrk.format("GET", "/", {})
        else
            local revision = (i == 20) and "r2" or "r1"
            local cookie = "sid=4f2a9c; " .. args[1] .. "=" .. revision .. "; theme=dark"
            requests[i] = wrk.format("GET", "/", { ["Cookie"] = cookie })
        end
    end
end
function request()
    n = n % #requests + 1
    return requests[n]
end
LUA

# Writes the HAProxy configuration of scenario $1 for port $2.
haproxy_config() {
    local scenario="$1" port="$2" servers="" persistence="" i rev weight cookie
    for ((i = 0; i < BACKENDS; i++)); do
        servers+="    server b$i ${BACKEND_ADDRS[$i]}"
        if [[ $scenario == rollout ]]; then
            # Per-server weights that give each revision its share whatever its size.
            rev="$(revision_of "$i")"
            weight=$(( rev == 1 ? STABLE_WEIGHT * CANARY_COUNT : CANARY_WEIGHT * STABLE_COUNT ))
            [[ $weight -le 256 ]] || { echo "too many backends for HAProxy weights" >&2; exit 2; }
            # HAProxy maps a cookie value to one server: the first of each revision gets `rN`.
            cookie="r$rev"; [[ $i -ne 0 && $i -ne $STABLE_COUNT ]] && cookie+="-b$i"
            servers+=" weight $weight cookie $cookie"
        fi
        servers+=$'\n'
    done
    [[ $scenario == rollout ]] &&
        persistence="    cookie $COOKIE insert indirect nocache httponly attr \"SameSite=Lax\""
    sed -e "s/@PORT@/$port/" "$SCRIPT_DIR/router/haproxy.cfg.in" | python3 -c '
import sys
text = sys.stdin.read().replace("@PERSISTENCE@\n", sys.argv[1] + "\n" if sys.argv[1] else "")
print(text.replace("@SERVERS@", sys.argv[2].rstrip()))' "$persistence" "$servers"
}

# Prints the bench_router arguments of scenario $1 for port $2.
router_args() {
    local scenario="$1" port="$2" i
    local args=(--threads 2)
    [[ $scenario == rollout ]] &&
        args+=(--weights "1=$STABLE_WEIGHT,2=$CANARY_WEIGHT" --pins 1,2 --sticky)
    args+=("127.0.0.1:$port")
    for ((i = 0; i < BACKENDS; i++)); do
        if [[ $scenario == rollout ]]; then
            args+=("${BACKEND_ADDRS[$i]}@$(revision_of "$i")")
        else
            args+=("${BACKEND_ADDRS[$i]}")
        fi
    done
    printf '%s\n' "${args[@]}"
}

# Fails loudly when a proxy on port $2 does not do sticky sessions as scenario rollout needs:
# a new client gets a cookie, a returning one (among other cookies) keeps it and gets none.
check_sticky() {
    python3 - "$1" "$2" "$COOKIE" <<'PY'
import http.client, sys
name, port, cookie = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def get(headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/", headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.headers.get_all("Set-Cookie") or []
status, set_cookies = get({})
if status != 200 or not any(c.startswith(cookie + "=r") for c in set_cookies):
    sys.exit(f"{name}: a new client got {status} and Set-Cookie {set_cookies}, expected {cookie}=r1 or r2")
status, set_cookies = get({"Cookie": f"a=1; {cookie}=r2; b=2"})
if status != 200 or set_cookies:
    sys.exit(f"{name}: a returning client got {status} and Set-Cookie {set_cookies}, expected none")
PY
}

# Runs wrk once against port $1 for $2; prints "requests_per_s p99_ms errors".
run_wrk() {
    local port="$1" duration="$2" out
    out="$(wrk -t"$THREADS" -c"$CONNS" -d"$duration" --timeout 5s --latency \
        ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "http://127.0.0.1:$port/" ${WRK_SCRIPT:+-- "$COOKIE"})"
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

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
verdict() { python3 -c "print('met' if $1 else 'missed')"; }

describe() {
    case "$1" in
        plain) echo "all backends in one group, round robin, no weights, no cookies; wrk sends plain GETs." ;;
        rollout) echo "revision 1 on $STABLE_COUNT backend(s), revision 2 on $CANARY_COUNT, weighted" \
            "$STABLE_WEIGHT/$CANARY_WEIGHT with sticky sessions (router: \`--weights --pins --sticky\`;" \
            "HAProxy: weighted servers, \`cookie $COOKIE insert indirect nocache httponly\`); half the" \
            "requests come from new clients, half replay a cookie (9 in 10 for revision 1) among others." ;;
    esac
}

# Runs scenario $1 on fresh proxies and prints its section of the report. Called without a
# subshell, so the proxies it starts are in PIDS for the cleanup should it fail.
run_scenario() {
    local scenario="$1" side round rps p99 errs args=()
    local haproxy_port router_port haproxy_pid router_pid
    haproxy_port="$(free_port)"
    haproxy_config "$scenario" "$haproxy_port" >"$WORK/haproxy-$scenario.cfg"
    haproxy -c -q -f "$WORK/haproxy-$scenario.cfg"
    haproxy -db -f "$WORK/haproxy-$scenario.cfg" & haproxy_pid=$!; PIDS+=($haproxy_pid)
    wait_port "$haproxy_port"
    router_port="$(free_port)"
    mapfile -t args < <(router_args "$scenario" "$router_port")
    "$ROUTER_BIN" "${args[@]}" 2>"$WORK/router-$scenario.log" & router_pid=$!; PIDS+=($router_pid)
    wait_port "$router_port"
    WRK_SCRIPT=""
    if [[ $scenario == rollout ]]; then
        check_sticky HAProxy "$haproxy_port"
        check_sticky router "$router_port"
        WRK_SCRIPT="$WORK/rollout.lua"
    fi

    declare -A RPS=() P99=() ERRS=() MED_RPS=() MED_P99=()
    local sides=(haproxy router)
    declare -A port=([haproxy]=$haproxy_port [router]=$router_port [direct]="${BACKEND_ADDRS[0]##*:}")
    [[ $DIRECT -eq 1 ]] && sides+=(direct)

    log "$scenario: warming up ($WARMUP each)"
    for side in "${sides[@]}"; do run_wrk "${port[$side]}" "$WARMUP" >/dev/null; done
    for ((round = 1; round <= ROUNDS; round++)); do
        for side in "${sides[@]}"; do
            read -r rps p99 errs < <(run_wrk "${port[$side]}" "$DURATION")
            log "$scenario round $round $side: $rps req/s, p99 $p99 ms, $errs errors"
            RPS[$side]+="$rps " P99[$side]+="$p99 " ERRS[$side]=$(( ${ERRS[$side]:-0} + errs ))
        done
    done
    for side in "${sides[@]}"; do
        MED_RPS[$side]="$(echo "${RPS[$side]}" | median)"
        MED_P99[$side]="$(echo "${P99[$side]}" | median)"
    done
    local tput_ratio p99_ratio proxy_errors split
    tput_ratio="$(ratio "${MED_RPS[router]}" "${MED_RPS[haproxy]}")"
    p99_ratio="$(ratio "${MED_P99[router]}" "${MED_P99[haproxy]}")"

    kill -TERM "$router_pid" && wait "$router_pid" 2>/dev/null || true
    kill -TERM "$haproxy_pid" && wait "$haproxy_pid" 2>/dev/null || true
    proxy_errors="$(awk '/^zenith_router_proxy_errors_total/ {s += $2} END {print s + 0}' "$WORK/router-$scenario.log")"
    # Share of each revision in what the router served, from its own metrics.
    split="$(python3 - "$WORK/router-$scenario.log" <<'PY'
import re, sys
counts = {}
for rev, n in re.findall(r'^zenith_router_requests_total\{.*revision="(\d+)".*\} (\d+)$', open(sys.argv[1]).read(), re.M):
    counts[rev] = counts.get(rev, 0) + int(n)
total = sum(counts.values()) or 1
print(", ".join(f"revision {r}: {100 * n / total:.1f} %" for r, n in sorted(counts.items())))
PY
)"

    echo "### Scenario \`$scenario\`"
    echo
    describe "$scenario"
    echo
    echo "| target | req/s (median) | p99 ms (median) | req/s per round | p99 ms per round | errors |"
    echo "|---|---:|---:|---|---|---:|"
    for side in "${sides[@]}"; do
        name="$side"; [[ $side == direct ]] && name="direct to one backend (no proxy)"
        [[ $side == router ]] && name="zenith router"
        [[ $side == haproxy ]] && name="HAProxy"
        echo "| $name | ${MED_RPS[$side]} | ${MED_P99[$side]} | ${RPS[$side]% } | ${P99[$side]% } | ${ERRS[$side]} |"
    done
    echo
    echo "| ratio (router / HAProxy) | value | target | result |"
    echo "|---|---:|---:|---|"
    echo "| throughput | ${tput_ratio}x | >= 0.9x | $(verdict "$tput_ratio >= 0.9") |"
    echo "| p99 latency | ${p99_ratio}x | <= 1.5x | $(verdict "$p99_ratio <= 1.5") |"
    echo
    echo "Router proxy errors over the whole run (its own metrics): $proxy_errors." \
        "Requests the router served per revision: $split."
    echo
}

for scenario in "${SCENARIO_LIST[@]}"; do
    run_scenario "$scenario" >"$WORK/section-$scenario.md"
done

REPORT="$(
    echo "Command: \`$CMDLINE\`"
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -sr);" \
        "$(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}');" \
        "load: wrk -t$THREADS -c$CONNS -d$DURATION, $BACKENDS backends (1 thread each), $ROUNDS interleaved rounds;" \
        "concurrent builds: $CONTENTION."
    [[ $SMOKE -eq 1 ]] && echo && echo "Smoke run (--smoke): checks that the scenarios work; the figures mean nothing."
    echo
    for scenario in "${SCENARIO_LIST[@]}"; do cat "$WORK/section-$scenario.md"; done
)"
echo "$REPORT"
[[ -n $OUT ]] && echo "$REPORT" >"$OUT"
exit 0
