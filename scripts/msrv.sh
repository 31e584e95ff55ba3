#!/usr/bin/env bash
# Build every crate (libraries and binaries, not tests) with the toolchain named by the
# workspace's rust-version, so the declared MSRV is the true one. Installs that toolchain with
# rustup when it is missing; fails when it cannot be installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$msrv" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }
rustup toolchain list | grep -q "^$msrv" || rustup toolchain install "$msrv" --profile minimal
# Every published crate must inherit it.
for m in crates/*/Cargo.toml; do
  grep -q '^rust-version.workspace = true' "$m" || { echo "msrv: $m does not inherit rust-version" >&2; exit 1; }
done
CARGO_TARGET_DIR="$root/target/msrv" cargo "+$msrv" check --workspace --locked
echo "msrv: every crate builds with rust $msrv" >&2
