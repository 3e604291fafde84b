//! Running a pipeline: fingerprints, skip/resume decisions, parallel tasks, sharding.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Manifest, PROGRAM_VERSION, Provenance, Result,
    Stage, StageDir, StageInfo, TaskContext, WriteOptions, hash_hex, thousands,
};
use rayon::prelude::*;

use crate::config::{Pipeline, StageDef};
use crate::remote::{OutputSync, Remote};

/// `--shard i/N`: this process runs the tasks `t` with `t % N == i` (0-based `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    fn owns(&self, task: usize) -> bool {
        task % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: write the shard as i/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{i}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "`{s}`: shards are numbered 0 to N-1, with N at least 1"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub shard: Option<Shard>,
    /// Stages to rebuild even when up to date (their descendants follow when their
    /// output changes).
    pub force: Vec<String>,
    /// Worker threads; tasks of a stage run in parallel on them.
    pub threads: usize,
    /// With `--shard`: how long to wait for inputs that other shards are still building.
    pub wait: Option<Duration>,
    /// Draw progress bars (only where stderr is a terminal).
    pub progress: bool,
    /// Run only these stages (empty: all). Their inputs must be complete already; the
    /// per-stage jobs of `primer slurm` use it.
    pub only: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shard: None,
            force: Vec::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            wait: None,
            progress: false,
            only: Vec::new(),
        }
    }
}

/// What happened to one stage in a run.
#[derive(Debug, Clone)]
pub enum StageOutcome {
    /// Up to date: the dataset's fingerprint matched.
    Skipped { manifest: Box<Manifest> },
    /// Built (or finished building) the dataset.
    Ran {
        manifest: Box<Manifest>,
        tasks_run: usize,
    },
    /// This shard did its tasks; others' tasks are still missing.
    ShardDone {
        tasks_run: usize,
        tasks_missing: usize,
    },
    /// An input is not complete yet (other shards are building it).
    Waiting { input: String },
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub stages: Vec<(String, StageOutcome)>,
}

impl RunSummary {
    /// Whether every stage's dataset is complete.
    pub fn complete(&self) -> bool {
        self.stages
            .iter()
            .all(|(_, o)| matches!(o, StageOutcome::Skipped { .. } | StageOutcome::Ran { .. }))
    }
}

/// What `primer plan` says of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStatus {
    Skip,
    Run,
    Resume {
        done: usize,
        total: usize,
    },
    /// An input does not exist and will not be built by this run.
    Blocked,
}

#[derive(Debug, Clone)]
pub struct PlanEntry {
    pub id: String,
    pub kind: &'static str,
    pub status: PlanStatus,
    pub reason: String,
}

fn settings_hash(def: &StageDef) -> String {
    let json = serde_json::to_string(&(&def.op, &def.inputs)).unwrap_or_default();
    hash_hex(json.as_bytes())
}

fn provenance(def: &StageDef, stage: &dyn Stage, inputs: &[Dataset]) -> Result<Provenance> {
    Ok(Provenance {
        settings: settings_hash(def),
        inputs: def
            .inputs
            .iter()
            .zip(inputs)
            .map(|(id, ds)| (id.clone(), ds.manifest().content_id()))
            .collect(),
        external: hash_hex(stage.external_fingerprint()?.as_bytes()),
        program_version: PROGRAM_VERSION.to_string(),
    })
}

/// Why a stage with an existing dataset must be rebuilt, or `None` when it is up to date.
fn stale_reason(old: &Manifest, new: &Provenance) -> Option<String> {
    let p = &old.provenance;
    if old.fingerprint == new.fingerprint() {
        return None;
    }
    Some(if p.settings != new.settings {
        "settings changed".to_string()
    } else if let Some((id, _)) = new
        .inputs
        .iter()
        .find(|(id, c)| p.inputs.get(*id) != Some(c))
    {
        format!("input `{id}` changed")
    } else if p.external != new.external {
        "input files changed".to_string()
    } else if p.program_version != new.program_version {
        format!(
            "primer version changed ({} → {})",
            p.program_version, new.program_version
        )
    } else {
        "fingerprint changed".to_string()
    })
}

fn build(p: &Pipeline, def: &StageDef) -> Result<Box<dyn Stage>> {
    let ctx = BuildContext {
        stage_id: &def.id,
        base_dir: &p.base_dir,
    };
    def.op.build(&ctx, &def.inputs)
}

