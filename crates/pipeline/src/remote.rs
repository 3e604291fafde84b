//! A work directory on object storage (`workdir = "s3://bucket/prefix"`).
//!
//! Stages work on the local staging copy of the work directory (see `primer_store`); this
//! module keeps the store the place of record, with the same commit order a local dataset
//! has:
//!
//! - a finished task's parts, and the scratch files a phase hands to the next (stored
//!   under `_scratch/<fingerprint>/`), go up first, then its record
//!   (`_tasks/task-N.json`): a record in the store names only files that are there whole;
//! - when the stage completes, its side datasets' manifests and any other file of the
//!   dataset (a classifier's model) go up, objects under the stage that the dataset does
//!   not name are removed (work of older settings, scratch files), and `_manifest.json`
//!   goes up last: the dataset is complete in the store exactly when its manifest is
//!   there;
//! - before a stage runs, the store's manifest decides whether it is up to date; its own
//!   finished tasks come down (tasks the copy has and the store lacks — a run killed
//!   between recording a task and storing it — go up), and so do, at each later phase,
//!   what other shards stored; an input's parts come down when a task first reads one, so
//!   a shard fetches only the parts of its own tasks.
//!
//! A stage's `_cache/` (the LLM response cache) goes up after the stage ran and comes down
//! when the local copy has none. `_running.json` and `_lock` stay local.
//!
//! Directories a stage writes beside its dataset (an export, token shards) are synced by
//! [`OutputSync`]: down before the stage runs, up after every task (manifests last), and
//! files the stage removed are removed from the store when the stage completes.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use primer_core::{
    CACHE_DIR, Dataset, Error, MANIFEST_FILE, Manifest, PartInfo, PartSource, Result, TaskRecord,
    task_file_name, write_atomic,
};
use primer_store::{Bucket, Location, Object};

use crate::config::Pipeline;

const SIDE_NOTE: &str = "side.";
/// The stage directory's scratch space (see `StageDir::scratch_dir`).
const SCRATCH_DIR: &str = "_scratch";

/// The store behind a pipeline's work directory.
pub struct Remote {
    /// The work directory in the store.
    loc: Location,
    bucket: Arc<Bucket>,
    /// Its local staging copy.
    local: PathBuf,
    /// Task records known to be both stored and here, with their fingerprints: they are
    /// not fetched again.
    known: Mutex<HashMap<String, String>>,
}

impl Remote {
    /// The store behind `p`'s work directory, or `None` for a local one.
    pub fn of(p: &Pipeline) -> Result<Option<Remote>> {
        let Some(loc) = primer_store::remote_of(&p.workdir) else {
            return Ok(None);
        };
        Ok(Some(Remote {
            bucket: primer_store::bucket(&loc.bucket)?,
            loc,
            local: p.workdir.clone(),
            known: Mutex::new(HashMap::new()),
        }))
    }

    /// The work directory's URL.
    pub fn url(&self) -> String {
        self.loc.url()
    }

    fn key(&self, id: &str, rel: &str) -> String {
        self.loc.join(id).join(rel).key
    }

    fn local(&self, id: &str, rel: &str) -> PathBuf {
        let mut p = self.local.join(id);
        for c in rel.split('/') {
            p.push(c);
        }
        p
    }

