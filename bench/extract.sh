#!/usr/bin/env bash
# `extract` beside trafilatura on the Python 3.11 docs (every page with a reST source):
# speed on one core, in one run, and quality against the reST sources (token precision,
# recall and F1; code blocks kept verbatim) with bench/extract_score.py.
#
#   bench/extract.sh
#
# Needs the shared data (PRIMER_TEST_DATA or ../shared/data); makes its own Python
# virtualenv with trafilatura (bench/extract_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${PRIMER_TEST_DATA:-../shared/data}
SITE="$DATA/sites/python-3.11-docs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PY=$(bench/extract_venv.sh)
cargo bench -q -p primer-crawl --bench extract -- "$SITE" "$work/primer.jsonl" 5 | tee "$work/primer.out"
"$PY" bench/extract_score.py --site "$SITE" --primer "$work/primer.jsonl" --trafilatura \
    --json "$work/score.json"
"$PY" - "$work/primer.out" "$work/score.json" <<'PYEOF'
import json, re, sys
primer = float(re.search(r"([0-9.]+) MB/s", open(sys.argv[1]).read()).group(1))
r = json.load(open(sys.argv[2]))["systems"]
for name in ("trafilatura", "trafilatura (favor_recall)"):
    t = r[name]["mb_per_s"]
    print(f"primer {primer:.1f} MB/s vs {name} {t:.2f} MB/s on one core: {primer / t:.0f}x")
PYEOF
