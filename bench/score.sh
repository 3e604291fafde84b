#!/usr/bin/env bash
# The `score` stage's prediction — exact (fastText's answers bit for bit) and `projected`
# (the output layer folded into the input rows) — beside fastText's Python package
# (fasttext-numpy2-wheel 0.9.2, the C++ fastText underneath), in one run, on the same texts
# with the same model: every class's probability of every document, timed, then compared
# document by document with fastText's. The model is trained by primer's
# `train_classifier` stage (fastText's C++ trainer, DCLM's recipe: dim 100, word bigrams,
# 2M buckets) on the shared documentation pages, teaching pages against release notes,
# catalog tables and source listings; the texts are all 5,689 pages (41 MB).
#
#   bench/score.sh [THREADS...]      (default: 1 2)
#
# Needs the shared data (PRIMER_TEST_DATA or ../shared/data) and a Python with fasttext
# (PRIMER_REF_PYTHON, as .ci/run makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${PRIMER_TEST_DATA:-../shared/data}
PY=${PRIMER_REF_PYTHON:-python3}
TARGET=${CARGO_TARGET_DIR:-target}
THREADS=${*:-1 2}
work=$(mktemp -d)
[ -n "${PRIMER_BENCH_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT

cargo build --release -q --bin primer
cargo bench -q -p primer-quality --bench score --no-run 2>/dev/null
BENCH=$(ls -t "$TARGET"/release/deps/score-* | grep -v '\.d$' | head -1)

# The texts, and the labelled pages to train on.
zstd -dc "$DATA/corpora/docs-pages-extracted.jsonl.zst" > "$work/texts.jsonl"
"$PY" - "$work/texts.jsonl" "$work" <<'PYEOF'
import json, sys
def teaching(i):
    if "127.0.0.1:8811/" in i:
        p = i.split("127.0.0.1:8811/", 1)[1]
        return True if p.startswith(("tutorial/", "howto/")) else None
    if "/python-django-doc/html/" in i:
        p = i.split("/python-django-doc/html/", 1)[1]
        if p.startswith(("topics/", "howto/", "intro/")): return True
        return False if p.startswith(("releases/", "_modules/")) else None
    if "/postgresql-doc-15/html/" in i:
        p = i.split("/postgresql-doc-15/html/", 1)[1]
        if p.startswith("tutorial"): return True
        return False if p.startswith(("catalog", "infoschema", "release")) else None
    return None
good, bad = open(sys.argv[2] + "/good.jsonl", "w"), open(sys.argv[2] + "/bad.jsonl", "w")
for line in open(sys.argv[1]):
    d = json.loads(line)
    t = teaching(d["id"])
    if t is not None:
        (good if t else bad).write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
PYEOF
cat > "$work/train.toml" <<TOML
[pipeline]
name = "score-bench"
workdir = "$work/work"
[stages.good.read]
paths = ["$work/good.jsonl"]
[stages.bad.read]
paths = ["$work/bad.jsonl"]
[stages.train]
inputs = ["good", "bad"]
[stages.train.train_classifier]
positive = ["good"]
negative = ["bad"]
epoch = 25
lr = 0.5
TOML
"$TARGET/release/primer" run "$work/train.toml" > /dev/null
MODEL="$work/work/train/model.bin"
echo "model: $(du -h "$MODEL" | cut -f1) (dim 100, word bigrams, 2M buckets); machine: $(nproc) cores"

export PRIMER_SCORE_PROBS="$work"
"$BENCH" "$MODEL" "$work/texts.jsonl" $THREADS | tee "$work/primer.out"
"$PY" bench/score_fasttext.py "$MODEL" "$work/texts.jsonl" | tee "$work/fasttext.out"
"$PY" - "$work" <<'PYEOF'
import json, sys
import numpy as np
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/primer.out") if l.startswith("{")]
f = [json.loads(l) for l in open(d + "/fasttext.out") if l.startswith("{")][0]
per_core = lambda r: r["mb"] / r["cpu_s"]
load = lambda name: np.loadtxt(f"{d}/{name}.txt", dtype=np.float64, ndmin=2).astype(np.float32)
ft = load("fasttext")
for tool in ("primer", "projected"):
    mine = [r for r in rows if r["tool"] == tool]
    one = next(r for r in mine if r["threads"] == 1)
    p = load(tool)
    same_label = (p.argmax(1) == ft.argmax(1)).mean()
    print(f"{tool}: {per_core(one) / per_core(f):.1f}x fastText's MB per CPU second (1 thread); "
          f"probabilities bit-identical for {(p == ft).all(1).mean():.1%} of documents, "
          f"largest difference {np.abs(p - ft).max():.2e}; same label for {same_label:.2%}")
    for r in mine:
        print(f"  {r['threads']} thread(s): {one['wall_s'] / r['wall_s']:.2f}x the 1-thread speed")
PYEOF
