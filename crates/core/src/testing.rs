//! Helpers for stage crates' tests: run a built stage end to end into a temporary dataset.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, StringArray};
use arrow::record_batch::RecordBatch;

use crate::{
    Dataset, InputSchema, Provenance, Result, Stage, StageDir, StageInfo, TaskContext,
    WriteOptions, documents_schema,
};

/// Run every task of `stage` over `inputs` into a dataset at `dir`, reading inputs in
/// batches of `batch_size` rows with two threads, phase by phase; return the dataset.
pub fn run_stage(
    stage: &dyn Stage,
    inputs: &[Dataset],
    dir: &Path,
    batch_size: usize,
) -> Result<Dataset> {
    run_stage_with(stage, inputs, dir, batch_size, 2)
}

/// [`run_stage`] with `threads` threads for the stage.
pub fn run_stage_with(
    stage: &dyn Stage,
    inputs: &[Dataset],
    dir: &Path,
    batch_size: usize,
    threads: usize,
) -> Result<Dataset> {
    run_stage_sharded(stage, inputs, dir, batch_size, threads, 1)
}

/// Run `stage` as `shards` processes under `--shard i/N` would: phase by phase, each
/// shard (the last first) with a freshly opened [`StageDir`] running its tasks
/// (`task % shards == i`), the manifest written after the last phase.
pub fn run_stage_sharded(
    stage: &dyn Stage,
    inputs: &[Dataset],
    dir: &Path,
    batch_size: usize,
    threads: usize,
    shards: usize,
) -> Result<Dataset> {
    let schemas: Vec<InputSchema> = inputs
        .iter()
        .map(|d| InputSchema {
            id: d.manifest().stage.id.clone(),
            schema: d.schema(),
        })
        .collect();
    let schema = stage.output_schema(&schemas)?;
    let sides = stage.side_outputs(&schema);
    let open = || -> Result<StageDir> {
        let mut sd = StageDir::open(dir, "test", schema.clone(), WriteOptions::default())?;
        sd.set_side_outputs(sides.clone());
        Ok(sd)
    };
    let mut sd = open()?;
    let phases = stage.phases(inputs)?;
    let n = stage.num_tasks(inputs)?;
    assert_eq!(
        phases.iter().sum::<usize>(),
        n,
        "phases must add up to num_tasks"
    );
    let cancel = AtomicBool::new(false);
    let mut start = 0;
    for len in phases {
        for shard in (0..shards.max(1)).rev() {
            sd = open()?;
            let scratch = sd.scratch_dir();
            let earlier_parts = sd.completed_parts(start).unwrap_or_default();
            for t in (start..start + len).filter(|t| t % shards.max(1) == shard) {
                let ctx = TaskContext {
                    stage_id: "test",
                    inputs,
                    batch_size,
                    threads,
                    dir,
                    earlier_parts: &earlier_parts,
                    scratch_dir: &scratch,
                    cancel: &cancel,
                };
                let mut out = sd.task_output(t)?;
                stage.run_task(t, &ctx, &mut out)?;
                sd.complete(out)?;
            }
        }
        start += len;
    }
    let notes = stage.notes();
    let info = StageInfo {
        id: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        kind: stage.kind().into(),
    };
    sd.finalize_with(info, Provenance::default(), n, 0, 0.0, notes, &|c| {
        stage.counter_notes(c)
    })?;
    Dataset::open(dir)
}

/// All rows of a dataset as one batch (for comparisons in tests).
pub fn read_all(ds: &Dataset) -> Result<RecordBatch> {
    let batches: Vec<RecordBatch> = ds.batches(8192).collect::<Result<_>>()?;
    arrow::compute::concat_batches(&ds.schema(), &batches)
        .map_err(|e| crate::Error::arrow("concat", e))
}

/// Check that `schemas/<name>.json` (the repository's record of each dataset kind's
/// schema) is `schema`; with `PRIMER_BLESS=1`, write it instead.
pub fn check_schema_file(name: &str, schema: &arrow::datatypes::Schema) {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf());
    let path = crate_dir.join("../../schemas").join(format!("{name}.json"));
    let json = crate::schema_to_json(schema);
    let mut text = String::from("{\n  \"fields\": [\n");
    for (i, f) in json.fields.iter().enumerate() {
        text.push_str(&format!(
            "    {{ \"name\": {}, \"type\": {}, \"nullable\": {} }}{}\n",
            serde_json::to_string(&f.name).expect("a string"),
            serde_json::to_string(&f.data_type).expect("a string"),
            f.nullable,
            if i + 1 < json.fields.len() { "," } else { "" }
        ));
    }
    text.push_str("  ]\n}\n");
    if std::env::var_os("PRIMER_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write the schema file");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    let parsed: crate::SchemaJson = serde_json::from_str(&have)
        .unwrap_or_else(|e| panic!("{}: {e} (PRIMER_BLESS=1 writes it)", path.display()));
    let from_file = crate::schema_from_json(&parsed).expect("a valid schema");
    assert_eq!(
        from_file.as_ref(),
        schema,
        "{} differs from the code: run the test with PRIMER_BLESS=1 and commit it",
        path.display()
    );
}

/// A document dataset at `dir` (stage `docs`) holding `docs` as (id, text, source), `url`
/// null, split into up to `parts` parts of consecutive documents (none when `docs` is
/// empty).
pub fn documents_dataset<S: AsRef<str>>(dir: &Path, docs: &[(S, S, S)], parts: usize) -> Dataset {
    let schema = documents_schema();
    let sd = StageDir::open(dir, "docs", schema.clone(), WriteOptions::default()).unwrap();
    let per = docs.len().div_ceil(parts.max(1)).max(1);
    let mut n = 0;
    for (t, chunk) in docs.chunks(per).enumerate() {
        let mut out = sd.task_output(t).unwrap();
        let column = |f: fn(&(S, S, S)) -> &S| chunk.iter().map(move |d| f(d).as_ref());
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(column(|d| &d.0))),
            Arc::new(LargeStringArray::from_iter_values(column(|d| &d.1))),
            Arc::new(StringArray::from_iter_values(column(|d| &d.2))),
            Arc::new(StringArray::from(vec![None::<&str>; chunk.len()])),
        ];
        out.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
        sd.complete(out).unwrap();
        n += 1;
    }
    let info = StageInfo {
        id: "docs".into(),
        kind: "test".into(),
    };
    sd.finalize(info, Provenance::default(), n, 0, 0.0, Default::default())
        .unwrap();
    Dataset::open(dir).unwrap()
}
