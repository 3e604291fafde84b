//! SQL over datasets, with Apache DataFusion: the only crate that links it.
//!
//! [`SqlConfig`] / [`Sql`]: the `sql` stage runs one query over its inputs, each registered
//! as a table named by its stage id, and writes the result as a dataset — select, filter,
//! join, mix sources with weights, sample. DataFusion works in parallel and spills sorts and
//! joins to the stage's scratch directory past `memory_limit_mb`. [`query`] answers ad-hoc
//! queries for `primer sql`. Two functions are added to DataFusion's: `stable_random(key,
//! seed)`, a number in [0, 1) that depends only on its arguments (for reproducible sampling
//! and shuffling), and `xxh3(text)`, a 64-bit hash.

mod udf;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use serde::{Deserialize, Serialize};

/// Settings of the `sql` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// The query (DataFusion's SQL dialect). Each input is a table named by its stage id.
    /// Filters and projections keep the input's row order; add `ORDER BY` for a fixed
    /// order after joins and aggregates. Required.
    pub query: String,
    /// Memory the query may hold before sorts, joins and aggregates spill to disk, in MiB.
    /// Default 2048.
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: usize,
}

fn default_memory_limit_mb() -> usize {
    2048
}

/// The `sql` stage, built.
pub struct Sql {
    config: SqlConfig,
    input_ids: Vec<String>,
}

impl SqlConfig {
    pub fn build(&self, _ctx: &BuildContext, inputs: &[String]) -> Result<Sql> {
        if self.query.trim().is_empty() {
            return Err(Error::input("`query` is empty"));
        }
        if self.memory_limit_mb < 16 {
            return Err(Error::input("`memory_limit_mb` must be at least 16"));
        }
        Ok(Sql {
            config: self.clone(),
            input_ids: inputs.to_vec(),
        })
    }
}

fn df_err(context: &str, e: datafusion::error::DataFusionError) -> Error {
    Error::input(format!("{context}: {e}"))
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("starting the query runtime: {e}")))
}

fn session(
    batch_rows: usize,
    threads: usize,
    memory_limit_mb: usize,
    spill_dir: Option<&Path>,
) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_batch_size(batch_rows.max(1))
        // Round-robin repartitioning would interleave rows nondeterministically.
        .with_round_robin_repartition(false);
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    // Each partition reads only its own files, so a query's output (and its part files)
    // is the same from run to run: resumed and sharded runs depend on it.
    config
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    let mut rt = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit_mb << 20)));
    if let Some(dir) = spill_dir {
        rt = rt.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.to_path_buf()])),
        );
    }
    let rt = rt
        .build_arc()
        .map_err(|e| df_err("setting up the query engine", e))?;
    let ctx = SessionContext::new_with_config_rt(config, rt);
    udf::register(&ctx);
    Ok(ctx)
}

