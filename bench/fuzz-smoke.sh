#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECONDS (default 60) each, from a seed corpus built out of
# the repo's fixtures, the embedded default and artifacts rendered from it. Fails on any crash.
#
# Only the stable toolchain exists here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the nightly flags
# (-Zsanitizer=address, coverage instrumentation) to stable rustc.
#
#   bench/fuzz-smoke.sh                  # all targets, 60 s each
#   FUZZ_SECONDS=600 bench/fuzz-smoke.sh config   # one target, 10 minutes
#
# Per-target results (executions, corpus size, crash or not) go to fuzz/smoke-results.txt.
set -euo pipefail
root=${ALEMBIC_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
secs=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config scan_compose scan_terraform scan_workflow scan_text scan_caddyfile scan_plist scan_unit)
export RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$root/fuzz"

# Seeds: a per-target directory under fuzz/corpus/ (git-ignored), refreshed from the repo's files
# every run; what the fuzzer adds there is kept between runs.
seed() { # seed <target> <files...>
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp -f "$f" "$dir/seed-$(sha256sum "$f" | cut -c1-16)"
  done
}
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
# Artifacts of the embedded default and of a small generated topology, rendered by the binary.
cargo build -q --manifest-path "$root/Cargo.toml" -p alembic-infra -p alembic-bench
bin="$root/target/debug"
"$bin/alembic-gen" 12 > "$rendered/gen12.toml"
(
  cd "$rendered"
  "$bin/alembic" render --out default >/dev/null 2>&1 || echo "fuzz-smoke: note: render of the default failed; fewer seeds" >&2
  "$bin/alembic" -c gen12.toml render --out gen >/dev/null 2>&1 || echo "fuzz-smoke: note: render of gen12 failed; fewer seeds" >&2
)

seed config "$root/crates/alembic-config/src/default.toml" "$rendered/gen12.toml" \
  "$root"/crates/alembic-config/tests/corpus/*.toml "$root"/crates/alembic-render/tests/fixtures/*.toml
files() { find "$@" -type f -print0 2>/dev/null; }
mapfile -d '' compose < <(files "$root/tests/fixtures" "$rendered" -name '*compose*.y*ml')
mapfile -d '' terraform < <(files "$root/tests/fixtures" "$rendered" -name '*.tf')
mapfile -d '' workflows < <(files "$root/tests/fixtures" "$rendered" -path '*workflows*' -name '*.y*ml')
mapfile -d '' any_text < <(files "$root/tests/fixtures/scan" "$rendered" -size -64k)
seed scan_compose "${compose[@]}"
seed scan_terraform "${terraform[@]}"
seed scan_workflow "${workflows[@]}"
seed scan_text "${any_text[@]}" "$root/crates/alembic-config/src/default.toml"
policy_fx="$root/crates/alembic-policy/tests/fixtures/scan"
mapfile -d '' caddyfiles < <(files "$policy_fx" "$rendered" -name '*Caddyfile*')
mapfile -d '' plists < <(files "$policy_fx" "$rendered" -name '*.plist')
mapfile -d '' units < <(files "$policy_fx" "$rendered" \( -name '*.service' -o -name '*.socket' -o -name '*.timer' \))
seed scan_caddyfile "${caddyfiles[@]}"
seed scan_plist "${plists[@]}"
seed scan_unit "${units[@]}"

cargo fuzz build >/dev/null
results="$root/fuzz/smoke-results.txt"
: > "$results"
failed=0
for t in "${targets[@]}"; do
  log="$root/fuzz/smoke-$t.log"
  echo "fuzz-smoke: $t for ${secs}s" >&2
  # -rss_limit_mb: a 2 GB blow-up is a bug too; -timeout: one input taking >10 s is a hang.
  if cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=CRASH; failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  corpus=$(find "corpus/$t" -type f | wc -l)
  printf '%-16s %-6s executions=%s corpus=%s seconds=%s\n' "$t" "$status" "$execs" "$corpus" "$secs" | tee -a "$results"
  if [ "$status" != ok ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 >&2
  fi
done
exit $failed
