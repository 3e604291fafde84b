//! The client: cache, budget, concurrency, rate limits, retries, one request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cache::{CachedAnswer, ResponseCache};
use crate::config::{LlmConfig, PriceConfig};
use crate::limit::Limiter;
use crate::stats::CallStats;
use crate::wire::{Completion, Message, RequestBody, ServerHints, clip, error_message};
use crate::{Cause, Error};

/// An answer to one prompt sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// `stop`, `length`, … as the server said (empty when it said nothing).
    pub finish_reason: String,
    /// The model that answered, as the server named it.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Whether it came from the cache (free) rather than from the server.
    pub cached: bool,
    pub stats: CallStats,
}

/// A prompt the server did not answer, after the retries it was worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub cause: Cause,
    /// What the server or the connection said, scrubbed of the API key.
    pub detail: String,
    pub stats: CallStats,
}

/// Why [`Client::chat`] gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// This prompt failed; others may not. Record it and go on.
    #[error("{} ({})", .0.detail, .0.cause)]
    Failed(Failure),
    /// The run's budget is spent: nothing more is sent.
    #[error("{0}")]
    Budget(String),
    /// The server refuses every request (bad key, unknown model or URL): stop the run.
    #[error("{0}")]
    Fatal(String),
    /// The cache cannot be read or written.
    #[error(transparent)]
    Cache(#[from] Error),
}

/// Counts of the whole client, for progress displays (not for manifests: those take each
/// call's [`CallStats`]).
#[derive(Debug, Default)]
pub struct Live {
    pub calls: AtomicU64,
    pub cache_hits: AtomicU64,
    pub answered: AtomicU64,
    pub failed: AtomicU64,
    pub in_flight: AtomicU64,
    pub completion_tokens: AtomicU64,
}

/// The API key: shown nowhere.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// An OpenAI-compatible chat-completions client with a response cache, a run budget,
/// concurrency and rate limits and retries. Cheap to share (`Arc`) between the tasks of a
/// stage; every method takes `&self`.
pub struct Client {
    cfg: LlmConfig,
    model: String,
    schema: Option<String>,
    http: reqwest::Client,
    url: reqwest::Url,
    key: Option<Secret>,
    cache: ResponseCache,
    in_flight: Semaphore,
    limiter: Limiter,
    budget: Budget,
    live: Live,
    created: std::time::Instant,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .field("cache", &self.cache.path())
            .finish_non_exhaustive()
    }
}

/// What one HTTP request came to.
enum Attempt {
    Answer(CachedAnswer),
    /// Worth another try: 429, 5xx, timeout, dropped connection, not a chat completion.
    Retry(Cause, String, ServerHints),
    /// A 4xx other than 408 and 429: the request itself is refused.
    Refused(u16, String),
}

