use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::{
    Counters, Error, MANIFEST_FILE, Manifest, PROGRAM_VERSION, PartInfo, Result, StageInfo,
    schema_to_json, tmp_path, write_atomic,
};

const RUNNING_FILE: &str = "_running.json";
/// Held (an exclusive file lock) while a process decides whether to start the dataset
/// afresh and while it writes the manifest, so shards started at the same moment neither
/// wipe each other's parts nor write the manifest twice.
const LOCK_FILE: &str = "_lock";
const TASKS_DIR: &str = "_tasks";
const SCRATCH_DIR: &str = "_scratch";
/// A stage's persistent cache (the LLM response cache): kept when the dataset is rebuilt.
pub const CACHE_DIR: &str = "_cache";
/// Side datasets (rows a filter dropped, ids a dedupe removed) live in `side/<name>/`.
const SIDE_DIR: &str = "side";
/// Warnings kept per task and per manifest; the counters hold the full counts.
const MAX_WARNINGS: usize = 100;

/// How parts are written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// A row group is flushed when its buffered size reaches this many bytes. Each writer
    /// holds up to this much, and so does each reader of the part later: a stage with N
    /// writers (the `sql` stage has one per thread) holds N times this.
    pub row_group_bytes: usize,
    /// … or this many rows.
    pub row_group_rows: usize,
    /// A task starts a new part file when the current one reaches this many bytes.
    pub part_bytes: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            row_group_bytes: 16 << 20,
            row_group_rows: 64 * 1024,
            part_bytes: 256 << 20,
        }
    }
}

/// The directory a stage writes its dataset into, with the bookkeeping that makes the
/// work resumable: `_running.json` (the fingerprint being built), `_tasks/task-N.json`
/// (one per finished task: its parts and counters) and finally `_manifest.json`. A stage
/// may keep a cache in `_cache/` (see [`CACHE_DIR`]) whose entries are keyed by their
/// content: it survives rebuilds, so the LLM stages never pay twice for an answer.
pub struct StageDir {
    dir: PathBuf,
    fingerprint: String,
    schema: SchemaRef,
    opts: WriteOptions,
    sides: Vec<(String, SchemaRef)>,
}

/// What a finished task wrote and counted; stored in `_tasks/task-NNNNN.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: usize,
    pub fingerprint: String,
    pub parts: Vec<PartInfo>,
    pub counters: Counters,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// Parts of side datasets, by side name (paths relative to the dataset directory).
    #[serde(default)]
    pub side_parts: BTreeMap<String, Vec<PartInfo>>,
    /// Facts the task reported for the manifest's `notes` ([`TaskOutput::note`]).
    #[serde(default)]
    pub notes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Running {
    fingerprint: String,
}

impl StageDir {
    /// Prepare `dir` to build the dataset with `fingerprint`. Work of an interrupted run
    /// with the same fingerprint is kept; anything else in the directory (a completed
    /// dataset being rebuilt, work for other settings) is removed, except the stage's
    /// cache in `_cache/`.
    pub fn open(
        dir: &Path,
        fingerprint: &str,
        schema: SchemaRef,
        opts: WriteOptions,
    ) -> Result<StageDir> {
        StageDir::open_shared(dir, fingerprint, schema, opts, true)
    }

