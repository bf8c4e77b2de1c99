#!/usr/bin/env bash
# Install what the test suite needs, then run all of it: formatting, lints and every test.
# This is the command the README gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The registry tests (crates/zenith/tests/it/registry.rs) run a real OCI registry: Debian's
# docker-registry, with htpasswd from apache2-utils. They print SKIP where it cannot be installed.
if [ ! -x /usr/bin/docker-registry ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing docker-registry and apache2-utils"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils
fi

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
