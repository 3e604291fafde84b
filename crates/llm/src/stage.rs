//! What a pipeline stage that calls the client needs around it: the client and a tokio
//! runtime made on first use (so `primer validate` and `primer plan` make neither), the
//! cache in the stage's `_cache/`, run-stopping errors as stage errors, and the progress
//! line. The `generate` and `annotate` stages both use it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use primer_core::{CACHE_DIR, Counters, Error, Result};

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
