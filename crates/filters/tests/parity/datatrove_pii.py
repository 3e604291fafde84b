"""datatrove 0.10.1's PIIFormatter (default settings, one formatter over all documents in
order) on INPUT.jsonl; writes one JSON line per document: {"id", "text"} (the redacted text).

usage: python datatrove_pii.py INPUT.jsonl OUTPUT.jsonl
"""
import json
import sys


def main():
    from datatrove.pipeline.formatters import PIIFormatter
    f = PIIFormatter()
    with open(sys.argv[1], encoding="utf-8") as inp, open(sys.argv[2], "w", encoding="utf-8") as out:
        for line in inp:
            d = json.loads(line)
            out.write(json.dumps({"id": d["id"], "text": f.format(d["text"])}) + "\n")


if __name__ == "__main__":
    main()