pub(crate) fn stage_err(id: &str, e: Error) -> Error {
    match e {
        Error::Stage { .. } => e,
        e => Error::Stage {
            stage: id.to_string(),
            source: Box::new(e),
        },
    }
}

/// Say what `run` would do with each stage, and why, without doing it.
pub fn plan(p: &Pipeline, opts: &RunOptions) -> Result<Vec<PlanEntry>> {
    let remote = Remote::of(p)?;
    crate::remote::pull_work_dir(p, false)?;
    let mut entries: Vec<PlanEntry> = Vec::new();
    let mut will_build: HashMap<&str, bool> = HashMap::new();
    for def in &p.stages {
        let kind = def.op.kind();
        let dir = p.dataset_dir(&def.id);
        let rebuilt: Vec<&String> = def
            .inputs
            .iter()
            .filter(|i| will_build.get(i.as_str()) == Some(&true))
            .collect();
        let mut inputs = Vec::new();
        let mut missing = None;
        for i in &def.inputs {
            let opened = match &remote {
                Some(r) => r.open_input(i)?,
                None => Dataset::open(p.dataset_dir(i)).ok(),
            };
            match opened {
                Some(d) => inputs.push(d),
                None => missing = Some(i.clone()),
            }
        }
        let (status, reason) = if let Some(first) = rebuilt.first() {
            (PlanStatus::Run, format!("after input `{first}` is rebuilt"))
        } else if let Some(m) = missing {
            (
                PlanStatus::Blocked,
                format!("input `{m}` has no complete dataset"),
            )
        } else {
            let stage = build(p, def).map_err(|e| stage_err(&def.id, e))?;
            let prov =
                provenance(def, stage.as_ref(), &inputs).map_err(|e| stage_err(&def.id, e))?;
            let forced = opts.force.contains(&def.id);
            match Manifest::read(&dir) {
                Ok(old) if !forced => match stale_reason(&old, &prov) {
                    None => (
                        PlanStatus::Skip,
                        format!("up to date ({})", rows_line(&old)),
                    ),
                    Some(r) => (PlanStatus::Run, r),
                },
                Ok(_) => (PlanStatus::Run, "forced with --force".to_string()),
                Err(_) => {
                    let total = stage.num_tasks_hint(&inputs);
                    let done = total
                        .map(|n| resumable_tasks(&dir, &prov.fingerprint(), n))
                        .unwrap_or(0);
                    match total {
                        Some(total) if done > 0 => (
                            PlanStatus::Resume { done, total },
                            format!("an interrupted run finished {done} of {total} tasks"),
                        ),
                        _ => (PlanStatus::Run, "no dataset yet".to_string()),
                    }
                }
            }
        };
        will_build.insert(
            &def.id,
            matches!(status, PlanStatus::Run | PlanStatus::Resume { .. }),
        );
        entries.push(PlanEntry {
            id: def.id.clone(),
            kind,
            status,
            reason,
        });
    }
    Ok(entries)
}

/// Tasks already finished in `dir` for `fingerprint`, without changing anything.
fn resumable_tasks(dir: &std::path::Path, fingerprint: &str, num_tasks: usize) -> usize {
    (0..num_tasks)
        .filter(|t| {
            std::fs::read_to_string(dir.join(primer_core::task_file_name(*t)))
                .ok()
                .and_then(|s| serde_json::from_str::<primer_core::TaskRecord>(&s).ok())
                .is_some_and(|r| r.fingerprint == fingerprint)
        })
        .count()
}

trait NumTasksHint {
    fn num_tasks_hint(&self, inputs: &[Dataset]) -> Option<usize>;
}

impl NumTasksHint for Box<dyn Stage> {
    fn num_tasks_hint(&self, inputs: &[Dataset]) -> Option<usize> {
        // `write` cleans stale export files in num_tasks; planning must not change anything.
        if self.kind() == "write" {
            Some(inputs.first().map_or(0, Dataset::num_parts))
        } else {
            self.num_tasks(inputs).ok()
        }
    }
}

