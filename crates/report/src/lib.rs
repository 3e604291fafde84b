//! What a pipeline run did, read back from its manifests and datasets, for people who
//! decide by looking.
//!
//! [`collect`] gathers each stage's state (done, in progress with its tasks, stale, not
//! started) and manifest. [`status_table`] prints them as the terminal table of
//! `primer status`; [`render_html`] makes the run report of `primer report` and of the end
//! of `primer run`: one self-contained HTML file (no script, no network: styles inline,
//! charts as SVG, a Content-Security-Policy that forbids both) with the pipeline graph, the
//! funnel of documents and tokens, each filter's and dedupe's reasons, the distributions of
//! the numeric columns stages add, the language and source mix, the largest duplicate
//! clusters, samples of kept and dropped documents, and LLM stages' requests, cache hits,
//! retries, failures, tokens and cost. Distributions come from one pass over each dataset,
//! sampled by row groups when it is large ([`scan`]).

use std::path::{Path, PathBuf};

use primer_core::{Manifest, Result, StageDir};
use primer_pipeline::{Pipeline, PlanEntry, PlanStatus};

mod html;
pub mod scan;
mod svg;

pub use html::render_html;
pub use scan::ScanOptions;

/// Where a stage is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Complete and up to date.
    Done,
    /// Some of its tasks are done (a run is going on, or was stopped and will resume).
    InProgress {
        done: usize,
        total: usize,
    },
    /// Started, no task done yet (a single-task stage such as a crawl, stopped mid-way).
    Started,
    /// Complete, but its settings or inputs changed: a run rebuilds it.
    Stale,
    NotStarted,
    /// An input is missing and no run would build it.
    Blocked,
}

impl State {
    pub fn describe(&self) -> String {
        match self {
            State::Done => "done".into(),
            State::InProgress { done, total } => format!("in progress: {done}/{total} tasks"),
            State::Started => "in progress: no task done yet".into(),
            State::Stale => "stale (a rerun rebuilds it)".into(),
            State::NotStarted => "not started".into(),
            State::Blocked => "blocked (an input is missing)".into(),
        }
    }
}

/// One stage: what it is, where it stands, and its manifest when it has one.
#[derive(Debug, Clone)]
pub struct StageFacts {
    pub id: String,
    pub kind: String,
    pub inputs: Vec<String>,
    pub state: State,
    pub dir: PathBuf,
    pub manifest: Option<Manifest>,
}

impl StageFacts {
    /// `dropped.<reason>` counters, largest first.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        let Some(m) = &self.manifest else {
            return Vec::new();
        };
        let mut d: Vec<(String, u64)> = m
            .counters
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("dropped.").map(|k| (k.to_string(), v)))
            .collect();
        d.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        d
    }

    /// Side datasets the manifest names (`side.<name>` notes): name and directory.
    pub fn sides(&self) -> Vec<(String, PathBuf)> {
        let Some(m) = &self.manifest else {
            return Vec::new();
        };
        m.notes
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("side.")?;
                Some((name.to_string(), self.dir.join(v.as_str()?)))
            })
            .collect()
    }
}

/// Each stage's facts, in pipeline order, from a plan of the pipeline (which knows the
/// states) and the manifests on disk.
pub fn collect(p: &Pipeline, entries: &[PlanEntry]) -> Vec<StageFacts> {
    entries
        .iter()
        .map(|e| {
            let dir = p.dataset_dir(&e.id);
            let manifest = Manifest::read(&dir).ok();
            let state = match (&e.status, &manifest) {
                (PlanStatus::Skip, _) => State::Done,
                (PlanStatus::Resume { done, total }, _) => State::InProgress {
                    done: *done,
                    total: *total,
                },
                (PlanStatus::Run, Some(_)) => State::Stale,
                (PlanStatus::Run, None) if StageDir::in_progress(&dir) => State::Started,
                (PlanStatus::Run, None) => State::NotStarted,
                (PlanStatus::Blocked, _) => State::Blocked,
            };
            let inputs = p
                .stages
                .iter()
                .find(|s| s.id == e.id)
                .map(|s| s.inputs.clone())
                .unwrap_or_default();
            StageFacts {
                id: e.id.clone(),
                kind: e.kind.to_string(),
                inputs,
                state,
                dir,
                manifest,
            }
        })
        .collect()
}

/// `primer status`: one line per stage with its state, rows in and out, MB out, seconds
/// and what it dropped (the total and the largest reason).
pub fn status_table(facts: &[StageFacts]) -> String {
    let mut lines = vec![[
        "stage".to_string(),
        "state".into(),
        "rows in".into(),
        "rows out".into(),
        "MB out".into(),
        "seconds".into(),
        "dropped".into(),
    ]];
    for f in facts {
        let fig = |g: &dyn Fn(&Manifest) -> String| f.manifest.as_ref().map_or("-".into(), g);
        let d = f.dropped();
        let total: u64 = d.iter().map(|x| x.1).sum();
        let dropped = fig(&|_| match d.first() {
            None => "0".into(),
            Some((k, v)) if d.len() == 1 => format!("{total} ({k} {v})"),
            Some((k, v)) => format!("{total} ({k} {v}, …)"),
        });
        lines.push([
            format!("{} ({})", f.id, f.kind),
            f.state.describe(),
            fig(&|m| m.counters.get("rows_in").to_string()),
            fig(&|m| m.rows.to_string()),
            fig(&|m| format!("{:.1}", m.bytes as f64 / 1e6)),
            fig(&|m| format!("{:.1}", m.seconds)),
            dropped,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let mut row = String::new();
        for (c, cell) in l.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if (2..6).contains(&c) {
                row.push_str(&" ".repeat(pad));
                row.push_str(cell);
            } else {
                row.push_str(cell);
                if c < 6 {
                    row.push_str(&" ".repeat(pad));
                }
            }
            if c < 6 {
                row.push_str("  ");
            }
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// What the run that writes the report did, stage by stage.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// Stages this run built (or finished building).
    pub ran: Vec<String>,
    /// Stages that were up to date and not rebuilt.
    pub skipped: Vec<String>,
}

/// The report's default place: `report.html` in the pipeline's work directory.
pub fn default_path(p: &Pipeline) -> PathBuf {
    p.workdir.join("report.html")
}

/// Render the report and write it to `path` atomically.
pub fn write_report(
    p: &Pipeline,
    facts: &[StageFacts],
    run: Option<&RunInfo>,
    opts: &ScanOptions,
    path: &Path,
) -> Result<()> {
    let page = render_html(p, facts, run, opts);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| primer_core::Error::io(dir, e))?;
    }
    primer_core::write_atomic(path, page.as_bytes())
}
