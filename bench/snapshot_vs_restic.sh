#!/usr/bin/env bash
# Side-by-side snapshot benchmark: zenith vs restic on the same corpus, in the
# same run, with interleaved repetitions.  See bench/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"
GEN="$SCRIPT_DIR/gen_corpus.py"

# Exact command line, captured before argument parsing.
CMDLINE=""
for v in ZENITH BENCH_DIR TMPDIR; do
    if [[ -n "${!v:-}" ]]; then CMDLINE+="$v=$(printf '%q' "${!v}") "; fi
done
CMDLINE+="$(printf '%q' "$0")"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done

usage() {
    cat <<'EOF'
Usage: bench/snapshot_vs_restic.sh [options]

Benchmarks zenith against restic on an identical generated corpus:
init + first snapshot, snapshot after a 1% change, full restore, repository
size and growth, peak RSS.  Repetitions are interleaved (zenith, restic,
zenith, restic, ...) and every repetition starts from a fresh copy of the
corpus and a fresh repository.

Options:
  --runs N        repetitions per tool (default 3)
  --scale F       corpus scale passed to gen_corpus.py (default 1.0 = ~1.25 GB;
                  use e.g. 0.05 for a smoke test)
  --seed N        corpus seed (default 1)
  --tools LIST    comma-separated subset of "zenith,restic" (default both)
  --zenith PATH   zenith binary (default: $ZENITH, else target/release/zenith,
                  resolved against the current directory, then the project root)
  --zenith-init ARGS
                  extra arguments for zenith's repo init, e.g. "--chunk-size 16KiB"
                  (default: none, zenith's defaults)
  --bench-dir DIR parent directory for the work dir (default: $BENCH_DIR, else
                  $TMPDIR or /tmp if disk-backed, else /var/tmp)
  --out FILE      where to write the Markdown report
                  (default bench/results/latest.md)
  --wait-idle S   before each measured command, wait up to S seconds for the
                  machine to be idle (<15% CPU busy over 1 s); default 0 (off).
                  Useful on shared machines; contention is reported either way
  --low-space     delete each run's data right after the run instead of keeping
                  everything until the end (automatic when disk space is short;
                  see README for why the default keeps it)
  --keep          keep the work dir (corpus, repositories, logs) at the end
  -h, --help      this help

Environment: ZENITH (zenith binary), BENCH_DIR (see --bench-dir).
Exit status: 0 if every command succeeded and every restore matched the
corpus, 1 otherwise (the report is still written), 2 on usage errors.
EOF
}

die() { echo "snapshot_vs_restic: error: $*" >&2; exit 2; }
note() { echo "==> $*"; }
loud() {
    echo "" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

RUNS=3
SCALE=1.0
SEED=1
TOOLS="zenith,restic"
KEEP=0
FORCE_LOW_SPACE=0
WAIT_IDLE=0
ZENITH_ARG="${ZENITH:-target/release/zenith}"
ZENITH_INIT=()
BENCH_PARENT="${BENCH_DIR:-}"
OUT="$SCRIPT_DIR/results/latest.md"

while (($#)); do
    case "$1" in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS="$2"; shift 2 ;;
        --runs=*) RUNS="${1#*=}"; shift ;;
        --scale) [[ $# -ge 2 ]] || die "--scale needs a value"; SCALE="$2"; shift 2 ;;
        --scale=*) SCALE="${1#*=}"; shift ;;
        --seed) [[ $# -ge 2 ]] || die "--seed needs a value"; SEED="$2"; shift 2 ;;
        --seed=*) SEED="${1#*=}"; shift ;;
        --tools) [[ $# -ge 2 ]] || die "--tools needs a value"; TOOLS="$2"; shift 2 ;;
        --tools=*) TOOLS="${1#*=}"; shift ;;
        --zenith) [[ $# -ge 2 ]] || die "--zenith needs a value"; ZENITH_ARG="$2"; shift 2 ;;
        --zenith=*) ZENITH_ARG="${1#*=}"; shift ;;
        --zenith-init) [[ $# -ge 2 ]] || die "--zenith-init needs a value"; read -r -a ZENITH_INIT <<<"$2"; shift 2 ;;
        --zenith-init=*) read -r -a ZENITH_INIT <<<"${1#*=}"; shift ;;
        --bench-dir) [[ $# -ge 2 ]] || die "--bench-dir needs a value"; BENCH_PARENT="$2"; shift 2 ;;
        --bench-dir=*) BENCH_PARENT="${1#*=}"; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --wait-idle) [[ $# -ge 2 ]] || die "--wait-idle needs a value"; WAIT_IDLE="$2"; shift 2 ;;
        --wait-idle=*) WAIT_IDLE="${1#*=}"; shift ;;
        --low-space) FORCE_LOW_SPACE=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer (got '$RUNS')"
[[ "$WAIT_IDLE" =~ ^[0-9]+$ ]] || die "--wait-idle must be a non-negative integer (got '$WAIT_IDLE')"
[[ "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer (got '$SEED')"
[[ "$SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" "$SCALE" \
    || die "--scale must be a positive number (got '$SCALE')"

WANT_ZENITH=0
WANT_RESTIC=0
IFS=',' read -r -a _tools <<<"$TOOLS"
for t in "${_tools[@]}"; do
    case "$t" in
        zenith) WANT_ZENITH=1 ;;
        restic) WANT_RESTIC=1 ;;
        "") ;;
        *) die "--tools: unknown tool '$t' (expected zenith and/or restic)" ;;
    esac
done
((WANT_ZENITH || WANT_RESTIC)) || die "--tools selects no tool"

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 not found"
[[ -f "$GEN" ]] || die "corpus generator not found next to this script ($GEN)"
TIME_BIN=/usr/bin/time
[[ -x "$TIME_BIN" ]] || die "GNU time not found at /usr/bin/time (Debian/Ubuntu: apt-get install -y time)"
"$TIME_BIN" -f '%e' -o /dev/null true 2>/dev/null || die "/usr/bin/time is not GNU time (needs -f/-o)"
for c in du diff cp find xargs cat sync df stat sort; do
    command -v "$c" >/dev/null || die "required command '$c' not found"
done
if ((WANT_RESTIC)); then
    command -v restic >/dev/null || die "restic not found in PATH (Debian/Ubuntu: apt-get install -y restic)"
fi

# Don't let the caller's environment change either tool's defaults.
for v in $(compgen -e); do
    case "$v" in RESTIC_*|ZENITH_*) unset "$v" ;; esac
done

ZENITH_BIN=""
ZENITH_STATUS=""
if ((WANT_ZENITH)); then
    cand=""
    if [[ "$ZENITH_ARG" == /* ]]; then
        cand="$ZENITH_ARG"
    elif [[ -e "$PWD/$ZENITH_ARG" ]]; then
        cand="$PWD/$ZENITH_ARG"
    elif [[ -e "$REPO_ROOT/$ZENITH_ARG" ]]; then
        cand="$REPO_ROOT/$ZENITH_ARG"
    elif [[ "$ZENITH_ARG" != */* ]] && command -v "$ZENITH_ARG" >/dev/null; then
        cand="$(command -v "$ZENITH_ARG")"
    fi
    if [[ -n "$cand" && -x "$cand" && -f "$cand" ]]; then
        ZENITH_BIN="$cand"
    else
        ZENITH_STATUS="binary not found ($ZENITH_ARG)"
        loud "zenith binary not found or not executable: '$ZENITH_ARG' (set ZENITH=... or build with 'cargo build --release'). Continuing with restic only."
    fi
fi

# ---------------------------------------------------------------------------
# Work directory (must be disk-backed)
# ---------------------------------------------------------------------------
is_memfs() {
    local t
    t="$(stat -f -c %T "$1" 2>/dev/null || echo unknown)"
    [[ "$t" == tmpfs || "$t" == ramfs ]]
}
if [[ -n "$BENCH_PARENT" ]]; then
    mkdir -p "$BENCH_PARENT" || die "cannot create --bench-dir '$BENCH_PARENT'"
    if is_memfs "$BENCH_PARENT"; then
        loud "bench dir '$BENCH_PARENT' is memory-backed (tmpfs); I/O numbers will not reflect a disk"
    fi
else
    for cand in "${TMPDIR:-/tmp}" /var/tmp; do
        if [[ -d "$cand" && -w "$cand" ]] && ! is_memfs "$cand"; then BENCH_PARENT="$cand"; break; fi
    done
    [[ -n "$BENCH_PARENT" ]] || die "no disk-backed temp dir found (\$TMPDIR, /tmp, /var/tmp are tmpfs); pass --bench-dir DIR or set BENCH_DIR"
fi
WORK="$(mktemp -d "$BENCH_PARENT/zenith-bench.XXXXXX")"
WORK="$(cd "$WORK" && pwd -P)"

cleanup() {
    local rc=$?
    if ((KEEP)); then
        echo "==> keeping work dir: $WORK"
    else
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

# Rough space check (minimum: master corpus + working copy + restore + repo).
avail_bytes() { echo "$(( $(df -Pk "$WORK" | awk 'NR==2 {print $4}') * 1024 ))"; }
need_bytes="$(python3 -c "import sys; print(int(1.3e9 * float(sys.argv[1]) * 4.5))" "$SCALE")"
if (($(avail_bytes) < need_bytes)); then
    die "not enough free space under $BENCH_PARENT: need ~$((need_bytes / 1000000)) MB, have $(($(avail_bytes) / 1000000)) MB"
fi

MASTER="$WORK/master"        # pristine corpus, never modified
CORPUS="$WORK/corpus"        # what the tools back up (same path for both tools)
RESTORE="$WORK/restore"
LOGS="$WORK/logs"
RESULTS="$WORK/results.tsv"
mkdir -p "$LOGS"
: >"$RESULTS"

export XDG_CACHE_HOME="$WORK/cache"
export RESTIC_CACHE_DIR="$WORK/cache/restic"
export RESTIC_PASSWORD="zenith-bench-password"
export ZENITH_PASSWORD="zenith-bench-password"
export RESTIC_REPOSITORY="$WORK/repo-restic"
export ZENITH_REPO="$WORK/repo-zenith"

repo_of() { case "$1" in restic) echo "$RESTIC_REPOSITORY" ;; zenith) echo "$ZENITH_REPO" ;; esac; }

