//! A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and
//! benchmarks only.
//!
//! It speaks the real wire format — `POST /v1/chat/completions` with OpenAI's request and
//! answer bodies, its error bodies, `Retry-After` and `x-ratelimit-*` headers — and answers
//! deterministically from the prompt and seed. Faults are scripted in the prompt itself, so
//! a schedule holds whatever the order requests arrive in: a user message containing
//! `[[faults: 429, 500, stall]]` gets a 429 on its first request, a 500 on its second, a
//! stall on its third, and an answer after that. The faults:
//!
//! | fault | the server… |
//! |---|---|
//! | `429` | answers 429 with `Retry-After: 1` and an OpenAI rate-limit error body |
//! | `429ms` | answers 429 with `retry-after-ms: 100` |
//! | `500`, `502`, `503` | answers that status with an error body |
//! | `400` | answers 400 (`invalid_request_error`) — not worth a retry |
//! | `echo_key` | answers 400 with the request's `Authorization` header in the message |
//! | `stall` | waits [`Config::stall`] before answering (past any sane timeout) |
//! | `drop` | closes the connection without an answer |
//! | `malformed` | answers 200 with a truncated JSON body |
//! | `empty` | answers 200 with `"choices": []` |
//! | `length` | answers 200, the text cut short, `finish_reason: "length"` (every time) |
//! | `bad_answer` | answers 200 with text that is not what was asked for (every time) |
//!
//! Every request is logged ([`Server::log`]): which prompt and seed, which attempt, what it
//! got, when, and whether its API key was right; the tests read the log to prove that no
//! prompt was answered twice and that rate limits held.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

/// How the server answers a request that has no fault left.
pub type Responder = Arc<dyn Fn(&AnswerRequest) -> String + Send + Sync>;

/// What a responder sees of a request.
#[derive(Debug, Clone)]
pub struct AnswerRequest {
    /// The last user message.
    pub prompt: String,
    /// The system message, if any.
    pub system: Option<String>,
    pub seed: Option<u64>,
    pub max_tokens: Option<u64>,
    pub model: String,
}

/// The server's settings.
#[derive(Clone)]
pub struct Config {
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// How long a `stall` fault waits.
    pub stall: Duration,
    /// The API key requests must carry (`Authorization: Bearer <key>`); others get 401.
    pub require_key: Option<String>,
    /// Sent as `x-ratelimit-limit-requests` with every answer, if set.
    pub advertise_rpm: Option<u64>,
    /// Makes the answer text; default: [`default_answer`].
    pub responder: Responder,
    /// Keep a log entry per request (turn off for benchmarks).
    pub log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            latency: Duration::ZERO,
            stall: Duration::from_secs(30),
            require_key: None,
            advertise_rpm: None,
            responder: Arc::new(default_answer),
            log: true,
        }
    }
}

/// A deterministic answer: the prompt's hash and seed, and a sentence about it.
pub fn default_answer(r: &AnswerRequest) -> String {
    format!(
        "Answer {:016x} (seed {}): a textbook paragraph about {}.",
        xxhash_rust::xxh3::xxh3_64(r.prompt.as_bytes()),
        r.seed.map_or("none".to_string(), |s| s.to_string()),
        r.prompt.chars().take(60).collect::<String>().trim()
    )
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A chat completion with an answer (`finish_reason` given).
    Answered { finish_reason: String },
    /// A scripted fault (its name) or `401` for a wrong key.
    Fault(String),
    /// The request body was not a chat-completions request.
    BadRequest,
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The prompt's identity: a hash of the last user message.
    pub prompt: u64,
    pub seed: Option<u64>,
    /// 0 for the first request of this prompt and seed, 1 for the next…
    pub attempt: usize,
    pub outcome: Outcome,
    /// When the request arrived, from the server's start.
    pub at: Duration,
    /// Tokens the server counted (prompt + completion) for an answer.
    pub tokens: u64,
    /// Whether the `Authorization` header held the required key (true when none is
    /// required).
    pub key_ok: bool,
    /// Whether the request carried an `Authorization` header at all.
    pub had_key: bool,
}

