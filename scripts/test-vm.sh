#!/usr/bin/env bash
# The VM tests (crates/alembic/tests/vm_bootstrap.rs): a Debian 13 qemu VM bootstrapped by the
# rendered cloud-init and deployed to by `alembic apply` (the first journey), and one
# bootstrapped by `alembic bootstrap`. Minutes each under TCG; scripts/test.sh runs them beside
# the rest of the suite, this script runs them alone. Every real part is required here, as there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
export ALEMBIC_REQUIRE_TOOLS=1 ALEMBIC_REQUIRE_E2E=1
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1
cargo test --locked -p alembic-infra --test vm_bootstrap "$@" -- --nocapture
