//! The response cache: every answer a server gave, kept before anyone uses it.
//!
//! The store is a redb database (crash-safe, transactional) keyed by a 128-bit hash of the
//! request: base URL, model, messages, sampling parameters, the sample's seed and index.
//! In front of it is a journal, one per process: [`ResponseCache::put`] appends the answer
//! to the journal with one `write` — from then on it is in the kernel's page cache, so a
//! process killed at any moment (kill -9, OOM, Ctrl-C) loses no answer it received — and
//! hands it to a writer thread that commits answers to redb in groups gathered for up to
//! 50 ms, each commit durable (`fsync`). A commit takes about a millisecond here; waiting
//! for it would add that to every request, the journal does not. A power loss can lose the
//! answers of the last 50 ms; those would be asked again.
//!
//! When a cache is opened, journals left by processes that died (their file lock is free)
//! are replayed into redb and removed; a clean close commits everything and removes its
//! own journal. The database is opened in redb's multi-writer mode and each process has
//! its own journal, so `--shard` processes on one machine share the cache.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Error;

const ANSWERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("answers");
/// Most answers in one commit.
const GROUP: usize = 4096;
/// How long answers are gathered before a commit (the most a power loss can lose).
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// A journal record's header: key (16), payload length (4), checksum of both (8).
const HEADER: usize = 28;

/// A cached answer: what the stage needs to rebuild its row without asking again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub text: String,
    pub finish_reason: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Answers journaled but not yet committed to redb, by key.
type Pending = Arc<Mutex<HashMap<u128, Arc<[u8]>>>>;

/// The response cache of one stage.
pub struct ResponseCache {
    db: Arc<redb::Database>,
    path: PathBuf,
    journal: Mutex<File>,
    journal_path: PathBuf,
    pending: Pending,
    tx: Option<mpsc::Sender<u128>>,
    writer: Option<std::thread::JoinHandle<Result<(), String>>>,
}

fn cache_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Cache(format!("{}: {e}", path.display()))
}

fn checksum(key: u128, payload: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&key.to_le_bytes());
    h.update(payload);
    h.digest()
}

/// The whole records of a journal (a torn or corrupt tail ends it).
fn read_journal(bytes: &[u8]) -> Vec<(u128, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let h = &bytes[at..at + HEADER];
        let key = u128::from_le_bytes(h[..16].try_into().expect("16 bytes"));
        let len = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(h[20..28].try_into().expect("8 bytes"));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if checksum(key, payload) != sum {
            break;
        }
        out.push((key, payload));
        at += HEADER + len;
    }
    out
}

fn commit(db: &redb::Database, items: &[(u128, &[u8])]) -> Result<(), String> {
    let w = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut t = w.open_table(ANSWERS).map_err(|e| e.to_string())?;
        for (key, value) in items {
            t.insert(key.to_le_bytes().as_slice(), *value)
                .map_err(|e| e.to_string())?;
        }
    }
    w.commit().map_err(|e| e.to_string())
}