    /// [`open`](Self::open) for a run that other processes (`--shard`) may be doing at the
    /// same time: the decision to start afresh is taken under a lock, and a dataset that
    /// another process completed with this fingerprint in the meantime is kept unless
    /// `rebuild_complete` (a forced rebuild).
    pub fn open_shared(
        dir: &Path,
        fingerprint: &str,
        schema: SchemaRef,
        opts: WriteOptions,
        rebuild_complete: bool,
    ) -> Result<StageDir> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let _lock = lock_dir(dir)?;
        let complete = Manifest::read(dir).ok();
        let resumable = match &complete {
            Some(m) => !rebuild_complete && m.fingerprint == fingerprint,
            None => std::fs::read_to_string(dir.join(RUNNING_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<Running>(&t).ok())
                .is_some_and(|r| r.fingerprint == fingerprint),
        };
        if !resumable {
            let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(dir, e))?;
                if entry.file_name() == CACHE_DIR || entry.file_name() == LOCK_FILE {
                    continue;
                }
                let path = entry.path();
                let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|e| Error::io(&path, e))?;
            }
        }
        std::fs::create_dir_all(dir.join(TASKS_DIR)).map_err(|e| Error::io(dir, e))?;
        if !resumable {
            let text = serde_json::to_string(&Running {
                fingerprint: fingerprint.to_string(),
            })
            .map_err(|e| Error::Internal(e.to_string()))?;
            write_atomic(&dir.join(RUNNING_FILE), text.as_bytes())?;
        }
        Ok(StageDir {
            dir: dir.to_path_buf(),
            fingerprint: fingerprint.to_string(),
            schema,
            opts,
            sides: Vec::new(),
        })
    }

    /// Whether a stage's dataset at `dir` was started and is not complete (a run is
    /// going on, or was interrupted and will resume).
    pub fn in_progress(dir: &Path) -> bool {
        !dir.join(MANIFEST_FILE).exists() && dir.join(RUNNING_FILE).exists()
    }

    /// Declare the side datasets the stage writes (see [`TaskOutput::write_side`]); each
    /// becomes a dataset of its own in `side/<name>/`.
    pub fn set_side_outputs(&mut self, sides: Vec<(String, SchemaRef)>) {
        self.sides = sides;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Scratch space for spill files, created on demand and removed by [`finalize`](Self::finalize).
    pub fn scratch_dir(&self) -> PathBuf {
        self.dir.join(SCRATCH_DIR)
    }

    fn task_file(&self, task: usize) -> PathBuf {
        self.dir.join(task_file_name(task))
    }

    /// The finished tasks of this fingerprint whose parts are all present and whole.
    pub fn completed(&self, num_tasks: usize) -> BTreeMap<usize, TaskRecord> {
        let mut done = BTreeMap::new();
        for task in 0..num_tasks {
            let Ok(text) = std::fs::read_to_string(self.task_file(task)) else {
                continue;
            };
            let Ok(rec) = serde_json::from_str::<TaskRecord>(&text) else {
                continue;
            };
            let whole = rec.fingerprint == self.fingerprint
                && rec.task == task
                && rec
                    .parts
                    .iter()
                    .chain(rec.side_parts.values().flatten())
                    .all(|p| {
                        std::fs::metadata(self.dir.join(&p.file)).is_ok_and(|m| m.len() == p.bytes)
                    });
            if whole {
                done.insert(task, rec);
            }
        }
        done
    }

    /// Every part of the finished tasks in dataset order, when all `num_tasks` are done.
    pub fn completed_parts(&self, num_tasks: usize) -> Option<Vec<PartInfo>> {
        let done = self.completed(num_tasks);
        (done.len() == num_tasks).then(|| {
            done.values()
                .flat_map(|r| r.parts.iter().cloned())
                .collect()
        })
    }

    /// A writer for task `task`, after removing anything an interrupted attempt left.
    pub fn task_output(&self, task: usize) -> Result<TaskOutput> {
        remove_task_parts(&self.dir, task)?;
        let mut sides = BTreeMap::new();
        for (name, schema) in &self.sides {
            let dir = self.dir.join(SIDE_DIR).join(name);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            remove_task_parts(&dir, task)?;
            sides.insert(
                name.clone(),
                TaskOutput::new(dir, task, schema.clone(), self.opts.clone()),
            );
        }
        let mut out = TaskOutput::new(
            self.dir.clone(),
            task,
            self.schema.clone(),
            self.opts.clone(),
        );
        out.sides = sides;
        Ok(out)
    }

    /// Close a task's last part and record the task as done; from now on a resumed run
    /// keeps it.
    pub fn complete(&self, out: TaskOutput) -> Result<TaskRecord> {
        let rec = out.finish(&self.fingerprint)?;
        let text =
            serde_json::to_string_pretty(&rec).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&self.task_file(rec.task), text.as_bytes())?;
        Ok(rec)
    }

    /// When all `num_tasks` tasks are recorded, write the manifest (last) and return it.
    /// `None` when tasks are missing (other shards are still working on them).
    pub fn finalize(
        &self,
        stage: StageInfo,
        provenance: crate::Provenance,
        num_tasks: usize,
        tasks_reused: u64,
        seconds: f64,
        notes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<Manifest>> {
        self.finalize_with(
            stage,
            provenance,
            num_tasks,
            tasks_reused,
            seconds,
            notes,
            &|_| serde_json::Map::new(),
        )
    }

    /// [`finalize`](Self::finalize), with notes derived from the summed counters of all
    /// tasks (see [`Stage::counter_notes`](crate::Stage::counter_notes)).
    #[allow(clippy::too_many_arguments)]
    pub fn finalize_with(
        &self,
        stage: StageInfo,
        provenance: crate::Provenance,
        num_tasks: usize,
        tasks_reused: u64,
        seconds: f64,
        notes: serde_json::Map<String, serde_json::Value>,
        derive: &dyn Fn(&Counters) -> serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<Manifest>> {
        let done = self.completed(num_tasks);
        if done.len() < num_tasks {
            return Ok(None);
        }
        // Shards whose last tasks end together both get here: the first writes the
        // manifest, the others find it.
        let _lock = lock_dir(&self.dir)?;
        if let Ok(m) = Manifest::read(&self.dir)
            && m.fingerprint == self.fingerprint
        {
            return Ok(Some(m));
        }
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut notes = notes;
        for (name, schema) in &self.sides {
            let mut parts = Vec::new();
            for rec in done.values() {
                for p in rec.side_parts.get(name).into_iter().flatten() {
                    let prefix = format!("{SIDE_DIR}/{name}/");
                    let file = p.file.strip_prefix(&prefix).unwrap_or(&p.file);
                    parts.push(PartInfo {
                        file: file.to_string(),
                        ..p.clone()
                    });
                }
            }
            let mut counters = Counters::default();
            counters.add("rows_out", parts.iter().map(|p| p.rows).sum());
            let side = Manifest {
                format: Manifest::FORMAT.to_string(),
                stage: StageInfo {
                    id: format!("{}/{name}", stage.id),
                    kind: stage.kind.clone(),
                },
                fingerprint: self.fingerprint.clone(),
                program_version: PROGRAM_VERSION.to_string(),
                provenance: provenance.clone(),
                schema: schema_to_json(schema),
                rows: parts.iter().map(|p| p.rows).sum(),
                bytes: parts.iter().map(|p| p.bytes).sum(),
                parts,
                counters,
                warnings: Vec::new(),
                notes: serde_json::Map::from_iter([(
                    "side_of".to_string(),
                    stage.id.clone().into(),
                )]),
                tasks: num_tasks as u64,
                tasks_reused,
                seconds,
                created_unix,
            };
            let side_dir = self.dir.join(SIDE_DIR).join(name);
            std::fs::create_dir_all(&side_dir).map_err(|e| Error::io(&side_dir, e))?;
            side.write(&side_dir)?;
            notes.insert(format!("side.{name}"), format!("{SIDE_DIR}/{name}").into());
        }
        let mut counters = Counters::default();
        let mut parts = Vec::new();
        let mut warnings = Vec::new();
        for rec in done.values() {
            counters.merge(&rec.counters);
            notes.extend(rec.notes.clone());
            parts.extend(rec.parts.iter().cloned());
            for w in &rec.warnings {
                if warnings.len() < MAX_WARNINGS {
                    warnings.push(w.clone());
                }
            }
        }
        notes.extend(derive(&counters));
        let manifest = Manifest {
            format: Manifest::FORMAT.to_string(),
            stage,
            fingerprint: self.fingerprint.clone(),
            program_version: PROGRAM_VERSION.to_string(),
            provenance,
            schema: schema_to_json(&self.schema),
            rows: parts.iter().map(|p| p.rows).sum(),
            bytes: parts.iter().map(|p| p.bytes).sum(),
            parts,
            counters,
            warnings,
            notes,
            tasks: num_tasks as u64,
            tasks_reused,
            seconds,
            created_unix,
        };
        manifest.write(&self.dir)?;
        let _ = std::fs::remove_file(self.dir.join(RUNNING_FILE));
        let scratch = self.scratch_dir();
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        }
        Ok(Some(manifest))
    }
}

