"""datatrove's chain — LanguageFilter(en) → GopherQuality → GopherRepetition → C4Quality →
FineWebQuality — on one core over INPUT.jsonl (`id`, `text`): prints MB/s (see bench/filters.sh).

usage: python filters_datatrove.py INPUT.jsonl LID_MODEL
"""
import json
import sys
import time


def main():
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter)
    from fasttext.FastText import _FastText
    lang = LanguageFilter(languages=["en"])
    lang.model._model = _FastText(sys.argv[2])  # the local lid.176.ftz instead of a download
    chain = [lang, GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    docs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
    size = sum(len(d["text"].encode("utf-8")) for d in docs)
    # Warm up (spaCy and fastText load lazily).
    for f in chain:
        f.filter(Document(text="Warm up the filters with a short English sentence.", id="w"))
    t = time.perf_counter()
    kept = 0
    for d in docs:
        doc = Document(text=d["text"], id=str(d["id"]))
        for f in chain:
            r = f.filter(doc)
            if not (r if isinstance(r, bool) else r[0]):
                break
        else:
            kept += 1
    secs = time.perf_counter() - t
    print(json.dumps({"tool": "datatrove", "documents": len(docs), "mb": round(size / 1e6, 2), "kept": kept,
                      "seconds": round(secs, 2), "mb_per_s_per_core": round(size / 1e6 / secs, 4)}))


if __name__ == "__main__":
    main()