    /// The manifest of stage `id`'s dataset in the store, with its bytes.
    fn stored_manifest(&self, id: &str, rel: &str) -> Result<Option<(Manifest, Vec<u8>)>> {
        let key = self.key(id, rel);
        let Some(bytes) = self.bucket.get(&key)? else {
            return Ok(None);
        };
        let m = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            path: PathBuf::from(self.loc.join(id).join(rel).url()),
            message: e.to_string(),
        })?;
        Ok(Some((m, bytes)))
    }

    /// Stage `id`'s complete dataset in the store: its manifest, or `None`.
    pub fn manifest(&self, id: &str) -> Result<Option<Manifest>> {
        Ok(self.stored_manifest(id, MANIFEST_FILE)?.map(|(m, _)| m))
    }

    /// Stage `id`'s complete dataset as an input: `None` when the store has none. Its
    /// parts come down when a task first reads them (a shard fetches the parts of its
    /// tasks, not all), other files of the dataset (a classifier's model) at once.
    pub fn open_input(&self, id: &str) -> Result<Option<Dataset>> {
        let Some((m, bytes)) = self.stored_manifest(id, MANIFEST_FILE)? else {
            return Ok(None);
        };
        // Local parts are the stored ones when the local manifest is the stored one.
        let trusted = std::fs::read(self.local(id, MANIFEST_FILE)).is_ok_and(|b| b == bytes);
        self.pull_extras(id, &m)?;
        let source = StoredParts {
            bucket: self.bucket.clone(),
            loc: self.loc.join(id),
            trusted,
            fetched: Mutex::new(HashMap::new()),
        };
        Dataset::open_fetching(self.local.join(id), m, Arc::new(source)).map(Some)
    }

    /// The files of stage `id`'s stored dataset besides its parts, side datasets and
    /// bookkeeping (a classifier's `model.bin`, a crawl's `warc/`), brought down.
    fn pull_extras(&self, id: &str, m: &Manifest) -> Result<()> {
        let prefix = self.key(id, "") + "/";
        for obj in self.bucket.list(&self.key(id, ""))? {
            let Some(rel) = obj.key.strip_prefix(&prefix) else {
                continue;
            };
            if !is_extra(rel, m) {
                continue;
            }
            let path = self.local(id, rel);
            if !primer_store::file_matches(&path, &obj) {
                self.bucket.download(&obj.key, &path)?;
            }
        }
        Ok(())
    }

    /// Bring stage `id`'s complete dataset — parts, side datasets, then the manifest —
    /// to the local copy; `false` when the store has none. Parts the copy already has
    /// under the same manifest, at the same size, are not fetched again.
    pub fn pull_dataset(&self, id: &str) -> Result<bool> {
        let Some((m, bytes)) = self.stored_manifest(id, MANIFEST_FILE)? else {
            return Ok(false);
        };
        let mut sides = Vec::new();
        for (k, v) in &m.notes {
            if let (Some(_), Some(dir)) = (k.strip_prefix(SIDE_NOTE), v.as_str()) {
                let rel = format!("{dir}/{MANIFEST_FILE}");
                match self.stored_manifest(id, &rel)? {
                    Some((sm, sbytes)) => sides.push((dir.to_string(), sm, sbytes)),
                    None => {
                        return Err(Error::Manifest {
                            path: PathBuf::from(self.loc.join(id).join(&rel).url()),
                            message: "the side dataset the manifest names is missing".into(),
                        });
                    }
                }
            }
        }
        for (dir, sm, sbytes) in &sides {
            self.pull_parts(id, dir, sm, sbytes)?;
        }
        self.pull_extras(id, &m)?;
        self.pull_parts(id, "", &m, &bytes)
            .map(|()| true)
            .map_err(|e| crate::executor::stage_err(id, e))
    }

    /// The parts of the dataset (or side dataset) at `id/dir`, then its manifest.
    fn pull_parts(&self, id: &str, dir: &str, m: &Manifest, bytes: &[u8]) -> Result<()> {
        let rel = |file: &str| {
            if dir.is_empty() {
                file.to_string()
            } else {
                format!("{dir}/{file}")
            }
        };
        let manifest_path = self.local(id, &rel(MANIFEST_FILE));
        let same = std::fs::read(&manifest_path).is_ok_and(|b| b == bytes);
        if !same && manifest_path.exists() {
            // The copy's dataset is another one: it is not complete until the new parts are in.
            std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        }
        for p in &m.parts {
            let local = self.local(id, &rel(&p.file));
            if !same || !is_whole(&local, p) {
                self.bucket.download(&self.key(id, &rel(&p.file)), &local)?;
            }
        }
        if !same {
            write_in_dir(&manifest_path, bytes)?;
        }
        Ok(())
    }

    /// Bring stage `id`'s stored manifest alone to the local copy; `false` when the store
    /// has none. Parts the copy holds under another manifest are removed, so that a local
    /// part is only ever taken for a stored one under the manifest that names it.
    fn pull_manifest(&self, id: &str) -> Result<bool> {
        let Some((_, bytes)) = self.stored_manifest(id, MANIFEST_FILE)? else {
            return Ok(false);
        };
        let path = self.local(id, MANIFEST_FILE);
        let local = std::fs::read(&path).ok();
        if local.as_deref() == Some(bytes.as_slice()) {
            return Ok(true);
        }
        if let Some(old) = local.and_then(|b| serde_json::from_slice::<Manifest>(&b).ok()) {
            for p in &old.parts {
                let part = self.local(id, &p.file);
                if part.exists() {
                    std::fs::remove_file(&part).map_err(|e| Error::io(&part, e))?;
                }
            }
        }
        write_in_dir(&path, &bytes)?;
        Ok(true)
    }

    /// Remove stage `id`'s manifest from the store: its dataset is being rebuilt.
    pub fn delete_manifest(&self, id: &str) -> Result<()> {
        Ok(self.bucket.delete(&self.key(id, MANIFEST_FILE))?)
    }

    /// Make the finished tasks of `fingerprint` agree between the local copy and the
    /// store: tasks the store has (other shards', an earlier run's on another machine)
    /// come down, with their parts; tasks only the copy has go up. With `pull` false
    /// (a forced rebuild) nothing comes down.
    pub fn sync_tasks(
        &self,
        id: &str,
        fingerprint: &str,
        num_tasks: usize,
        pull: bool,
    ) -> Result<()> {
        let stored: BTreeSet<String> = self
            .bucket
            .list(&self.key(id, "_tasks"))?
            .into_iter()
            .map(|o| o.key)
            .collect();
        for task in 0..num_tasks {
            let rel = task_file_name(task);
            let key = self.key(id, &rel);
            if self.known(&key, fingerprint) {
                continue;
            }
            let local_path = self.local(id, &rel);
            let local = std::fs::read(&local_path).ok();
            let remote = if stored.contains(&key) {
                self.bucket.get(&key)?
            } else {
                None
            };
            let current = |bytes: &[u8]| {
                serde_json::from_slice::<TaskRecord>(bytes)
                    .ok()
                    .filter(|r| r.fingerprint == fingerprint && r.task == task)
            };
            match (
                local.as_deref().and_then(current),
                remote.as_deref().and_then(current),
            ) {
                (_, Some(rec)) if pull => {
                    let same = local.as_deref() == remote.as_deref();
                    for p in record_parts(&rec) {
                        let path = self.local(id, &p.file);
                        if !same || !is_whole(&path, p) {
                            self.bucket.download(&self.key(id, &p.file), &path)?;
                        }
                    }
                    if !same {
                        write_in_dir(&local_path, remote.as_deref().unwrap_or_default())?;
                    }
                    self.know(key, fingerprint);
                }
                (Some(rec), None) => self.push_task(id, &rec)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the record at `key` is known to be both stored and here, for `fingerprint`.
    fn known(&self, key: &str, fingerprint: &str) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(key).is_some_and(|f| f == fingerprint)
    }

    fn know(&self, key: String, fingerprint: &str) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(key, fingerprint.to_string());
    }

    /// Store a finished task: its parts, then its record.
    pub fn push_task(&self, id: &str, rec: &TaskRecord) -> Result<()> {
        for p in record_parts(rec) {
            self.bucket
                .upload(&self.local(id, &p.file), &self.key(id, &p.file))?;
        }
        let rel = task_file_name(rec.task);
        let key = self.key(id, &rel);
        self.bucket.upload(&self.local(id, &rel), &key)?;
        self.know(key, &rec.fingerprint);
        Ok(())
    }

    /// The sync of stage `id`'s scratch files (what a phase hands to the next) for
    /// `fingerprint`: stored under `_scratch/<fingerprint>/`, so files of other settings
    /// are never taken for these. Removed from the store when the stage completes.
    pub fn scratch(&self, id: &str, fingerprint: &str) -> OutputSync {
        OutputSync::new(
            self.local(id, SCRATCH_DIR),
            self.loc.join(id).join(SCRATCH_DIR).join(fingerprint),
            self.bucket.clone(),
        )
    }

    /// Store the completed dataset's manifests: the side datasets' first, then — after
    /// removing objects under the stage that the dataset does not name — its own.
    pub fn push_complete(&self, id: &str, m: &Manifest) -> Result<()> {
        let mut keep: BTreeSet<String> = BTreeSet::new();
        keep.insert(self.key(id, MANIFEST_FILE));
        for task in 0..m.tasks as usize {
            keep.insert(self.key(id, &task_file_name(task)));
        }
        for p in &m.parts {
            keep.insert(self.key(id, &p.file));
        }
        for (k, v) in &m.notes {
            if let (Some(_), Some(dir)) = (k.strip_prefix(SIDE_NOTE), v.as_str()) {
                let rel = format!("{dir}/{MANIFEST_FILE}");
                let side = Manifest::read(&self.local(id, dir))?;
                for p in &side.parts {
                    keep.insert(self.key(id, &format!("{dir}/{}", p.file)));
                }
                self.bucket
                    .upload(&self.local(id, &rel), &self.key(id, &rel))?;
                keep.insert(self.key(id, &rel));
            }
        }
        // Files of the dataset besides its parts (a classifier's model): written by the
        // stage's one task, so this process has them all.
        let stored: HashMap<String, Object> = self
            .bucket
            .list(&self.key(id, ""))?
            .into_iter()
            .map(|o| (o.key.clone(), o))
            .collect();
        for rel in local_files(&self.local(id, ""))? {
            if is_extra(&rel, m) {
                let (path, key) = (self.local(id, &rel), self.key(id, &rel));
                if !stored
                    .get(&key)
                    .is_some_and(|o| primer_store::file_matches(&path, o))
                {
                    self.bucket.upload(&path, &key)?;
                }
                keep.insert(key);
            }
        }
        let cache = self.key(id, CACHE_DIR) + "/";
        for key in stored.keys() {
            if !keep.contains(key) && !key.starts_with(&cache) {
                self.bucket.delete(key)?;
            }
        }
        self.bucket
            .upload(&self.local(id, MANIFEST_FILE), &self.key(id, MANIFEST_FILE))?;
        Ok(())
    }

    /// Bring stage `id`'s `_cache/` down when the local copy has none.
    pub fn pull_cache(&self, id: &str) -> Result<()> {
        if self.local(id, CACHE_DIR).exists() {
            return Ok(());
        }
        self.cache(id).pull()
    }

    /// Store stage `id`'s `_cache/` files that changed.
    pub fn push_cache(&self, id: &str) -> Result<()> {
        if !self.local(id, CACHE_DIR).is_dir() {
            return Ok(());
        }
        let sync = self.cache(id);
        sync.know_stored()?;
        sync.push_changed()
    }

    fn cache(&self, id: &str) -> OutputSync {
        OutputSync::new(
            self.local(id, CACHE_DIR),
            self.loc.join(id).join(CACHE_DIR),
            self.bucket.clone(),
        )
    }
}

