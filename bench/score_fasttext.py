"""fastText's Python package predicting every class's probability for the same texts
with the same model, as bench/score.sh runs it beside primer's `score` bench.

usage: score_fasttext.py MODEL TEXTS.jsonl
"""

import json
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
for p in range(2):  # the second pass is timed, as primer's
    c0, t0 = cpu_seconds(), time.perf_counter()
    checksum = 0.0
    for t in texts:
        labels, probs = model.predict(t, k=-1)
        checksum += float(probs[0]) if len(probs) else 0.0
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
print(f"fasttext: {len(texts)} documents, {mb:.1f} MB, 1 thread: {len(texts) / wall:.0f} documents/s, "
      f"{mb / wall:.1f} MB/s, {mb / cpu:.1f} MB per CPU second")
print(json.dumps({"tool": "fasttext", "threads": 1, "documents": len(texts), "mb": mb,
                  "wall_s": wall, "cpu_s": cpu, "checksum": checksum}))
