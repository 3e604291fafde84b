//! The client's settings, as a pipeline file writes them (`[stages.<id>.<kind>.llm]`).

use serde::{Deserialize, Serialize};

/// Settings of the LLM client: which OpenAI-compatible endpoint and model, the sampling
/// parameters, and (in sub-tables) the limits, the budget and the price. Any server that
/// speaks OpenAI's chat-completions API works: vLLM, TGI, llama.cpp's server, SGLang,
/// OpenAI and most hosted APIs.
///
/// The endpoint, model and sampling parameters are part of the stage's fingerprint and of
/// every cache key; `limits`, `budget` and `price` are not (changing them changes how the
/// run goes, not what it produces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// The API's base URL up to the version, `http(s)://host[:port]/v1`; requests go to
    /// `<base_url>/chat/completions`. This or `base_url_env` is required.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The name of an environment variable holding the base URL, instead of `base_url`
    /// (a pipeline file that runs against any endpoint). The value read is part of the
    /// stage's fingerprint. Default none.
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// The model name sent with every request (`gpt-4o-mini`,
    /// `meta-llama/Llama-3.1-8B-Instruct`, …). This or `model_env` is required.
    #[serde(default)]
    pub model: Option<String>,
    /// The name of an environment variable holding the model name, instead of `model`.
    /// Default none.
    #[serde(default)]
    pub model_env: Option<String>,
    /// The name of the environment variable that holds the API key, sent as
    /// `Authorization: Bearer <key>`. The key is read when the stage starts and is never
    /// written to a dataset, manifest, cache, log line or error message (text a server
    /// sends back is scrubbed of it too). `primer validate` fails when the variable is not
    /// set. Default none: no key (local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Send no key, instead of failing, when `api_key_env`'s variable is not set (a pipeline
    /// file meant for hosted APIs and local servers alike). Default false.
    #[serde(default)]
    pub api_key_optional: bool,
    /// Sampling temperature, 0 to 2. Default: the server's.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling, above 0 up to 1. Default: the server's.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// The most tokens an answer may have; an answer cut there has finish reason
    /// `length`. Default 1024.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Strings that end an answer. Default none.
    #[serde(default)]
    pub stop: Vec<String>,
    /// The sampling seed, sent with every request; the k-th sample of a prompt is sent
    /// with `seed + k`, so samples differ and each is repeatable on servers that honour
    /// seeds (vLLM, llama.cpp, OpenAI best-effort). Default none (no seed sent).
    #[serde(default)]
    pub seed: Option<u64>,
    /// A JSON schema the answer must follow (a TOML table, or a string holding JSON), sent
    /// as the request's `response_format`, its keys in the order written: a constrained
    /// model writes the properties in that order, which changes what it writes. Servers
    /// with grammar-constrained decoding (vLLM, llama.cpp, OpenAI) then mostly answer JSON
    /// of that shape; check every answer anyway — not every server enforces
    /// `minimum`/`maximum`, and a long string can run past `max_tokens`. Default none.
    #[serde(default)]
    pub json_schema: Option<crate::OrderedJson>,
    /// How `json_schema` is sent: `openai` —
    /// `{"type": "json_schema", "json_schema": {"name": "answer", "schema": …, "strict": true}}`
    /// (OpenAI, vLLM, llama.cpp's server) — or `json_object` —
    /// `{"type": "json_object", "schema": …}` (llama-cpp-python's server, which knows only
    /// that form). Default `openai`.
    #[serde(default)]
    pub json_schema_format: JsonSchemaFormat,
    /// Concurrency, rate limits, timeouts and retries.
    #[serde(default, skip_serializing)]
    pub limits: LimitsConfig,
    /// The most this run may spend; past it the stage stops, keeping every answer it got.
    #[serde(default, skip_serializing)]
    pub budget: BudgetConfig,
    /// The model's price, for the `cost` counter and the `max_cost` budget.
    #[serde(default, skip_serializing)]
    pub price: Option<PriceConfig>,
}

fn default_max_tokens() -> u32 {
    1024
}

/// How a JSON schema is put in `response_format`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JsonSchemaFormat {
    /// `{"type": "json_schema", "json_schema": {"name": "answer", "schema": …, "strict": true}}`.
    #[default]
    Openai,
    /// `{"type": "json_object", "schema": …}`.
    JsonObject,
}

