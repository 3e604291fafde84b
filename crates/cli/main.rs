//! `primer`: the command line. Runs pipeline files, checks and plans them, queries and
//! inspects datasets. The only crate that uses `anyhow`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{Array, ArrayRef, LargeStringArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use clap::{Parser, Subcommand};
use primer_core::{Dataset, Manifest, PartReader};
use primer_pipeline::{Pipeline, PlanStatus, RunOptions, Shard, StageOutcome};

mod shards;
mod slurm;

#[derive(Parser)]
#[command(
    name = "primer",
    version,
    about = "Curate textbook-quality training corpora from declarative pipeline files."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline: check it, then build every stage that is not up to date.
    Run {
        /// The pipeline file (TOML).
        file: PathBuf,
        /// Run only the i-th of N slices of every stage's tasks (0-based: 0/4 … 3/4).
        #[arg(long, value_name = "i/N")]
        shard: Option<Shard>,
        /// Rebuild this stage even if it is up to date (repeatable).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Worker threads. Default: all cores.
        #[arg(long, short = 'j')]
        threads: Option<usize>,
        /// With --shard: seconds to wait for inputs other shards are still building.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
        /// Put stage datasets here instead of the pipeline's `workdir`.
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Do not write the run report (`report.html` in the work directory) at the end.
        #[arg(long)]
        no_report: bool,
        /// Run only this stage (repeatable); its inputs must be complete.
        #[arg(long, value_name = "STAGE")]
        only: Vec<String>,
    },
    /// Run the pipeline on a Slurm cluster: a job array per stage (`--shard i/N` in each
    /// element), then a job finishing the stage, each waiting for its inputs' jobs; a last
    /// job writes the report. Storage must be shared by the nodes.
    Slurm {
        file: PathBuf,
        /// Array elements per stage: each runs the stage's tasks `t` with `t mod N = i`.
        #[arg(long, value_name = "N")]
        tasks: usize,
        #[arg(long)]
        partition: Option<String>,
        /// Time limit of each job (Slurm's format, e.g. 4:00:00).
        #[arg(long)]
        time: Option<String>,
        /// Memory of each job (e.g. 16G).
        #[arg(long)]
        mem: Option<String>,
        /// CPUs of each job; primer runs that many threads.
        #[arg(long)]
        cpus_per_task: Option<usize>,
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Print the scripts; write and submit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where to write the scripts and `submit.sh`. Default: `slurm/` in the work directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write the scripts but do not submit them.
        #[arg(long)]
        no_submit: bool,
        /// The primer binary the jobs run. Default: this one.
        #[arg(long)]
        primer: Option<PathBuf>,
    },
    /// Check a pipeline file and report every problem at once.
    Validate { file: PathBuf },
    /// Say which stages a run would build or skip, and why.
    Plan {
        file: PathBuf,
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        #[arg(long)]
        workdir: Option<PathBuf>,
    },
    /// Each stage's state and figures: done, in progress (tasks done of all), stale or not
    /// started; rows in and out, bytes, seconds and what was dropped, from the manifests.
    Status {
        file: PathBuf,
        #[arg(long)]
        workdir: Option<PathBuf>,
    },
    /// Write the run report: one self-contained HTML page with the pipeline graph, the
    /// funnel, each stage's reasons, distributions, mixes and samples, and LLM figures.
    Report {
        file: PathBuf,
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Where to write it. Default: `report.html` in the work directory.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Rows read per dataset for the distributions; larger datasets are sampled.
        #[arg(long, default_value_t = 100_000)]
        sample_rows: u64,
    },
    /// Query datasets with SQL (DataFusion's dialect).
    Sql {
        /// The query; tables are named with --table.
        query: String,
        /// A table: NAME=PATH, where PATH is a dataset directory or Parquet file(s).
        #[arg(long = "table", short = 't', value_name = "NAME=PATH", required = true)]
        tables: Vec<String>,
        /// Print at most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// `table` (text cut to fit) or `jsonl` (whole values).
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Show a dataset: manifest, schema, counters and a few rows.
    Inspect {
        /// A dataset directory or a Parquet file.
        path: PathBuf,
        /// How many sample rows to show.
        #[arg(long, default_value_t = 3)]
        rows: usize,
    },
    /// Token shards written by a `tokenize` stage.
    Shards {
        #[command(subcommand)]
        command: ShardsCommand,
    },
}

