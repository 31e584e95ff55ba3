#!/usr/bin/env bash
# Run the whole test suite with every real part required: the checkers (terraform, docker
# compose, caddy, actionlint+shellcheck, zizmor, plistutil, systemd-analyze, cloud-init,
# kubernetes-validate), sshd, the Docker engine and qemu. A missing tool fails the run instead
# of skipping tests.
#
# The VM tests (crates/alembic/tests/vm_bootstrap.rs: two qemu guests under TCG, minutes each)
# start in the background once every test binary is built, and the rest of the suite runs
# beside them; their output is printed when they end. With arguments (a filter, `-p CRATE`),
# this is plain `cargo test --workspace` with them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
export ALEMBIC_REQUIRE_TOOLS=1 ALEMBIC_REQUIRE_E2E=1
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1
if [ $# -gt 0 ]; then
  exec cargo test --workspace --locked "$@"
fi

vm_tests=(cloud_init_journey bootstrap_command_on_an_existing_server)
cargo test --workspace --locked --no-run
vm_log=$(mktemp)
vm_pid=""
stop_vm() {
  if [ -n "$vm_pid" ] && kill -0 "$vm_pid" 2>/dev/null; then
    # Its own session (setsid): the whole group goes, cargo, the test binary and its qemus
    # (which also die with the test binary, by their parent-death signal).
    kill -TERM -- "-$vm_pid" 2>/dev/null || true
  fi
  rm -f "$vm_log"
}
trap stop_vm EXIT
t0=$SECONDS
setsid cargo test --locked -p alembic-infra --test vm_bootstrap -- --nocapture >"$vm_log" 2>&1 &
vm_pid=$!

skips=()
for t in "${vm_tests[@]}"; do skips+=(--skip "$t"); done
status=0
# --no-fail-fast: every test binary runs, and every failure is reported, not only the first.
cargo test --workspace --locked --no-fail-fast -- --exact "${skips[@]}" || status=$?
echo "test.sh: the rest of the suite ended after $((SECONDS - t0)) s (exit $status); waiting for the VM tests"
vm_status=0
wait "$vm_pid" || vm_status=$?
vm_pid=""
echo "== VM tests (crates/alembic/tests/vm_bootstrap.rs), $((SECONDS - t0)) s, exit $vm_status"
cat "$vm_log"
if [ "$status" -ne 0 ] || [ "$vm_status" -ne 0 ]; then
  exit 1
fi