struct State {
    cfg: Config,
    started: Instant,
    attempts: Mutex<HashMap<(u64, Option<u64>), usize>>,
    log: Mutex<Vec<Entry>>,
    /// While set, new requests wait; when it is cleared they are dropped unanswered.
    hold: AtomicBool,
    held: AtomicU64,
    requests: AtomicU64,
    timer: Timer,
}

/// Wakes waiters at their deadlines to within tens of microseconds (tokio's timer rounds
/// up to the next millisecond, which would add about a millisecond to a "fixed" latency).
struct Timer {
    queue: Arc<(Mutex<std::collections::BinaryHeap<Due>>, std::sync::Condvar)>,
}

struct Due(Instant, tokio::sync::oneshot::Sender<()>);

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    // The earliest deadline on top of the max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.cmp(&self.0)
    }
}

impl Timer {
    fn new() -> Timer {
        let queue = Arc::new((
            Mutex::new(std::collections::BinaryHeap::<Due>::new()),
            std::sync::Condvar::new(),
        ));
        let q = Arc::downgrade(&queue);
        std::thread::Builder::new()
            .name("fake-openai-timer".into())
            .spawn(move || {
                loop {
                    let Some(q) = q.upgrade() else { return };
                    let (lock, cv) = &*q;
                    let mut heap = lock.lock().unwrap();
                    let now = Instant::now();
                    while heap.peek().is_some_and(|d| d.0 <= now) {
                        let _ = heap.pop().expect("peeked").1.send(());
                    }
                    let wait = heap
                        .peek()
                        .map_or(Duration::from_millis(100), |d| d.0 - now);
                    let _ = cv.wait_timeout(heap, wait).unwrap();
                }
            })
            .expect("timer thread");
        Timer { queue }
    }

    fn at(&self, when: Instant) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (lock, cv) = &*self.queue;
        lock.lock().unwrap().push(Due(when, tx));
        cv.notify_one();
        rx
    }
}