#[derive(Subcommand)]
enum ShardsCommand {
    /// Read shards back: check every header, offset and count (against manifest.json),
    /// print the counts and decode the first documents.
    Inspect {
        /// A shards directory (with manifest.json), a Megatron `.idx`/`.bin` or an llm.c `.bin`.
        path: PathBuf,
        /// How many documents to decode.
        #[arg(long, default_value_t = 3)]
        docs: usize,
        /// Characters of each decoded document to show.
        #[arg(long, default_value_t = 200)]
        chars: usize,
        /// The tokenizer.json to decode with. Default: the one manifest.json names.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Jsonl,
}

fn main() -> ExitCode {
    primer_core::tune_allocator();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-joined, leaving out a cause whose text the message
/// already ends with (a stage error shows its cause in its own text).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.ends_with(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            file,
            shard,
            force,
            threads,
            wait,
            workdir,
            no_report,
            only,
        } => {
            let Some(p) = load(&file, workdir.as_deref()) else {
                return Ok(ExitCode::from(2));
            };
            let mut opts = RunOptions {
                shard,
                force,
                only,
                progress: std::io::stderr().is_terminal(),
                ..RunOptions::default()
            };
            if let Some(t) = threads {
                opts.threads = t.max(1);
            }
            opts.wait = wait.map(std::time::Duration::from_secs);
            let log = |s: &str| eprintln!("{s}");
            let summary = primer_pipeline::run(&p, &opts, &log)
                .with_context(|| format!("running {}", file.display()))?;
            print_outputs(&p, &summary);
            if !no_report && shard.is_none() {
                let mut info = primer_report::RunInfo::default();
                for (id, outcome) in &summary.stages {
                    match outcome {
                        StageOutcome::Ran { .. } => info.ran.push(id.clone()),
                        StageOutcome::Skipped { .. } => info.skipped.push(id.clone()),
                        _ => {}
                    }
                }
                let path = write_report(&p, Some(&info), None, &Default::default())?;
                println!("report: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm {
            file,
            tasks,
            partition,
            time,
            mem,
            cpus_per_task,
            workdir,
            dry_run,
            dir,
            no_submit,
            primer,
        } => {
            let Some(p) = load(&file, workdir.as_deref()) else {
                return Ok(ExitCode::from(2));
            };
            if tasks == 0 {
                bail!("--tasks 0: give at least 1");
            }
            let dir = dir.map_or_else(
                || p.workdir.join("slurm"),
                |d| std::path::absolute(&d).unwrap_or(d),
            );
            let primer = match primer {
                Some(b) => std::path::absolute(&b).unwrap_or(b),
                None => std::env::current_exe().context("finding the primer binary")?,
            };
            let opts = slurm::SlurmOptions {
                tasks,
                partition,
                time,
                mem,
                cpus: cpus_per_task,
                primer,
                file: std::path::absolute(&p.path).unwrap_or_else(|_| p.path.clone()),
                workdir: workdir.map(|w| {
                    if primer_store::is_remote(&w.to_string_lossy()) {
                        w
                    } else {
                        std::path::absolute(&w).unwrap_or(w)
                    }
                }),
                log_dir: dir.join("logs"),
            };
            let jobs = slurm::jobs(&p, &opts);
            if dry_run {
                for j in &jobs {
                    println!("# ---- {} ----\n{}", j.file, j.script);
                }
                println!("# ---- submit.sh ----\n{}", slurm::submit_script(&jobs));
                return Ok(ExitCode::SUCCESS);
            }
            std::fs::create_dir_all(&opts.log_dir)
                .with_context(|| format!("creating {}", opts.log_dir.display()))?;
            let submit = slurm::write(&jobs, &dir)?;
            println!(
                "{} job scripts and {} written",
                jobs.len(),
                submit.display()
            );
            if no_submit {
                return Ok(ExitCode::SUCCESS);
            }
            let status = std::process::Command::new("bash")
                .arg(&submit)
                .status()
                .with_context(|| format!("running {}", submit.display()))?;
            if !status.success() {
                bail!(
                    "{} failed (is `sbatch` on the PATH? the scripts are in {})",
                    submit.display(),
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file } => {
            let Some(p) = load(&file, None) else {
                return Ok(ExitCode::from(2));
            };
            println!(
                "{}: ok, {} stage(s): {}",
                file.display(),
                p.stages.len(),
                p.stages
                    .iter()
                    .map(|s| format!("{} ({})", s.id, s.op.kind()))
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            file,
            force,
            workdir,
        } => {
            let Some(p) = load(&file, workdir.as_deref()) else {
                return Ok(ExitCode::from(2));
            };
            let opts = RunOptions {
                force,
                ..RunOptions::default()
            };
            let entries = primer_pipeline::plan(&p, &opts)
                .with_context(|| format!("planning {}", file.display()))?;
            let width = entries
                .iter()
                .map(|e| e.id.len() + e.kind.len() + 3)
                .max()
                .unwrap_or(0);
            for e in entries {
                let what = match e.status {
                    PlanStatus::Skip => "skip  ",
                    PlanStatus::Run => "run   ",
                    PlanStatus::Resume { .. } => "resume",
                    PlanStatus::Blocked => "blocked",
                };
                println!(
                    "{what}  {:width$}  {}",
                    format!("{} ({})", e.id, e.kind),
                    e.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { file, workdir } => {
            let Some(p) = load(&file, workdir.as_deref()) else {
                return Ok(ExitCode::from(2));
            };
            let entries = primer_pipeline::plan(&p, &RunOptions::default())
                .with_context(|| format!("reading the state of {}", file.display()))?;
            print!(
                "{}",
                primer_report::status_table(&primer_report::collect(&p, &entries))
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            file,
            workdir,
            out,
            sample_rows,
        } => {
            let Some(p) = load(&file, workdir.as_deref()) else {
                return Ok(ExitCode::from(2));
            };
            let opts = primer_report::ScanOptions {
                sample_rows: sample_rows.max(1),
                ..Default::default()
            };
            let path = write_report(&p, None, out.as_deref(), &opts)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql {
            query,
            tables,
            limit,
            format,
        } => {
            let tables = tables
                .iter()
                .map(|t| {
                    let (name, path) = t
                        .split_once('=')
                        .with_context(|| format!("--table {t}: write it as NAME=PATH"))?;
                    Ok((name.to_string(), PathBuf::from(path)))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let (schema, batches, more) = primer_sql::query(&tables, &query, limit, threads)?;
            match format {
                OutputFormat::Table => {
                    let shown: Vec<RecordBatch> = batches
                        .iter()
                        .map(|b| shorten(b, 80))
                        .collect::<anyhow::Result<_>>()?;
                    if shown.is_empty() {
                        println!(
                            "{}",
                            arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                                schema
                            )])?
                        );
                    } else {
                        println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
                    }
                }
                OutputFormat::Jsonl => {
                    let mut w = arrow::json::LineDelimitedWriter::new(std::io::stdout().lock());
                    for b in &batches {
                        w.write(b)?;
                    }
                    w.finish()?;
                }
            }
            if more {
                eprintln!("(more rows than --limit {limit}; showing the first {limit})");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { path, rows } => {
            inspect(&path, rows)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Shards {
            command:
                ShardsCommand::Inspect {
                    path,
                    docs,
                    chars,
                    tokenizer,
                },
        } => {
            shards::inspect(&path, docs, chars, tokenizer.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Write the run report of `p` (to `out`, or `report.html` in its work directory).
fn write_report(
    p: &Pipeline,
    run: Option<&primer_report::RunInfo>,
    out: Option<&Path>,
    opts: &primer_report::ScanOptions,
) -> anyhow::Result<PathBuf> {
    // The report reads the datasets: with the work directory in a store, they come down.
    primer_pipeline::pull_work_dir(p, true)
        .with_context(|| format!("reading the datasets of {}", p.path.display()))?;
    let entries = primer_pipeline::plan(p, &RunOptions::default())
        .with_context(|| format!("reading the state of {}", p.path.display()))?;
    let facts = primer_report::collect(p, &entries);
    let path = out.map_or_else(|| primer_report::default_path(p), Path::to_path_buf);
    primer_report::write_report(p, &facts, run, opts, &path)
        .with_context(|| format!("writing the report {}", path.display()))?;
    // A report in the staging copy of a stored work directory goes to the store too.
    if let Some(loc) = primer_store::remote_of(&path) {
        primer_store::upload_staged(&path)
            .with_context(|| format!("storing the report at {loc}"))?;
        return Ok(PathBuf::from(loc.url()));
    }
    Ok(path)
}

/// Load and check a pipeline; print every problem and return `None` when there are any.
fn load(file: &Path, workdir: Option<&Path>) -> Option<Pipeline> {
    match Pipeline::load(file) {
        Ok(mut p) => {
            if let Some(w) = workdir {
                let text = w.to_string_lossy();
                if primer_store::is_remote(&text) {
                    if let Err(e) = primer_store::Location::parse(&text) {
                        eprintln!("error: --workdir: {e}");
                        return None;
                    }
                    p.workdir = primer_core::resolve_path(Path::new(""), &text);
                } else {
                    p.workdir = std::path::absolute(w).unwrap_or_else(|_| w.to_path_buf());
                }
            }
            Some(p)
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("error: {}", d.render(file));
            }
            eprintln!(
                "{}: {} problem(s); nothing was run",
                file.display(),
                diags.len()
            );
            None
        }
    }
}

fn print_outputs(p: &Pipeline, summary: &primer_pipeline::RunSummary) {
    println!("outputs of pipeline `{}`:", p.name);
    for (id, outcome) in &summary.stages {
        let dir = p.dataset_dir(id);
        let line = match outcome {
            StageOutcome::Skipped { manifest } | StageOutcome::Ran { manifest, .. } => {
                let shards_to = manifest.notes.get("shards_to").and_then(|v| v.as_str());
                match manifest.notes.get("exported_to").and_then(|v| v.as_str()) {
                    None if shards_to.is_some() => format!(
                        "{id}: {} tokens of {} documents in {} shard(s) in {}",
                        manifest.counters.get("tokens"),
                        manifest.rows,
                        manifest
                            .notes
                            .get("shards")
                            .and_then(|v| v.as_u64())
                            .unwrap_or(0),
                        shards_to.unwrap_or_default()
                    ),
                    Some(to) => format!(
                        "{id}: exported {} rows to {to}",
                        manifest.counters.get("rows_exported")
                    ),
                    None => format!(
                        "{id}: {} rows in {}",
                        manifest.rows,
                        primer_core::location_name(&dir)
                    ),
                }
            }
            StageOutcome::ShardDone { tasks_missing, .. } => {
                format!("{id}: incomplete, {tasks_missing} task(s) left to other shards")
            }
            StageOutcome::Waiting { input } => format!("{id}: not built, waits for `{input}`"),
        };
        println!("  {line}");
    }
    if !summary.complete() {
        println!("run again (or let the other shards finish) to complete the rest");
    }
}

/// String columns cut to `width` characters with line breaks shown as ⏎, for tables.
fn shorten(batch: &RecordBatch, width: usize) -> anyhow::Result<RecordBatch> {
    let cut = |s: &str| shards::cut(s, width);
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let strings: Option<Vec<Option<String>>> = match f.data_type() {
            DataType::Utf8 => {
                let a = c.as_any().downcast_ref::<StringArray>().expect("utf8");
                Some(
                    (0..a.len())
                        .map(|i| (!a.is_null(i)).then(|| cut(a.value(i))))
                        .collect(),
                )
            }
            DataType::LargeUtf8 => {
                let a = c
                    .as_any()
                    .downcast_ref::<LargeStringArray>()
                    .expect("large utf8");
                Some(
                    (0..a.len())
                        .map(|i| (!a.is_null(i)).then(|| cut(a.value(i))))
                        .collect(),
                )
            }
            _ => None,
        };
        match strings {
            Some(v) => {
                fields.push(Field::new(f.name(), DataType::Utf8, true));
                cols.push(Arc::new(StringArray::from(v)));
            }
            None => {
                fields.push(f.as_ref().clone());
                cols.push(c.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

fn inspect(path: &Path, rows: usize) -> anyhow::Result<()> {
    let (schema, reader) = if path.is_dir() {
        let ds = Dataset::open(path).with_context(|| format!("opening {}", path.display()))?;
        let m: &Manifest = ds.manifest();
        println!("dataset     {}", path.display());
        println!("stage       {} ({})", m.stage.id, m.stage.kind);
        println!(
            "rows        {} in {} part(s), {} bytes",
            m.rows,
            m.parts.len(),
            m.bytes
        );
        println!("fingerprint {}", m.fingerprint);
        println!(
            "written by  primer {} in {:.1}s ({} task(s), {} reused)",
            m.program_version, m.seconds, m.tasks, m.tasks_reused
        );
        println!("counters");
        for (k, v) in m.counters.iter() {
            println!("  {k:<28} {v}");
        }
        if !m.notes.is_empty() {
            println!("notes");
            for (k, v) in &m.notes {
                println!("  {k:<28} {v}");
            }
        }
        if !m.warnings.is_empty() {
            println!(
                "warnings (first {} of {})",
                m.warnings.len().min(5),
                m.counters.get("warnings")
            );
            for w in m.warnings.iter().take(5) {
                println!("  {w}");
            }
        }
        let reader = if ds.num_parts() > 0 {
            Some(ds.read_part(0, rows.max(1))?)
        } else {
            None
        };
        (ds.schema(), reader)
    } else if path.is_file() {
        let r = PartReader::open(path, rows.max(1))
            .with_context(|| format!("opening {}", path.display()))?;
        println!("parquet file {}", path.display());
        (r.schema(), Some(r))
    } else {
        bail!("{}: no such file or directory", path.display());
    };
    println!("schema");
    for f in schema.fields() {
        println!(
            "  {:<20} {}{}",
            f.name(),
            f.data_type(),
            if f.is_nullable() { "" } else { " not null" }
        );
    }
    if rows > 0
        && let Some(mut r) = reader
        && let Some(batch) = r.next()
    {
        let batch = batch?;
        let batch = batch.slice(0, rows.min(batch.num_rows()));
        println!("first {} row(s)", batch.num_rows());
        println!(
            "{}",
            arrow::util::pretty::pretty_format_batches(&[shorten(&batch, 60)?])?
        );
    }
    Ok(())
}
