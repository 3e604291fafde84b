//! The response cache: every answer a server gave, durably, before anyone uses it.
//!
//! A redb database (crash-safe, transactional) keyed by a 128-bit hash of the request:
//! base URL, model, messages, sampling parameters, the sample's seed and index. One writer
//! thread commits what arrives in groups — each commit durable (`fsync`) before the
//! answers in it are handed back — so a few hundred answers a second cost a few commits,
//! and an answer is only ever used after it is on disk: a process killed at any moment
//! repeats only the requests whose answers were not committed yet, which are the ones in
//! flight. The database is opened in redb's multi-writer mode, so `--shard` processes
//! on one machine share it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Error;

const ANSWERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("answers");
/// Most answers in one commit.
const GROUP: usize = 4096;

/// A cached answer: what the stage needs to rebuild its row without asking again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub text: String,
    pub finish_reason: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

/// The response cache of one stage.
pub struct ResponseCache {
    db: std::sync::Arc<redb::Database>,
    path: PathBuf,
    tx: Option<mpsc::Sender<(u128, Vec<u8>, Ack)>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl ResponseCache {
    /// Open (or create) the cache at `path`.
    pub fn open(path: &Path) -> Result<ResponseCache, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Cache(format!("{}: {e}", dir.display())))?;
        }
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(|e| Error::Cache(format!("{}: {e}", path.display())))?;
        let db = std::sync::Arc::new(db);
        {
            let w = db
                .begin_write()
                .map_err(|e| Error::Cache(format!("{}: {e}", path.display())))?;
            w.open_table(ANSWERS)
                .map_err(|e| Error::Cache(format!("{}: {e}", path.display())))?;
            w.commit()
                .map_err(|e| Error::Cache(format!("{}: {e}", path.display())))?;
        }
        let (tx, rx) = mpsc::channel::<(u128, Vec<u8>, Ack)>();
        let wdb = db.clone();
        let wpath = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("primer-llm-cache".into())
            .spawn(move || write_loop(&wdb, &wpath, &rx))
            .map_err(|e| Error::Cache(format!("cannot start the cache writer: {e}")))?;
        Ok(ResponseCache {
            db,
            path: path.to_path_buf(),
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The answer cached under `key`, if any.
    pub fn get(&self, key: u128) -> Result<Option<CachedAnswer>, Error> {
        let err = |e: &dyn std::fmt::Display| Error::Cache(format!("{}: {e}", self.path.display()));
        let r = self.db.begin_read().map_err(|e| err(&e))?;
        let t = r.open_table(ANSWERS).map_err(|e| err(&e))?;
        let Some(v) = t.get(key.to_le_bytes().as_slice()).map_err(|e| err(&e))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| err(&format!("a cached answer does not read back: {e}")))
    }

    /// Store an answer; returns once it is durably committed.
    pub async fn put(&self, key: u128, answer: &CachedAnswer) -> Result<(), Error> {
        let bytes = serde_json::to_vec(answer).map_err(|e| Error::Cache(e.to_string()))?;
        let (ack, done) = tokio::sync::oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| Error::Cache("the cache is closed".into()))?
            .send((key, bytes, ack))
            .map_err(|_| {
                Error::Cache(format!("{}: the cache writer stopped", self.path.display()))
            })?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Cache(format!("{}: {e}", self.path.display()))),
            Err(_) => Err(Error::Cache(format!(
                "{}: the cache writer stopped",
                self.path.display()
            ))),
        }
    }

    /// How many answers the cache holds.
    pub fn len(&self) -> Result<u64, Error> {
        use redb::ReadableTableMetadata;
        let err = |e: &dyn std::fmt::Display| Error::Cache(format!("{}: {e}", self.path.display()));
        let r = self.db.begin_read().map_err(|e| err(&e))?;
        let t = r.open_table(ANSWERS).map_err(|e| err(&e))?;
        t.len().map_err(|e| err(&e))
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

impl Drop for ResponseCache {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Commit what arrives, in groups, each durably, then acknowledge the group.
fn write_loop(db: &redb::Database, path: &Path, rx: &mpsc::Receiver<(u128, Vec<u8>, Ack)>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(item) => group.push(item),
                Err(_) => break,
            }
        }
        let result = (|| -> Result<(), String> {
            let w = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut t = w.open_table(ANSWERS).map_err(|e| e.to_string())?;
                for (key, value, _) in &group {
                    t.insert(key.to_le_bytes().as_slice(), value.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            w.commit().map_err(|e| e.to_string())
        })();
        if let Err(e) = &result {
            eprintln!("{}: cannot commit answers: {e}", path.display());
        }
        for (_, _, ack) in group {
            let _ = ack.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(t: &str) -> CachedAnswer {
        CachedAnswer {
            text: t.into(),
            finish_reason: "stop".into(),
            model: "m".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_survive_reopening_and_concurrent_puts_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.redb");
        {
            let c = std::sync::Arc::new(ResponseCache::open(&path).unwrap());
            let mut tasks = Vec::new();
            for k in 0..500u128 {
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    c.put(k, &answer(&format!("answer {k}"))).await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(c.len().unwrap(), 500);
        }
        let c = ResponseCache::open(&path).unwrap();
        assert_eq!(c.get(7).unwrap(), Some(answer("answer 7")));
        assert_eq!(c.get(9999).unwrap(), None);
        assert_eq!(c.len().unwrap(), 500);
    }
}
