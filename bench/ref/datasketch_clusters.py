"""datasketch MinHash LSH as /work/shared/reference/datasketch_minhash.py runs it (5-word
shingles of the lowercased \\w+ words, 112 permutations = 14 bands x 8 rows, union-find
over query results), plus the clusters: writes `id<TAB>cluster root id` for every
document in a cluster of two or more, and prints the timings as JSON.

Usage: datasketch_clusters.py OUT.tsv FILE.jsonl...
"""
import collections
import json
import re
import sys
import time

from datasketch import MinHash, MinHashLSH

out, files = sys.argv[1], sys.argv[2:]
t0 = time.time()
docs = []
for f in files:
    for line in open(f):
        d = json.loads(line)
        docs.append((d["id"], d["text"]))
tok = re.compile(r"\w+", re.U)


def shingles(t, n=5):
    w = tok.findall(t.lower())
    return {" ".join(w[i : i + n]).encode() for i in range(max(1, len(w) - n + 1))}


t1 = time.time()
lsh = MinHashLSH(num_perm=112, params=(14, 8))
mhs = []
for i, (did, t) in enumerate(docs):
    m = MinHash(num_perm=112, seed=1)
    m.update_batch(list(shingles(t)))
    mhs.append(m)
    lsh.insert(i, m)
t2 = time.time()
parent = list(range(len(docs)))


def find(x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


for i, m in enumerate(mhs):
    for j in lsh.query(m):
        if j != i:
            a, b = find(i), find(j)
            parent[max(a, b)] = min(a, b)
roots = collections.Counter(find(i) for i in range(len(docs)))
t3 = time.time()
with open(out, "w") as f:
    for i, (did, _) in enumerate(docs):
        r = find(i)
        if roots[r] > 1:
            f.write(f"{did}\t{docs[r][0]}\n")
mb = sum(len(t.encode()) for _, t in docs) / 1e6
print(json.dumps({"tool": "datasketch", "docs": len(docs), "clusters": sum(1 for c in roots.values() if c > 1),
                  "removed": len(docs) - len(roots), "load_s": round(t1 - t0, 1),
                  "minhash+insert_s": round(t2 - t1, 1), "query+unionfind_s": round(t3 - t2, 1),
                  "mb_per_s": round(mb / (t3 - t1), 2)}))