/// With the work directory in a store: bring every stage's stored manifest to the local
/// copy — and with `data`, its parts and side datasets too — and drop local manifests of
/// datasets the store does not have, so what reads the work directory sees the store's
/// state: `plan` and `status` read manifests, the run report reads data. Returns the
/// store's URL, or `None` for a local work directory.
pub fn pull_work_dir(p: &Pipeline, data: bool) -> Result<Option<String>> {
    let Some(r) = Remote::of(p)? else {
        return Ok(None);
    };
    for def in &p.stages {
        let stored = if data {
            r.pull_dataset(&def.id)?
        } else {
            r.pull_manifest(&def.id)?
        };
        if !stored {
            let local = r.local(&def.id, MANIFEST_FILE);
            if local.exists() {
                std::fs::remove_file(&local).map_err(|e| Error::io(&local, e))?;
            }
        }
    }
    Ok(Some(r.url()))
}

/// The parts a task record names, its side datasets' too (files relative to the dataset
/// directory).
fn record_parts(rec: &TaskRecord) -> impl Iterator<Item = &PartInfo> {
    rec.parts.iter().chain(rec.side_parts.values().flatten())
}

/// Whether `path` holds a file of `part`'s size.
fn is_whole(path: &Path, part: &PartInfo) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == part.bytes)
}

