#!/usr/bin/env bash
# The full filter chain (language → gopher_quality → gopher_repetition → c4 → fineweb) on one
# core: primer (release bench target of primer-filters, no DataFusion) against datatrove
# 0.10.1 on the same documents, in one run; prints both MB/s per core and the ratio.
#
#   PRIMER_REF_PYTHON=/path/to/venv/bin/python bench/filters.sh [DOCS]
#
# DOCS: documents of ../shared/data/corpora/docs-pages-extracted.jsonl.zst (default 400,
# about 7 MB; datatrove needs about half a minute per MB).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/primer/target}"
PY="${PRIMER_REF_PYTHON:?set PRIMER_REF_PYTHON to a python with datatrove 0.10.1, spacy and fasttext (see .ci/run)}"
DOCS="${1:-400}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PRIMER_BENCH_DOCS="$DOCS" PRIMER_BENCH_DUMP="$TMP/input.jsonl" \
    cargo bench -q -p primer-filters --bench filters | tee "$TMP/primer.json"
NLTK_DATA=../shared/reference/nltk_data \
    "$PY" bench/filters_datatrove.py "$TMP/input.jsonl" ../shared/data/models/lid.176.ftz | tee "$TMP/datatrove.json"
python3 - "$TMP/primer.json" "$TMP/datatrove.json" <<'PYEOF'
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
d = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(f"primer {p['mb_per_s_per_core']:.2f} MB/s per core, datatrove {d['mb_per_s_per_core']:.4f} MB/s per core: "
      f"{p['mb_per_s_per_core'] / d['mb_per_s_per_core']:.0f}x (kept {p['kept']} vs {d['kept']} of {p['documents']})")
PYEOF
