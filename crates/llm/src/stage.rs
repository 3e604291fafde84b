//! What a pipeline stage that calls the client needs around it: the client and a tokio
//! runtime made on first use (so `primer validate` and `primer plan` make neither), the
//! cache in the stage's `_cache/`, run-stopping errors as stage errors, and the progress
//! line. The `generate` and `annotate` stages both use it.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use primer_core::{CACHE_DIR, Counters, Error, Result, StatusFn};

use crate::{ChatError, Client, LlmConfig, Summary};

/// The client and runtime of one stage, made when its first task runs.
pub struct StageClient {
    cfg: LlmConfig,
    runtime: OnceLock<std::result::Result<tokio::runtime::Runtime, String>>,
    client: Mutex<Option<Arc<Client>>>,
}

impl StageClient {
    pub fn new(cfg: &LlmConfig) -> StageClient {
        StageClient {
            cfg: cfg.clone(),
            runtime: OnceLock::new(),
            client: Mutex::new(None),
        }
    }

    /// A runtime for the stage's requests (two worker threads; every task of the stage
    /// submits to it).
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("primer-llm")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Internal(format!("cannot start the LLM runtime: {e}")))
    }

    /// The client, with its cache at `<dataset dir>/_cache/llm.redb`.
    pub fn client(&self, dir: &Path) -> Result<Arc<Client>> {
        let mut c = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let path = dir.join(CACHE_DIR).join("llm.redb");
        let client = Arc::new(Client::new(&self.cfg, &path).map_err(|e| match e {
            crate::Error::Settings(m) => Error::input(m),
            e => Error::External(e.to_string()),
        })?);
        *c = Some(client.clone());
        Ok(client)
    }
}

impl StageClient {
    /// Run `work` on every item — each a few requests of the client — at most
    /// `4 × max_in_flight` at once (the client's own limits hold the requests), and return
    /// the results in the items' order. Stops at the first run-stopping error (a spent
    /// budget, a refusing server) and when the run is cancelled; every 200 ms it shows the
    /// progress line through `status`. Answers already received are in the cache either way.
    #[allow(clippy::too_many_arguments)]
    pub fn run_all<I, T, Fut>(
        &self,
        client: &Client,
        items: Vec<I>,
        what: &str,
        cancel: &AtomicBool,
        status: Option<StatusFn>,
        work: impl FnMut(I) -> Fut,
    ) -> Result<Vec<T>>
    where
        Fut: Future<Output = std::result::Result<T, ChatError>>,
    {
        let rt = self.runtime()?;
        let window = self.cfg.limits.max_in_flight.saturating_mul(4).max(8);
        let total = items.len();
        rt.block_on(async {
            let mut stream = futures::stream::iter(items).map(work).buffered(window);
            let mut out = Vec::with_capacity(total);
            loop {
                tokio::select! {
                    next = stream.next() => match next {
                        Some(Ok(r)) => out.push(r),
                        Some(Err(e)) => return Err(stage_error(e)),
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if cancel.load(Ordering::Relaxed) {
                            return Err(Error::Cancelled);
                        }
                        if let Some(f) = &status {
                            f(&progress_line(client, what, out.len(), total));
                        }
                    }
                }
            }
            Ok(out)
        })
    }
}

/// A client error that stops the run, as a stage error: a spent budget stops it cleanly
/// ([`Error::Stopped`]), a refusing server or a broken cache is external.
pub fn stage_error(e: ChatError) -> Error {
    match e {
        ChatError::Budget(m) => Error::Stopped(m),
        ChatError::Fatal(m) => Error::External(m),
        ChatError::Cache(e) => Error::External(e.to_string()),
        ChatError::Failed(f) => Error::Internal(format!(
            "a failed prompt reached the stage unrecorded: {}",
            f.detail
        )),
    }
}

/// The progress line: this task's items, and the client's answers, cache hits, failures,
/// requests in flight and tokens per second.
pub fn progress_line(client: &Client, what: &str, done: usize, total: usize) -> String {
    let l = client.live();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    format!(
        "task {done}/{total} {what}; stage: {} answered, {} cached, {} failed, {} in flight, {:.0} tokens/s",
        get(&l.answered),
        get(&l.cache_hits),
        get(&l.failed),
        get(&l.in_flight),
        get(&l.completion_tokens) as f64 / client.uptime().as_secs_f64().max(1e-3)
    )
}

/// The manifest notes of an LLM stage: `llm` with the client's summary.
pub fn summary_notes(counters: &Counters) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(s) = Summary::from_counters(counters) {
        m.insert("llm".into(), s.to_json());
    }
    m
}
