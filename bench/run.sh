#!/usr/bin/env bash
# Whole-process benchmarks of the release binary: wall time with hyperfine, peak memory with
# /usr/bin/time -v. Writes a markdown table to bench/results/latest.md (and stdout).
#
#   bench/run.sh            # everything (about 5 minutes; checkov adds its own time)
#   BENCH_QUICK=1 bench/run.sh   # fewer hyperfine runs
#   CHECKOV=/path/to/checkov bench/run.sh   # a checkov outside PATH / .tools/venv / bench/.venv
#   bash bench/setup.sh      # installs checkov into bench/.venv (zizmor is in .tools)
#   BENCH_CHECKOV_SETS=0 bench/run.sh   # skip checkov over the 100 sets (minutes per run)
#   ALEMBIC_BEFORE=/path/to/older/alembic bench/run.sh   # add its column to the accuracy table
#
# Cases: `alembic check` on the embedded default and on generated 1k/10k-workload configs,
# `alembic render --out` of the default and of 1k, `alembic scan` over 100 rendered artifact
# sets and over the scan fixture set (crates/alembic-policy/tests/fixtures/scan, alone and as
# five copies); when checkov / zizmor are installed, they scan the same files in the same run.
# Then the found / false-positive table per category over the fixture set
# (bench/scan-accuracy.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.tools/bin:$PATH"
runs=${BENCH_RUNS:-20}; warmup=3
[ -n "${BENCH_QUICK:-}" ] && runs=5 && warmup=1
for t in hyperfine /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: $t missing; run scripts/install-tools.sh" >&2; exit 3; }
done

cargo build -q --release --manifest-path "$root/Cargo.toml" -p alembic-infra -p alembic-bench
bin="$root/target/release/alembic"
gen="$root/target/release/alembic-gen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/empty" "$root/bench/results"
for n in 1000 10000; do "$gen" "$n" > "$work/g$n.toml"; done

# 100 artifact sets: topologies of 1..100 workloads, each rendered into its own directory.
mkdir -p "$work/sets"
for i in $(seq 1 100); do
  "$gen" "$i" > "$work/sets/cfg-$i.toml"
  "$bin" -c "$work/sets/cfg-$i.toml" render --out "$work/sets/set-$i" >/dev/null 2>&1
done
rm -f "$work"/sets/cfg-*.toml
nfiles=$(find "$work/sets" -type f | wc -l)
# A few hundred rendered files: the sets of 1..18 workloads.
mkdir -p "$work/sets18"
for i in $(seq 1 18); do cp -r "$work/sets/set-$i" "$work/sets18/"; done
nfiles18=$(find "$work/sets18" -type f | wc -l)