/// [`write_atomic`], creating the file's directory first.
fn write_in_dir(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    write_atomic(path, bytes)
}

/// Every file under `dir`, relative, skipping temporary files (their names start with `.`).
fn local_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((e.path(), r));
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `rel` (relative to a dataset directory) is a file of the dataset besides its
/// parts, side datasets and bookkeeping (`_manifest.json`, `_tasks/`, `_scratch/`,
/// `_cache/`, `_running.json`, `_lock`, `report.html`).
fn is_extra(rel: &str, m: &Manifest) -> bool {
    !rel.starts_with('_') && !rel.starts_with("side/") && !m.parts.iter().any(|p| p.file == rel)
}

/// The parts of a stored dataset, fetched when first read.
#[derive(Debug)]
struct StoredParts {
    bucket: Arc<Bucket>,
    /// The dataset's directory in the store.
    loc: Location,
    /// The local copy's manifest is the stored one, so a local part of the right size is
    /// the stored part.
    trusted: bool,
    /// Parts this process has made sure of, one lock each (tasks may read a part at once).
    fetched: Mutex<HashMap<String, Arc<Mutex<bool>>>>,
}

impl PartSource for StoredParts {
    fn fetch(&self, path: &Path, part: &PartInfo) -> Result<()> {
        let cell = self
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(part.file.clone())
            .or_default()
            .clone();
        let mut done = cell.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            if !(self.trusted && is_whole(path, part)) {
                self.bucket.download(&self.loc.join(&part.file).key, path)?;
            }
            *done = true;
        }
        Ok(())
    }
}

