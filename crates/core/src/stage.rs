use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;

use crate::{Counters, Dataset, Error, Manifest, PartInfo, Result, TaskOutput};

/// The schema of one input of a stage, named by the id of the stage that makes it.
#[derive(Debug, Clone)]
pub struct InputSchema {
    pub id: String,
    pub schema: SchemaRef,
}

/// What building a stage from its settings may use.
pub struct BuildContext<'a> {
    /// The stage's id in the pipeline file.
    pub stage_id: &'a str,
    /// Relative paths in settings are relative to this directory (the pipeline file's).
    pub base_dir: &'a std::path::Path,
}

impl BuildContext<'_> {
    /// `path` made absolute against the pipeline file's directory.
    pub fn resolve(&self, path: &str) -> std::path::PathBuf {
        crate::resolve_path(self.base_dir, path)
    }

    /// The files that `patterns` (paths or globs, relative to the pipeline file) match:
    /// each pattern's files sorted, in the order of the patterns, each file once. A
    /// pattern that is no valid glob or matches no file is an error naming `setting`.
    pub fn expand_paths(
        &self,
        setting: &str,
        patterns: &[String],
    ) -> Result<Vec<std::path::PathBuf>> {
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for pattern in patterns {
            // Stored objects come listed (sorted by key), not fetched.
            let found = if primer_store::is_remote(pattern) {
                let found = primer_store::list_glob(pattern)?;
                if found.is_empty() {
                    return Err(Error::input(format!(
                        "{setting}: `{pattern}` matches no object"
                    )));
                }
                found
            } else {
                self.local_glob(setting, pattern)?
            };
            for p in found {
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
        Ok(files)
    }

    /// The files a local path or glob matches, sorted; none is an error.
    fn local_glob(&self, setting: &str, pattern: &str) -> Result<Vec<std::path::PathBuf>> {
        let full = self.resolve(pattern);
        let full_str = full.to_string_lossy();
        let matches = glob::glob(&full_str).map_err(|e| {
            Error::input(format!("{setting}: `{pattern}` is not a valid glob: {e}"))
        })?;
        let mut found = Vec::new();
        for m in matches {
            let p = m.map_err(|e| Error::input(format!("{setting}: `{pattern}`: {e}")))?;
            if p.is_file() {
                found.push(p);
            }
        }
        if found.is_empty() {
            return Err(Error::input(format!(
                "{setting}: `{pattern}` matches no file (looked for {full_str})"
            )));
        }
        found.sort();
        Ok(found)
    }
}

/// Make an input file that [`BuildContext::expand_paths`] found in object storage local
/// (a no-op for any other file): readers call it before they open the file, so each task
/// fetches its own.
pub fn fetch_input(path: &std::path::Path) -> Result<()> {
    Ok(primer_store::fetch_listed(path)?)
}

/// How a file or directory is named in fingerprints and manifests: its path, or for the
/// staging copy of a stored object the object's URL, so every machine that stages it
/// computes the same fingerprint and says the same.
pub fn location_name(path: &std::path::Path) -> String {
    match primer_store::remote_of(path) {
        Some(loc) => loc.url(),
        None => path.display().to_string(),
    }
}

/// A file's length and modification time (nanoseconds since the epoch; 0 when the
/// system does not say): what stages that read files fold into their fingerprints.
pub fn file_stamp(path: &std::path::Path) -> Result<(u64, u128)> {
    // A stored object listed by an input glob: its size and time, fetched or not.
    if let Some((len, t)) = primer_store::stored_stamp(path) {
        let mtime = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return Ok((len, mtime));
    }
    let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((m.len(), mtime))
}

/// What a stage's task sees: its inputs, opened, and a way to stop early.
pub struct TaskContext<'a> {
    pub stage_id: &'a str,
    /// The input datasets, in the order the pipeline file lists them.
    pub inputs: &'a [Dataset],
    /// Rows per record batch when reading inputs.
    pub batch_size: usize,
    /// Threads the stage may use inside one task (the executor's pool size).
    pub threads: usize,
    /// The stage's dataset directory (no manifest yet).
    pub dir: &'a std::path::Path,
    /// Every part written by the tasks of earlier [`phases`](Stage::phases), in task order,
    /// with paths relative to `dir`: what a global step (assembling shards from all
    /// tokenized parts, say) reads. Empty in the first phase.
    pub earlier_parts: &'a [PartInfo],
    /// Scratch space for the stage (spill files); removed when the stage completes.
    pub scratch_dir: &'a std::path::Path,
    pub cancel: &'a AtomicBool,
}

impl TaskContext<'_> {
    /// `Err(Cancelled)` once the run is being stopped; long loops call this per batch.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A stage kind, built from its settings (`build()` in the stage's crate) and run by the
/// executor. Its work is split into numbered tasks that run in parallel and independently:
/// a task writes its rows through [`TaskOutput`] and is recorded as done when it returns, so
/// a killed run resumes at the first unfinished task.
pub trait Stage: Send + Sync {
    /// The stage kind's key in pipeline files (`read`, `sql`, `write`, …).
    fn kind(&self) -> &'static str;

    /// The schema of the output, given the inputs' schemas. Errors name the missing column
    /// and the input that lacks it; the pipeline is checked with this before any work.
    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef>;

    /// What the output depends on besides the settings and the inputs' manifests: for a
    /// stage that reads files, their paths, sizes and modification times.
    fn external_fingerprint(&self) -> Result<String> {
        Ok(String::new())
    }

    /// How many tasks the work splits into, given the opened inputs. With several
    /// [`phases`](Self::phases), the sum of their tasks.
    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize>;

    /// The work in phases, as the number of tasks of each phase. Every task of a phase is
    /// done (in this process or, under `--shard`, in others) before any task of the next
    /// phase starts. Tasks are numbered across phases — phase 0 has tasks `0..n0`, phase 1
    /// `n0..n0+n1`, … — and `num_tasks` is the sum. A global step (clustering after
    /// per-part signatures, say) is a phase of one task; earlier phases hand their results
    /// on in files under [`TaskContext::scratch_dir`], written whole before the task
    /// returns. Each task is still recorded when done, so a killed run resumes at the first
    /// unfinished task of the first unfinished phase. Default: one phase of `num_tasks`.
    fn phases(&self, inputs: &[Dataset]) -> Result<Vec<usize>> {
        Ok(vec![self.num_tasks(inputs)?])
    }

    /// Run one task. Rows go to `out`; counters, warnings and manifest notes too.
    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()>;

    /// Side datasets the stage writes besides its output, with their schemas, given the
    /// output schema: for example the rows a filter dropped, with the rule that dropped
    /// them. Each is written to `side/<name>/` inside the stage's dataset directory and is
    /// a dataset of its own. Default none.
    fn side_outputs(&self, _output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        Vec::new()
    }

    /// Facts recorded in the manifest's `notes` (for example that text is modified).
    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// Notes derived from the counters summed over all tasks, when the manifest is
    /// written (an LLM stage's latency percentiles, say). Default none.
    fn counter_notes(&self, _counters: &Counters) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// A directory the stage writes files to besides its dataset (an export, token
    /// shards). When it is the staging copy of an `s3://` location, the executor brings
    /// the stored files down before the stage runs and stores what the stage writes after
    /// each task. Default none.
    fn output_dir(&self) -> Option<&std::path::Path> {
        None
    }

    /// Lines for the terminal after the stage's line when it completes (an LLM stage's
    /// requests, cache hits, retries, failures, tokens and cost). Default none.
    fn report(&self, _manifest: &Manifest) -> Vec<String> {
        Vec::new()
    }
}
