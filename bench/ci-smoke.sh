#!/usr/bin/env bash
# CI's fuzz smoke (called by .ci/run): every fuzz target for CI_FUZZ_SECONDS (default 40) each,
# five targets -> about 3.5 minutes with the build. Fails on any crash, hang or out-of-memory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FUZZ_SECONDS=${CI_FUZZ_SECONDS:-40} exec bash "$here/fuzz-smoke.sh"