# ---------------------------------------------------------------------------
# Machine / versions
# ---------------------------------------------------------------------------
CPU_MODEL="$(awk -F: '/^model name/ {sub(/^[ \t]+/, "", $2); print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
CPU_MODEL="${CPU_MODEL:-unknown}"
NPROC="$(nproc)"
MEM_TOTAL="$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || echo unknown)"
KERNEL="$(uname -sr)"
WORK_FS="$(stat -f -c %T "$WORK")"
RESTIC_VERSION="n/a"
if ((WANT_RESTIC)); then RESTIC_VERSION="$(restic version 2>&1 | head -n1)"; fi
ZENITH_VERSION="n/a"
if [[ -n "$ZENITH_BIN" ]]; then
    ZENITH_VERSION="$("$ZENITH_BIN" --version 2>&1 | head -n1 || true)"
    ZENITH_VERSION="${ZENITH_VERSION:-unknown}"
fi

note "zenith vs restic snapshot benchmark"
echo "    command:  $CMDLINE"
echo "    machine:  $NPROC CPUs, $CPU_MODEL, $MEM_TOTAL RAM, $KERNEL"
echo "    work dir: $WORK ($WORK_FS)"
echo "    restic:   $RESTIC_VERSION"
echo "    zenith:   $ZENITH_VERSION${ZENITH_BIN:+ ($ZENITH_BIN)}${ZENITH_STATUS:+ [$ZENITH_STATUS]}"
echo "    runs:     $RUNS (interleaved), scale $SCALE, seed $SEED, wait-idle ${WAIT_IDLE}s"
echo "    caches:   NOT dropped; the corpus (and, before restores, the repository)"
echo "              is read once with cat >/dev/null before each measured operation,"
echo "              and 'sync' is run, so every measurement starts from a warm page"
echo "              cache with no dirty data pending."

# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------
note "generating corpus (scale $SCALE, seed $SEED)"
python3 "$GEN" "$MASTER" --seed "$SEED" --scale "$SCALE"
CORPUS_BYTES="$(du -sb "$MASTER" | cut -f1)"
CORPUS_FILES="$(find "$MASTER" -type f | wc -l)"
echo "    corpus: $CORPUS_FILES files, $CORPUS_BYTES bytes (du -sb)"

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; }

warm_tree() { find "$1" -type f -print0 | xargs -0 -r cat >/dev/null; }

# Nothing is deleted while measuring (unless space is short, see LOW_SPACE):
# on some machines (VMs with free-page reporting, online discard, ...) writes
# that follow the deletion of large trees are several times slower, which
# would bill one tool for the other's cleanup.  So every tool/run gets its own
# pre-made corpus copy (staged before any measurement), which is renamed to
# the common path $CORPUS for the run, and afterwards the corpus, repository,
# restore and cache dirs are renamed into $WORK/used/.  Cleanup happens after
# all measurements.
STAGE="$WORK/stage"
USED="$WORK/used"
LOW_SPACE=0

stage_corpora() {
    local est need tool run
    est=$((CORPUS_BYTES * 32 / 10 * RUNS * ${#ACTIVE[@]} + CORPUS_BYTES / 5))
    need=$((est + CORPUS_BYTES / 2))
    if ((FORCE_LOW_SPACE)); then
        LOW_SPACE=1
        note "--low-space: deleting each run's data after the run"
        return 0
    fi
    if (($(avail_bytes) < need)); then
        LOW_SPACE=1
        loud "only $(($(avail_bytes) / 1000000)) MB free, ~$((need / 1000000)) MB needed to keep every run's data until the end; deleting between runs instead (timings after large deletions can be noisier)"
        return 0
    fi
    note "staging ${#ACTIVE[@]}x$RUNS corpus copies (untimed; nothing is deleted until all measurements are done)"
    mkdir -p "$STAGE" "$USED"
    for ((run = 1; run <= RUNS; run++)); do
        for tool in "${ACTIVE[@]}"; do
            cp -a -- "$MASTER" "$STAGE/$tool.run$run"
        done
    done
    sync
}

fresh_corpus() { # tool run
    [[ ! -e "$CORPUS" ]] || { echo "internal error: $CORPUS still exists" >&2; exit 2; }
    if ((LOW_SPACE)); then
        cp -a -- "$MASTER" "$CORPUS"
    else
        mv -- "$STAGE/$1.run$2" "$CORPUS"
    fi
}

park_run() { # tool run : move (or, if LOW_SPACE, delete) this run's data
    local tool="$1" run="$2" repo d
    repo="$(repo_of "$tool")"
    if ((LOW_SPACE)); then
        if ((KEEP)) && ((run == RUNS)); then
            d="$WORK/last-$tool"
            mkdir -p "$d"
            for p in "$CORPUS" "$repo" "$RESTORE" "$XDG_CACHE_HOME"; do
                if [[ -e "$p" ]]; then mv -- "$p" "$d/"; fi
            done
        else
            rm -rf -- "$CORPUS" "$repo" "$RESTORE" "$XDG_CACHE_HOME"
        fi
        return 0
    fi
    d="$USED/$tool.run$run"
    mkdir -p "$d"
    for p in "$CORPUS" "$repo" "$RESTORE" "$XDG_CACHE_HOME"; do
        if [[ -e "$p" ]]; then mv -- "$p" "$d/"; fi
    done
}

CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
# Busy CPU ticks of the whole machine (user+nice+system+irq+softirq+steal).
cpu_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# cpu_snapshot pre FILE  : save machine busy ticks and per-kernel-thread ticks
# cpu_snapshot post FILE : print "BUSY_DELTA KERNEL_DELTA" (ticks) since "pre".
# Kernel threads (writeback, journal, discard, ...) are kthreadd (pid 2) and
# its children; irq/softirq time counts as kernel too.  Per-thread deltas are
# used because kworkers come and go (time of a thread that exits in between
# is lost and shows up as "other").  /proc/stat is read as late as possible
# for "pre" and as early as possible for "post" so that this helper's own CPU
# time is (mostly) not counted.
cpu_snapshot() {
    python3 - "$1" "$2" <<'PY'
import json, os, sys
mode, path = sys.argv[1], sys.argv[2]
def stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0), v[5] + v[6]
if mode == "post":
    busy, irq = stat()
kthreads = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        continue
    fields = st[st.rfind(")") + 2:].split()
    if pid == "2" or fields[1] == "2":  # fields[1] = ppid
        kthreads[pid] = int(fields[11]) + int(fields[12])  # utime + stime
if mode == "pre":
    busy, irq = stat()
    with open(path, "w") as f:
        json.dump({"busy": busy, "irq": irq, "k": kthreads}, f)
else:
    with open(path) as f:
        pre = json.load(f)
    kern = irq - pre["irq"] + sum(max(0, t - pre["k"].get(p, 0)) for p, t in kthreads.items())
    print(busy - pre["busy"], kern)
PY
}

# wait_idle: wait up to WAIT_IDLE seconds until the machine is (nearly) idle.
wait_idle() {
    ((WAIT_IDLE > 0)) || return 0
    local deadline=$((SECONDS + WAIT_IDLE)) a b limit
    limit=$((CLK_TCK * NPROC * 15 / 100))
    while :; do
        a="$(cpu_busy_ticks)"; sleep 1; b="$(cpu_busy_ticks)"
        if ((b - a <= limit)); then return 0; fi
        if ((SECONDS >= deadline)); then
            echo "    (machine still busy after waiting ${WAIT_IDLE}s; measuring anyway)"
            return 0
        fi
    done
}

# measure TOOL OP RUN CMD... : run CMD under GNU time, record wall/rss/cpu,
# the CPU time of kernel threads + irq meanwhile ("kernel": writeback etc.,
# partly caused by the command itself) and the CPU time used by all other
# processes ("other": machine-wide busy time minus kernel minus the command's
# own user+sys; includes hypervisor steal).
# Never fails the script; sets MEASURE_OK=1 on success, 0 on failure.
MEASURE_OK=0
measure() {
    local tool="$1" op="$2" run="$3"
    shift 3
    local tf="$LOGS/$tool.$op.run$run.time" lf="$LOGS/$tool.$op.run$run.log" rc=0 cpud
    sync
    wait_idle
    cpu_snapshot pre "$tf.cpu"
    "$TIME_BIN" -f '%e %M %U %S' -o "$tf" "$@" >"$lf" 2>&1 || rc=$?
    cpud="$(cpu_snapshot post "$tf.cpu")"
    if ((rc != 0)); then
        MEASURE_OK=0
        record "$tool" "$op" "$run" failed "$rc"
        loud "$tool $op (run $run) FAILED with exit status $rc: $*"
        echo "    last lines of output ($lf):" >&2
        tail -n 20 "$lf" | sed 's/^/    | /' >&2
        return 0
    fi
    local wall rss usr sys cpu other kern
    read -r wall rss usr sys < <(tail -n 1 "$tf")
    # shellcheck disable=SC2086
    read -r cpu other kern < <(python3 -c 'import sys
u, s, busy, kern, hz = map(float, sys.argv[1:])
cpu = u + s
kern = kern / hz
other = busy / hz - kern - cpu
print(round(cpu, 2), round(max(0.0, other), 2), round(kern, 2))' "$usr" "$sys" $cpud "$CLK_TCK")
    record "$tool" "$op" "$run" wall "$wall"
    record "$tool" "$op" "$run" rss_kib "$rss"
    record "$tool" "$op" "$run" cpu "$cpu"
    record "$tool" "$op" "$run" other_cpu "$other"
    record "$tool" "$op" "$run" kernel_cpu "$kern"
    printf '    %-6s %-9s run %d: %8.2f s wall  %7.2f s user  %6.2f s sys  %9d KiB peak RSS  (kernel threads %.2f s, other processes %.2f s)\n' \
        "$tool" "$op" "$run" "$wall" "$usr" "$sys" "$rss" "$kern" "$other"
    MEASURE_OK=1
}

# verify TOOL RUN : compare the restored tree with the (mutated) corpus.
VERIFY_FAILURES=0
COMMAND_FAILURES=0
verify() {
    local tool="$1" run="$2" root="" c
    for c in "$RESTORE$CORPUS" "$RESTORE/$(basename "$CORPUS")" "$RESTORE"; do
        if [[ -f "$c/CORPUS.json" ]]; then root="$c"; break; fi
    done
    if [[ -z "$root" ]]; then
        VERIFY_FAILURES=$((VERIFY_FAILURES + 1))
        record "$tool" verify "$run" mismatch "restored tree not found"
        loud "RESTORE MISMATCH: $tool run $run: cannot find the restored corpus under $RESTORE (looked for CORPUS.json)"
        find "$RESTORE" -maxdepth 3 | head -n 20 | sed 's/^/    | /' >&2
        return 0
    fi
    local dl="$LOGS/$tool.verify.run$run.diff" rc=0
    diff -r -q -- "$CORPUS" "$root" >"$dl" 2>&1 || rc=$?
    if ((rc != 0)); then
        VERIFY_FAILURES=$((VERIFY_FAILURES + 1))
        record "$tool" verify "$run" mismatch "$(wc -l <"$dl") differences"
        loud "RESTORE MISMATCH: $tool run $run: restored tree differs from the corpus ($(wc -l <"$dl") differences)"
        head -n 20 "$dl" | sed 's/^/    | /' >&2
        return 0
    fi
    # Metadata (file mode, size, mtime): reported, but not counted as a content mismatch.
    local a="$LOGS/$tool.meta.run$run.src" b="$LOGS/$tool.meta.run$run.dst"
    (cd "$CORPUS" && find . -type f -printf '%p %m %s %T@\n' | sort) >"$a"
    (cd "$root" && find . -type f -printf '%p %m %s %T@\n' | sort) >"$b"
    if cmp -s "$a" "$b"; then
        record "$tool" verify "$run" ok "content+metadata"
        echo "    $tool   verify    run $run: restored tree identical to corpus (content, mode, size, mtime)"
    else
        record "$tool" verify "$run" ok "content (metadata differs)"
        echo "    $tool   verify    run $run: content identical; WARNING: file mode/mtime differ for $(diff "$a" "$b" | grep -c '^<' || true) files"
    fi
}

tool_cmd() { # tool op -> sets CMD array
    local tool="$1" op="$2"
    case "$tool:$op" in
        restic:init) CMD=(restic init) ;;
        restic:snap1|restic:snap2) CMD=(restic backup "$CORPUS") ;;
        restic:restore) CMD=(restic restore latest --target "$RESTORE") ;;
        zenith:init) CMD=("$ZENITH_BIN" repo init "${ZENITH_INIT[@]}") ;;
        zenith:snap1|zenith:snap2) CMD=("$ZENITH_BIN" snapshot create "$CORPUS") ;;
        zenith:restore) CMD=("$ZENITH_BIN" snapshot restore latest --target "$RESTORE" --no-backup) ;;
        *) echo "internal error: tool_cmd $tool $op" >&2; exit 2 ;;
    esac
}

