"""Build the input of bench/scale.sh: JSONL.zst files of about 128 MB of text each, made
from real English documentation (the shared corpora's extracted docs pages and the Linux
kernel's reST docs), repeated with changes so that every step has work:

- the first pass over the sources is the documents as they are;
- every later pass changes each document, chosen by a hash of its id and the pass:
  10 % are exact copies (exact dedupe removes them), 20 % have 1 % of their words replaced
  (near-duplicates MinHash finds), 70 % have 12 % of their words replaced by words of
  other documents and their paragraphs rotated (new text: the near-duplicate check rejects
  them, the filters see real prose).

Files are written in order, so the first k files of the 2 GB set are the smaller sets.

    python make_scale_corpus.py OUT_DIR TOTAL_MB SOURCE.jsonl.zst...
"""
import hashlib
import io
import json
import os
import sys

import zstandard

FILE_BYTES = 128 << 20


def read_docs(paths):
    docs = []
    for p in paths:
        with open(p, "rb") as f:
            text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
            for line in text:
                d = json.loads(line)
                t = d.get("text") or ""
                if len(t) >= 200:
                    docs.append((str(d.get("id")), t))
    return docs


def h(*parts):
    return int.from_bytes(hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest(), "little")


def change(text, rate, seed, vocab):
    words = text.split(" ")
    n = len(words)
    k = max(1, int(n * rate))
    x = seed
    for _ in range(k):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        i = x % n
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        words[i] = vocab[x % len(vocab)]
    return " ".join(words)


def main():
    out, total_mb, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    docs = read_docs(sources)
    vocab = []
    for _, t in docs[:2000]:
        vocab.extend(w for w in t.split() if w.isalpha() and len(w) < 12)
    target = total_mb << 20
    written = 0
    file_no = 0
    in_file = 0
    cctx = zstandard.ZstdCompressor(level=3)
    f = open(os.path.join(out, f"part-{file_no:03}.jsonl.zst"), "wb")
    w = cctx.stream_writer(f)
    pass_no = 0
    while written < target:
        for doc_id, text in docs:
            if written >= target:
                break
            if pass_no > 0:
                r = h(doc_id, str(pass_no)) % 100
                if r < 10:
                    pass
                elif r < 30:
                    text = change(text, 0.01, h(doc_id, "near", str(pass_no)), vocab)
                else:
                    paras = text.split("\n\n")
                    s = h(doc_id, "rot", str(pass_no)) % len(paras)
                    text = "\n\n".join(paras[s:] + paras[:s])
                    text = change(text, 0.12, h(doc_id, "new", str(pass_no)), vocab)
            line = json.dumps({"id": f"{doc_id}#{pass_no}", "text": text}, ensure_ascii=False) + "\n"
            b = line.encode()
            w.write(b)
            written += len(text.encode())
            in_file += len(text.encode())
            if in_file >= FILE_BYTES:
                w.close()
                file_no += 1
                in_file = 0
                f = open(os.path.join(out, f"part-{file_no:03}.jsonl.zst"), "wb")
                w = cctx.stream_writer(f)
        pass_no += 1
    w.close()
    print(f"{written / 1e6:.0f} MB of text in {file_no + 1} files, {pass_no} passes over {len(docs)} documents")


if __name__ == "__main__":
    main()
