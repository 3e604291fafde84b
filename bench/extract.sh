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
cargo bench -q -p primer-crawl --bench extract -- "$SITE" "$work/primer.jsonl" 5
"$PY" bench/extract_score.py --site "$SITE" --primer "$work/primer.jsonl" --trafilatura \
    --json "$work/score.json"
"$PY" - "$work/score.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: v for k, v in r.items() if k != "per_page"}, indent=1)[:3000])
PYEOF
