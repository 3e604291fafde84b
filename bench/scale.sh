#!/usr/bin/env bash
# Benchmark: how the whole CPU recipe's cost grows with its input. Builds real English text
# of 0.5, 1 and 2 GB (by default) from the shared corpora — documentation repeated with
# exact copies, near copies and heavily changed copies, so dedupe has work
# (bench/ref/make_scale_corpus.py) — and runs read → language → filters (Gopher repetition
# and quality, C4, FineWeb) → pii → exact dedupe → MinHash dedupe → decontaminate
# (HumanEval) → tokenize (GPT-2) on each, one stage at a time (`--only`), printing per stage:
# rows in, text MB in, wall and CPU seconds, MB per CPU second (the per-core rate), peak
# RSS, and the disk the stage added at its peak (the work directory and token shards, sampled
# twice a second: its output and scratch space together). Then each stage's CPU
# seconds per GB at every size (flat = linear) and the extrapolation to a 35B-token input
# (about 140 GB of text) on 64 cores.
#
#   bench/scale.sh [SIZE_MB ...]        # default: 512 1024 2048
#
# Needs the shared data (../shared/data or PRIMER_DATA) and a Python with zstandard
# (PRIMER_REF_PYTHON, as .ci/run installs it). Release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${PRIMER_DATA:-$root/../shared/data}"
py="${PRIMER_REF_PYTHON:-$HOME/.cache/primer/venv-ref/bin/python}"
work="${BENCH_DIR:-/tmp/primer-bench-scale}"
threads="${THREADS:-$(nproc)}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(512 1024 2048)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
(cd "$root" && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/primer"
. "$root/bench/recipe.sh"

largest=0
for s in "${sizes[@]}"; do [ "$s" -gt "$largest" ] && largest=$s; done
# The corpus is made once for the largest size asked so far (input/made_mb says which).
if [ "$(cat "$work/input/made_mb" 2>/dev/null || echo 0)" -lt "$largest" ]; then
    rm -rf "$work/input"
    "$py" "$root/bench/ref/make_scale_corpus.py" "$work/input" "$largest" \
        "$data/corpora/docs-pages-extracted.jsonl.zst" "$data/corpora/linux-kernel-docs-rst.jsonl.zst"
    echo "$largest" > "$work/input/made_mb"
fi

stages=(docs english quality redact exact near clean tokens)
results="$work/results.tsv"
: > "$results"
for size in "${sizes[@]}"; do
    nfiles=$(( size / 128 ))
    in="$work/in-$size"
    w="$work/w-$size"
    rm -rf "$in" "$w" "$work/shards-$size"
    mkdir -p "$in"
    for f in $(ls "$work/input" | grep 'jsonl.zst$' | sort | head -n "$nfiles"); do ln -s "$work/input/$f" "$in/$f"; done
    recipe_toml "$w" "$in/*.jsonl.zst" "$work/shards-$size" > "$work/p-$size.toml"
    echo "== $size MB of input text ($nfiles files), $threads threads"
    printf "%-8s %10s %9s %8s %8s %11s %8s %9s\n" stage "rows in" "MB in" wall CPU "MB/CPU s" "RSS MB" "disk MB"
    prev=""
    for st in "${stages[@]}"; do
        # Text MB going into the stage: the input files' text for `read`, else its input dataset's.
        text_mb() {
            "$bin" sql "SELECT sum(octet_length(text)) / 1e6 AS mb FROM t" -t "t=$w/$1" --format jsonl \
                | sed 's/.*"mb":\([0-9.e+]*\).*/\1/'
        }
        [ -n "$prev" ] && mb_in=$(text_mb "$prev")
        before=$(du -sm "$w" 2>/dev/null | cut -f1 || echo 0)
        peak_file=$(mktemp)
        echo "${before:-0}" > "$peak_file"
        # Peak disk of the work directory and the shards while the stage runs (du twice a second).
        ( set +e; while true; do d=$(du -sm "$w" "$work/shards-$size" 2>/dev/null | awk '{s+=$1} END {print s+0}'); \
            [ "${d:-0}" -gt "$(cat "$peak_file")" ] && echo "$d" > "$peak_file.new" && mv "$peak_file.new" "$peak_file"; \
            sleep 0.5; done ) &
        poll=$!
        tf=$(mktemp)
        /usr/bin/time -f "%e %U %S %M" -o "$tf" "$bin" run "$work/p-$size.toml" --only "$st" --no-report \
            -j "$threads" > /dev/null 2> "$work/log-$size-$st.txt"
        kill "$poll" 2>/dev/null || true
        wait "$poll" 2>/dev/null || true
        read -r wall user sys rss_kb < "$tf"
        # `read` drops nothing: the text it read is the text it wrote.
        [ -z "$prev" ] && mb_in=$(text_mb "$st")
        peak=$(cat "$peak_file"); rm -f "$tf" "$peak_file" "$peak_file.new"
        rows_in=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['counters'].get('rows_in', 0))" "$w/$st/_manifest.json")
        cpu=$(echo "$user + $sys" | bc -l)
        rate=$(echo "$mb_in / $cpu" | bc -l)
        printf "%-8s %10d %9.0f %8.1f %8.1f %11.1f %8.0f %9.0f\n" "$st" "$rows_in" "$mb_in" "$wall" "$cpu" "$rate" \
            "$(( rss_kb / 1024 ))" "$(( peak - before ))"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$size" "$st" "$rows_in" "$mb_in" "$wall" "$cpu" "$(( rss_kb / 1024 ))" "$(( peak - before ))" >> "$results"
        prev=$st
    done
    tokens=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['counters']['tokens'])" "$w/tokens/_manifest.json")
    echo "   $tokens tokens out; work directory $(du -sm "$w" | cut -f1) MB"
    printf "%s\ttokens_out\t%s\n" "$size" "$tokens" >> "$results"
    rm -rf "$w" "$work/shards-$size" "$in"
