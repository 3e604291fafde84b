# The whole CPU recipe the scale benchmarks run (sourced by bench/scale.sh and bench/s3.sh):
# read → language (lid.176) → Gopher repetition and quality, C4 and FineWeb filters → pii →
# exact dedupe → MinHash dedupe → decontaminate (HumanEval) → tokenize (GPT-2).
#
#   recipe_toml WORKDIR INPUT_GLOB SHARDS_DIR     # the pipeline file, on stdout; needs $root
recipe_toml() {
    cat <<TOML
[pipeline]
name = "recipe"
workdir = "$1"

[stages.docs.read]
paths = ["$2"]
source = "docs"

[stages.english]
inputs = ["docs"]
[stages.english.language]
model = "$root/pipelines/demo-data/lid.176.ftz"
languages = ["en"]

[stages.quality]
inputs = ["english"]
[stages.quality.filter]
chain = [{ gopher_repetition = {} }, { gopher_quality = {} }, { c4 = {} }, { fineweb = {} }]

[stages.redact]
inputs = ["quality"]
[stages.redact.pii]

[stages.exact]
inputs = ["redact"]
[stages.exact.exact_dedupe]

[stages.near]
inputs = ["exact"]
[stages.near.minhash_dedupe]

[stages.clean]
inputs = ["near"]
[stages.clean.decontaminate]
benchmarks = [
    { name = "humaneval", paths = ["$root/pipelines/demo-data/HumanEval.jsonl.gz"], fields = ["prompt", "canonical_solution"], id_field = "task_id" },
]

[stages.tokens]
inputs = ["clean"]
[stages.tokens.tokenize]
tokenizer = "$root/pipelines/demo-data/gpt2-tokenizer.json"
output = "$3"
TOML
}
