//! The `generate` stage: synthetic textbooks and exercises through any OpenAI-compatible
//! API, the second half of the phi-1 recipe.
//!
//! [`GenerateConfig`] names a template — a built-in set ([`Builtin::Textbook`],
//! [`Builtin::Exercises`]) or a MiniJinja template inline or in a file — a combinatorial
//! design (topics × audiences × styles, all or a seeded sample, Cosmopedia style) and/or
//! input datasets whose rows fill the template, `n` samples per prompt, and the client
//! settings of `primer-llm` (which caches every answer, so a rerun never pays twice).
//! [`Generate`] renders each prompt, asks the client, and writes one document per answer:
//! the text, the prompt's id and variables, the model, the token counts and the finish
//! reason. Exercises are parsed with Ruff's Python parser into `signature`, `docstring`,
//! `solution` and `tests` ([`parse_exercise`]) and, with `execute`, their tests are run in
//! a sandboxed `python3 -I` ([`Sandbox`]). Failed requests and answers that fail a check go
//! to the side dataset `side/rejected/` with their reason.

mod config;
mod design;
mod execute;
mod exercise;
mod stage;
mod templates;

pub use config::{Builtin, ExecConfig, GenerateConfig, ParseKind};
pub use design::Design;
pub use execute::{RunResult, Sandbox};
pub use exercise::{Exercise, Invalid, code_of, parse_exercise};
pub use stage::{Generate, generated_schema, rejected_schema};

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
