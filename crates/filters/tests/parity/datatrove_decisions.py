"""datatrove 0.10.1's decisions for primer's parity test (crates/filters/tests/parity.rs).

usage: python datatrove_decisions.py INPUT.jsonl OUTPUT.jsonl [LID_MODEL] [WORKERS]

Each of GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter and
FineWebQualityFilter (all with their default settings) is applied on its own to every
document; OUTPUT has one line per document, in input order:
  {"id", "gopher_quality": "keep" | reason, "gopher_repetition", "c4", "c4_text", "fineweb",
   "lang", "lang_score"}
"c4_text" is the text C4 keeps (null when it drops the document). With LID_MODEL, "lang" and
"lang_score" are datatrove's LanguageFilter prediction (lid.176: text with newlines replaced by
spaces, best label of all labels).
"""
import json
import sys
import time
from multiprocessing import Pool

LID = None


def init(lid_path):
    global FILTERS, LID
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter,
                                            GopherQualityFilter, GopherRepetitionFilter)
    FILTERS = {
        "gopher_quality": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "c4": C4QualityFilter(),
        "fineweb": FineWebQualityFilter(),
    }
    if lid_path:
        from fasttext.FastText import _FastText
        LID = _FastText(lid_path)


def decide(line):
    from datatrove.data import Document
    d = json.loads(line)
    row = {"id": d["id"]}
    for name, f in FILTERS.items():
        doc = Document(text=d["text"], id=str(d["id"]), metadata={})
        r = f.filter(doc)
        ok = r if isinstance(r, bool) else r[0]
        row[name] = "keep" if ok else (r[1] if isinstance(r, tuple) else "drop")
        if name == "c4":
            row["c4_text"] = doc.text if ok else None
    if LID is not None:
        # datatrove's FT176LID.predict
        langs, scores = LID.predict(d["text"].replace("\n", " "), k=-1)
        pairs = {lang.split("__")[2]: score.item() for lang, score in zip(langs, scores)}
        best = max(pairs.items(), key=lambda x: x[1])
        row["lang"], row["lang_score"] = best
    return json.dumps(row)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    lid = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    t = time.perf_counter()
    with open(src, encoding="utf-8") as inp:
        lines = inp.readlines()
    with Pool(workers, initializer=init, initargs=(lid,)) as pool, open(dst + ".tmp", "w", encoding="utf-8") as out:
        for row in pool.imap(decide, lines, chunksize=8):
            out.write(row + "\n")
    import os
    os.replace(dst + ".tmp", dst)
    print(json.dumps({"documents": len(lines), "seconds": round(time.perf_counter() - t, 1)}))


if __name__ == "__main__":
    main()
