#!/usr/bin/env bash
# primer's LLM client beside the official `openai` package's AsyncOpenAI, in one run,
# against the same loopback server (crates/fake-openai, release build) that answers every
# chat completion after a fixed latency: sustained requests/s, CPU seconds of the client
# process, and the latency each client adds to the server's, at 256 in flight.
#
#   bench/llm_client.sh [PRIMER_REQUESTS] [OPENAI_REQUESTS]
#
# primer's client runs as the generate stage uses it: every answer committed to its
# response cache (redb, durable) before it is returned. Needs a Python with `openai`
# (PRIMER_REF_PYTHON, as .ci/run makes it; default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
PN=${2:-5000}
IN_FLIGHT=256
LATENCY_MS=50
PY=${PRIMER_REF_PYTHON:-python3}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p primer-fake-openai --bin fake-openai
cargo bench -q -p primer-llm --bench client --no-run 2>/dev/null
BENCH=$(ls -t "$TARGET"/release/deps/client-* | grep -v '\.d$' | head -1)

out=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$out"' EXIT
"$TARGET/release/fake-openai" --latency-ms "$LATENCY_MS" --threads 1 > "$out/url" &
SERVER=$!
for _ in $(seq 50); do [ -s "$out/url" ] && break; sleep 0.1; done
URL=$(head -1 "$out/url")
echo "server: $URL ($LATENCY_MS ms per answer, 1 thread); machine: $(nproc) cores"

"$BENCH" "$URL" "$N" "$IN_FLIGHT" "$LATENCY_MS" | tee "$out/primer"
"$PY" bench/llm_client_openai.py "$URL" "$PN" "$IN_FLIGHT" "$LATENCY_MS" | tee "$out/openai"

"$PY" - "$out/primer" "$out/openai" <<'PYEOF'
import json, sys
p = json.loads(open(sys.argv[1]).read().splitlines()[-1])
o = json.loads(open(sys.argv[2]).read().splitlines()[-1])
per_cpu = lambda r: r["requests"] / r["cpu_s"]
print(f"ratio primer/openai: {p['rps'] / o['rps']:.1f}x requests/s, "
      f"{per_cpu(p) / per_cpu(o):.1f}x requests per CPU second; "
      f"added p99: primer {p['p99_ms'] - 50:.2f} ms, openai {o['p99_ms'] - 50:.2f} ms")
PYEOF
