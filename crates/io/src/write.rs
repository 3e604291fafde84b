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

/// A JSONL file being written, compressed or not.
enum Sink {
    Plain(std::io::BufWriter<std::fs::File>),
    Gzip(flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>),
    Zstd(zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>),
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

impl Sink {
    /// End the compressed stream, flush and sync the file, reporting every error.
    fn finish(self) -> std::io::Result<()> {
        let buf = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        buf.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
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
    fn output_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

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
                let sink = match self.config.compression {
                    Compression::None => Sink::Plain(buf),
                    Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                        buf,
                        flate2::Compression::new(6),
                    )),
                    Compression::Zstd => Sink::Zstd(
                        zstd::stream::write::Encoder::new(buf, 3)
                            .map_err(|e| Error::io(&tmp, e))?,
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
                w.into_inner().finish().map_err(|e| Error::io(&tmp, e))?;
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
        m.insert(
            "exported_to".into(),
            primer_core::location_name(&self.dir).into(),
        );
        m.insert("export_format".into(), self.extension().into());
        m
    }
}

#[cfg(test)]
mod tests {
    use primer_core::BuildContext;
    use primer_core::testing::run_stage;

    use super::*;
    use crate::ReadConfig;

    /// Every export format reads back to the same documents.
    #[test]
    fn exports_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let lines: String = (0..300)
            .map(|i| {
                format!("{{\"id\": \"d{i}\", \"text\": \"text {i} ünïcode\", \"url\": null}}\n")
            })
            .collect();
        std::fs::write(tmp.path().join("a.jsonl"), lines).unwrap();
        let ctx = BuildContext {
            stage_id: "docs",
            base_dir: tmp.path(),
        };
        let read: ReadConfig = toml::from_str("paths = [\"a.jsonl\"]").unwrap();
        let docs = run_stage(
            &read.build(&ctx).unwrap(),
            &[],
            &tmp.path().join("docs"),
            64,
        )
        .unwrap();
        for (settings, glob) in [
            ("format = \"jsonl\"", "*.jsonl"),
            ("format = \"jsonl\"\ncompression = \"gzip\"", "*.jsonl.gz"),
            ("format = \"jsonl\"\ncompression = \"zstd\"", "*.jsonl.zst"),
            ("format = \"parquet\"", "*.parquet"),
        ] {
            let name = glob.trim_start_matches("*.").replace('.', "_");
            let cfg: WriteConfig =
                toml::from_str(&format!("path = \"{name}\"\n{settings}")).unwrap();
            let w = cfg.build(&ctx).unwrap();
            let m = run_stage(
                &w,
                std::slice::from_ref(&docs),
                &tmp.path().join(format!("w-{name}")),
                7,
            )
            .unwrap();
            assert_eq!(m.manifest().counters.get("rows_exported"), 300);
            let back: ReadConfig = toml::from_str(&format!("paths = [\"{name}/{glob}\"]")).unwrap();
            let again = run_stage(
                &back.build(&ctx).unwrap(),
                &[],
                &tmp.path().join(format!("r-{name}")),
                64,
            )
            .unwrap();
            let a = primer_core::testing::read_all(&docs).unwrap();
            let b = primer_core::testing::read_all(&again).unwrap();
            for col in ["id", "text", "url"] {
                assert_eq!(
                    a.column_by_name(col),
                    b.column_by_name(col),
                    "{name}: {col}"
                );
            }
        }
    }

    #[test]
    fn columns_must_exist() {
        let cfg: WriteConfig =
            toml::from_str("path = \"x\"\ncolumns = [\"id\", \"nope\"]").unwrap();
        let w = cfg
            .build(&BuildContext {
                stage_id: "w",
                base_dir: std::path::Path::new("."),
            })
            .unwrap();
        let input = InputSchema {
            id: "docs".into(),
            schema: primer_core::documents_schema(),
        };
        let err = w.output_schema(&[input]).unwrap_err().to_string();
        assert!(
            err.contains("the input has no column `nope`; it has `id`, `text`, `source`, `url`"),
            "{err}"
        );
    }
}