/// Where task `task`'s record is, relative to the dataset directory.
pub fn task_file_name(task: usize) -> String {
    format!("{TASKS_DIR}/task-{task:05}.json")
}

/// Take the directory's lock (released when the returned file is dropped).
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.lock().map_err(|e| Error::io(&path, e))?;
    Ok(f)
}

struct OpenPart {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: u64,
}

/// Where one task writes its rows: Parquet parts named `part-TTTTT-LLL-SSS.parquet` (task,
/// lane, sequence), each
/// written under a temporary name and renamed when closed; plus the task's counters and
/// warnings. `rows_out` is counted automatically.
pub struct TaskOutput {
    dir: PathBuf,
    task: usize,
    lane: usize,
    schema: SchemaRef,
    opts: WriteOptions,
    current: Option<OpenPart>,
    parts: Vec<PartInfo>,
    counters: Counters,
    warnings: Vec<String>,
    started: std::time::Instant,
    on_rows: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    on_status: Option<StatusFn>,
    sides: BTreeMap<String, TaskOutput>,
    notes: serde_json::Map<String, serde_json::Value>,
}

/// A stage's progress line callback ([`TaskOutput::status_callback`]).
pub type StatusFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Remove what an interrupted attempt at `task` left in `dir`.
fn remove_task_parts(dir: &Path, task: usize) -> Result<()> {
    let prefix = format!("part-{task:05}-");
    let tmp_prefix = format!(".part-{task:05}-");
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) || name.starts_with(&tmp_prefix) {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

impl TaskOutput {
    fn new(dir: PathBuf, task: usize, schema: SchemaRef, opts: WriteOptions) -> TaskOutput {
        TaskOutput {
            dir,
            task,
            lane: 0,
            schema,
            opts,
            current: None,
            parts: Vec::new(),
            counters: Counters::default(),
            warnings: Vec::new(),
            started: std::time::Instant::now(),
            on_rows: None,
            on_status: None,
            sides: BTreeMap::new(),
            notes: serde_json::Map::new(),
        }
    }

    /// Write a batch to the side dataset `name` (declared with
    /// [`Stage::side_outputs`](crate::Stage::side_outputs)); its columns must match the
    /// side's schema.
    pub fn write_side(&mut self, name: &str, batch: &RecordBatch) -> Result<()> {
        match self.sides.get_mut(name) {
            Some(side) => side.write(batch),
            None => Err(Error::Internal(format!(
                "side dataset `{name}` was not declared"
            ))),
        }
    }
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Called with the number of rows of every batch written (progress bars).
    pub fn set_progress(&mut self, f: Arc<dyn Fn(u64) + Send + Sync>) {
        self.on_rows = Some(f);
    }

    /// Called with a stage's own progress line (an LLM stage's requests, in flight and
    /// tokens per second), shown beside the progress bar.
    pub fn set_status_callback(&mut self, f: StatusFn) {
        self.on_status = Some(f);
    }

    /// The status callback, if the run shows progress: a stage calls it with a short
    /// line while it works.
    pub fn status_callback(&self) -> Option<StatusFn> {
        self.on_status.clone()
    }

    /// Write a batch. Its columns must match the stage's output schema.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = if batch.schema().fields() == self.schema.fields() {
            batch.clone()
        } else {
            batch
                .clone()
                .with_schema(self.schema.clone())
                .map_err(|e| {
                    Error::Internal(format!(
                        "a batch does not match the stage's output schema: {e} (batch: {:?})",
                        batch.schema()
                    ))
                })?
        };
        if self.current.is_none() {
            self.current = Some(self.open_part()?);
        }
        let part = self.current.as_mut().expect("opened above");
        part.writer
            .write(&batch)
            .map_err(|e| Error::parquet(&part.tmp, e))?;
        part.rows += batch.num_rows() as u64;
        if part.writer.in_progress_size() >= self.opts.row_group_bytes {
            part.writer
                .flush()
                .map_err(|e| Error::parquet(&part.tmp, e))?;
        }
        if part.writer.bytes_written() as u64 >= self.opts.part_bytes {
            self.close_part()?;
        }
        self.counters.add("rows_out", batch.num_rows() as u64);
        if let Some(f) = &self.on_rows {
            f(batch.num_rows() as u64);
        }
        Ok(())
    }

    /// A second writer for the same task, for work the task does in parallel (one lane
    /// per query partition, say). Its parts are named with `lane` (≥ 1, unique in the
    /// task) and join this output's parts, in order, by [`absorb`](Self::absorb).
    pub fn lane(&self, lane: usize) -> TaskOutput {
        TaskOutput {
            lane,
            started: self.started,
            on_rows: self.on_rows.clone(),
            on_status: self.on_status.clone(),
            ..TaskOutput::new(
                self.dir.clone(),
                self.task,
                self.schema.clone(),
                self.opts.clone(),
            )
        }
    }

    /// Close a lane's last part and take its parts, counters and warnings.
    pub fn absorb(&mut self, mut lane: TaskOutput) -> Result<()> {
        self.close_part()?;
        lane.close_part()?;
        self.parts.append(&mut lane.parts);
        self.counters.merge(&lane.counters);
        self.notes.append(&mut lane.notes);
        for w in lane.warnings {
            if self.warnings.len() < MAX_WARNINGS {
                self.warnings.push(w);
            }
        }
        Ok(())
    }

    /// Record a fact for the dataset's manifest `notes` (where a global step put the
    /// shards, say); notes of later tasks win over earlier ones with the same key.
    pub fn note(&mut self, key: &str, value: serde_json::Value) {
        self.notes.insert(key.to_string(), value);
    }

    /// Add `n` to the counter `name`.
    pub fn count(&mut self, name: &str, n: u64) {
        self.counters.add(name, n);
    }

    /// Count `n` rows dropped for `reason` (counter `dropped.<reason>`).
    pub fn dropped(&mut self, reason: &str, n: u64) {
        self.counters.add(&format!("dropped.{reason}"), n);
    }

    /// Keep a warning (bad line, skipped record) for the manifest; the first ones per task
    /// are kept, the counters say how many there were.
    pub fn warn(&mut self, message: String) {
        self.counters.add("warnings", 1);
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message);
        }
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn open_part(&mut self) -> Result<OpenPart> {
        let path = self.dir.join(format!(
            "part-{:05}-{:03}-{:03}.parquet",
            self.task,
            self.lane,
            self.parts.len()
        ));
        let tmp = tmp_path(&path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).expect("valid level"),
            ))
            .set_max_row_group_row_count(Some(self.opts.row_group_rows))
            // Column-chunk statistics only: page-level min/max of document text is of no
            // use to a reader and grows every reader's metadata.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_statistics_truncate_length(Some(64))
            .build();
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(props))
            .map_err(|e| Error::parquet(&tmp, e))?;
        Ok(OpenPart {
            writer,
            tmp,
            path,
            rows: 0,
        })
    }

    fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        let file = part
            .writer
            .into_inner()
            .map_err(|e| Error::parquet(&part.tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&part.tmp, e))?;
        drop(file);
        let bytes = std::fs::metadata(&part.tmp)
            .map_err(|e| Error::io(&part.tmp, e))?
            .len();
        std::fs::rename(&part.tmp, &part.path).map_err(|e| Error::io(&part.path, e))?;
        self.parts.push(PartInfo {
            file: part
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            rows: part.rows,
            bytes,
        });
        Ok(())
    }

    /// Close the last part and describe the finished task.
    fn finish(mut self, fingerprint: &str) -> Result<TaskRecord> {
        self.close_part()?;
        let mut side_parts = BTreeMap::new();
        for (name, mut side) in std::mem::take(&mut self.sides) {
            side.close_part()?;
            let parts = side
                .parts
                .into_iter()
                .map(|p| PartInfo {
                    file: format!("{SIDE_DIR}/{name}/{}", p.file),
                    ..p
                })
                .collect();
            side_parts.insert(name, parts);
        }
        Ok(TaskRecord {
            side_parts,
            notes: std::mem::take(&mut self.notes),
            task: self.task,
            fingerprint: fingerprint.to_string(),
            parts: std::mem::take(&mut self.parts),
            counters: std::mem::take(&mut self.counters),
            warnings: std::mem::take(&mut self.warnings),
            seconds: self.started.elapsed().as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::{Dataset, Provenance};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
    }

    fn batch(from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(from..from + n))],
        )
        .unwrap()
    }

    fn info() -> StageInfo {
        StageInfo {
            id: "s".into(),
            kind: "test".into(),
        }
    }

    #[test]
    fn a_rebuild_keeps_the_stage_cache_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let sd = StageDir::open(&dir, "fp1", schema(), WriteOptions::default()).unwrap();
        let mut out = sd.task_output(0).unwrap();
        out.write(&batch(0, 10)).unwrap();
        sd.complete(out).unwrap();
        sd.finalize(info(), Provenance::default(), 1, 0, 0.0, Default::default())
            .unwrap()
            .unwrap();
        std::fs::create_dir_all(dir.join(CACHE_DIR)).unwrap();
        std::fs::write(dir.join(CACHE_DIR).join("llm.redb"), b"answers").unwrap();
        std::fs::write(dir.join("stray.txt"), b"x").unwrap();
        let _sd = StageDir::open(&dir, "fp2", schema(), WriteOptions::default()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["_cache", "_lock", "_running.json", "_tasks"]);
        assert_eq!(
            std::fs::read(dir.join(CACHE_DIR).join("llm.redb")).unwrap(),
            b"answers"
        );
    }

    #[test]
    fn finished_tasks_survive_a_crash_and_the_rest_is_redone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let sd = StageDir::open(&dir, "fp1", schema(), WriteOptions::default()).unwrap();
        for t in 0..2 {
            let mut out = sd.task_output(t).unwrap();
            out.write(&batch(t as i64 * 10, 10)).unwrap();
            sd.complete(out).unwrap();
        }
        // Task 2 is cut off mid-write: a finished part and a temporary one, no record.
        let mut out = sd.task_output(2).unwrap();
        out.write(&batch(20, 5)).unwrap();
        out.close_part().unwrap();
        out.write(&batch(25, 5)).unwrap();
        std::mem::forget(out);
        assert!(
            sd.finalize(info(), Provenance::default(), 3, 0, 0.0, Default::default())
                .unwrap()
                .is_none()
        );

        let sd = StageDir::open(&dir, "fp1", schema(), WriteOptions::default()).unwrap();
        let done = sd.completed(3);
        assert_eq!(done.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        let kept = std::fs::metadata(dir.join(&done[&0].parts[0].file))
            .unwrap()
            .modified()
            .unwrap();
        let mut out = sd.task_output(2).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("-00002-"))
            .collect();
        assert!(leftovers.is_empty(), "leftovers of the cut-off task remain");
        out.write(&batch(20, 10)).unwrap();
        sd.complete(out).unwrap();
        let m = sd
            .finalize(info(), Provenance::default(), 3, 2, 0.0, Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(m.rows, 30);
        assert_eq!(m.counters.get("rows_out"), 30);
        assert_eq!(
            std::fs::metadata(dir.join(&done[&0].parts[0].file))
                .unwrap()
                .modified()
                .unwrap(),
            kept
        );
        let ds = Dataset::open(&dir).unwrap();
        let values: Vec<i64> = ds
            .batches(7)
            .flat_map(|b| {
                b.unwrap()
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn another_fingerprint_starts_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let sd = StageDir::open(&dir, "fp1", schema(), WriteOptions::default()).unwrap();
        let mut out = sd.task_output(0).unwrap();
        out.write(&batch(0, 3)).unwrap();
        sd.complete(out).unwrap();
        let sd = StageDir::open(&dir, "fp2", schema(), WriteOptions::default()).unwrap();
        assert!(sd.completed(1).is_empty());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            3,
            "only _lock, _running.json and _tasks/"
        );
    }

    /// A shard that opens a dataset another shard has just completed keeps it, and a
    /// second finalize returns the manifest already written instead of writing it again.
    #[test]
    fn a_dataset_completed_by_another_shard_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let a =
            StageDir::open_shared(&dir, "fp", schema(), WriteOptions::default(), false).unwrap();
        let b =
            StageDir::open_shared(&dir, "fp", schema(), WriteOptions::default(), false).unwrap();
        for (sd, t) in [(&a, 0), (&b, 1)] {
            let mut out = sd.task_output(t).unwrap();
            out.write(&batch(t as i64 * 10, 3)).unwrap();
            sd.complete(out).unwrap();
        }
        let m = a
            .finalize(info(), Provenance::default(), 2, 0, 1.0, Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(m.rows, 6);
        let c =
            StageDir::open_shared(&dir, "fp", schema(), WriteOptions::default(), false).unwrap();
        assert_eq!(c.completed(2).len(), 2, "the completed tasks were wiped");
        let again = b
            .finalize(info(), Provenance::default(), 2, 0, 9.0, Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(again, m, "the manifest was written a second time");
        // A forced rebuild starts over.
        let d = StageDir::open_shared(&dir, "fp", schema(), WriteOptions::default(), true).unwrap();
        assert!(d.completed(2).is_empty());
    }

    #[test]
    fn parts_roll_over_at_the_size_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let opts = WriteOptions {
            row_group_bytes: 1 << 10,
            row_group_rows: 100,
            part_bytes: 2 << 10,
        };
        let sd = StageDir::open(&dir, "fp", schema(), opts).unwrap();
        let mut out = sd.task_output(0).unwrap();
        for i in 0..50 {
            out.write(&batch(i * 100, 100)).unwrap();
        }
        sd.complete(out).unwrap();
        let m = sd
            .finalize(info(), Provenance::default(), 1, 0, 0.0, Default::default())
            .unwrap()
            .unwrap();
        assert!(m.parts.len() > 1, "{:?}", m.parts);
        assert_eq!(m.rows, 5000);
        assert_eq!(
            Dataset::open(&dir)
                .unwrap()
                .batches(1000)
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>(),
            5000
        );
    }

    #[test]
    fn side_datasets_are_datasets_and_resume_with_their_task() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let open = || {
            let mut sd = StageDir::open(&dir, "fp", schema(), WriteOptions::default()).unwrap();
            sd.set_side_outputs(vec![("dropped".into(), schema())]);
            sd
        };
        let sd = open();
        let mut out = sd.task_output(0).unwrap();
        out.write(&batch(0, 4)).unwrap();
        out.write_side("dropped", &batch(100, 2)).unwrap();
        assert!(out.write_side("other", &batch(0, 1)).is_err());
        sd.complete(out).unwrap();
        // Task 1 dies after writing side rows.
        let mut out = sd.task_output(1).unwrap();
        out.write_side("dropped", &batch(200, 3)).unwrap();
        out.sides.get_mut("dropped").unwrap().close_part().unwrap();
        std::mem::forget(out);

        let sd = open();
        assert_eq!(sd.completed(2).len(), 1);
        let mut out = sd.task_output(1).unwrap();
        out.write(&batch(4, 4)).unwrap();
        out.write_side("dropped", &batch(300, 1)).unwrap();
        sd.complete(out).unwrap();
        let m = sd
            .finalize(info(), Provenance::default(), 2, 1, 0.0, Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(m.rows, 8);
        assert_eq!(m.notes["side.dropped"], "side/dropped");
        let side = Dataset::open(dir.join("side/dropped")).unwrap();
        assert_eq!(side.rows(), 3, "the dead attempt's side rows are gone");
        assert_eq!(side.manifest().stage.id, "s/dropped");
        let rows: usize = side.batches(10).map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 3);
    }
}