/// Concurrency, rate limits, timeouts and retries of the LLM client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests in flight at once, for the whole stage (all its tasks share the client).
    /// Default 64.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Requests per minute, a token bucket that starts full and holds `burst_seconds` of
    /// the rate: over any window of T seconds at most `rate × T / 60 + burst` requests
    /// start, where burst = max(1, rate × burst_seconds / 60). A server's
    /// `x-ratelimit-limit-requests` lower than this lowers it. Default none (no limit).
    #[serde(default)]
    pub requests_per_minute: Option<f64>,
    /// Tokens per minute, a second bucket of the same kind. Before a request is sent it
    /// takes the request's estimate (prompt bytes / 3, rounded up, plus `max_tokens`), and
    /// the difference to the tokens the server reports using is settled when the answer
    /// comes; a request larger than the burst waits for a full bucket. Default none.
    #[serde(default)]
    pub tokens_per_minute: Option<f64>,
    /// How many seconds of each rate the buckets hold (their burst). Default 1.
    #[serde(default = "default_burst")]
    pub burst_seconds: f64,
    /// Seconds a request may take, connecting and reading the whole answer included; a
    /// slower one is abandoned and retried. Default 300.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Retries of one request after a 429, a 5xx, a timeout, a dropped connection or an
    /// answer that is not a chat completion (malformed JSON, no choices); then the prompt
    /// is recorded as failed with the last cause. Default 8.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// The first backoff, in seconds; it doubles with each retry of a request, up to
    /// `backoff_max_secs`, and each wait is drawn uniformly from its upper half (jitter).
    /// A `Retry-After` (or `retry-after-ms`) from the server is waited instead, up to
    /// `retry_after_max_secs`. Default 1.
    #[serde(default = "default_backoff")]
    pub backoff_initial_secs: f64,
    /// The longest backoff, in seconds. Default 60.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: f64,
    /// The longest `Retry-After` honoured, in seconds. Default 600.
    #[serde(default = "default_retry_after_max")]
    pub retry_after_max_secs: f64,
}

fn default_in_flight() -> usize {
    64
}
fn default_burst() -> f64 {
    1.0
}
fn default_timeout() -> f64 {
    300.0
}
fn default_retries() -> u32 {
    8
}
fn default_backoff() -> f64 {
    1.0
}
fn default_backoff_max() -> f64 {
    60.0
}
fn default_retry_after_max() -> f64 {
    600.0
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_in_flight: default_in_flight(),
            requests_per_minute: None,
            tokens_per_minute: None,
            burst_seconds: default_burst(),
            timeout_secs: default_timeout(),
            max_retries: default_retries(),
            backoff_initial_secs: default_backoff(),
            backoff_max_secs: default_backoff_max(),
            retry_after_max_secs: default_retry_after_max(),
        }
    }
}

/// The most one run may spend. A request is paid when the server answers it; cache hits
/// are free. Every request reserves its share before it is sent, so concurrent requests
/// never overshoot a limit. When the next request would pass a limit it is not sent, the
/// stage stops with a message saying which limit, and every answer received is kept in the
/// cache: a rerun with a larger budget continues from there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Paid requests. Default none (no limit).
    #[serde(default)]
    pub max_requests: Option<u64>,
    /// Tokens, prompt and completion, as the server reports them (reserved beforehand as
    /// the rate limiter estimates them). Default none.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Cost in the price's currency (needs `price`). Default none.
    #[serde(default)]
    pub max_cost: Option<f64>,
}

/// A model's price per million tokens, in any currency (the `cost` counters use it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Price of a million prompt (input) tokens.
    pub prompt_per_million: f64,
    /// Price of a million completion (output) tokens.
    pub completion_per_million: f64,
}

