"""Compare primer's MinHash clusters with datatrove's and datasketch's on the same input.

Usage: compare_clusters.py INPUT_DIR DATATROVE_WORKDIR PRIMER.tsv DATASKETCH.tsv

INPUT_DIR holds the N JSONL files datatrove read (task r read file r); its cluster files
(remove_ids/NNNNNN.clusters, save_cluster_id=True) name documents by (task, index).
Each .tsv holds `id<TAB>cluster` for documents in clusters of two or more. Prints, for
each pair of tools, the precision and recall of "these two documents are in one cluster"
(pairs inside clusters), and the number of documents each removes.
"""
import collections
import glob
import itertools
import json
import os
import struct
import sys

inp, dt_dir, primer_tsv, ds_tsv = sys.argv[1:5]
files = sorted(glob.glob(os.path.join(inp, "*.jsonl")))
ids = [[json.loads(l)["id"] for l in open(f)] for f in files]


def datatrove_clusters():
    out = {}
    for path in glob.glob(os.path.join(dt_dir, "remove_ids", "*.clusters")):
        rank = int(os.path.basename(path).split(".")[0])
        data = open(path, "rb").read()
        for doc, cl in struct.iter_unpack("<II", data):
            out[ids[rank][doc]] = cl  # cluster ids are global
    return out


def tsv(path):
    return dict(l.rstrip("\n").split("\t") for l in open(path))


def pairs(assign):
    groups = collections.defaultdict(list)
    for d, c in assign.items():
        groups[c].append(d)
    out = set()
    for g in groups.values():
        if len(g) > 1:
            for a, b in itertools.combinations(sorted(g), 2):
                out.add((a, b))
    return out, sum(len(g) - 1 for g in groups.values() if len(g) > 1)


tools = {"primer": tsv(primer_tsv), "datatrove": datatrove_clusters(), "datasketch": tsv(ds_tsv)}
P = {k: pairs(v) for k, v in tools.items()}
res = {k: {"docs_in_clusters": len(tools[k]), "removed": P[k][1], "pairs": len(P[k][0])} for k in tools}
for a, b in [("primer", "datatrove"), ("primer", "datasketch"), ("datasketch", "datatrove")]:
    pa, pb = P[a][0], P[b][0]
    tp = len(pa & pb)
    res[f"{a}_vs_{b}"] = {"precision": round(tp / max(1, len(pa)), 4), "recall": round(tp / max(1, len(pb)), 4)}
print(json.dumps(res, indent=1))