/// A directory a stage writes besides its dataset, kept in step with the store location
/// it is the staging copy of. Files are compared by size and modification time (an
/// uploaded or downloaded file carries the object's time).
pub struct OutputSync {
    local: PathBuf,
    loc: Location,
    bucket: Arc<Bucket>,
    /// What the store is known to hold, by path relative to `local`.
    stored: Mutex<HashMap<String, Object>>,
}

/// Manifests go up after the files they describe, and their removal before.
fn is_manifest(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == MANIFEST_FILE || name == "manifest.json"
}

impl OutputSync {
    fn new(local: PathBuf, loc: Location, bucket: Arc<Bucket>) -> OutputSync {
        OutputSync {
            local,
            loc,
            bucket,
            stored: Mutex::new(HashMap::new()),
        }
    }

    /// The sync for `dir` when it is a staging copy, after bringing the stored files the
    /// copy lacks (or has at another size or time) down.
    pub fn open(dir: &Path) -> Result<Option<OutputSync>> {
        let Some(loc) = primer_store::remote_of(dir) else {
            return Ok(None);
        };
        let sync = OutputSync::new(
            dir.to_path_buf(),
            loc.clone(),
            primer_store::bucket(&loc.bucket)?,
        );
        sync.pull()?;
        Ok(Some(sync))
    }

    /// Bring the stored files the copy lacks (or has at another size or time) down.
    pub fn pull(&self) -> Result<()> {
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        for (rel, obj) in self.list()? {
            let path = self.path(&rel);
            // An object removed since the listing (a stage completed elsewhere) is skipped.
            if primer_store::file_matches(&path, &obj)
                || self.bucket.download_if_exists(&obj.key, &path)?.is_some()
            {
                stored.insert(rel, obj);
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<(String, Object)>> {
        let prefix = if self.loc.key.is_empty() {
            String::new()
        } else {
            format!("{}/", self.loc.key)
        };
        Ok(self
            .bucket
            .list(&self.loc.key)?
            .into_iter()
            .filter_map(|o| Some((o.key.strip_prefix(&prefix)?.to_string(), o)))
            .collect())
    }

    fn path(&self, rel: &str) -> PathBuf {
        let mut p = self.local.clone();
        for c in rel.split('/') {
            p.push(c);
        }
        p
    }

    fn local_files(&self) -> Result<Vec<String>> {
        local_files(&self.local)
    }

    /// Store the files written or changed since the last sync: a stored manifest the
    /// copy no longer has is removed first (the files it describes are being rewritten),
    /// manifests go up last.
    pub fn push_changed(&self) -> Result<()> {
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        let files = self.local_files()?;
        let gone: Vec<String> = stored
            .keys()
            .filter(|k| is_manifest(k) && !files.contains(k))
            .cloned()
            .collect();
        for rel in gone {
            self.bucket.delete(&self.loc.join(&rel).key)?;
            stored.remove(&rel);
        }
        let (manifests, data): (Vec<String>, Vec<String>) =
            files.into_iter().partition(|f| is_manifest(f));
        for rel in data.into_iter().chain(manifests) {
            let path = self.path(&rel);
            if stored
                .get(&rel)
                .is_some_and(|o| primer_store::file_matches(&path, o))
            {
                continue;
            }
            let key = self.loc.join(&rel).key;
            self.bucket.upload(&path, &key)?;
            let md = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
            stored.insert(
                rel,
                Object {
                    key,
                    size: md.len(),
                    modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                },
            );
        }
        Ok(())
    }

    /// Record what the store holds without bringing it down.
    fn know_stored(&self) -> Result<()> {
        let listed = self.list()?;
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(listed);
        Ok(())
    }

    /// After the stage completed: store what changed, and remove from the store the
    /// files this process saw there (or stored) that the stage removed. Files other
    /// processes stored meanwhile are not this process's to judge, and stay.
    pub fn finish(&self) -> Result<()> {
        self.push_changed()?;
        let files: BTreeSet<String> = self.local_files()?.into_iter().collect();
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        let removed: Vec<String> = stored
            .keys()
            .filter(|rel| !files.contains(*rel))
            .cloned()
            .collect();
        for rel in removed {
            if let Some(obj) = stored.remove(&rel) {
                self.bucket.delete(&obj.key)?;
            }
        }
        Ok(())
    }
}