impl LlmConfig {
    /// Every problem with the settings, each a sentence naming the setting: the URL, the
    /// ranges, the key's environment variable. Checked by `primer validate` before any
    /// request.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.base_url() {
            Err(e) => out.push(e),
            Ok(url) => match reqwest::Url::parse(&url) {
                Err(e) => out.push(format!(
                    "llm.base_url `{url}` is not a URL ({e}); write it as http(s)://host[:port]/v1"
                )),
                Ok(u) if !matches!(u.scheme(), "http" | "https") => out.push(format!(
                    "llm.base_url `{url}`: the scheme must be http or https"
                )),
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    out.push(format!("llm.base_url `{url}` names no host"))
                }
                Ok(_) => {}
            },
        }
        match self.model() {
            Err(e) => out.push(e),
            Ok(m) if m.trim().is_empty() => out.push("llm.model is empty".to_string()),
            Ok(_) => {}
        }
        if let Some(var) = &self.api_key_env {
            match std::env::var_os(var) {
                None if self.api_key_optional => {}
                None => out.push(format!(
                    "llm.api_key_env: the environment variable `{var}` is not set (it should hold the API key)"
                )),
                Some(v) if v.is_empty() => out.push(format!(
                    "llm.api_key_env: the environment variable `{var}` is empty"
                )),
                Some(v) if v.to_str().is_none() => out.push(format!(
                    "llm.api_key_env: the environment variable `{var}` is not valid UTF-8"
                )),
                Some(_) => {}
            }
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            out.push(format!("llm.temperature = {t}: use 0 to 2"));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            out.push(format!("llm.top_p = {p}: use a value above 0, up to 1"));
        }
        if self.max_tokens == 0 {
            out.push("llm.max_tokens must be at least 1".to_string());
        }
        if let Some(s) = &self.json_schema
            && s.parsed().is_none()
        {
            out.push(
                "llm.json_schema must be a table or a string holding a JSON object".to_string(),
            );
        }
        let l = &self.limits;
        if l.max_in_flight == 0 {
            out.push("llm.limits.max_in_flight must be at least 1".to_string());
        }
        for (name, v) in [
            ("requests_per_minute", l.requests_per_minute),
            ("tokens_per_minute", l.tokens_per_minute),
        ] {
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                out.push(format!("llm.limits.{name} = {v}: use a positive number"));
            }
        }
        for (name, v) in [
            ("burst_seconds", l.burst_seconds),
            ("timeout_secs", l.timeout_secs),
            ("backoff_initial_secs", l.backoff_initial_secs),
            ("backoff_max_secs", l.backoff_max_secs),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                out.push(format!("llm.limits.{name} = {v}: use a positive number"));
            }
        }
        if !(l.retry_after_max_secs >= 0.0 && l.retry_after_max_secs.is_finite()) {
            out.push(format!(
                "llm.limits.retry_after_max_secs = {}: use 0 or more",
                l.retry_after_max_secs
            ));
        }
        if self.budget.max_cost.is_some() && self.price.is_none() {
            out.push(
                "llm.budget.max_cost needs llm.price (prompt_per_million, completion_per_million)"
                    .to_string(),
            );
        }
        if let Some(p) = &self.price
            && (p.prompt_per_million < 0.0 || p.completion_per_million < 0.0)
        {
            out.push("llm.price: prices cannot be negative".to_string());
        }
        out
    }

    /// The base URL: `base_url`, or the value of `base_url_env`'s variable.
    pub fn base_url(&self) -> Result<String, String> {
        from_setting_or_env("base_url", &self.base_url, &self.base_url_env)
    }

    /// The model: `model`, or the value of `model_env`'s variable.
    pub fn model(&self) -> Result<String, String> {
        from_setting_or_env("model", &self.model, &self.model_env)
    }

    /// The JSON schema as JSON text, keys in their order, when one is set.
    pub(crate) fn schema_json(&self) -> Option<String> {
        self.json_schema
            .as_ref()
            .and_then(crate::OrderedJson::parsed)
            .map(|v| v.to_json())
    }
}

fn from_setting_or_env(
    name: &str,
    value: &Option<String>,
    var: &Option<String>,
) -> Result<String, String> {
    match (value, var) {
        (Some(v), None) => Ok(v.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(v),
            Ok(_) => Err(format!(
                "llm.{name}_env: the environment variable `{var}` is empty"
            )),
            Err(_) => Err(format!(
                "llm.{name}_env: the environment variable `{var}` is not set (it should hold the {})",
                if name == "model" {
                    "model name"
                } else {
                    "API's base URL"
                }
            )),
        },
        (Some(_), Some(_)) => Err(format!("llm: set `{name}` or `{name}_env`, not both")),
        (None, None) => Err(format!("llm: `{name}` (or `{name}_env`) is required")),
    }
}
