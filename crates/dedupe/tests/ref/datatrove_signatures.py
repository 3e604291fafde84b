"""datatrove's MinHash signatures for a JSONL file, one line per document.

Usage: datatrove_signatures.py INPUT.jsonl[.zst] OUT.jsonl [EVERY]

Uses datatrove 0.10.1's own MinhashDedupSignature (shingling: simplify_text + spaCy English
word tokenizer + word 5-grams; hashing: xxhash64; permutations from numpy's
RandomState(1)) with MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14,
hashes_per_bucket=8), the FineWeb setting. Writes {"id", "sig"} for every EVERY-th document
(default 1) whose text has at least one shingle; "sig" is the 112 64-bit hashes.
"""
import io
import json
import sys

from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig


def lines(path):
    if path.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
        return io.TextIOWrapper(raw, encoding="utf-8")
    return open(path, encoding="utf-8")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    every = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8)
    step = MinhashDedupSignature(output_folder="/tmp/unused-datatrove-sigs", config=cfg)
    with open(dst, "w") as out:
        for i, line in enumerate(lines(src)):
            if i % every:
                continue
            doc = json.loads(line)
            shingles = step.get_shingles(doc["text"])
            if shingles.size == 0:
                continue
            sig = [h for band in step.get_signature(shingles) for h in band]
            out.write(json.dumps({"id": doc["id"], "sig": sig}) + "\n")


if __name__ == "__main__":
    main()