/// A running server; dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Start on a free port of 127.0.0.1, on its own runtime thread.
    pub fn start(cfg: Config) -> Server {
        Server::start_with_threads(cfg, 1)
    }

    /// Start with `threads` runtime threads.
    pub fn start_with_threads(cfg: Config, threads: usize) -> Server {
        Server::bind("127.0.0.1:0", cfg, threads).expect("bind 127.0.0.1")
    }

    /// Start on `addr`.
    pub fn bind(addr: &str, cfg: Config, threads: usize) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            cfg,
            started: Instant::now(),
            attempts: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            hold: AtomicBool::new(false),
            held: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            timer: Timer::new(),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-openai".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let _ = stream.set_nodelay(true);
                                let st = st.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let st = st.clone();
                                        async move { handle(&st, req).await }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .keep_alive(true)
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })?;
        Ok(Server {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Entry> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests received so far (also when the log is off).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Hold every new request: it waits, and at [`release`](Self::release) its connection
    /// is closed without an answer (logged as the fault `held`). These are the requests in
    /// flight when a client is killed: a crash test holds the server, kills the client and
    /// releases, so no request the client can no longer receive is counted as answered.
    pub fn hold(&self) {
        self.state.hold.store(true, Ordering::SeqCst);
    }

    /// End a [`hold`](Self::hold): held requests are dropped, new ones are served.
    pub fn release(&self) {
        self.state.hold.store(false, Ordering::SeqCst);
    }

    /// Requests waiting in a hold now.
    pub fn held(&self) -> u64 {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Answers per prompt (and seed) so far: a prompt answered twice shows a 2.
    pub fn answers_per_prompt(&self) -> HashMap<(u64, Option<u64>), usize> {
        let mut m = HashMap::new();
        for e in self.log() {
            if matches!(e.outcome, Outcome::Answered { .. }) {
                *m.entry((e.prompt, e.seed)).or_insert(0) += 1;
            }
        }
        m
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The faults scripted in a prompt: `[[faults: a, b, c]]`.
pub fn faults_of(prompt: &str) -> Vec<String> {
    let Some(start) = prompt.find("[[faults:") else {
        return Vec::new();
    };
    let rest = &prompt[start + "[[faults:".len()..];
    let Some(end) = rest.find("]]") else {
        return Vec::new();
    };
    rest[..end]
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

fn json(status: StatusCode, body: String, headers: &[(&str, String)]) -> Reply {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    Ok(r.body(Full::new(Bytes::from(body))).expect("response"))
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
    serde_json::json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    })
    .to_string()
}

fn tokens_of(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

async fn handle(st: &State, req: Request<hyper::body::Incoming>) -> Reply {
    let arrived = Instant::now();
    st.requests.fetch_add(1, Ordering::Relaxed);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path_ok = req.method() == hyper::Method::POST && req.uri().path() == "/v1/chat/completions";
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let at = st.started.elapsed();
    if st.hold.load(Ordering::SeqCst) {
        st.held.fetch_add(1, Ordering::SeqCst);
        while st.hold.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        st.held.fetch_sub(1, Ordering::SeqCst);
        log(
            st,
            Entry {
                prompt: 0,
                seed: None,
                attempt: 0,
                outcome: Outcome::Fault("held".into()),
                at,
                tokens: 0,
                key_ok: true,
                had_key: auth.is_some(),
            },
        );
        return Err(std::io::Error::other("held, then dropped"));
    }
    if !path_ok {
        return json(
            StatusCode::NOT_FOUND,
            error_body(
                "Unknown request URL",
                "invalid_request_error",
                Some("unknown_url"),
            ),
            &[],
        );
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let Some(v) = parsed.filter(|v| v["messages"].is_array() && v["model"].is_string()) else {
        log(
            st,
            Entry {
                prompt: 0,
                seed: None,
                attempt: 0,
                outcome: Outcome::BadRequest,
                at,
                tokens: 0,
                key_ok: true,
                had_key: auth.is_some(),
            },
        );
        return json(
            StatusCode::BAD_REQUEST,
            error_body(
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            ),
            &[],
        );
    };
    let messages = v["messages"].as_array().cloned().unwrap_or_default();
    let content_of = |role: &str| {
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .map(str::to_string)
    };
    let request = AnswerRequest {
        prompt: content_of("user").unwrap_or_default(),
        system: content_of("system"),
        seed: v["seed"].as_u64(),
        max_tokens: v["max_tokens"].as_u64(),
        model: v["model"].as_str().unwrap_or_default().to_string(),
    };
    let prompt = xxhash_rust::xxh3::xxh3_64(request.prompt.as_bytes());
    let key_ok = match &st.cfg.require_key {
        Some(k) => auth.as_deref() == Some(format!("Bearer {k}").as_str()),
        None => true,
    };
    let attempt = {
        let mut a = st.attempts.lock().unwrap();
        let n = a.entry((prompt, request.seed)).or_insert(0);
        *n += 1;
        *n - 1
    };
    let faults = faults_of(&request.prompt);
    let fault = faults.get(attempt).cloned();
    let sticky = |name: &str| faults.iter().any(|f| f == name);
    let mut entry = Entry {
        prompt,
        seed: request.seed,
        attempt,
        outcome: Outcome::Fault(String::new()),
        at,
        tokens: 0,
        key_ok,
        had_key: auth.is_some(),
    };
    if !st.cfg.latency.is_zero() {
        let _ = st.timer.at(arrived + st.cfg.latency).await;
    }
    if !key_ok {
        entry.outcome = Outcome::Fault("401".into());
        log(st, entry);
        return json(
            StatusCode::UNAUTHORIZED,
            error_body(
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            &[],
        );
    }
    let fault = fault.filter(|f| f != "length" && f != "bad_answer");
    if let Some(f) = fault {
        entry.outcome = Outcome::Fault(f.clone());
        log(st, entry);
        return match f.as_str() {
            "429" => json(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "Rate limit reached for requests per min. Please try again in 1s.",
                    "requests",
                    Some("rate_limit_exceeded"),
                ),
                &[("retry-after", "1".into()), ("x-ratelimit-remaining-requests", "0".into())],
            ),
            "429ms" => json(
                StatusCode::TOO_MANY_REQUESTS,
                error_body("Rate limit reached for tokens per min.", "tokens", Some("rate_limit_exceeded")),
                &[("retry-after-ms", "100".into())],
            ),
            "500" | "502" | "503" => {
                let code: u16 = f.parse().unwrap_or(500);
                json(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    error_body("The server had an error while processing your request.", "server_error", None),
                    &[],
                )
            }
            "400" => json(
                StatusCode::BAD_REQUEST,
                error_body("This model's maximum context length was exceeded.", "invalid_request_error", Some("context_length_exceeded")),
                &[],
            ),
            "echo_key" => json(
                StatusCode::BAD_REQUEST,
                error_body(
                    &format!("Malformed header: {}", auth.unwrap_or_default()),
                    "invalid_request_error",
                    None,
                ),
                &[],
            ),
            "stall" => {
                tokio::time::sleep(st.cfg.stall).await;
                json(StatusCode::OK, completion(&request, "stalled answer", "stop", st), &[])
            }
            "drop" => Err(std::io::Error::other("scripted dropped connection")),
            "malformed" => json(
                StatusCode::OK,
                r#"{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assis"#.into(),
                &[],
            ),
            "empty" => json(
                StatusCode::OK,
                serde_json::json!({
                    "id": "chatcmpl-empty", "object": "chat.completion", "created": 0,
                    "model": request.model, "choices": [],
                    "usage": {"prompt_tokens": tokens_of(&request.prompt), "completion_tokens": 0, "total_tokens": tokens_of(&request.prompt)}
                })
                .to_string(),
                &[],
            ),
            other => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body(&format!("unknown scripted fault `{other}`"), "server_error", None),
                &[],
            ),
        };
    }
    let (text, finish) = if sticky("bad_answer") {
        ("I cannot help with that.".to_string(), "stop")
    } else {
        let full = (st.cfg.responder)(&request);
        if sticky("length") {
            let cut: String = full.chars().take(full.chars().count() / 2).collect();
            (cut, "length")
        } else {
            (full, "stop")
        }
    };
    entry.tokens = tokens_of(&request.prompt) + tokens_of(&text);
    entry.outcome = Outcome::Answered {
        finish_reason: finish.to_string(),
    };
    log(st, entry);
    let mut headers = Vec::new();
    if let Some(rpm) = st.cfg.advertise_rpm {
        headers.push(("x-ratelimit-limit-requests", rpm.to_string()));
    }
    json(
        StatusCode::OK,
        completion(&request, &text, finish, st),
        &headers,
    )
}

fn completion(r: &AnswerRequest, text: &str, finish: &str, st: &State) -> String {
    let p = tokens_of(&r.prompt) + r.system.as_deref().map_or(0, tokens_of);
    let c = tokens_of(text);
    serde_json::json!({
        "id": format!("chatcmpl-{}", st.requests.load(Ordering::Relaxed)),
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": r.model,
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text, "refusal": null },
            "logprobs": null,
            "finish_reason": finish
        }],
        "usage": { "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c }
    })
    .to_string()
}

fn log(st: &State, e: Entry) {
    if st.cfg.log {
        st.log.lock().unwrap().push(e);
    }
}

/// The most requests (and tokens) that started in any window of `window` in the log.
pub fn max_in_window(log: &[Entry], window: Duration) -> (usize, u64) {
    let mut best = (0, 0);
    let mut sorted: Vec<&Entry> = log.iter().collect();
    sorted.sort_by_key(|e| e.at);
    let mut j = 0;
    let mut tokens = 0u64;
    for i in 0..sorted.len() {
        while j < sorted.len() && sorted[j].at < sorted[i].at + window {
            tokens += sorted[j].tokens;
            j += 1;
        }
        best.0 = best.0.max(j - i);
        best.1 = best.1.max(tokens);
        tokens -= sorted[i].tokens;
    }
    best
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("latency", &self.latency)
            .field("stall", &self.stall)
            .field("require_key", &self.require_key.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}
