#!/usr/bin/env bash
# A first run of zenith's main job with its defaults: build, create a repository, snapshot a
# directory, change it, snapshot again, verify every byte, restore, and compare.
# Usage: scripts/try.sh [DIR]   (DIR defaults to this source tree's crates/ directory)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$(cd "${1:-$root/crates}" && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
zenith="$root/target/release/zenith"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ZENITH_REPO="$work/repo" ZENITH_PASSWORD="try-me"
cp -a "$src" "$work/data"

set -x
"$zenith" repo init
"$zenith" snapshot create "$work/data" --type data --tag first
echo "a change" >> "$work/data/CHANGED.txt"
"$zenith" snapshot create "$work/data" --type data
"$zenith" snapshot list
"$zenith" snapshot diff first latest
"$zenith" snapshot verify --read-data
"$zenith" snapshot restore first --target "$work/restored"
set +x
diff -r "$src" "$work/restored" && echo "restored tree is identical to the first snapshot's source"
