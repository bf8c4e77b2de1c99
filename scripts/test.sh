#!/usr/bin/env bash
# Install what the test suite needs, then run all of it: formatting, lints and every test.
# This is the command the README gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests need nothing beyond a Rust toolchain and cargo-nextest (installed here if missing):
# they make their own repositories and data in temporary directories, and test xattrs only
# where the file system supports them.
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> tests"
cargo nextest run --workspace --no-fail-fast "$@"