/// Register Parquet files as table `name`, with a known schema.
fn register_files(
    ctx: &SessionContext,
    name: &str,
    files: &[PathBuf],
    schema: Option<SchemaRef>,
) -> Result<()> {
    let urls = files
        .iter()
        .map(|p| {
            let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
            ListingTableUrl::parse(abs.to_string_lossy())
                .map_err(|e| df_err(&p.display().to_string(), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let mut config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options);
    if let Some(s) = schema {
        config = config.with_schema(s);
    }
    let table: Arc<dyn datafusion::catalog::TableProvider> = if files.is_empty() {
        let schema = config
            .file_schema
            .clone()
            .ok_or_else(|| Error::Internal("empty table without schema".into()))?;
        Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(|e| df_err(name, e))?)
    } else {
        Arc::new(ListingTable::try_new(config).map_err(|e| df_err(name, e))?)
    };
    ctx.register_table(name, table)
        .map_err(|e| df_err(name, e))?;
    Ok(())
}

impl Stage for Sql {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let ctx = session(1024, 1, self.config.memory_limit_mb, None)?;
        for input in inputs {
            let t = MemTable::try_new(input.schema.clone(), vec![vec![]])
                .map_err(|e| df_err(&input.id, e))?;
            ctx.register_table(input.id.as_str(), Arc::new(t))
                .map_err(|e| df_err(&input.id, e))?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let df = rt
            .block_on(ctx.sql(&self.config.query))
            .map_err(|e| df_err("query", e))?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    fn num_tasks(&self, _inputs: &[Dataset]) -> Result<usize> {
        Ok(1)
    }

    fn run_task(&self, _task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        std::fs::create_dir_all(ctx.scratch_dir).map_err(|e| Error::io(ctx.scratch_dir, e))?;
        let session = session(
            ctx.batch_size,
            ctx.threads,
            self.config.memory_limit_mb,
            Some(ctx.scratch_dir),
        )?;
        for (id, ds) in self.input_ids.iter().zip(ctx.inputs) {
            out.count("rows_in", ds.rows());
            register_files(&session, id, &ds.local_parts()?, Some(ds.schema()))?;
        }
        let rt = runtime(ctx.threads)?;
        let query = self.config.query.clone();
        let lanes: Vec<TaskOutput> = rt.block_on(async {
            let df = session.sql(&query).await.map_err(|e| df_err("query", e))?;
            let streams = df
                .execute_stream_partitioned()
                .await
                .map_err(|e| df_err("query", e))?;
            let mut handles = Vec::new();
            for (i, mut stream) in streams.into_iter().enumerate() {
                let mut lane = out.lane(i + 1);
                handles.push(tokio::spawn(async move {
                    while let Some(batch) = stream.next().await {
                        let batch = batch.map_err(|e| df_err("query", e))?;
                        lane.write(&batch)?;
                    }
                    Ok::<_, Error>(lane)
                }));
            }
            let mut lanes = Vec::new();
            for h in handles {
                lanes.push(
                    h.await
                        .map_err(|e| Error::Internal(format!("query task: {e}")))??,
                );
            }
            Ok::<_, Error>(lanes)
        })?;
        ctx.check_cancelled()?;
        for lane in lanes {
            out.absorb(lane)?;
        }
        Ok(())
    }
}

/// Where an ad-hoc query's table comes from: a dataset directory (with a manifest), a
/// Parquet file, or a directory of Parquet files.
fn table_files(path: &Path) -> Result<(Vec<PathBuf>, Option<SchemaRef>)> {
    if path.join(primer_core::MANIFEST_FILE).is_file() {
        let ds = Dataset::open(path)?;
        return Ok((ds.part_paths(), Some(ds.schema())));
    }
    if path.is_file() {
        return Ok((vec![path.to_path_buf()], None));
    }
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::input(format!(
                "{}: neither a primer dataset (no _manifest.json) nor a directory of .parquet files",
                path.display()
            )));
        }
        return Ok((files, None));
    }
    Err(Error::input(format!(
        "{}: no such file or directory",
        path.display()
    )))
}