# The scan fixture set, laid out so every tool recognises each kind (workflows under
# .github/workflows), once and as five copies (a few hundred files).
fixtures="$root/crates/alembic-policy/tests/fixtures/scan"
mkdir -p "$work/fx" "$work/fx5"
cp -r "$fixtures"/. "$work/fx/"
rm "$work/fx/expected.txt"
mkdir -p "$work/fx/workflow/.github/workflows"
mv "$work/fx"/workflow/*.yml "$work/fx/workflow/.github/workflows/"
for i in 1 2 3 4 5; do cp -r "$work/fx" "$work/fx5/copy-$i"; done
nfx=$(find "$work/fx" -type f | wc -l)
nfx5=$(find "$work/fx5" -type f | wc -l)

out="$root/bench/results/latest.md"
json="$work/hf.json"
{
  echo "# alembic whole-process benchmarks"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$root" rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM"
  echo "- scan corpus: 100 artifact sets, $nfiles files (sets 1-18: $nfiles18); fixture set $nfx files (x5: $nfx5)"
  echo "- load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| case | mean | median | stddev | min | user+sys | peak RSS |"
  echo "|---|---|---|---|---|---|---|"
} > "$out"

# bench <label> <dir> <command...>: hyperfine mean/stddev/min, and peak RSS from time -v.
bench() {
  local label=$1 dir=$2; shift 2
  local cmd
  cmd=$(printf '%q ' "$@")
  (cd "$dir" && hyperfine -N -i --warmup "$warmup" --runs "$runs" --export-json "$json" "$cmd" >/dev/null 2>&1)
  local rss
  # A scanner that finds problems exits non-zero; only its memory matters here.
  rss=$(cd "$dir" && { /usr/bin/time -v "$@" 2>&1 >/dev/null || true; } | awk -F': ' '/Maximum resident set size/{print $2}')
  python3 - "$json" "$label" "$rss" >> "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = lambda s: f"{s*1000:.1f} ms" if s < 1 else f"{s:.2f} s"
cpu = (r.get("user") or 0) + (r.get("system") or 0)
print(f"| {sys.argv[2]} | {ms(r['mean'])} | {ms(r['median'])} | {ms(r['stddev'] or 0)} | {ms(r['min'])} | {ms(cpu)} | {int(sys.argv[3])/1024:.1f} MB |")
PY
  tail -1 "$out" >&2
}

bench "alembic check (embedded default)" "$work/empty" "$bin" check
bench "alembic check (1k workloads)" "$work" "$bin" -c "$work/g1000.toml" check
bench "alembic check (10k workloads)" "$work" "$bin" -c "$work/g10000.toml" check
bench "alembic validate (10k workloads)" "$work" "$bin" -c "$work/g10000.toml" validate
bench "alembic render --out (default)" "$work/empty" "$bin" render --out "$work/r-default"
bench "alembic render --out (1k workloads)" "$work" "$bin" -c "$work/g1000.toml" render --out "$work/r-1k"
bench "alembic scan (100 artifact sets)" "$work" "$bin" scan "$work/sets"
bench "alembic scan (rendered sets 1-18, $nfiles18 files)" "$work" "$bin" scan "$work/sets18"
bench "alembic scan (fixture set, $nfx files)" "$work" "$bin" scan "$work/fx"
bench "alembic scan (fixture set x5, $nfx5 files)" "$work" "$bin" scan "$work/fx5"
if command -v zizmor >/dev/null; then
  # zizmor reads workflows only: the same 100 sets' .github/workflows files.
  bench "zizmor --offline (same 100 sets' workflows)" "$work" zizmor --offline --no-progress "$work/sets"
  bench "zizmor --offline (fixture set's workflows)" "$work" zizmor --offline --no-progress "$work/fx/workflow"
fi
checkov=${CHECKOV:-$(command -v checkov || true)}
[ -z "$checkov" ] && [ -x "$root/.tools/venv/bin/checkov" ] && checkov="$root/.tools/venv/bin/checkov"
[ -z "$checkov" ] && [ -x "$root/bench/.venv/bin/checkov" ] && checkov="$root/bench/.venv/bin/checkov"
if [ -n "$checkov" ]; then
  # checkov is slow: fewer runs keep the whole script in minutes.
  runs_saved=$runs; runs=3; warmup_saved=$warmup; warmup=0
  # Minutes per run over the 100 sets on a shared machine: BENCH_CHECKOV_SETS=0 skips that row.
  if [ "${BENCH_CHECKOV_SETS:-1}" != 0 ]; then
    bench "checkov -d (same 100 sets)" "$work" "$checkov" -d "$work/sets" --quiet --compact --skip-download
  fi
  bench "checkov -d (fixture set)" "$work" "$checkov" -d "$work/fx" --quiet --compact --skip-download
  runs=$runs_saved; warmup=$warmup_saved
else
  echo "| checkov | not installed (pip install checkov into .tools/venv, or CHECKOV=...) | | | | | |" >> "$out"
fi

# Found / false positives per category over the fixture set: each tool's findings as
# [path, code, line] with the path as in expected.txt (category/basename).
norm() { python3 -c '
import json, sys, os
fx, kind = sys.argv[1], sys.argv[2]
raw = sys.stdin.read()
out = []
def rel(p):
    p = str(p)
    i = p.find(fx)
    p = p[i + len(fx):] if i >= 0 else p
    parts = [x for x in p.split("/") if x]
    return parts[0] + "/" + parts[-1] if len(parts) > 1 else None
if kind == "alembic":
    for d in json.loads(raw)["diagnostics"]:
        out.append([rel(d["file"]), d["code"], d["line"]])
elif kind == "checkov":
    data = json.loads(raw) if raw.strip() else []
    for rep in data if isinstance(data, list) else [data]:
        for c in rep.get("results", {}).get("failed_checks", []):
            out.append([rel(c["file_path"]), c["check_id"], (c.get("file_line_range") or [0])[0]])
elif kind == "zizmor":
    def strings(v):
        if isinstance(v, dict):
            for x in v.values(): yield from strings(x)
        elif isinstance(v, list):
            for x in v: yield from strings(x)
        elif isinstance(v, str): yield v
    def row(v):
        if isinstance(v, dict):
            if "start_point" in v: return v["start_point"].get("row", 0) + 1
            for x in v.values():
                r = row(x)
                if r: return r
        elif isinstance(v, list):
            for x in v:
                r = row(x)
                if r: return r
        return 0
    for f in json.loads(raw) if raw.strip() else []:
        path = next((s for s in strings(f.get("locations", f)) if s.endswith((".yml", ".yaml"))), None)
        if path: out.append([rel(path), f.get("ident", "zizmor"), row(f.get("locations", []))])
json.dump([o for o in out if o[0]], sys.stdout)
' "$work/fx" "$1"; }
acc=()
"$bin" scan --json "$work/fx" 2>/dev/null | norm alembic > "$work/acc-alembic.json" || true
acc+=("alembic=$work/acc-alembic.json")
if [ -n "${ALEMBIC_BEFORE:-}" ]; then
  "$ALEMBIC_BEFORE" scan --json "$work/fx" 2>/dev/null | norm alembic > "$work/acc-before.json" || true
  acc+=("alembic-before=$work/acc-before.json")
fi
if [ -n "$checkov" ]; then
  "$checkov" -d "$work/fx" -o json --quiet --compact --skip-download 2>/dev/null | norm checkov > "$work/acc-checkov.json" || true
  acc+=("checkov=$work/acc-checkov.json")
fi
if command -v zizmor >/dev/null; then
  zizmor --offline --no-progress --format json "$work/fx/workflow" 2>/dev/null | norm zizmor > "$work/acc-zizmor.json" || true
  acc+=("zizmor=$work/acc-zizmor.json")
fi
{
  echo
  echo "Found / false positives per category over the fixture set (bench/scan-accuracy.py):"
  echo
  python3 "$root/bench/scan-accuracy.py" "$fixtures/expected.txt" "${acc[@]}"
} >> "$out"

python3 - "$out" > "$work/ratios.md" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"\| (.+?) \| ([\d.]+) (ms|s) \|", line)
    if m:
        rows[m.group(1)] = float(m.group(2)) * (1 if m.group(3) == "ms" else 1000)
def ratio(a, b, what):
    if a in rows and b in rows:
        print(f"- {what}: {rows[a] / rows[b]:.1f}x")
print()
print("Ratios (mean wall time):")
ratio("alembic check (10k workloads)", "alembic check (1k workloads)", "check 10k / 1k (target <= 12)")
ratio("checkov -d (same 100 sets)", "alembic scan (100 artifact sets)", "checkov / alembic scan")
ratio("zizmor --offline (same 100 sets' workflows)", "alembic scan (100 artifact sets)", "zizmor / alembic scan")
fx = [k for k in rows if k.startswith("alembic scan (fixture set,")]
if fx:
    ratio("checkov -d (fixture set)", fx[0], "checkov / alembic scan, fixture set")
    ratio("zizmor --offline (fixture set's workflows)", fx[0], "zizmor / alembic scan, fixture set")
PY
cat "$work/ratios.md" >> "$out"
cat "$out"
