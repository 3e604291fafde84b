//! primer's one LLM client: OpenAI-compatible chat completions (vLLM, TGI, llama.cpp's
//! server, SGLang, OpenAI and most hosted APIs speak this wire format), built so that a
//! run never pays twice and never dies of a rate limit.
//!
//! [`Client::chat`] answers one sample of a prompt. It looks in the [`ResponseCache`]
//! first (a crash-safe redb store in the stage's directory, keyed by the request); a miss
//! reserves its share of the run's [`BudgetConfig`], waits for a slot among `max_in_flight`
//! and for the requests- and tokens-per-minute buckets ([`LimitsConfig`], which also follow
//! a server's `x-ratelimit-*` headers), sends the request with a timeout and retries 429s,
//! 5xxs, timeouts, dropped connections and answers that are not chat completions with
//! exponential backoff and jitter, honouring `Retry-After`. An answer is in the cache's
//! journal before it is returned, so a killed run repeats only the requests in flight.
//! Each call reports what it did as [`CallStats`], which a stage adds to its counters;
//! [`Summary`] reads them back for the manifest and the terminal.
//!
//! The API key is read from the environment variable the settings name and is never
//! written anywhere. This crate is a library, no stage: the `generate` stage
//! (`primer-synth`) and the quality classifier's `annotate` stage use it.

mod cache;
mod client;
mod config;
mod json;
mod limit;
mod stage;
mod stats;
pub mod template;
mod wire;

pub use cache::{CachedAnswer, ResponseCache};
pub use client::{Answer, ChatError, Client, Failure, Live};
pub use config::{BudgetConfig, JsonSchemaFormat, LimitsConfig, LlmConfig, PriceConfig};
pub use json::OrderedJson;
pub use stage::{StageClient, progress_line, stage_error, summary_notes};
pub use stats::{CallStats, Cause, Summary, count_failure};
pub use wire::Message;

/// Errors of the client that are not about one prompt.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are wrong; the message names the setting.
    #[error("{0}")]
    Settings(String),
    /// The response cache cannot be opened, read or written.
    #[error("response cache: {0}")]
    Cache(String),
}