done

"$py" - "$results" <<'PY'
import sys
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
tokens = {int(r[0]): int(r[2]) for r in rows if r[1] == "tokens_out"}
rows = [r for r in rows if r[1] != "tokens_out"]
# Every stage's CPU seconds per GB of the pipeline's input text (what `docs` read).
input_gb = {int(r[0]): float(r[3]) / 1000 for r in rows if r[1] == "docs"}
cpu = defaultdict(dict); rss = defaultdict(dict)
for r in rows:
    size, st = int(r[0]), r[1]
    cpu[st][size] = float(r[5]) / input_gb[size]
    rss[st][size] = int(r[6])
sizes = sorted(input_gb)
print("\n== CPU seconds per GB of input text (flat across sizes = linear), and peak RSS MB")
print("%-8s " % "stage" + " ".join("%9s" % f"{input_gb[s]:.2f} GB" for s in sizes)
      + "   " + " ".join("%9s" % f"RSS@{input_gb[s]:.1f}" for s in sizes))
for st in cpu:
    print("%-8s " % st + " ".join("%9.1f" % cpu[st][s] for s in sizes)
          + "   " + " ".join("%9d" % rss[st][s] for s in sizes))
total = {s: sum(cpu[st][s] for st in cpu) for s in sizes}
print("%-8s " % "all" + " ".join("%9.1f" % total[s] for s in sizes))
big = sizes[-1]
per_gb = total[big]
tok_per_gb = tokens[big] / input_gb[big]
print(f"\n{tok_per_gb / 1e6:.0f}M tokens out per GB of input text at {input_gb[big]:.2f} GB.")
print(f"A 35B-token input (about 140 GB of text): {per_gb * 140 / 3600:.0f} CPU hours at {per_gb:.0f} CPU s per GB, "
      f"{per_gb * 140 / 64 / 60:.0f} minutes on 64 cores, if the stages spread over them as they do over 2 here.")
PY