run_tool() {
    echo "  -- $1, run $2/$RUNS"
    fresh_corpus "$1" "$2"
    run_tool_measure "$1" "$2"
    park_run "$1" "$2"
}

run_tool_measure() {
    local tool="$1" run="$2" repo s1 s2
    repo="$(repo_of "$tool")"
    if [[ -e "$repo" || -e "$RESTORE" || -e "$XDG_CACHE_HOME" ]]; then
        echo "internal error: leftover repository/restore/cache dir" >&2
        exit 2
    fi
    warm_tree "$CORPUS"

    tool_cmd "$tool" init
    measure "$tool" init "$run" "${CMD[@]}"
    if ((!MEASURE_OK)); then COMMAND_FAILURES=$((COMMAND_FAILURES + 1)); return 0; fi

    tool_cmd "$tool" snap1
    measure "$tool" snap1 "$run" "${CMD[@]}"
    if ((!MEASURE_OK)); then COMMAND_FAILURES=$((COMMAND_FAILURES + 1)); return 0; fi
    s1="$(du -sb "$repo" | cut -f1)"
    record "$tool" repo1 "$run" bytes "$s1"

    python3 "$GEN" mutate "$CORPUS" --seed "$SEED" --scale "$SCALE" 2>"$LOGS/$tool.mutate.run$run.log" \
        || { cat "$LOGS/$tool.mutate.run$run.log" >&2; die "corpus mutation failed"; }
    warm_tree "$CORPUS"
    tool_cmd "$tool" snap2
    measure "$tool" snap2 "$run" "${CMD[@]}"
    if ((!MEASURE_OK)); then COMMAND_FAILURES=$((COMMAND_FAILURES + 1)); return 0; fi
    s2="$(du -sb "$repo" | cut -f1)"
    record "$tool" repo2 "$run" bytes "$s2"
    record "$tool" growth "$run" bytes "$((s2 - s1))"
    echo "    $tool   repo      run $run: $s1 bytes after first snapshot, +$((s2 - s1)) bytes after the 1% change"

    mkdir -p "$RESTORE"
    warm_tree "$repo"
    warm_tree "$CORPUS"
    tool_cmd "$tool" restore
    measure "$tool" restore "$run" "${CMD[@]}"
    if ((!MEASURE_OK)); then COMMAND_FAILURES=$((COMMAND_FAILURES + 1)); return 0; fi
    verify "$tool" "$run"
}