fn open_inputs(
    p: &Pipeline,
    def: &StageDef,
    opts: &RunOptions,
    remote: Option<&Remote>,
) -> Result<std::result::Result<Vec<Dataset>, String>> {
    let deadline = opts.wait.map(|w| Instant::now() + w);
    let mut out = Vec::new();
    for i in &def.inputs {
        let dir = p.dataset_dir(i);
        loop {
            // With the work directory in a store, the store says whether a dataset is
            // complete; its parts come down to the local copy.
            let opened = match remote {
                Some(r) => r.open_input(i)?.ok_or_else(|| Error::Manifest {
                    path: dir.join(primer_core::MANIFEST_FILE),
                    message: format!("no complete dataset in {}/{i}", r.url()),
                }),
                None => Dataset::open(&dir),
            };
            match opened {
                Ok(d) => {
                    out.push(d);
                    break;
                }
                Err(e) => match deadline {
                    Some(d) if opts.shard.is_some() && Instant::now() < d => {
                        std::thread::sleep(Duration::from_millis(500))
                    }
                    _ if opts.shard.is_some() => return Ok(Err(i.clone())),
                    _ => return Err(stage_err(&def.id, e)),
                },
            }
        }
    }
    Ok(Ok(out))
}

/// Run the pipeline. Lines for a person go to `log`.
pub fn run(p: &Pipeline, opts: &RunOptions, log: &(dyn Fn(&str) + Sync)) -> Result<RunSummary> {
    for (flag, ids) in [("--force", &opts.force), ("--only", &opts.only)] {
        if let Some(f) = ids.iter().find(|f| p.stage(f).is_none()) {
            return Err(Error::input(format!("{flag} {f}: no such stage")));
        }
    }
    std::fs::create_dir_all(&p.workdir).map_err(|e| Error::io(&p.workdir, e))?;
    let remote = Remote::of(p)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("primer-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
    let n = p.stages.len();
    let mut summary = RunSummary { stages: Vec::new() };
    let mut incomplete: Vec<String> = Vec::new();
    for (k, def) in p.stages.iter().enumerate() {
        let head = format!("[{}/{n}] {} ({})", k + 1, def.id, def.op.kind());
        if !opts.only.is_empty() && !opts.only.contains(&def.id) {
            continue;
        }
        if let Some(i) = def.inputs.iter().find(|i| incomplete.contains(i)) {
            log(&format!(
                "{head}: waits for input `{i}`, which other shards are still building"
            ));
            incomplete.push(def.id.clone());
            summary
                .stages
                .push((def.id.clone(), StageOutcome::Waiting { input: i.clone() }));
            continue;
        }
        let inputs = match open_inputs(p, def, opts, remote.as_ref())? {
            Ok(d) => d,
            Err(i) => {
                log(&format!(
                    "{head}: waits for input `{i}`, which other shards are still building"
                ));
                incomplete.push(def.id.clone());
                summary
                    .stages
                    .push((def.id.clone(), StageOutcome::Waiting { input: i }));
                continue;
            }
        };
        let outcome = run_stage(p, def, &inputs, opts, remote.as_ref(), &pool, &head, log);
        // The LLM stages' answers are worth keeping even when the stage failed.
        if let Some(r) = &remote {
            r.push_cache(&def.id).map_err(|e| stage_err(&def.id, e))?;
        }
        let outcome = outcome.map_err(|e| stage_err(&def.id, e))?;
        if matches!(outcome, StageOutcome::ShardDone { .. }) {
            incomplete.push(def.id.clone());
        }
        summary.stages.push((def.id.clone(), outcome));
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn run_stage(
    p: &Pipeline,
    def: &StageDef,
    inputs: &[Dataset],
    opts: &RunOptions,
    remote: Option<&Remote>,
    pool: &rayon::ThreadPool,
    head: &str,
    log: &(dyn Fn(&str) + Sync),
) -> Result<StageOutcome> {
    let started = Instant::now();
    let stage = build(p, def)?;
    let dir = p.dataset_dir(&def.id);
    let input_schemas: Vec<InputSchema> = def
        .inputs
        .iter()
        .zip(inputs)
        .map(|(id, d)| InputSchema {
            id: id.clone(),
            schema: d.schema(),
        })
        .collect();
    let schema = stage.output_schema(&input_schemas)?;
    let prov = provenance(def, stage.as_ref(), inputs)?;
    let fingerprint = prov.fingerprint();
    let forced = opts.force.contains(&def.id);
    // With the work directory in a store, the store's manifest says what is complete.
    let old = match remote {
        Some(r) => r.manifest(&def.id)?,
        None => Manifest::read(&dir).ok(),
    };
    let why = match &old {
        Some(old) if !forced => match stale_reason(old, &prov) {
            None => {
                let old = old.clone();
                log(&format!(
                    "{head}: skipped, up to date ({})",
                    rows_line(&old)
                ));
                return Ok(StageOutcome::Skipped {
                    manifest: Box::new(old),
                });
            }
            Some(r) => r,
        },
        Some(_) => "forced with --force".to_string(),
        None => "no dataset yet".to_string(),
    };
    let sides = stage.side_outputs(&schema);
    let mut sd =
        StageDir::open_shared(&dir, &fingerprint, schema, WriteOptions::default(), forced)?;
    sd.set_side_outputs(sides);
    // The stored files of a directory the stage writes besides its dataset come down
    // before the stage looks at it (the write stage removes stale exports when it
    // counts its tasks).
    let output = match stage.output_dir() {
        Some(d) => OutputSync::open(d)?,
        None => None,
    };
    let phases = stage.phases(inputs)?;
    let num_tasks: usize = phases.iter().sum();
    if num_tasks != stage.num_tasks(inputs)? {
        return Err(Error::Internal(format!(
            "stage kind `{}`: its phases' tasks ({phases:?}) do not add up to num_tasks",
            stage.kind()
        )));
    }
    if let Some(r) = remote {
        if old.is_some() {
            r.delete_manifest(&def.id)?;
        }
        r.sync_tasks(&def.id, &fingerprint, num_tasks, !forced)?;
        r.pull_cache(&def.id)?;
    }
    // What earlier phases hand on; other machines' shards store theirs.
    let scratch_sync = remote.map(|r| r.scratch(&def.id, &fingerprint));
    // Bring what other processes stored since: finished tasks and scratch files.
    let refresh = || -> Result<()> {
        if let (Some(r), Some(s)) = (remote, &scratch_sync) {
            r.sync_tasks(&def.id, &fingerprint, num_tasks, true)?;
            s.pull()?;
        }
        Ok(())
    };
    let done = sd.completed(num_tasks);
    let owned: Vec<usize> = (0..num_tasks)
        .filter(|t| opts.shard.is_none_or(|s| s.owns(*t)) && !done.contains_key(t))
        .collect();
    let reused = done.len();
    if reused > 0 {
        log(&format!(
            "{head}: resuming: {reused} of {num_tasks} tasks are done (by an interrupted run or other shards)"
        ));
    } else {
        log(&format!("{head}: running {num_tasks} task(s): {why}"));
    }
    let bar = if opts.progress {
        ProgressBar::new(owned.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:28}] {pos}/{len} tasks  {msg}  {elapsed_precise} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(def.id.clone());
    let rows = Arc::new(AtomicU64::new(0));
    let on_rows: Arc<dyn Fn(u64) + Send + Sync> = {
        let rows = rows.clone();
        let bar = bar.clone();
        let t0 = Instant::now();
        Arc::new(move |n| {
            let total = rows.fetch_add(n, Ordering::Relaxed) + n;
            let rate = total as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} rows, {} rows/s",
                thousands(total),
                thousands(rate as u64)
            ));
        })
    };
    let cancel = AtomicBool::new(false);
    let scratch = sd.scratch_dir();
    let printed = AtomicU64::new(0);
    const PRINT_WARNINGS: u64 = 20;
    // Phases run one after the other; a phase whose tasks other shards still run stops
    // this shard here (or, with `--wait`, waits for them).
    let deadline = opts.wait.map(|w| Instant::now() + w);
    let mut start = 0;
    let mut tasks_run = 0;
    for (phase, &n) in phases.iter().enumerate() {
        let range = start..start + n;
        start += n;
        if phase > 0 {
            refresh()?;
        }
        // What the tasks of earlier phases wrote (all of them are done by now).
        let earlier_parts = sd.completed_parts(range.start).unwrap_or_default();
        let todo: Vec<usize> = owned
            .iter()
            .copied()
            .filter(|t| range.contains(t))
            .collect();
        let results: Vec<Result<()>> = pool.install(|| {
            todo.par_iter()
                .map(|&t| {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(Error::Cancelled);
                    }
                    let ctx = TaskContext {
                        stage_id: &def.id,
                        inputs,
                        batch_size: p.batch_rows,
                        threads: opts.threads,
                        dir: &dir,
                        earlier_parts: &earlier_parts,
                        scratch_dir: &scratch,
                        cancel: &cancel,
                    };
                    let mut out = sd.task_output(t)?;
                    out.set_progress(on_rows.clone());
                    if opts.progress {
                        let bar = bar.clone();
                        out.set_status_callback(Arc::new(move |m: &str| {
                            bar.set_message(m.to_string())
                        }));
                    }
                    if let Err(e) = stage.run_task(t, &ctx, &mut out) {
                        cancel.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    let rec = sd.complete(out)?;
                    // Scratch files and parts before the record that says the task is done.
                    if let Some(s) = &scratch_sync {
                        s.push_changed()?;
                    }
                    if let Some(r) = remote {
                        r.push_task(&def.id, &rec)?;
                    }
                    if let Some(o) = &output {
                        o.push_changed()?;
                    }
                    for w in &rec.warnings {
                        let k = printed.fetch_add(1, Ordering::Relaxed);
                        if k < PRINT_WARNINGS {
                            bar.suspend(|| log(&format!("  warning: {w}")));
                        }
                    }
                    bar.inc(1);
                    Ok(())
                })
                .collect()
        });
        let mut first_err = None;
        for r in results {
            match r {
                Err(Error::Cancelled) => {}
                Err(e) if first_err.is_none() => first_err = Some(e),
                _ => {}
            }
        }
        if let Some(e) = first_err {
            bar.finish_and_clear();
            return Err(e);
        }
        tasks_run += todo.len();
        if phase + 1 == phases.len() {
            break;
        }
        let phase_done = || -> Result<bool> {
            refresh()?;
            let done = sd.completed(range.end);
            Ok(range.clone().all(|t| done.contains_key(&t)))
        };
        while !phase_done()? {
            if deadline.is_none_or(|d| Instant::now() >= d) {
                bar.finish_and_clear();
                let missing = num_tasks - sd.completed(num_tasks).len();
                log(&format!(
                    "{head}: this shard's tasks of phase {} are done; other shards' tasks \
                     of that phase remain ({missing} task(s) in all)",
                    phase + 1
                ));
                return Ok(StageOutcome::ShardDone {
                    tasks_run,
                    tasks_missing: missing,
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    bar.finish_and_clear();
    refresh()?;
    let notes = stage.notes();
    let info = StageInfo {
        id: def.id.clone(),
        kind: def.op.kind().to_string(),
    };
    match sd.finalize_with(
        info,
        prov,
        num_tasks,
        reused as u64,
        started.elapsed().as_secs_f64(),
        notes,
        &|c| stage.counter_notes(c),
    )? {
        Some(m) => {
            if let Some(r) = remote {
                r.push_complete(&def.id, &m)?;
            }
            if let Some(o) = &output {
                o.finish()?;
            }
            let warnings = m.counters.get("warnings");
            if warnings > PRINT_WARNINGS {
                log(&format!(
                    "  … {} warnings in all; the first are in {}",
                    thousands(warnings),
                    dir.join("_manifest.json").display()
                ));
            }
            log(&format!(
                "{head}: done in {:.1}s: {}",
                m.seconds,
                counters_line(&m)
            ));
            for line in stage.report(&m) {
                log(&format!("  {line}"));
            }
            Ok(StageOutcome::Ran {
                manifest: Box::new(m),
                tasks_run,
            })
        }
        None => {
            let missing = num_tasks - sd.completed(num_tasks).len();
            log(&format!(
                "{head}: this shard's tasks are done; {missing} task(s) of other shards remain"
            ));
            Ok(StageOutcome::ShardDone {
                tasks_run,
                tasks_missing: missing,
            })
        }
    }
}

/// The size of a dataset in words: its rows, or for an export the rows exported.
fn rows_line(m: &Manifest) -> String {
    match m.counters.0.get("rows_exported") {
        Some(n) => format!("{} rows exported", thousands(*n)),
        None => format!("{} rows", thousands(m.rows)),
    }
}

/// `rows_in → rows_out` and the drop reasons, for the log.
fn counters_line(m: &Manifest) -> String {
    let mut s = String::new();
    if m.counters.0.contains_key("rows_in") {
        s.push_str(&format!(
            "{} rows in, ",
            thousands(m.counters.get("rows_in"))
        ));
    }
    if !m.counters.0.contains_key("rows_exported") {
        s.push_str(&format!("{} rows out", thousands(m.rows)));
    }
    let drops: BTreeMap<&str, u64> = m
        .counters
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("dropped.").map(|r| (r, v)))
        .collect();
    if !drops.is_empty() {
        s.push_str(&format!(
            "; dropped: {}",
            drops
                .iter()
                .map(|(k, v)| format!("{k} {}", thousands(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(e) = m.counters.0.get("rows_exported") {
        s.push_str(&format!("{} rows exported", thousands(*e)));
    }
    s
}
