#!/usr/bin/env bash
# Benchmark: MinHash dedup (14 bands x 8 rows, 5-grams, 64-bit) of the 254 MB CPython
# corpus (9 versions of the standard library: real near-duplicates) by primer, datatrove
# 0.10.1 (its MinHash signature, bucket and cluster steps, through
# ../shared/reference/datatrove_gopher_minhash.py) and datasketch 2.0.0, one run each, on
# the same documents. Prints MB/s (text bytes per wall second of signatures + clustering,
# and per core), MB per CPU second (the fair per-core figure on a busy machine) and peak
# RSS of each, the ratios, and how far their clusters agree.
#
#   bench/dedupe.sh [THREADS]
#
# Needs the reference Python ($PRIMER_REF_PYTHON, as .ci/run installs it). primer runs as
# the release bench target of crates/dedupe (no DataFusion).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${PRIMER_DATA:-$root/../shared/data}"
threads="${1:-$(nproc)}"
py="${PRIMER_REF_PYTHON:-$HOME/.cache/primer/venv-ref/bin/python}"
work="${BENCH_DIR:-/tmp/primer-bench-dedupe}"
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# Input: the corpus as 2 JSONL files of its non-empty documents (not timed); the datatrove
# reference script runs 2 tasks, one per file.
# (The marker stays outside the input directory: datatrove's reader would take it for an
# input file and shift which file each of its tasks reads.)
if [ ! -f "$work/input.done" ]; then
    "$py" "$root/bench/ref/split_corpus.py" "$data/corpora/cpython-stdlib-9-versions.jsonl.zst" \
        "$work/input" 2
    touch "$work/input.done"
fi

bench() { (cd "$root" && cargo bench -q -p primer-dedupe --bench dedupe -- "$@"); }
# Peak RSS of a whole process tree (datatrove's tasks run in worker processes).
peak() { "$py" "$root/bench/ref/peak_rss.py" "$@"; }
rss() { awk '/^peak_rss_mb/ {print $2}' "$1"; }

echo "== primer"
rm -rf "$work/primer-in" "$work/primer-out"
bench prepare "$work/input" "$work/primer-in"
bench run "$work/primer-in" "$work/primer-out" "$threads" "$work/primer.tsv" | tee "$work/primer.json"

echo "== datatrove (signatures, buckets, clusters, filter; $threads tasks)"
rm -rf "$work/dt"
peak "$py" "$data/../reference/datatrove_gopher_minhash.py" "$work/dt" "$work/input" dedup \
    > "$work/dt.out" 2> "$work/dt.time"
grep TIMINGS "$work/dt.out"
echo "peak RSS MB (all processes): $(rss "$work/dt.time")"

echo "== datasketch"
peak "$py" "$root/bench/ref/datasketch_clusters.py" "$work/datasketch.tsv" "$work"/input/*.jsonl \
    > "$work/ds.json" 2> "$work/ds.time"
cat "$work/ds.json"
echo "peak RSS MB: $(rss "$work/ds.time")"

echo "== ratios"
"$py" - "$work" "$threads" <<'PY'
import json, re, sys
w, threads = sys.argv[1], int(sys.argv[2])
p = json.load(open(f"{w}/primer.json"))
t = json.loads(re.search(r"TIMINGS (\{.*?\})", open(f"{w}/dt.out").read()).group(1))
d = json.load(open(f"{w}/ds.json"))
mb = p["text_mb"]
dt_s = t["sig"] + t["buckets"] + t["cluster"]
ds_s = d["minhash+insert_s"] + d["query+unionfind_s"]
p_s = p["signatures_plus_clustering_s"]
def rss(f):
    return int(re.search(r"^peak_rss_mb (\d+)", open(f).read(), re.M).group(1))
def cpu(f):
    return float(re.search(r"^cpu_seconds ([\d.]+)", open(f).read(), re.M).group(1))
print(json.dumps({
    "text_mb": mb, "threads": threads,
    "primer_s": p_s, "datatrove_s": round(dt_s, 1), "datasketch_s": round(ds_s, 1),
    "primer_mb_per_s_per_core": p["mb_per_s_per_core"],
    "datatrove_mb_per_s_per_core": round(mb / dt_s / 2, 2),  # its script runs 2 tasks
    "datasketch_mb_per_s": round(mb / ds_s, 2),
    "speedup_vs_datatrove": round(dt_s / p_s, 1), "speedup_vs_datasketch_per_core": round(ds_s / (p_s * threads), 1),
    "peak_rss_mb": {"primer": p["peak_rss_mb"], "datatrove": rss(f"{w}/dt.time"), "datasketch": rss(f"{w}/ds.time")},
    # CPU seconds: robust on a shared machine. datatrove's and datasketch's are of the whole
    # script (datatrove's includes its reading and final filter step), so theirs are upper bounds.
    "cpu_seconds": {"primer": p["cpu_seconds_signatures_plus_clustering"], "datatrove": cpu(f"{w}/dt.time"), "datasketch": cpu(f"{w}/ds.time")},
    "mb_per_cpu_second": {"primer": p["mb_per_cpu_second"], "datatrove": round(mb / cpu(f"{w}/dt.time"), 2), "datasketch": round(mb / cpu(f"{w}/ds.time"), 2)},
}, indent=1))
PY

echo "== agreement of clusters (pairs of documents in one cluster)"
"$py" "$root/bench/ref/compare_clusters.py" "$work/input" "$work/dt" "$work/primer.tsv" "$work/datasketch.tsv"
