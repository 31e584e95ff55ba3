#!/usr/bin/env bash
# The comparison scanners bench/run.sh times alembic against, installed for the benchmark only
# (not for the tests, not in CI's path): checkov into its own venv (its pinned dependencies do
# not belong in the test tools' venv). zizmor comes with scripts/install-tools.sh (.tools/bin).
#
#   bash bench/setup.sh      # then: CHECKOV=bench/.venv/bin/checkov bash bench/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/bench/.venv"
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
if [ ! -x "$venv/bin/checkov" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
"$venv/bin/checkov" --version
command -v zizmor >/dev/null || [ -x "$root/.tools/bin/zizmor" ] || {
  echo "bench/setup.sh: zizmor missing; run scripts/install-tools.sh" >&2
  exit 3
}
