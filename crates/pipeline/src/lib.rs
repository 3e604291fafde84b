//! Pipeline files and the executor that runs them.
//!
//! A pipeline file (TOML) names stages, their inputs and one stage kind each with its
//! settings. [`Pipeline::load`] parses it strictly — unknown keys are refused with line,
//! column and the expected names — and checks the whole graph before any work: unknown
//! inputs, cycles, bad ids, settings a stage refuses when built, and inputs lacking a
//! column a stage needs. Every problem is reported at once as a [`Diagnostic`].
//!
//! [`StageOp`] is the registry: one enum variant per stage kind. [`run`] executes the DAG
//! in dependency order: a stage whose fingerprint (settings + inputs' manifests + program
//! version) matches its dataset's manifest is skipped, finished tasks of an interrupted
//! stage are kept, and `--shard i/N` runs the i-th slice of each stage's tasks.
//! [`plan`] says what a run would do, and why. A work directory may be an `s3://`
//! location: stages then work on a local staging copy that the store is kept in step
//! with, task by task (see the `remote` module).

mod config;
mod executor;
mod graph;
mod reference;
mod remote;

pub use config::{Diagnostic, Pipeline, STAGE_KINDS, StageDef, StageOp};
pub use executor::{PlanEntry, PlanStatus, RunOptions, RunSummary, Shard, StageOutcome, plan, run};
pub use reference::reference_markdown;
pub use remote::pull_work_dir;
