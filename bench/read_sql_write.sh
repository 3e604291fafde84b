#!/usr/bin/env bash
# Benchmark: read → sql → write on real corpora from ../shared/data, at two input sizes.
# Prints MB/s (input JSONL bytes per wall second, and per core) and peak RSS of each run
# (100 MB, 335 MB, 670 MB); peak RSS should stay flat as the input grows: stages stream
# record batches, so memory is bounded by batch and row-group sizes, not by the input.
#
#   bench/read_sql_write.sh [THREADS]
#
# Uses target/release/primer (or $PRIMER); builds it when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${PRIMER_DATA:-$root/../shared/data}"
threads="${1:-$(nproc)}"
target="${CARGO_TARGET_DIR:-$root/target}"
primer="${PRIMER:-$target/release/primer}"
if [ ! -x "$primer" ]; then
    (cd "$root" && cargo build --release)
fi
work="${BENCH_DIR:-/tmp/primer-bench}"
mkdir -p "$work/in"

# Inputs: the shared corpora decompressed and split into ~32 MB JSONL files (not timed).
if [ ! -f "$work/in/.done" ]; then
    rm -f "$work"/in/*.jsonl
    for f in cpython-stdlib-9-versions docs-pages-extracted linux-kernel-docs-rst; do
        zstd -dc "$data/corpora/$f.jsonl.zst" | split -C 32M -d -a 3 --additional-suffix=.jsonl - "$work/in/$f-"
    done
    touch "$work/in/.done"
fi
# Twice the corpora (each file copied under two names) for the largest size.
if [ ! -f "$work/in2/.done" ]; then
    mkdir -p "$work/in2"
    for f in "$work"/in/*.jsonl; do
        b=$(basename "$f" .jsonl)
        cp "$f" "$work/in2/$b-a.jsonl" && cp "$f" "$work/in2/$b-b.jsonl"
    done
    touch "$work/in2/.done"
fi

run() { # name, glob under $work
    local name=$1 glob=$2 dir="$work/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    cat > "$dir/p.toml" <<TOML
[pipeline]
name = "bench"
workdir = "work"

[stages.docs.read]
paths = ["$work/$glob"]

[stages.keep]
inputs = ["docs"]
[stages.keep.sql]
query = "SELECT id, text, source, url, length(text) AS chars FROM docs WHERE length(text) >= 200"

[stages.out]
inputs = ["keep"]
[stages.out.write]
path = "export"
format = "jsonl"
TOML
    local bytes
    bytes=$(cat $work/$glob | wc -c)
    /usr/bin/time -f "%e %M" -o "$dir/time" "$primer" run "$dir/p.toml" -j "$threads" >/dev/null 2>"$dir/log"
    read -r secs rss_kb < "$dir/time"
    python3 - "$name" "$bytes" "$secs" "$rss_kb" "$threads" <<'PY'
import sys
name, b, s, rss, t = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mb = b / 1e6
print(f"{name:>6}: {mb:7.1f} MB in {s:6.2f} s = {mb/s:6.1f} MB/s ({mb/s/t:5.1f} MB/s per core, {t} threads), peak RSS {rss/1024:6.1f} MiB")
PY
}

echo "read → sql (filter, projection) → write JSONL; primer $("$primer" --version)"
run small "in/cpython-stdlib-9-versions-00[0-2].jsonl"
run full "in/*.jsonl"
run double "in2/*.jsonl"
