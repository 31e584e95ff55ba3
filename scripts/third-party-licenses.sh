#!/usr/bin/env bash
# THIRD-PARTY-LICENSES.md: the licences of every crate compiled into the release binary, from
# Cargo.lock and the crates' own licence files (cargo-about; about.toml, about.hbs).
#
#   bash scripts/third-party-licenses.sh          # rewrite THIRD-PARTY-LICENSES.md
#   bash scripts/third-party-licenses.sh --check  # exit 1 when it is not current (CI)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v cargo-about >/dev/null || cargo install --locked cargo-about --features cli
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo about generate --locked --fail --manifest-path crates/alembic/Cargo.toml \
  -c about.toml about.hbs -o "$out"
if [ "${1:-}" = "--check" ]; then
  if ! diff -u THIRD-PARTY-LICENSES.md "$out" >&2; then
    echo "THIRD-PARTY-LICENSES.md is out of date: run bash scripts/third-party-licenses.sh" >&2
    exit 1
  fi
  echo "THIRD-PARTY-LICENSES.md is current" >&2
else
  cat "$out" > THIRD-PARTY-LICENSES.md
fi
