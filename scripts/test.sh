#!/usr/bin/env bash
# Run the whole test suite with every real part required: the checkers (terraform, docker
# compose, caddy, actionlint+shellcheck, zizmor, plistutil, systemd-analyze, cloud-init,
# kubernetes-validate), sshd, the Docker engine and qemu. A missing tool fails the run instead
# of skipping tests.
#
# The VM tests (crates/alembic/tests/vm_bootstrap.rs: two qemu guests under TCG, minutes each)
# start in the background once every test binary is built, and so does a second lane of the
# fleet E2E tests (e2e_rolling, e2e_fleet_daytwo: minutes of drain and health-check waits,
# little CPU; their droplets are 127.0.0.2-4, which no other test uses). The rest of the
# suite runs beside them; their output is printed when they end. With arguments (a filter, `-p CRATE`),
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
lane_bins=(e2e_rolling e2e_fleet_daytwo)
cargo test --workspace --locked --no-run
lane_args=()
for b in "${lane_bins[@]}"; do lane_args+=(--test "$b"); done
# The second lane's tests, by name, so the main lane skips exactly those.
mapfile -t lane_tests < <(cargo test --locked -q -p alembic-infra "${lane_args[@]}" -- --list --format terse 2>/dev/null | sed -n 's/: test$//p')
[ "${#lane_tests[@]}" -gt 0 ] || { echo "test.sh: no tests found in ${lane_bins[*]}" >&2; exit 1; }
vm_log=$(mktemp)
lane_log=$(mktemp)
vm_pid=""
lane_pid=""
stop_bg() {
  for p in "$vm_pid" "$lane_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      # Its own session (setsid): the whole group goes, cargo, the test binary and its children
      # (qemus also die with the test binary, by their parent-death signal).
      kill -TERM -- "-$p" 2>/dev/null || true
    fi
  done
  rm -f "$vm_log" "$lane_log"
}
trap stop_bg EXIT
t0=$SECONDS
setsid cargo test --locked -p alembic-infra --test vm_bootstrap -- --nocapture >"$vm_log" 2>&1 &
vm_pid=$!
setsid cargo test --locked --no-fail-fast -p alembic-infra "${lane_args[@]}" >"$lane_log" 2>&1 &
lane_pid=$!

skips=()
for t in "${vm_tests[@]}" "${lane_tests[@]}"; do skips+=(--skip "$t"); done
status=0
# --no-fail-fast: every test binary runs, and every failure is reported, not only the first.
cargo test --workspace --locked --no-fail-fast -- --exact "${skips[@]}" || status=$?
echo "test.sh: the rest of the suite ended after $((SECONDS - t0)) s (exit $status); waiting for the fleet lane and the VM tests"
lane_status=0
wait "$lane_pid" || lane_status=$?
lane_pid=""
echo "== fleet E2E lane (${lane_bins[*]}), $((SECONDS - t0)) s, exit $lane_status"
cat "$lane_log"
vm_status=0
wait "$vm_pid" || vm_status=$?
vm_pid=""
echo "== VM tests (crates/alembic/tests/vm_bootstrap.rs), $((SECONDS - t0)) s, exit $vm_status"
cat "$vm_log"
if [ "$status" -ne 0 ] || [ "$lane_status" -ne 0 ] || [ "$vm_status" -ne 0 ]; then
  exit 1
fi
