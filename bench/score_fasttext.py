"""fastText's Python package predicting every class's probability for the same texts
with the same model, as bench/score.sh runs it beside primer's `score` bench.

usage: score_fasttext.py MODEL TEXTS.jsonl

With PRIMER_SCORE_PROBS=DIR, also writes every document's probabilities (one line per
document, the model's labels in order) to DIR/fasttext.txt.
"""

import json
import os
import resource
import sys
import time

import fasttext


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


model = fasttext.load_model(sys.argv[1])
texts = [json.loads(line)["text"].replace("\n", " ").replace("\r", " ") for line in open(sys.argv[2])]
mb = sum(len(t.encode()) for t in texts) / 1e6
TIMED = 3  # passes after a warm-up one, as primer's
wall = cpu = 0.0
for p in range(TIMED + 1):
    c0, t0 = cpu_seconds(), time.perf_counter()
    checksum = 0.0
    for t in texts:
        labels, probs = model.predict(t, k=-1)
        checksum += float(probs[0]) if len(probs) else 0.0
    if p > 0:
        wall += (time.perf_counter() - t0) / TIMED
        cpu += (cpu_seconds() - c0) / TIMED
print(f"fasttext: {len(texts)} documents, {mb:.1f} MB, 1 thread: {len(texts) / wall:.0f} documents/s, "
      f"{mb / wall:.1f} MB/s, {mb / cpu:.1f} MB per CPU second")
print(json.dumps({"tool": "fasttext", "threads": 1, "documents": len(texts), "mb": mb,
                  "wall_s": wall, "cpu_s": cpu, "checksum": checksum}))

probs_dir = os.environ.get("PRIMER_SCORE_PROBS")
if probs_dir:
    index = {label: i for i, label in enumerate(model.get_labels())}
    with open(os.path.join(probs_dir, "fasttext.txt"), "w") as w:
        for t in texts:
            labels, probs = model.predict(t, k=-1)
            row = [0.0] * len(index)
            for label, p in zip(labels, probs):
                row[index[label]] = float(p)
            w.write(" ".join(repr(x) for x in row) + "\n")
