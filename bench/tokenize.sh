#!/usr/bin/env bash
# Benchmark: primer's tokenize stage vs datatrove's DocumentTokenizer (PyPI
# datatrove[processing]==0.10.1), same text (the shared documentation pages), same
# tokenizer (GPT-2's tokenizer.json), one run. Prints, for each, MB/s of text, MB per
# CPU-second ("per core": CPU time counts every busy core) and tokens/s, then the ratios.
#
#   bench/tokenize.sh [THREADS] [MAX_DOCS]
#
# primer: the release bench target of crates/tokenize (no DataFusion linked): reading the
# Parquet input, encoding, token parts, shuffled Megatron + llm.c shards. datatrove:
# DocumentTokenizer.run over the same documents in memory (encode_batch, write, shuffle).
# $DATATROVE_PYTHON is a python with datatrove (default ../venv-ref/bin/python).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${PRIMER_DATA:-$root/../shared/data}"
threads="${1:-$(nproc)}"
max="${2:-1000000000}"
py="${DATATROVE_PYTHON:-$root/../venv-ref/bin/python}"
input="$data/corpora/docs-pages-extracted.jsonl.zst"
tok="$data/tokenizers/gpt2/tokenizer.json"

primer=$(cd "$root" && cargo bench -q -p primer-tokenize --bench tokenize -- "$input" "$tok" "$threads" "$max" | grep '^tool=')
datatrove=$(cd /tmp && RAYON_NUM_THREADS="$threads" "$py" "$root/bench/datatrove_tokenize.py" "$input" "$tok" "$max" 2>/dev/null | grep '^tool=')
python3 - "$primer" "$datatrove" "$threads" <<'PY'
import sys
def parse(line):
    return {k: v for k, v in (kv.split("=", 1) for kv in line.split())}
p, d, threads = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
rows = []
for r in (p, d):
    mb, wall, cpu, tok = int(r["bytes"]) / 1e6, float(r["wall"]), float(r["cpu"]), int(r["tokens"])
    r.update(mbs=mb / wall, mbcpu=mb / cpu, toks=tok / wall, mb=mb)
    print(f"{r['tool']:>9}: {r['docs']} docs, {mb:.1f} MB, {tok:,} tokens in {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU: {r['mbs']:.2f} MB/s, {r['mbcpu']:.2f} MB per CPU-second, "
          f"{r['toks']:,.0f} tokens/s ({threads} threads)")
if p["tokens"] != d["tokens"]:
    print(f"note: token counts differ ({p['tokens']} vs {d['tokens']}): primer drops empty documents")
print(f"ratio primer/datatrove: {p['mbs'] / d['mbs']:.2f}x wall throughput, "
      f"{p['mbcpu'] / d['mbcpu']:.2f}x per core (MB per CPU-second), "
      f"{p['toks'] / d['toks']:.2f}x tokens/s")
PY
