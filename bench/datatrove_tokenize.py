#!/usr/bin/env python3
"""datatrove's DocumentTokenizer on the same text and tokenizer as primer's bench.

    datatrove_tokenize.py JSONL[.zst] TOKENIZER.json [MAX_DOCS]

The documents are read into memory first (not timed); the timed part is
DocumentTokenizer.run over them: encode_batch (tokenizers' Rust core, parallel over the
batch), writing the tokens, the per-document shuffle and the shuffled output file, as in
datatrove's own tokenization pipelines. Prints one line of key=value pairs like the Rust
bench: wall seconds and CPU seconds (user + system of this process and its threads).
"""
import io
import json
import resource
import sys
import tempfile
import time

import zstandard


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    path, tok = sys.argv[1], sys.argv[2]
    max_docs = int(sys.argv[3]) if len(sys.argv) > 3 else None
    from datatrove.data import Document
    from datatrove.pipeline.tokens import DocumentTokenizer

    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    docs = []
    for line in raw.decode("utf-8").splitlines():
        if max_docs is not None and len(docs) >= max_docs:
            break
        v = json.loads(line)
        docs.append(Document(text=v["text"], id=v["id"]))
    nbytes = sum(len(d.text.encode("utf-8")) for d in docs)
    with tempfile.TemporaryDirectory() as out:
        step = DocumentTokenizer(
            output_folder=out,
            tokenizer_name_or_path=tok,
            eos_token="<|endoftext|>",
            shuffle_documents=True,
            seed=0,
        )
        c0, t0 = cpu(), time.perf_counter()
        step.run(iter(docs), rank=0, world_size=1)
        wall, cpus = time.perf_counter() - t0, cpu() - c0
        # (Stats has no __contains__: `in` would iterate its defaultdict forever.)
        tokens = step.stats["tokens"].total
    print(
        f"tool=datatrove docs={len(docs)} bytes={nbytes} tokens={int(tokens)} "
        f"wall={wall:.3f} cpu={cpus:.3f}"
    )


if __name__ == "__main__":
    main()