impl Client {
    /// A client for `cfg` with its response cache at `cache_path` (created if missing).
    /// Reads the API key from the environment; makes no request.
    pub fn new(cfg: &LlmConfig, cache_path: &std::path::Path) -> Result<Client, Error> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(Error::Settings(problems.join("; ")));
        }
        // reqwest is built without a default TLS provider; rustls' ring is the one (it
        // builds with a C compiler alone; aws-lc-rs, which rustls now prefers for its
        // post-quantum key exchange, needs cmake and minutes more to build).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base_url = cfg.base_url().map_err(Error::Settings)?;
        let model = cfg.model().map_err(Error::Settings)?;
        let mut base = base_url.trim_end_matches('/').to_string();
        base.push_str("/chat/completions");
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Settings(format!("llm.base_url `{base_url}`: {e}")))?;
        let key = match &cfg.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.is_empty() => Some(Secret(k)),
                _ if cfg.api_key_optional => None,
                _ => {
                    return Err(Error::Settings(format!(
                        "llm.api_key_env: the environment variable `{var}` is not set"
                    )));
                }
            },
            None => None,
        };
        let l = &cfg.limits;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(l.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(l.timeout_secs.min(30.0)))
            .pool_max_idle_per_host(l.max_in_flight)
            .tcp_nodelay(true)
            .user_agent(concat!("primer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Settings(format!("cannot make the HTTP client: {e}")))?;
        Ok(Client {
            schema: cfg.schema_json(),
            http,
            url,
            key,
            cache: ResponseCache::open(cache_path)?,
            in_flight: Semaphore::new(l.max_in_flight),
            limiter: Limiter::new(l.requests_per_minute, l.tokens_per_minute, l.burst_seconds),
            budget: Budget::new(cfg),
            live: Live::default(),
            created: std::time::Instant::now(),
            cfg: cfg.clone(),
            model,
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// The model requests name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Counts of the whole client so far.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Time since the client was made (for rates of [`live`](Self::live) counts).
    pub fn uptime(&self) -> Duration {
        self.created.elapsed()
    }

    /// The cache key of a prompt sample: base URL, model, messages, parameters, the
    /// sample's seed and its index.
    pub fn cache_key(&self, messages: &[Message], sample: u32) -> u128 {
        let body = RequestBody::new(
            &self.cfg,
            &self.model,
            self.schema.as_deref(),
            messages,
            sample,
        );
        key_of(self.url.as_str(), &body, sample)
    }

    /// Answer one sample of a prompt: from the cache, or from the server (then cached
    /// before it is returned).
    pub async fn chat(&self, messages: &[Message], sample: u32) -> Result<Answer, ChatError> {
        self.live.calls.fetch_add(1, Ordering::Relaxed);
        let body = RequestBody::new(
            &self.cfg,
            &self.model,
            self.schema.as_deref(),
            messages,
            sample,
        );
        let key = key_of(self.url.as_str(), &body, sample);
        if let Some(c) = self.cache.get(key)? {
            self.live.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Answer {
                text: c.text,
                finish_reason: c.finish_reason,
                model: c.model,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                cached: true,
                stats: CallStats {
                    cache_hit: true,
                    ..CallStats::default()
                },
            });
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::Settings(e.to_string()))?;
        let prompt_bytes: usize = messages.iter().map(|m| m.content.len()).sum();
        let est_prompt = prompt_bytes.div_ceil(3) as u64;
        let est_tokens = est_prompt + u64::from(self.cfg.max_tokens);
        let reservation = self
            .budget
            .reserve(est_prompt, u64::from(self.cfg.max_tokens))
            .await
            .map_err(ChatError::Budget)?;
        let mut stats = CallStats::default();
        let l = &self.cfg.limits;
        let mut attempt: u32 = 0;
        loop {
            let permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|_| Error::Settings("the client is closed".into()))?;
            self.limiter.acquire(est_tokens as f64).await;
            self.live.in_flight.fetch_add(1, Ordering::Relaxed);
            stats.requests += 1;
            let t0 = Instant::now();
            let outcome = self.send(&bytes).await;
            self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            let wait = match outcome {
                Attempt::Answer(answer) => {
                    let latency = t0.elapsed();
                    let (p, c) = (answer.prompt_tokens, answer.completion_tokens);
                    self.limiter.settle(est_tokens as f64, (p + c) as f64);
                    let cost = self.budget.settle(reservation, Some((p, c)));
                    self.cache.put(key, &answer)?;
                    self.live.answered.fetch_add(1, Ordering::Relaxed);
                    self.live.completion_tokens.fetch_add(c, Ordering::Relaxed);
                    stats.latency = Some(latency);
                    stats.prompt_tokens = p;
                    stats.completion_tokens = c;
                    stats.cost_micro = cost;
                    return Ok(Answer {
                        text: answer.text,
                        finish_reason: answer.finish_reason,
                        model: answer.model,
                        prompt_tokens: p,
                        completion_tokens: c,
                        cached: false,
                        stats,
                    });
                }
                Attempt::Refused(status, detail) => {
                    self.limiter.settle(est_tokens as f64, 0.0);
                    self.budget.settle(reservation, None);
                    let detail = self.scrub(detail);
                    if matches!(status, 401 | 403 | 404) {
                        return Err(ChatError::Fatal(format!(
                            "POST {} was refused with HTTP {status}: {detail} — check llm.base_url, llm.model and the API key",
                            self.url
                        )));
                    }
                    self.live.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(ChatError::Failed(Failure {
                        cause: Cause::Http(status),
                        detail,
                        stats,
                    }));
                }
                Attempt::Retry(cause, detail, hints) => {
                    self.limiter.settle(est_tokens as f64, 0.0);
                    self.limiter.observe(&hints);
                    if attempt >= l.max_retries {
                        self.budget.settle(reservation, None);
                        self.live.failed.fetch_add(1, Ordering::Relaxed);
                        return Err(ChatError::Failed(Failure {
                            cause,
                            detail: format!(
                                "{} (gave up after {} attempts)",
                                self.scrub(detail),
                                attempt + 1
                            ),
                            stats,
                        }));
                    }
                    let backoff = {
                        let cap = (l.backoff_initial_secs * 2f64.powi(attempt.min(30) as i32))
                            .min(l.backoff_max_secs);
                        Duration::from_secs_f64(cap * (0.5 + 0.5 * fastrand::f64()))
                    };
                    let wait = match hints.retry_after {
                        Some(d) => d.min(Duration::from_secs_f64(l.retry_after_max_secs)),
                        None => backoff,
                    };
                    if cause == Cause::Http(429) {
                        // The server is over its limit for everyone, not just this request.
                        self.limiter.pause_for(wait);
                    }
                    stats.retries.push(cause);
                    wait
                }
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP request.
    async fn send(&self, body: &[u8]) -> Attempt {
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(k) = &self.key {
            let mut v = match reqwest::header::HeaderValue::from_str(&format!("Bearer {}", k.0)) {
                Ok(v) => v,
                Err(_) => {
                    return Attempt::Refused(
                        401,
                        "the API key holds characters a header cannot".into(),
                    );
                }
            };
            v.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = resp.status().as_u16();
        let hints = ServerHints::from_headers(resp.headers());
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport_failure(&e),
        };
        match status {
            200..=299 => match parse_answer(&bytes, &self.model) {
                Ok(answer) => {
                    self.limiter.observe(&hints);
                    Attempt::Answer(answer)
                }
                Err((cause, detail)) => Attempt::Retry(cause, detail, hints),
            },
            429 | 408 | 500..=599 => Attempt::Retry(
                if status == 408 {
                    Cause::Timeout
                } else {
                    Cause::Http(status)
                },
                format!("HTTP {status}: {}", error_message(&bytes)),
                hints,
            ),
            _ => Attempt::Refused(status, format!("HTTP {status}: {}", error_message(&bytes))),
        }
    }

    /// `s` with the API key replaced, in case a server echoed it.
    fn scrub(&self, s: String) -> String {
        match &self.key {
            Some(k) if !k.0.is_empty() && s.contains(&k.0) => s.replace(&k.0, "[api key]"),
            _ => s,
        }
    }
}

/// A failure below HTTP: timeout or connection.
fn transport_failure(e: &reqwest::Error) -> Attempt {
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    let cause = if e.is_timeout() {
        Cause::Timeout
    } else {
        Cause::Connection
    };
    Attempt::Retry(cause, detail, ServerHints::default())
}

/// A 2xx body as an answer (tokens as the server counted them, 0 when it did not say), or
/// why it is not one.
fn parse_answer(bytes: &[u8], model: &str) -> Result<CachedAnswer, (Cause, String)> {
    let c: Completion = serde_json::from_slice(bytes).map_err(|e| {
        (
            Cause::Malformed,
            format!(
                "the answer is not a chat completion ({e}): {}",
                clip(&String::from_utf8_lossy(bytes), 200)
            ),
        )
    })?;
    let Some(choice) = c.choices.into_iter().next() else {
        return Err((Cause::NoChoices, "the answer has no choices".to_string()));
    };
    let Some(text) = choice.message.and_then(|m| m.content) else {
        return Err((
            Cause::NoChoices,
            "the answer's first choice has no message content".to_string(),
        ));
    };
    let usage = c.usage.unwrap_or_default();
    Ok(CachedAnswer {
        text,
        finish_reason: choice.finish_reason.unwrap_or_default(),
        model: c.model.unwrap_or_else(|| model.to_string()),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    })
}

fn key_of(url: &str, body: &RequestBody, sample: u32) -> u128 {
    let mut bytes = Vec::with_capacity(512);
    bytes.extend_from_slice(url.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&sample.to_le_bytes());
    bytes.push(0);
    // Serialising a struct of plain fields cannot fail.
    serde_json::to_writer(&mut bytes, body).expect("request body serialises");
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

/// What the run may still spend; see [`crate::BudgetConfig`].
struct Budget {
    max_requests: Option<u64>,
    max_tokens: Option<u64>,
    max_cost_micro: Option<u64>,
    price: Option<PriceConfig>,
    state: Mutex<Spent>,
    /// Woken whenever a reservation is settled.
    settled: tokio::sync::Notify,
}

#[derive(Default)]
struct Spent {
    requests: u64,
    tokens: u64,
    cost_micro: u64,
    reserved_requests: u64,
    reserved_tokens: u64,
    reserved_cost_micro: u64,
}

#[derive(Clone, Copy)]
struct Reservation {
    tokens: u64,
    cost_micro: u64,
}

impl Budget {
    fn new(cfg: &LlmConfig) -> Budget {
        Budget {
            max_requests: cfg.budget.max_requests,
            max_tokens: cfg.budget.max_tokens,
            max_cost_micro: cfg
                .budget
                .max_cost
                .map(|c| (c * 1e6).round().max(0.0) as u64),
            price: cfg.price.clone(),
            state: Mutex::new(Spent::default()),
            settled: tokio::sync::Notify::new(),
        }
    }

    fn cost_micro(&self, prompt: u64, completion: u64) -> u64 {
        self.price.as_ref().map_or(0, |p| {
            (prompt as f64 * p.prompt_per_million + completion as f64 * p.completion_per_million)
                .round() as u64
        })
    }

    /// Reserve a request's share. When it does not fit but requests in flight hold
    /// reservations (which an unpaid failure would give back), wait for them to settle;
    /// when it cannot fit, say which limit was reached.
    async fn reserve(&self, est_prompt: u64, est_completion: u64) -> Result<Reservation, String> {
        let r = Reservation {
            tokens: est_prompt + est_completion,
            cost_micro: self.cost_micro(est_prompt, est_completion),
        };
        loop {
            let settled = self.settled.notified();
            {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                match self.check(&s, r) {
                    Ok(()) => {
                        s.reserved_requests += 1;
                        s.reserved_tokens += r.tokens;
                        s.reserved_cost_micro += r.cost_micro;
                        return Ok(r);
                    }
                    Err(e) if s.reserved_requests == 0 => return Err(e),
                    Err(_) => {}
                }
            }
            settled.await;
        }
    }

    /// Whether `r` fits beside what is spent and reserved.
    fn check(&self, s: &Spent, r: Reservation) -> Result<(), String> {
        let tail = "every answer received is kept in the response cache, and a rerun with a larger budget continues from it";
        if let Some(m) = self.max_requests
            && s.requests + s.reserved_requests >= m
        {
            return Err(format!(
                "LLM budget reached: max_requests = {m} ({} paid requests made); {tail}",
                s.requests
            ));
        }
        if let Some(m) = self.max_tokens
            && s.tokens + s.reserved_tokens + r.tokens > m
        {
            return Err(format!(
                "LLM budget reached: max_tokens = {m} ({} tokens used; the next request may take {}); {tail}",
                s.tokens, r.tokens
            ));
        }
        if let Some(m) = self.max_cost_micro
            && s.cost_micro + s.reserved_cost_micro + r.cost_micro > m
        {
            return Err(format!(
                "LLM budget reached: max_cost = {} ({} spent; the next request may cost up to {}); {tail}",
                m as f64 / 1e6,
                s.cost_micro as f64 / 1e6,
                r.cost_micro as f64 / 1e6
            ));
        }
        Ok(())
    }

    /// Release a reservation; with `usage`, count the paid request. Returns its cost in
    /// millionths.
    fn settle(&self, r: Reservation, usage: Option<(u64, u64)>) -> u64 {
        let cost = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.reserved_requests -= 1;
            s.reserved_tokens -= r.tokens;
            s.reserved_cost_micro -= r.cost_micro;
            match usage {
                Some((p, c)) => {
                    let cost = self.cost_micro(p, c);
                    s.requests += 1;
                    s.tokens += p + c;
                    s.cost_micro += cost;
                    cost
                }
                None => 0,
            }
        };
        self.settled.notify_waiters();
        cost
    }
}