# ---------------------------------------------------------------------------
# Runs (interleaved)
# ---------------------------------------------------------------------------
ACTIVE=()
if ((WANT_ZENITH)) && [[ -n "$ZENITH_BIN" ]]; then ACTIVE+=(zenith); fi
if ((WANT_RESTIC)); then ACTIVE+=(restic); fi
if ((${#ACTIVE[@]})); then stage_corpora; fi
note "running: ${ACTIVE[*]:-nothing} x $RUNS (interleaved)"
for ((run = 1; run <= RUNS; run++)); do
    for tool in "${ACTIVE[@]}"; do
        run_tool "$tool" "$run"
    done
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
REPORT="$WORK/report.md"
BM_CMDLINE="$CMDLINE" \
BM_MACHINE="$NPROC CPUs, $CPU_MODEL, $MEM_TOTAL RAM, $KERNEL" \
BM_FS="$WORK_FS" \
BM_RESTIC="$RESTIC_VERSION" \
BM_ZENITH="$ZENITH_VERSION" \
BM_ZENITH_STATUS="$ZENITH_STATUS" \
BM_CORPUS="$CORPUS_FILES files, $CORPUS_BYTES bytes (scale $SCALE, seed $SEED)" \
BM_RUNS="$RUNS" \
BM_NPROC="$NPROC" \
BM_LOW_SPACE="$LOW_SPACE" \
BM_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
BM_WANT_ZENITH="$WANT_ZENITH" \
BM_WANT_RESTIC="$WANT_RESTIC" \
python3 - "$RESULTS" "$REPORT" <<'PYEOF'
import os, statistics, sys
from collections import defaultdict

results, report = sys.argv[1], sys.argv[2]
E = os.environ
meta = {
    "cmdline": E["BM_CMDLINE"],
    "machine": E["BM_MACHINE"],
    "fs": E["BM_FS"],
    "restic": E["BM_RESTIC"],
    "zenith": E["BM_ZENITH"],
    "zenith_status": E["BM_ZENITH_STATUS"],
    "corpus": E["BM_CORPUS"],
    "runs": int(E["BM_RUNS"]),
    "nproc": int(E["BM_NPROC"]),
    "date": E["BM_DATE"],
    "want_zenith": E["BM_WANT_ZENITH"] == "1",
    "want_restic": E["BM_WANT_RESTIC"] == "1",
}

vals = defaultdict(dict)          # (tool, op, metric) -> {run: value}
failed = defaultdict(list)        # (tool, op) -> [run]
verify = defaultdict(dict)        # tool -> {run: (status, detail)}
with open(results) as f:
    for line in f:
        tool, op, run, metric, value = line.rstrip("\n").split("\t")
        run = int(run)
        if metric == "failed":
            failed[(tool, op)].append(run)
        elif op == "verify":
            verify[tool][run] = (metric, value)
        else:
            vals[(tool, op, metric)][run] = float(value)

def series(tool, op, metric):
    return list(vals.get((tool, op, metric), {}).values())

def med(xs):
    return statistics.median(xs) if xs else None

# init + first snapshot, per run
for tool in ("zenith", "restic"):
    a = vals.get((tool, "init", "wall"), {})
    b = vals.get((tool, "snap1", "wall"), {})
    vals[(tool, "init+snap1", "wall")] = {r: a[r] + b[r] for r in a if r in b}
    a = vals.get((tool, "init", "cpu"), {})
    b = vals.get((tool, "snap1", "cpu"), {})
    vals[(tool, "init+snap1", "cpu")] = {r: a[r] + b[r] for r in a if r in b}

OPS = ("init", "snap1", "snap2", "restore")

def complete_runs(tool):
    """Runs in which every measured operation of `tool` succeeded."""
    return [r for r in range(1, meta["runs"] + 1)
            if all(r in vals.get((tool, op, "wall"), {}) for op in OPS)]

def peak(tool):
    # Only runs where all operations succeeded: a run that died early would
    # otherwise under-report the peak.
    runs = complete_runs(tool)
    xs = [vals[(tool, op, "rss_kib")][r] for r in runs for op in OPS]
    return max(xs) if xs else None

def fmt_s(x):
    return "n/a" if x is None else f"{x:.2f} s"

def fmt_b(x):
    if x is None:
        return "n/a"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(x) >= div:
            return f"{x / div:.2f} {unit}"
    return f"{int(x)} B"

def fmt_kib(x):
    return "n/a" if x is None else f"{x / 1024:.1f} MiB"

# (label, tool op, metric, formatter, target ratio or None, target text)
rows = [
    ("first snapshot (wall)", "snap1", "wall", fmt_s, 1 / 3, "<= 1/3"),
    ("snapshot after 1% change (wall)", "snap2", "wall", fmt_s, 1 / 3, "<= 1/3"),
    ("full restore (wall)", "restore", "wall", fmt_s, 1 / 2, "<= 1/2"),
    ("repo growth from 1% change", "growth", "bytes", fmt_b, 1 / 5, "<= 1/5"),
    ("repo size after first snapshot", "repo1", "bytes", fmt_b, 1.05, "<= 1.05"),
    ("peak RSS (max over all operations)", "PEAK", "rss_kib", fmt_kib, 1.0, "<= 1.00"),
]
info_rows = [
    ("repo init (wall)", "init", "wall", fmt_s),
    ("init + first snapshot (wall)", "init+snap1", "wall", fmt_s),
    ("first snapshot (user+sys CPU)", "snap1", "cpu", fmt_s),
    ("snapshot after change (user+sys CPU)", "snap2", "cpu", fmt_s),
    ("full restore (user+sys CPU)", "restore", "cpu", fmt_s),
    ("first snapshot (peak RSS)", "snap1", "rss_kib", fmt_kib),
    ("snapshot after change (peak RSS)", "snap2", "rss_kib", fmt_kib),
    ("full restore (peak RSS)", "restore", "rss_kib", fmt_kib),
    ("repo size after second snapshot", "repo2", "bytes", fmt_b),
]

def value(tool, op, metric):
    if op == "PEAK":
        return peak(tool)
    return med(series(tool, op, metric))

def nruns(tool, op, metric):
    if op == "PEAK":
        return len(complete_runs(tool))
    return len(series(tool, op, metric))

def verify_failed(tool):
    return any(s != "ok" for s, _ in verify.get(tool, {}).values())

out = []
p = out.append
p("# zenith vs restic: snapshot benchmark")
p("")
p(f"- date: {meta['date']}")
p(f"- command: `{meta['cmdline']}`")
p(f"- machine: {meta['machine']}; work dir filesystem: {meta['fs']}")
p(f"- restic: {meta['restic']}")
zs = meta["zenith"] + (f" [{meta['zenith_status']}]" if meta["zenith_status"] else "")
p(f"- zenith: {zs}")
p(f"- corpus: {meta['corpus']}")
p(f"- runs: {meta['runs']} per tool, interleaved (zenith, restic, zenith, restic, ...); values are medians")
p("- caches: not dropped; corpus (and repository before restores) read once with cat >/dev/null and"
  " `sync` run before every measured operation, so all runs start from a warm page cache")
if E["BM_LOW_SPACE"] == "1":
    p("- **note: each run's data was deleted right after the run (--low-space, or disk space was short); "
      "timings after large deletions can be noisier**")
else:
    p("- nothing was deleted while measuring (each run's corpus copy was staged beforehand; data removed only at the end)")
p("- each run: fresh copy of the pristine corpus at the same absolute path, fresh repository;"
  " init, snapshot, mutate (gen_corpus.py mutate, identical for both tools), snapshot, restore into an empty dir")
noisy = []
for (t, op, m), d in vals.items():
    if m != "other_cpu":
        continue
    for r, other in d.items():
        wall = vals.get((t, op, "wall"), {}).get(r)
        if wall and other > 0.10 * wall * meta["nproc"] + 0.5:
            noisy.append(f"{t} {op} run {r} ({other:.1f} CPU-s over {wall:.1f} s)")
if noisy:
    p("- **WARNING: other processes used significant CPU during these measurements, so the numbers are noisy:** "
      + "; ".join(sorted(noisy)))
else:
    p("- machine was otherwise idle during all measurements (other CPU < 10% of capacity)")
p("")
p("| operation | zenith | restic | zenith/restic | target | result |")
p("|---|---:|---:|---:|---:|:---:|")
for label, op, metric, fm, target, ttext in rows:
    z = value("zenith", op, metric)
    r = value("restic", op, metric)
    ratio = (z / r) if (z is not None and r not in (None, 0)) else None
    if not meta["want_zenith"] or meta["zenith_status"]:
        result = "n/a (no zenith)"
    elif z is None:
        result = "**FAIL** (zenith error)"
    elif r is None:
        result = "n/a (no restic)"
    elif ratio is None:
        result = "n/a"
    elif op == "restore" and verify_failed("zenith"):
        result = "**FAIL** (restore mismatch)"
    else:
        result = "PASS" if ratio <= target + 1e-12 else "**FAIL**"
    rs = "n/a" if ratio is None else f"{ratio:.3f}"
    zn = nruns("zenith", op, metric)
    zt = fm(z) + (f" ({zn}/{meta['runs']} runs)" if z is not None and zn != meta["runs"] else "")
    p(f"| {label} | {zt} | {fm(r)} | {rs} | {ttext} | {result} |")
p("")
p("Informational (no target):")
p("")
p("| operation | zenith | restic | zenith/restic |")
p("|---|---:|---:|---:|")
for label, op, metric, fm in info_rows:
    z = value("zenith", op, metric)
    r = value("restic", op, metric)
    ratio = (z / r) if (z is not None and r not in (None, 0)) else None
    p(f"| {label} | {fm(z)} | {fm(r)} | {'n/a' if ratio is None else f'{ratio:.3f}'} |")
p("")
p("Restore verification (restored tree vs mutated corpus, `diff -r` + mode/size/mtime):")
p("")
for tool in ("zenith", "restic"):
    v = verify.get(tool)
    if not v:
        continue
    p(f"- {tool}: " + "; ".join(f"run {r}: {s} ({d})" for r, (s, d) in sorted(v.items())))
if any(verify_failed(t) for t in verify):
    p("")
    p("**!!! RESTORE MISMATCH: a restored tree did not match the corpus. See above. !!!**")
if failed:
    p("")
    p("Failed commands: " + ", ".join(f"{t} {op} (runs {', '.join(map(str, rs))})"
                                      for (t, op), rs in sorted(failed.items())))
p("")
p("Raw per-run values:")
p("")
p("| tool | run | init s | snap1 s | snap2 s | restore s | repo1 bytes | growth bytes | max RSS KiB "
  "| kernel-thread CPU s | other-process CPU s |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for tool in ("zenith", "restic"):
    for r in range(1, meta["runs"] + 1):
        def g(op, m, f="{:.2f}"):
            x = vals.get((tool, op, m), {}).get(r)
            return "-" if x is None else f.format(x)
        rss = [vals.get((tool, op, "rss_kib"), {}).get(r) for op in ("init", "snap1", "snap2", "restore")]
        rss = [x for x in rss if x is not None]
        oth = [vals.get((tool, op, "other_cpu"), {}).get(r) for op in ("init", "snap1", "snap2", "restore")]
        oth = "/".join("-" if x is None else f"{x:.1f}" for x in oth)
        krn = [vals.get((tool, op, "kernel_cpu"), {}).get(r) for op in ("init", "snap1", "snap2", "restore")]
        krn = "/".join("-" if x is None else f"{x:.1f}" for x in krn)
        if all(g(op, "wall") == "-" for op in ("init", "snap1", "snap2", "restore")) and not rss:
            continue
        p(f"| {tool} | {r} | {g('init','wall')} | {g('snap1','wall')} | {g('snap2','wall')} | "
          f"{g('restore','wall')} | {g('repo1','bytes','{:.0f}')} | {g('growth','bytes','{:.0f}')} | "
          f"{max(rss):.0f} | {krn} | {oth} |" if rss else f"| {tool} | {r} | - | - | - | - | - | - | - | - | - |")
p("")
p("(kernel-thread / other-process CPU columns: init/snap1/snap2/restore.)")
with open(report, "w") as f:
    f.write("\n".join(out) + "\n")
PYEOF

cp -- "$REPORT" "$OUT"
cp -- "$RESULTS" "${OUT%.md}.tsv"
echo
cat "$REPORT"
echo
echo "==> report written to $OUT (raw values: ${OUT%.md}.tsv); logs in $LOGS$( ((KEEP)) || echo ' (deleted; use --keep)')"

status=0
if ((VERIFY_FAILURES)); then
    loud "$VERIFY_FAILURES restore(s) did NOT match the corpus"
    status=1
fi
if ((COMMAND_FAILURES)); then
    echo "==> $COMMAND_FAILURES command(s) failed (see above)" >&2
    status=1
fi
exit "$status"
