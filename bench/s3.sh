#!/usr/bin/env bash
# Benchmark: what keeping a pipeline in object storage costs. The whole CPU recipe of
# bench/scale.sh (read → language → filters → pii → exact and MinHash dedupe →
# decontaminate → tokenize) over the same real text (SIZE_MB, default 512), run twice in
# one go: on local disk, and with its inputs, work directory and token shards in an
# S3-compatible server on loopback (moto's, started here). Prints wall and CPU seconds and
# peak RSS of primer for both, their ratio, the server's CPU seconds, what the store holds,
# and a rerun from an empty staging directory (every stage found complete in the store).
#
#   bench/s3.sh [SIZE_MB]
#
# Needs the shared data (../shared/data or PRIMER_DATA) and a Python with zstandard and
# moto[server] (PRIMER_REF_PYTHON, as .ci/run installs them). Release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${PRIMER_DATA:-$root/../shared/data}"
py="${PRIMER_REF_PYTHON:-$HOME/.cache/primer/venv-ref/bin/python}"
work="${BENCH_DIR:-/tmp/primer-bench-s3}"
threads="${THREADS:-$(nproc)}"
size="${1:-512}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
(cd "$root" && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/primer"
. "$root/bench/recipe.sh"

if [ "$(cat "$work/input/made_mb" 2>/dev/null || echo 0)" -lt "$size" ]; then
    rm -rf "$work/input"
    "$py" "$root/bench/ref/make_scale_corpus.py" "$work/input" "$size" \
        "$data/corpora/docs-pages-extracted.jsonl.zst" "$data/corpora/linux-kernel-docs-rst.jsonl.zst"
    echo "$size" > "$work/input/made_mb"
fi
nfiles=$(( size / 128 ))
in="$work/in"
rm -rf "$in" "$work/local" "$work/staging-"* "$work/shards-local"
mkdir -p "$in"
for f in $(ls "$work/input" | grep 'jsonl.zst$' | sort | head -n "$nfiles"); do cp "$work/input/$f" "$in/$f"; done

port=$("$py" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$py" -m moto.server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/" > /dev/null 2>&1 && break; sleep 0.5; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
curl -sf -X PUT "$AWS_ENDPOINT_URL/bench" > /dev/null
"$py" - "$in" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for f in sorted(os.listdir(sys.argv[1])):
    s3.upload_file(os.path.join(sys.argv[1], f), "bench", "input/" + f)
PY

recipe_toml "$work/local" "$in/*.jsonl.zst" "$work/shards-local" > "$work/local.toml"
recipe_toml "s3://bench/work" "s3://bench/input/*.jsonl.zst" "s3://bench/shards" > "$work/s3.toml"

server_cpu() { awk '{print ($14 + $15) / 100}' "/proc/$moto/stat"; }
run() { # name, toml, staging dir
    local tf; tf=$(mktemp)
    local s0; s0=$(server_cpu)
    PRIMER_STAGING_DIR="$3" /usr/bin/time -f "%e %U %S %M" -o "$tf" "$bin" run "$2" --no-report -j "$threads" \
        > "$work/log-$1.txt" 2>&1
    local s1; s1=$(server_cpu)
    read -r wall user sys rss_kb < "$tf"; rm -f "$tf"
    cpu=$(echo "$user + $sys" | bc -l)
    printf "%-28s %8.1f %8.1f %8.0f %10.1f\n" "$1" "$wall" "$cpu" "$(( rss_kb / 1024 ))" "$(echo "$s1 - $s0" | bc -l)"
    echo "$wall $cpu" > "$work/fig-$1"
}
echo "== $size MB of input text ($nfiles files), $threads threads; S3: moto on loopback"
printf "%-28s %8s %8s %8s %10s\n" run "wall s" "CPU s" "RSS MB" "server CPU s"
run "local disk" "$work/local.toml" "$work/staging-unused"
run "S3" "$work/s3.toml" "$work/staging-a"
run "S3 rerun, empty staging" "$work/s3.toml" "$work/staging-b"
read -r lw lc < "$work/fig-local disk"
read -r sw sc < "$work/fig-S3"
printf "S3 / local disk: wall %.2f×, primer CPU %.2f×\n" "$(echo "$sw / $lw" | bc -l)" "$(echo "$sc / $lc" | bc -l)"
"$py" - <<'PY'
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
n = b = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench"):
    for o in page.get("Contents", []):
        n += 1; b += o["Size"]
print(f"the store holds {n} objects, {b / 1e6:.0f} MB (input, datasets, shards)")
PY
echo "staging copy after the run: $(du -sm "$work/staging-a" | cut -f1) MB; after the rerun: $(du -sm "$work/staging-b" | cut -f1) MB"
skipped=$(grep -c "skipped, up to date" "$work/log-S3 rerun, empty staging.txt" || true)
echo "the rerun found $skipped of 8 stages complete in the store"
cmp -s <(cd "$work/shards-local" && find . -name '*.bin' -exec md5sum {} + | sort) \
    <("$py" - <<'PY'
import hashlib, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
out = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="shards/"):
    for o in page.get("Contents", []):
        if o["Key"].endswith(".bin"):
            body = s3.get_object(Bucket="bench", Key=o["Key"])["Body"].read()
            out.append(f"{hashlib.md5(body).hexdigest()}  ./{o['Key'][len('shards/'):]}")
print("\n".join(sorted(out)))
PY
) && echo "token shards: identical on local disk and in the store" \
  || echo "token shards: DIFFER between local disk and the store"
