#!/usr/bin/env bash
# Run the whole test suite with every real part required: the checkers (terraform, docker
# compose, caddy, actionlint+shellcheck, zizmor, plistutil, systemd-analyze), sshd and the
# Docker engine. A missing tool fails the run instead of skipping tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
export ALEMBIC_REQUIRE_TOOLS=1 ALEMBIC_REQUIRE_E2E=1
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1
cargo test --workspace --locked "$@"
