#!/usr/bin/env bash
# Container snapshots: `zenith snapshot container` against `docker commit` + `docker save` of
# the same container, in the same run. The container (of a demo-like image built here with
# `docker import`: the zenith binary and its libraries) gets SIZE_MB of files of its own (half
# text-like, half incompressible, in 1 MiB files); then a small change (CHANGE_MB: one new
# file, half of each kind, and one text file rewritten). Measured for the first snapshot and
# for the one after the change: wall time, and what is stored (zenith: growth of the
# repository; docker: size of the saved tar, and of the new layer alone). Also the time of
# `zenith snapshot restore --container` of the second snapshot.
# Needs a Docker engine, python3 and bc. ZENITH=path uses that binary instead of a release build.
# Usage: bench/container_snapshot.sh [SIZE_MB] [CHANGE_MB]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mb="${1:-400}"
change_mb="${2:-4}"
target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${ZENITH:-}" ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p zenith
fi
zenith="${ZENITH:-$target/release/zenith}"
work="$(mktemp -d)"
tag="zenith-bench-$$"
cleanup() {
    docker rm -f "$tag" "$tag-restored" >/dev/null 2>&1 || true
    docker rmi -f "$tag-base" "$tag-commit:1" "$tag-commit:2" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# The real key derivation: every zenith command below pays it, as a user's would.
export ZENITH_REPO="$work/repo" ZENITH_PASSWORD=bench

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
mib() { echo "$1 / 1048576" | bc -l | xargs printf '%.1f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.3fx'; }
repo_bytes() { du -sb "$ZENITH_REPO" | cut -f1; }

echo "building the image…"
mkdir -p "$work/rootfs"/{tmp,data,etc,srv}
cp "$zenith" "$work/rootfs/zenith"
for lib in $(ldd "$zenith" | grep -o '/[^ ]*'); do
    mkdir -p "$work/rootfs$(dirname "$lib")"
    cp -L "$lib" "$work/rootfs$lib"
done
chmod 1777 "$work/rootfs/tmp"
tar -C "$work/rootfs" -cf - . | docker import --change 'ENTRYPOINT ["/zenith", "demo-app"]' - "$tag-base" >/dev/null
image_mb=$(mib "$(docker image inspect -f '{{.Size}}' "$tag-base")")

echo "generating $size_mb MiB of files…"
gen() { # dir mb seed: half text-like, half random, in 1 MiB files
    python3 - "$@" <<'PY'
import os, random, sys
d, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = [b"order", b"customer", b"total", b"status", b"shipped", b"invoice", b"42", b"2026-11-23"]
rnd = random.Random(seed)
for i in range(n):
    path = os.path.join(d, f"part-{i // 100:02d}", f"f-{seed}-{i:05d}")
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
}
gen "$work/payload" "$size_mb" 1
gen "$work/change" "$change_mb" 2
docker run -d --name "$tag" -e PORT=8080 "$tag-base" >/dev/null
docker cp "$work/payload" "$tag:/srv/"
rm -rf "$work/payload"
sync

"$zenith" repo init >/dev/null
# zenith, first
r0=$(repo_bytes); t0=$(now)
"$zenith" snapshot container "$tag" >/dev/null
t1=$(now); r1=$(repo_bytes)
z1_t=$(secs "$t0" "$t1"); z1_b=$((r1 - r0))
# docker, first
t0=$(now)
docker commit "$tag" "$tag-commit:1" >/dev/null
docker save -o "$work/save1.tar" "$tag-commit:1"
t1=$(now)
d1_t=$(secs "$t0" "$t1"); d1_b=$(stat -c %s "$work/save1.tar")
d1_layer=$(docker image inspect -f '{{.Size}}' "$tag-commit:1"); d1_layer=$((d1_layer - $(docker image inspect -f '{{.Size}}' "$tag-base")))
rm -f "$work/save1.tar"

echo "changing $change_mb MiB…"
docker cp "$work/change" "$tag:/srv/payload/"
docker cp "$work/change/part-00/f-2-00000" "$tag:/srv/payload/part-00/f-1-00000"
sync

# zenith, second
r0=$(repo_bytes); t0=$(now)
snap=$("$zenith" snapshot container "$tag" --output-format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
t1=$(now); r1=$(repo_bytes)
z2_t=$(secs "$t0" "$t1"); z2_b=$((r1 - r0))
# docker, second: commit takes the whole read-write layer again
t0=$(now)
docker commit "$tag" "$tag-commit:2" >/dev/null
docker save -o "$work/save2.tar" "$tag-commit:2"
t1=$(now)
d2_t=$(secs "$t0" "$t1"); d2_b=$(stat -c %s "$work/save2.tar")
# (a commit's layer holds the container's whole difference from its image, not from the last commit)
d2_layer=$(( $(docker image inspect -f '{{.Size}}' "$tag-commit:2") - $(docker image inspect -f '{{.Size}}' "$tag-base") ))
rm -f "$work/save2.tar"

# zenith restore of the second snapshot as a new container
t0=$(now)
"$zenith" snapshot restore "$snap" --container "$tag-restored" --no-start >/dev/null
t1=$(now)
zr_t=$(secs "$t0" "$t1")

cat <<EOF2

container with $size_mb MiB of its own files (half text, half random; image $image_mb MiB), then $change_mb MiB changed
zenith $("$zenith" --version | cut -d' ' -f2), docker $(docker version -f '{{.Server.Version}}'), $(nproc) cores

| step | zenith snapshot container | docker commit + save | zenith / docker |
|---|---|---|---|
| first: time | ${z1_t} s | ${d1_t} s | $(ratio "$z1_t" "$d1_t") |
| first: stored | $(mib "$z1_b") MiB (repository growth) | $(mib "$d1_b") MiB (tar; new layer $(mib "$d1_layer") MiB) | $(ratio "$z1_b" "$d1_b") |
| after the change: time | ${z2_t} s | ${d2_t} s | $(ratio "$z2_t" "$d2_t") |
| after the change: stored | $(mib "$z2_b") MiB (repository growth) | $(mib "$d2_b") MiB (tar; new layer $(mib "$d2_layer") MiB) | $(ratio "$z2_b" "$d2_b") |
| restore as a new container | ${zr_t} s | | |
EOF2
