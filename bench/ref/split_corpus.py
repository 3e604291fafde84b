"""Write a JSONL(.zst) corpus as N plain JSONL files of its documents with non-empty text
(datatrove's reader skips empty ones, which would shift its document numbers).

Usage: split_corpus.py INPUT.jsonl.zst OUT_DIR N
"""
import io
import json
import os
import sys

import zstandard

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = []
with open(src, "rb") as f:
    for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8"):
        d = json.loads(line)
        if d["text"]:
            docs.append({"id": d["id"], "text": d["text"]})
os.makedirs(out, exist_ok=True)
per = -(-len(docs) // n)
for i in range(n):
    with open(os.path.join(out, f"{i:05d}.jsonl"), "w") as f:
        for d in docs[i * per : (i + 1) * per]:
            f.write(json.dumps(d) + "\n")
print(len(docs), "documents,", sum(len(d["text"].encode()) for d in docs), "bytes of text")