impl ResponseCache {
    /// Open (or create) the cache at `path`, replaying journals of processes that died.
    pub fn open(path: &Path) -> Result<ResponseCache, Error> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| cache_err(&dir, e))?;
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(|e| cache_err(path, e))?;
        let db = Arc::new(db);
        commit(&db, &[]).map_err(|e| cache_err(path, e))?;
        let stem = format!(
            "{}.journal-",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        // Journals whose process is gone: their lock is free.
        let entries = std::fs::read_dir(&dir).map_err(|e| cache_err(&dir, e))?;
        for e in entries {
            let e = e.map_err(|e| cache_err(&dir, e))?;
            if !e.file_name().to_string_lossy().starts_with(&stem) {
                continue;
            }
            let jp = e.path();
            let Ok(mut f) = File::options().read(true).write(true).open(&jp) else {
                continue;
            };
            if f.try_lock().is_err() {
                continue; // a live process's journal
            }
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| cache_err(&jp, e))?;
            commit(&db, &read_journal(&bytes)).map_err(|e| cache_err(path, e))?;
            std::fs::remove_file(&jp).map_err(|e| cache_err(&jp, e))?;
        }
        let journal_path = dir.join(format!(
            "{stem}{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let journal = File::options()
            .create_new(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| cache_err(&journal_path, e))?;
        journal.lock().map_err(|e| cache_err(&journal_path, e))?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::channel::<u128>();
        let (wdb, wpending) = (db.clone(), pending.clone());
        let writer = std::thread::Builder::new()
            .name("primer-llm-cache".into())
            .spawn(move || write_loop(&wdb, &wpending, &rx))
            .map_err(|e| Error::Cache(format!("cannot start the cache writer: {e}")))?;
        Ok(ResponseCache {
            db,
            path: path.to_path_buf(),
            journal: Mutex::new(journal),
            journal_path,
            pending,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The answer cached under `key`, if any.
    pub fn get(&self, key: u128) -> Result<Option<CachedAnswer>, Error> {
        let decode = |v: &[u8]| {
            serde_json::from_slice(v).map_err(|e| {
                cache_err(
                    &self.path,
                    format!("a cached answer does not read back: {e}"),
                )
            })
        };
        if let Some(v) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return decode(v).map(Some);
        }
        let r = self.db.begin_read().map_err(|e| cache_err(&self.path, e))?;
        let t = r
            .open_table(ANSWERS)
            .map_err(|e| cache_err(&self.path, e))?;
        match t
            .get(key.to_le_bytes().as_slice())
            .map_err(|e| cache_err(&self.path, e))?
        {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Store an answer: journaled (safe from a killed process) when this returns, committed
    /// to redb shortly after.
    pub fn put(&self, key: u128, answer: &CachedAnswer) -> Result<(), Error> {
        let payload = serde_json::to_vec(answer).map_err(|e| Error::Cache(e.to_string()))?;
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&key.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(key, &payload).to_le_bytes());
        record.extend_from_slice(&payload);
        {
            let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            j.write_all(&record)
                .map_err(|e| cache_err(&self.journal_path, e))?;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, payload.into());
        self.tx
            .as_ref()
            .ok_or_else(|| Error::Cache("the cache is closed".into()))?
            .send(key)
            .map_err(|_| cache_err(&self.path, "the cache writer stopped"))
    }

    /// How many answers the cache holds.
    pub fn len(&self) -> Result<u64, Error> {
        use redb::ReadableTableMetadata;
        let r = self.db.begin_read().map_err(|e| cache_err(&self.path, e))?;
        let t = r
            .open_table(ANSWERS)
            .map_err(|e| cache_err(&self.path, e))?;
        let committed = t.len().map_err(|e| cache_err(&self.path, e))?;
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let uncommitted = pending
            .keys()
            .filter(|k| t.get(k.to_le_bytes().as_slice()).ok().flatten().is_none())
            .count();
        Ok(committed + uncommitted as u64)
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Commit everything and close; the journal is removed once redb holds it all.
    pub fn close(mut self) -> Result<(), Error> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), Error> {
        drop(self.tx.take());
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        match w.join() {
            Ok(Ok(())) => std::fs::remove_file(&self.journal_path)
                .map_err(|e| cache_err(&self.journal_path, e)),
            // The journal stays, for the next open to replay.
            Ok(Err(e)) => Err(cache_err(&self.path, e)),
            Err(_) => Err(cache_err(&self.path, "the cache writer panicked")),
        }
    }
}

impl Drop for ResponseCache {
    fn drop(&mut self) {
        if let Err(e) = self.shut() {
            eprintln!("{e} (its answers stay in the journal and are replayed on the next run)");
        }
    }
}

/// Commit journaled answers to redb in groups, durably; then forget them as pending.
fn write_loop(
    db: &redb::Database,
    pending: &Pending,
    rx: &mpsc::Receiver<u128>,
) -> Result<(), String> {
    let mut result = Ok(());
    while let Ok(first) = rx.recv() {
        // Gather for up to COMMIT_EVERY: every commit fsyncs, and answers are safe in
        // the journal meanwhile.
        let deadline = std::time::Instant::now() + COMMIT_EVERY;
        let mut keys = vec![first];
        while keys.len() < GROUP {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(k) => keys.push(k),
                Err(_) => break,
            }
        }
        let items: Vec<(u128, Arc<[u8]>)> = {
            let p = pending.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .filter_map(|k| p.get(k).map(|v| (*k, v.clone())))
                .collect()
        };
        let refs: Vec<(u128, &[u8])> = items.iter().map(|(k, v)| (*k, &v[..])).collect();
        match commit(db, &refs) {
            Ok(()) => {
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                for k in &keys {
                    p.remove(k);
                }
            }
            Err(e) => result = Err(e),
        }
    }
    result
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

    #[test]
    fn answers_survive_reopening_and_concurrent_puts_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.redb");
        {
            let c = Arc::new(ResponseCache::open(&path).unwrap());
            let threads: Vec<_> = (0..4u128)
                .map(|t| {
                    let c = c.clone();
                    std::thread::spawn(move || {
                        for k in (0..500u128).filter(|k| k % 4 == t) {
                            c.put(k, &answer(&format!("answer {k}"))).unwrap();
                            assert_eq!(c.get(k).unwrap(), Some(answer(&format!("answer {k}"))));
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(c.len().unwrap(), 500);
        }
        // Closed cleanly: no journal left.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["llm.redb"]);
        let c = ResponseCache::open(&path).unwrap();
        assert_eq!(c.get(7).unwrap(), Some(answer("answer 7")));
        assert_eq!(c.get(9999).unwrap(), None);
        assert_eq!(c.len().unwrap(), 500);
    }

    /// A process killed before its commits: its journal (with a torn last record) is
    /// replayed by the next open, and removed.
    #[test]
    fn a_dead_process_s_journal_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.redb");
        drop(ResponseCache::open(&path).unwrap());
        let mut journal = Vec::new();
        for k in 0..3u128 {
            let payload = serde_json::to_vec(&answer(&format!("lost {k}"))).unwrap();
            journal.extend_from_slice(&k.to_le_bytes());
            journal.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            journal.extend_from_slice(&checksum(k, &payload).to_le_bytes());
            journal.extend_from_slice(&payload);
        }
        journal.extend_from_slice(&[1, 2, 3]); // torn
        std::fs::write(dir.path().join("llm.redb.journal-1-dead"), &journal).unwrap();
        // A live process's journal (locked) is left alone.
        let live = dir.path().join("llm.redb.journal-2-live");
        let f = File::create(&live).unwrap();
        f.lock().unwrap();
        let c = ResponseCache::open(&path).unwrap();
        assert_eq!(c.get(2).unwrap(), Some(answer("lost 2")));
        assert!(!dir.path().join("llm.redb.journal-1-dead").exists());
        assert!(live.exists());
    }
}
