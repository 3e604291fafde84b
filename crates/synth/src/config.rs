//! The `generate` stage's settings.

use std::collections::BTreeMap;

use primer_llm::LlmConfig;
use serde::{Deserialize, Serialize};

/// Settings of the `generate` stage: prompts made from a template over a combinatorial
/// design (topics × audiences × styles, Cosmopedia style) and/or the rows of the input
/// datasets, `n` answers per prompt from an OpenAI-compatible API, kept as documents.
///
/// With the `exercises` template (or `parse = "exercise"`) each answer is parsed into a
/// Python exercise — `signature`, `docstring`, `solution`, `tests` — and validated (it
/// parses as Python, the function of the signature is implemented, tests call it; with
/// `execute`, the tests pass in a sandboxed `python3 -I`). Answers that fail a check or a
/// request go to the side dataset `side/rejected/` with the reason; nothing is dropped
/// silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// A built-in template set: `textbook` (a textbook section on a topic for an audience,
    /// phi-1 / Cosmopedia style) or `exercises` (phi-1's CodeExercises: a Python function
    /// with a docstring, its solution and `assert` tests). Each brings its system message,
    /// its prompt and a default design (see the README); `prompt`, `system` and `design`
    /// entries you set replace the set's. Default none: then `prompt` or `prompt_file` is
    /// required.
    #[serde(default)]
    pub template: Option<Builtin>,
    /// The user message, a MiniJinja (Jinja2) template: `{{ topic }}` is a design
    /// variable or an input column. Default: the template set's.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The user message template from a file (relative to the pipeline file), instead of
    /// `prompt`. Default none.
    #[serde(default)]
    pub prompt_file: Option<String>,
    /// The system message, a template too. Default: the template set's, else none.
    #[serde(default)]
    pub system: Option<String>,
    /// Template variables and their values; prompts are made for every combination (the
    /// cross product), or for `sample` of them. Variables of the template set you do not
    /// set keep the set's values. Default none.
    #[serde(default)]
    pub design: BTreeMap<String, Vec<String>>,
    /// Use this many combinations of the design, drawn without repeats with `seed`,
    /// instead of all of them; with inputs, this many per input row (drawn with the seed
    /// and the row's id). Default: all.
    #[serde(default)]
    pub sample: Option<usize>,
    /// The seed of the design's draws. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Answers per prompt (each a request of its own, with `llm.seed + k`, cached
    /// alone). Default 1.
    #[serde(default = "default_n")]
    pub n: u32,
    /// How answers are read: `text` (the answer is the document) or `exercise` (parsed and
    /// validated as a Python exercise). Default: `exercise` for the `exercises` set,
    /// else `text`.
    #[serde(default)]
    pub parse: Option<ParseKind>,
    /// Run each exercise's tests against its solution (in `python3 -I`, in an empty
    /// temporary directory, with no network and the `exec` limits); failing ones are
    /// rejected with the test's error. Default false.
    #[serde(default)]
    pub execute: bool,
    /// Limits of the test runs.
    #[serde(default)]
    pub exec: ExecConfig,
    /// Keep answers cut off at `llm.max_tokens` (finish reason `length`) as documents.
    /// Default false: they are rejected as `truncated`.
    #[serde(default)]
    pub keep_truncated: bool,
    /// The documents' `source`. Default: the stage's id.
    #[serde(default)]
    pub source: Option<String>,
    /// Prompts per task when there are no inputs (a task is the unit a killed run
    /// resumes from; its answers are in the cache either way). Default 256.
    #[serde(default = "default_prompts_per_task")]
    pub prompts_per_task: usize,
    /// The endpoint, the model, sampling, limits, budget and price.
    pub llm: LlmConfig,
}

fn default_n() -> u32 {
    1
}
fn default_prompts_per_task() -> usize {
    256
}

/// A built-in template set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// A textbook section on `topic` for `audience`, in `style`.
    Textbook,
    /// A Python exercise on `topic` at `difficulty`: function, docstring, solution, tests.
    Exercises,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Textbook => "textbook",
            Builtin::Exercises => "exercises",
        }
    }
}

/// How answers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParseKind {
    Text,
    Exercise,
}

/// Limits of an exercise's test run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The Python to run (`python3 -I -S`). Default `python3`.
    #[serde(default = "default_python")]
    pub python: String,
    /// Wall-clock seconds before the run is killed. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// CPU seconds (`RLIMIT_CPU`). Default 5.
    #[serde(default = "default_cpu")]
    pub cpu_secs: u64,
    /// Address space in MB (`RLIMIT_AS`). Default 512.
    #[serde(default = "default_memory")]
    pub memory_mb: u64,
    /// Largest file it may write, in MB (`RLIMIT_FSIZE`). Default 1.
    #[serde(default = "default_fsize")]
    pub file_size_mb: u64,
    /// Test runs at once. Default: the machine's cores.
    #[serde(default)]
    pub parallel: Option<usize>,
}

fn default_python() -> String {
    "python3".into()
}
fn default_timeout() -> f64 {
    10.0
}
fn default_cpu() -> u64 {
    5
}
fn default_memory() -> u64 {
    512
}
fn default_fsize() -> u64 {
    1
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            python: default_python(),
            timeout_secs: default_timeout(),
            cpu_secs: default_cpu(),
            memory_mb: default_memory(),
            file_size_mb: default_fsize(),
            parallel: None,
        }
    }
}
