#!/usr/bin/env python3
"""Found / false-positive table per category over the scan fixture set.

    scan-accuracy.py EXPECTED_TXT NAME=FINDINGS.json ...

EXPECTED_TXT is crates/alembic-policy/tests/fixtures/scan/expected.txt: one fixture per line,
`path CODE:LINE[:w] ...`; `bad-*` files hold planted problems, `good-*` files are clean.
Each FINDINGS.json is a list of [path, code, line] the scanner reported, path relative to the
fixture root (bench/run.sh converts each tool's own output to this shape).

For alembic (whose codes the table uses) a planted problem is found when a finding has its code
and line. Other scanners use other rule names, so for them a bad file counts as found when they
report anything in it (a generous reading: it may be for another reason). A finding in a good
file is a false positive for everyone.
"""
import json
import sys
from collections import defaultdict

expected = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    path, *toks = line.split()
    expected[path] = [(t.split(":")[0], int(t.split(":")[1])) for t in toks]

cats = sorted({p.split("/")[0] for p in expected})
print("| category | planted (bad files) | clean files | " + " | ".join(
    f"{n.split('=')[0]} found | {n.split('=')[0]} false pos." for n in sys.argv[2:]) + " |")
print("|---|---|---|" + "---|---|" * len(sys.argv[2:]))
totals = defaultdict(int)
rows = []
for cat in cats + ["all"]:
    files = [p for p in expected if cat == "all" or p.startswith(cat + "/")]
    bad = [p for p in files if p.split("/")[-1].startswith("bad-")]
    good = [p for p in files if p.split("/")[-1].startswith("good-")]
    planted = sum(len(expected[p]) for p in bad)
    cells = [cat, f"{planted} ({len(bad)})", str(len(good))]
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        found = json.load(open(path))
        by_file = defaultdict(list)
        for f, code, ln in found:
            by_file[f].append((code, ln))
        if name.startswith("alembic"):
            hit = sum(1 for p in bad for e in expected[p] if e in by_file[p])
            cells.append(f"{hit}/{planted}")
        else:
            hit = sum(1 for p in bad if by_file[p])
            cells.append(f"{hit}/{len(bad)} files")
        fp = sum(len(by_file[p]) for p in good)
        fp_files = sum(1 for p in good if by_file[p])
        cells.append(f"{fp} in {fp_files} files")
    print("| " + " | ".join(cells) + " |")
