use std::io::Write as _;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput, tmp_path,
};
use serde::{Deserialize, Serialize};

/// Settings of the `write` stage: export one dataset as files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteConfig {
    /// The directory to write into, relative to the pipeline file's directory. It is
    /// created; files named `part-NNNNN.<ext>` in it belong to this stage. Required.
    pub path: String,
    /// `jsonl` or `parquet`. Default `jsonl`.
    #[serde(default)]
    pub format: WriteFormat,
    /// For JSONL: `none`, `gzip` or `zstd`. Parquet parts are always zstd-compressed.
    /// Default `none`.
    #[serde(default)]
    pub compression: Compression,
    /// The columns to export, in order. Default: all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WriteFormat {
    #[default]
    Jsonl,
    Parquet,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

/// The `write` stage, built.
pub struct Write {
    config: WriteConfig,
    dir: PathBuf,
}

impl WriteConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Write> {
        if self.format == WriteFormat::Parquet && self.compression != Compression::None {
            return Err(Error::input(
                "`compression` applies to JSONL; Parquet parts are always zstd-compressed",
            ));
        }
        if let Some(cols) = &self.columns
            && cols.is_empty()
        {
            return Err(Error::input(
                "`columns` is empty: name at least one, or leave it out",
            ));
        }
        Ok(Write {
            config: self.clone(),
            dir: ctx.resolve(&self.path),
        })
    }
}

impl Write {
    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn extension(&self) -> &'static str {
        match (self.config.format, self.config.compression) {
            (WriteFormat::Parquet, _) => "parquet",
            (WriteFormat::Jsonl, Compression::None) => "jsonl",
            (WriteFormat::Jsonl, Compression::Gzip) => "jsonl.gz",
            (WriteFormat::Jsonl, Compression::Zstd) => "jsonl.zst",
        }
    }

    fn file_name(&self, task: usize) -> String {
        format!("part-{task:05}.{}", self.extension())
    }

    fn projection(&self, schema: &SchemaRef) -> Result<Option<Vec<usize>>> {
        let Some(cols) = &self.config.columns else {
            return Ok(None);
        };
        cols.iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| {
                    Error::input(format!(
                        "columns: the input has no column `{c}`; it has {}",
                        schema
                            .fields()
                            .iter()
                            .map(|f| format!("`{}`", f.name()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

impl Stage for Write {
    fn kind(&self) -> &'static str {
        "write"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let [input] = inputs else {
            return Err(Error::input(format!(
                "a `write` stage takes exactly one input, not {}",
                inputs.len()
            )));
        };
        match self.projection(&input.schema)? {
            Some(p) => Ok(std::sync::Arc::new(
                input
                    .schema
                    .project(&p)
                    .map_err(|e| Error::arrow("columns", e))?,
            )),
            None => Ok(input.schema.clone()),
        }
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        let n = inputs[0].num_parts();
        // Files of an earlier export into this directory that this one will not rewrite.
        if self.dir.is_dir() {
            let keep: Vec<String> = (0..n).map(|t| self.file_name(t)).collect();
            let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with("part-")
                    && [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"]
                        .iter()
                        .any(|e| name.ends_with(e));
                if ours && !keep.contains(&name) {
                    std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
                }
            }
        }
        Ok(n)
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let input = &ctx.inputs[0];
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join(self.file_name(task));
        let tmp = tmp_path(&path);
        let projection = self.projection(&input.schema())?;
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut rows = 0u64;
        let batches = input.read_part(task, ctx.batch_size)?.map(|b| {
            let b = b?;
            match &projection {
                Some(p) => b.project(p).map_err(|e| Error::arrow("columns", e)),
                None => Ok(b),
            }
        });
        match self.config.format {
            WriteFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(
                        parquet::basic::ZstdLevel::try_new(3).expect("valid level"),
                    ))
                    .build();
                let mut w = ArrowWriter::try_new(file, out.schema(), Some(props))
                    .map_err(|e| Error::parquet(&tmp, e))?;
                for b in batches {
                    ctx.check_cancelled()?;
                    let b = b?;
                    rows += b.num_rows() as u64;
                    w.write(&b).map_err(|e| Error::parquet(&tmp, e))?;
                    if w.in_progress_size() >= 64 << 20 {
                        w.flush().map_err(|e| Error::parquet(&tmp, e))?;
                    }
                }
                w.into_inner()
                    .map_err(|e| Error::parquet(&tmp, e))?
                    .sync_all()
                    .map_err(|e| Error::io(&tmp, e))?;
            }
            WriteFormat::Jsonl => {
                let buf = std::io::BufWriter::with_capacity(1 << 20, file);
                let sink: Box<dyn std::io::Write> = match self.config.compression {
                    Compression::None => Box::new(buf),
                    Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
                        buf,
                        flate2::Compression::new(6),
                    )),
                    Compression::Zstd => Box::new(
                        zstd::stream::write::Encoder::new(buf, 3)
                            .map_err(|e| Error::io(&tmp, e))?
                            .auto_finish(),
                    ),
                };
                let mut w = arrow_json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow_json::writer::LineDelimited>(sink);
                for b in batches {
                    ctx.check_cancelled()?;
                    let b = b?;
                    rows += b.num_rows() as u64;
                    w.write(&b)
                        .map_err(|e| Error::arrow(tmp.display().to_string(), e))?;
                }
                w.finish()
                    .map_err(|e| Error::arrow(tmp.display().to_string(), e))?;
                let mut sink = w.into_inner();
                sink.flush().map_err(|e| Error::io(&tmp, e))?;
                drop(sink);
            }
        }
        let bytes = std::fs::metadata(&tmp)
            .map_err(|e| Error::io(&tmp, e))?
            .len();
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        out.count("rows_in", rows);
        out.count("rows_exported", rows);
        out.count("bytes_exported", bytes);
        Ok(())
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("exported_to".into(), self.dir.display().to_string().into());
        m.insert("export_format".into(), self.extension().into());
        m
    }
}
