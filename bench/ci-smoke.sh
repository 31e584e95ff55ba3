#!/usr/bin/env bash
# CI's fuzz smoke (called by .ci/run): every fuzz target for CI_FUZZ_SECONDS (default 8) each,
# eight targets: about a minute of fuzzing plus the ASan build. Fails on any crash, hang or OOM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FUZZ_SECONDS=${CI_FUZZ_SECONDS:-8} exec bash "$here/fuzz-smoke.sh"