/// Run an ad-hoc query over named tables (`name`, dataset or Parquet path); return the
/// schema and at most `limit` rows, and whether more rows were left out.
pub fn query(
    tables: &[(String, PathBuf)],
    sql: &str,
    limit: usize,
    threads: usize,
) -> Result<(SchemaRef, Vec<RecordBatch>, bool)> {
    let session = session(8192, threads, 2048, None)?;
    for (name, path) in tables {
        let (files, schema) = table_files(path)?;
        register_files(&session, name, &files, schema)?;
    }
    let rt = runtime(threads)?;
    rt.block_on(async {
        let df = session.sql(sql).await.map_err(|e| df_err("query", e))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(|e| df_err("query", e))?;
        let mut rows = 0;
        let mut batches = Vec::new();
        let mut more = false;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| df_err("query", e))?;
            if rows >= limit {
                more |= b.num_rows() > 0;
                if more {
                    break;
                }
                continue;
            }
            let take = (limit - rows).min(b.num_rows());
            more |= take < b.num_rows();
            rows += take;
            batches.push(b.slice(0, take));
        }
        Ok((schema, batches, more))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use primer_core::testing::{read_all, run_stage_with};
    use primer_core::{StageDir, StageInfo, WriteOptions};

    use super::*;

    /// A dataset of `parts` parts with ids `d0…` and texts of growing length.
    fn dataset(dir: &Path, parts: usize, rows: usize) -> Dataset {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("text", DataType::LargeUtf8, false),
        ]));
        let sd = StageDir::open(dir, "fp", schema.clone(), WriteOptions::default()).unwrap();
        for p in 0..parts {
            let mut out = sd.task_output(p).unwrap();
            let ids: Vec<String> = (0..rows).map(|i| format!("d{}", p * rows + i)).collect();
            let texts: Vec<String> = (0..rows).map(|i| "x".repeat(i % 17)).collect();
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(arrow::array::LargeStringArray::from(texts)),
                ],
            )
            .unwrap();
            out.write(&b).unwrap();
            sd.complete(out).unwrap();
        }
        let info = StageInfo {
            id: "docs".into(),
            kind: "test".into(),
        };
        sd.finalize(info, Default::default(), parts, 0, 0.0, Default::default())
            .unwrap();
        Dataset::open(dir).unwrap()
    }

    fn sql(query: &str) -> Sql {
        let cfg = SqlConfig {
            query: query.into(),
            memory_limit_mb: 64,
        };
        cfg.build(
            &BuildContext {
                stage_id: "s",
                base_dir: Path::new("."),
            },
            &["docs".into()],
        )
        .unwrap()
    }

    #[test]
    fn filter_keeps_input_order_at_any_thread_count() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = dataset(&tmp.path().join("docs"), 5, 1000);
        let stage = sql("SELECT id, length(text) AS n FROM docs WHERE length(text) > 3");
        let one = read_all(
            &run_stage_with(
                &stage,
                std::slice::from_ref(&ds),
                &tmp.path().join("a"),
                100,
                1,
            )
            .unwrap(),
        )
        .unwrap();
        let two = read_all(
            &run_stage_with(
                &stage,
                std::slice::from_ref(&ds),
                &tmp.path().join("b"),
                100,
                2,
            )
            .unwrap(),
        )
        .unwrap();
        let three =
            read_all(&run_stage_with(&stage, &[ds], &tmp.path().join("c"), 100, 3).unwrap())
                .unwrap();
        assert_eq!(one, two);
        assert_eq!(one, three);
        let ids: Vec<&str> = one
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        let want: Vec<String> = (0..5000)
            .filter(|i| (i % 1000) % 17 > 3)
            .map(|i| format!("d{i}"))
            .collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn stable_random_is_a_reproducible_uniform_sample() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = dataset(&tmp.path().join("docs"), 2, 5000);
        let stage = sql(
            "SELECT id, stable_random(id, 42) AS r FROM docs WHERE stable_random(id, 42) < 0.3",
        );
        let a = read_all(
            &run_stage_with(
                &stage,
                std::slice::from_ref(&ds),
                &tmp.path().join("a"),
                100,
                2,
            )
            .unwrap(),
        )
        .unwrap();
        let b = read_all(&run_stage_with(&stage, &[ds], &tmp.path().join("b"), 100, 1).unwrap())
            .unwrap();
        assert_eq!(a, b);
        // 30 % of 10,000 within a few standard deviations (σ ≈ 46).
        assert!((2800..3200).contains(&a.num_rows()), "{}", a.num_rows());
        let r = a.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(r.values().iter().all(|v| (0.0..0.3).contains(v)));
        // Another seed, another sample.
        let other = sql("SELECT id FROM docs WHERE stable_random(id, 43) < 0.3");
        let tmp2 = tempfile::tempdir().unwrap();
        let ds2 = dataset(&tmp2.path().join("docs"), 2, 5000);
        let c = read_all(&run_stage_with(&other, &[ds2], &tmp2.path().join("c"), 100, 2).unwrap())
            .unwrap();
        assert_ne!(a.column(0).as_ref(), c.column(0).as_ref());
    }

    #[test]
    fn query_errors_name_the_problem() {
        let stage = sql("SELECT nope FROM docs");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let err = stage
            .output_schema(&[InputSchema {
                id: "docs".into(),
                schema,
            }])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
