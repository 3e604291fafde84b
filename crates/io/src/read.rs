use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, LargeStringBuilder, StringBuilder, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use primer_core::{
    BuildContext, DOCUMENTS_COLUMNS, Dataset, Error, InputSchema, Result, Stage, TaskContext,
    TaskOutput, documents_fields, hash_hex,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Settings of the `read` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadConfig {
    /// Files to read: paths or glob patterns (`data/*.jsonl.zst`), relative to the pipeline
    /// file's directory. Every pattern must match at least one file. Required.
    pub paths: Vec<String>,
    /// `auto` (by extension: `.jsonl`/`.json`/`.ndjson`, optionally `.gz`/`.zst`, is JSONL;
    /// `.parquet` is Parquet; anything else is text), `jsonl`, `parquet` or `text` (each file
    /// one document). Default `auto`.
    #[serde(default)]
    pub format: ReadFormat,
    /// The field (JSONL) or column (Parquet) holding the document text. Default `text`.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// The field or column holding the document id. Records without one get a stable id: a
    /// hash of source and url, or of source and text. Default `id`.
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// The field or column holding the URL, when there is one. Default `url`.
    #[serde(default = "default_url_field")]
    pub url_field: String,
    /// The value of the `source` column. Default: the stage id.
    #[serde(default)]
    pub source: Option<String>,
    /// JSONL fields kept as extra text columns (strings as they are, other values as JSON).
    /// Parquet inputs keep all their other columns anyway. Default none.
    #[serde(default)]
    pub keep_fields: Vec<String>,
    /// Rows per record batch (a batch also ends at 16 MiB of text). Default 1024.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_text_field() -> String {
    "text".into()
}
fn default_id_field() -> String {
    "id".into()
}
fn default_url_field() -> String {
    "url".into()
}
fn default_batch_rows() -> usize {
    1024
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReadFormat {
    #[default]
    Auto,
    Jsonl,
    Parquet,
    Text,
}

/// The `read` stage, built: the matched files and the output schema.
pub struct Read {
    config: ReadConfig,
    source: String,
    files: Vec<(PathBuf, ReadFormat)>,
    schema: SchemaRef,
    /// For Parquet inputs: the columns kept besides the document columns.
    parquet_extra: Vec<Field>,
}

fn format_of(path: &Path, format: ReadFormat) -> ReadFormat {
    if format != ReadFormat::Auto {
        return format;
    }
    let name = path.to_string_lossy().to_lowercase();
    let name = name
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .trim_end_matches(".zstd");
    if name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") {
        ReadFormat::Jsonl
    } else if name.ends_with(".parquet") {
        ReadFormat::Parquet
    } else {
        ReadFormat::Text
    }
}

impl ReadConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Read> {
        if self.paths.is_empty() {
            return Err(Error::input(
                "`paths` is empty: name at least one file or glob",
            ));
        }
        if self.batch_rows == 0 {
            return Err(Error::input("`batch_rows` must be at least 1"));
        }
        let files: Vec<(PathBuf, ReadFormat)> = ctx
            .expand_paths("paths", &self.paths)?
            .into_iter()
            .map(|p| {
                let f = format_of(&p, self.format);
                (p, f)
            })
            .collect();
        let mut fields = documents_fields();
        for k in &self.keep_fields {
            if DOCUMENTS_COLUMNS.contains(&k.as_str()) {
                return Err(Error::input(format!(
                    "keep_fields: `{k}` is a document column already"
                )));
            }
            fields.push(Field::new(k, DataType::Utf8, true));
        }
        let mut parquet_extra = Vec::new();
        if let Some((first, _)) = files.iter().find(|(_, f)| *f == ReadFormat::Parquet) {
            primer_core::fetch_input(first)?;
            let file_schema = parquet_schema(first)?;
            if file_schema.field_with_name(&self.text_field).is_err() {
                return Err(Error::input(format!(
                    "{}: no column `{}` (text_field); columns are: {}",
                    first.display(),
                    self.text_field,
                    column_names(&file_schema)
                )));
            }
            for f in file_schema.fields() {
                let name = f.name();
                let mapped = [&self.text_field, &self.id_field, &self.url_field, "source"];
                if !mapped.contains(&name.as_str()) && !self.keep_fields.contains(name) {
                    parquet_extra.push(f.as_ref().clone().with_nullable(true));
                }
            }
            fields.extend(parquet_extra.iter().cloned());
        }
        Ok(Read {
            config: self.clone(),
            source: self
                .source
                .clone()
                .unwrap_or_else(|| ctx.stage_id.to_string()),
            files,
            schema: Arc::new(Schema::new(fields)),
            parquet_extra,
        })
    }
}

fn parquet_schema(path: &Path) -> Result<SchemaRef> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    Ok(b.schema().clone())
}

fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Read {
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }
}

impl Stage for Read {
    fn kind(&self) -> &'static str {
        "read"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        if !inputs.is_empty() {
            return Err(Error::input(
                "a `read` stage takes no inputs; it reads `paths`",
            ));
        }
        Ok(self.schema.clone())
    }

    fn external_fingerprint(&self) -> Result<String> {
        let mut s = String::new();
        for (p, f) in &self.files {
            let (len, mtime) = primer_core::file_stamp(p)?;
            s.push_str(&format!(
                "{}|{:?}|{}|{}\n",
                primer_core::location_name(p),
                f,
                len,
                mtime
            ));
        }
        Ok(s)
    }

    fn num_tasks(&self, _inputs: &[Dataset]) -> Result<usize> {
        Ok(self.files.len())
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let (path, format) = &self.files[task];
        primer_core::fetch_input(path)?;
        out.count("files", 1);
        let result = match format {
            ReadFormat::Jsonl | ReadFormat::Auto => self.read_jsonl(path, ctx, out),
            ReadFormat::Parquet => self.read_parquet(path, ctx, out),
            ReadFormat::Text => self.read_text(path, out),
        };
        match result {
            // An input file that cannot be opened at all is skipped with a warning, so the
            // other files still flow; errors writing the output stay fatal.
            Err(Error::Io { path: p, source }) if &p == path => {
                out.warn(format!("{}: {source}; file skipped", p.display()));
                out.count("files_unreadable", 1);
                Ok(())
            }
            Err(Error::Parquet { path: p, source })
                if &p == path && out.counters().get("rows_out") == 0 =>
            {
                out.warn(format!("{}: {source}; file skipped", p.display()));
                out.count("files_unreadable", 1);
                Ok(())
            }
            r => r,
        }
    }
}

/// Column builders for one batch of documents.
struct DocBuilder {
    id: StringBuilder,
    text: LargeStringBuilder,
    source: StringBuilder,
    url: StringBuilder,
    keep: Vec<StringBuilder>,
    rows: usize,
    text_bytes: usize,
}

impl DocBuilder {
    fn new(keep: usize) -> Self {
        DocBuilder {
            id: StringBuilder::new(),
            text: LargeStringBuilder::new(),
            source: StringBuilder::new(),
            url: StringBuilder::new(),
            keep: (0..keep).map(|_| StringBuilder::new()).collect(),
            rows: 0,
            text_bytes: 0,
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.url.finish()),
        ];
        for k in &mut self.keep {
            cols.push(Arc::new(k.finish()));
        }
        self.rows = 0;
        self.text_bytes = 0;
        RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| Error::arrow("building documents", e))
    }
}

/// A stable id for a record without one: a hash of source and url, or of source and text.
fn derived_id(source: &str, url: Option<&str>, text: &str) -> String {
    let mut key = Vec::with_capacity(source.len() + 1 + url.map_or(text.len(), str::len));
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(url.unwrap_or(text).as_bytes());
    hash_hex(&key)
}

const MAX_BATCH_TEXT_BYTES: usize = 16 << 20;

impl Read {
    fn read_jsonl(&self, path: &Path, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let schema = out.schema();
        let display = path.display().to_string();
        let mut reader = crate::open_maybe_compressed(path).map_err(|e| Error::io(path, e))?;
        let mut b = DocBuilder::new(self.config.keep_fields.len());
        let mut line = Vec::with_capacity(1 << 16);
        let mut line_no: u64 = 0;
        let mut bytes_read: u64 = 0;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) => bytes_read += n as u64,
                Err(e) => {
                    out.warn(format!(
                        "{display}: after line {line_no}: {e}; the rest of the file is skipped"
                    ));
                    out.count("files_truncated", 1);
                    break;
                }
            }
            line_no += 1;
            if line_no.is_multiple_of(4096) {
                ctx.check_cancelled()?;
            }
            let mut l: &[u8] = &line;
            while let [rest @ .., b'\n' | b'\r'] = l {
                l = rest;
            }
            if l.iter().all(u8::is_ascii_whitespace) {
                out.count("blank_lines", 1);
                continue;
            }
            out.count("rows_in", 1);
            let text = match std::str::from_utf8(l) {
                Ok(t) => t,
                Err(e) => {
                    out.warn(format!(
                        "{display}:{line_no}: invalid UTF-8 at byte {}; line skipped",
                        e.valid_up_to()
                    ));
                    out.dropped("invalid_utf8", 1);
                    continue;
                }
            };
            if let Err(reason) = self.push_json_line(text, &mut b) {
                let (counter, msg) = reason;
                out.warn(format!("{display}:{line_no}: {msg}; line skipped"));
                out.dropped(counter, 1);
                continue;
            }
            if b.rows >= self.config.batch_rows || b.text_bytes >= MAX_BATCH_TEXT_BYTES {
                out.write(&b.finish(&schema)?)?;
            }
        }
        if bytes_read == 0 {
            out.warn(format!("{display}: empty file"));
            out.count("empty_files", 1);
        }
        out.count("bytes_in", bytes_read);
        if b.rows > 0 {
            out.write(&b.finish(&schema)?)?;
        }
        Ok(())
    }

    /// Parse one JSON line into the builder, or say why it cannot be used
    /// (counter name, message).
    fn push_json_line(
        &self,
        line: &str,
        b: &mut DocBuilder,
    ) -> std::result::Result<(), (&'static str, String)> {
        let obj: HashMap<Cow<str>, &RawValue> = serde_json::from_str(line)
            .map_err(|e| ("invalid_json", format!("invalid JSON ({e})")))?;
        let cfg = &self.config;
        let text: Cow<str> = match obj.get(cfg.text_field.as_str()) {
            None => {
                return Err(("missing_text", format!("no field `{}`", cfg.text_field)));
            }
            Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
                (
                    "bad_text",
                    format!("field `{}` is not a string", cfg.text_field),
                )
            })?,
        };
        let url: Option<Cow<str>> = obj.get(cfg.url_field.as_str()).and_then(|raw| {
            serde_json::from_str::<Option<Cow<str>>>(raw.get())
                .ok()
                .flatten()
        });
        let id: String = match obj.get(cfg.id_field.as_str()) {
            Some(raw) => match serde_json::from_str::<Cow<str>>(raw.get()) {
                Ok(s) => s.into_owned(),
                Err(_) if raw.get() != "null" => raw.get().to_string(),
                Err(_) => derived_id(&self.source, url.as_deref(), &text),
            },
            None => derived_id(&self.source, url.as_deref(), &text),
        };
        b.id.append_value(&id);
        b.text.append_value(&text);
        b.source.append_value(&self.source);
        b.url.append_option(url.as_deref());
        for (k, builder) in cfg.keep_fields.iter().zip(b.keep.iter_mut()) {
            match obj.get(k.as_str()) {
                None => builder.append_null(),
                Some(raw) if raw.get() == "null" => builder.append_null(),
                Some(raw) => match serde_json::from_str::<Cow<str>>(raw.get()) {
                    Ok(s) => builder.append_value(s),
                    Err(_) => builder.append_value(raw.get()),
                },
            }
        }
        b.rows += 1;
        b.text_bytes += text.len();
        Ok(())
    }

    fn read_text(&self, path: &Path, out: &mut TaskOutput) -> Result<()> {
        let display = path.display().to_string();
        let mut bytes = Vec::new();
        let mut reader = crate::open_maybe_compressed(path).map_err(|e| Error::io(path, e))?;
        if let Err(e) = std::io::Read::read_to_end(&mut reader, &mut bytes) {
            out.warn(format!("{display}: {e}; file skipped"));
            out.count("files_truncated", 1);
            return Ok(());
        }
        out.count("bytes_in", bytes.len() as u64);
        if bytes.is_empty() {
            out.warn(format!("{display}: empty file"));
            out.count("empty_files", 1);
            return Ok(());
        }
        out.count("rows_in", 1);
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                out.warn(format!(
                    "{display}: invalid UTF-8 at byte {}; file skipped",
                    e.utf8_error().valid_up_to()
                ));
                out.dropped("invalid_utf8", 1);
                return Ok(());
            }
        };
        let url = path.to_string_lossy();
        let mut b = DocBuilder::new(self.config.keep_fields.len());
        b.id.append_value(derived_id(&self.source, Some(&url), &text));
        b.text.append_value(&text);
        b.source.append_value(&self.source);
        b.url.append_value(&url);
        for k in &mut b.keep {
            k.append_null();
        }
        b.rows = 1;
        out.write(&b.finish(&out.schema())?)
    }

    fn read_parquet(&self, path: &Path, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let schema = out.schema();
        let cfg = &self.config;
        let display = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        out.count("bytes_in", file.metadata().map(|m| m.len()).unwrap_or(0));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::parquet(path, e))?
            .with_batch_size(cfg.batch_rows)
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        let mut row_base: u64 = 0;
        for batch in reader {
            ctx.check_cancelled()?;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    out.warn(format!(
                        "{display}: after row {row_base}: {e}; the rest of the file is skipped"
                    ));
                    out.count("files_truncated", 1);
                    break;
                }
            };
            let n = batch.num_rows();
            out.count("rows_in", n as u64);
            let column = |name: &str, to: &DataType| -> Result<Option<ArrayRef>> {
                match batch.column_by_name(name) {
                    None => Ok(None),
                    Some(c) => cast(c, to)
                        .map(Some)
                        .map_err(|e| Error::input(format!("{display}: column `{name}`: {e}"))),
                }
            };
            let Some(text) = column(&cfg.text_field, &DataType::LargeUtf8)? else {
                return Err(Error::input(format!(
                    "{display}: no column `{}` (text_field)",
                    cfg.text_field
                )));
            };
            let url = column(&cfg.url_field, &DataType::Utf8)?
                .unwrap_or_else(|| new_null_array(&DataType::Utf8, n));
            let id = column(&cfg.id_field, &DataType::Utf8)?;
            let text_a = text
                .as_any()
                .downcast_ref::<arrow::array::LargeStringArray>()
                .expect("cast");
            let url_a = url
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("cast");
            let id_a = id.as_ref().map(|a| {
                a.as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .expect("cast")
                    .clone()
            });
            let mut keep_rows = Vec::with_capacity(n);
            let mut ids = StringBuilder::new();
            for i in 0..n {
                if text_a.is_null(i) {
                    out.warn(format!(
                        "{display}: row {}: `{}` is null; row skipped",
                        row_base + i as u64,
                        cfg.text_field
                    ));
                    out.dropped("null_text", 1);
                    continue;
                }
                let u = (!url_a.is_null(i)).then(|| url_a.value(i));
                match &id_a {
                    Some(a) if !a.is_null(i) => ids.append_value(a.value(i)),
                    _ => ids.append_value(derived_id(&self.source, u, text_a.value(i))),
                }
                keep_rows.push(i as u32);
            }
            row_base += n as u64;
            let take = arrow::array::UInt32Array::from(keep_rows);
            let pick = |a: &ArrayRef| {
                arrow::compute::take(a.as_ref(), &take, None).map_err(|e| Error::arrow(&display, e))
            };
            let k = take.len();
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(ids.finish()),
                pick(&text)?,
                Arc::new(arrow::array::StringArray::from(vec![
                    self.source.as_str();
                    k
                ])),
                pick(&url)?,
            ];
            for name in &cfg.keep_fields {
                cols.push(match column(name, &DataType::Utf8)? {
                    Some(c) => pick(&c)?,
                    None => new_null_array(&DataType::Utf8, k),
                });
            }
            for f in &self.parquet_extra {
                cols.push(match column(f.name(), f.data_type())? {
                    Some(c) => pick(&c)?,
                    None => new_null_array(f.data_type(), k),
                });
            }
            let out_batch = RecordBatch::try_new(schema.clone(), cols)
                .map_err(|e| Error::input(format!("{display}: {e}")))?;
            out.write(&out_batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arrow::array::{AsArray, RecordBatch};
    use primer_core::testing::{read_all, run_stage};

    use super::*;

    fn build(dir: &Path, toml: &str) -> Read {
        let cfg: ReadConfig = toml::from_str(toml).unwrap();
        cfg.build(&BuildContext {
            stage_id: "docs",
            base_dir: dir,
        })
        .unwrap()
    }

    fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
        let a = b.column_by_name(col).unwrap();
        let a = arrow::compute::cast(a, &DataType::Utf8).unwrap();
        a.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    const LINES: &str = concat!(
        "{\"id\": \"a\", \"text\": \"first\", \"url\": \"http://x/a\", \"title\": \"A\"}\n",
        "{\"id\": 7, \"text\": \"second\", \"title\": {\"nested\": true}}\n",
        "{\"text\": \"no id here\", \"url\": \"http://x/c\"}\n",
        "{\"text\": \"no id, no url\"}\n",
        "\n",
        "{\"id\": \"e\", \"text\": \"caf\\u00e9 \\ud83d\\ude00\", \"url\": null}\n",
    );

    #[test]
    fn jsonl_fields_ids_and_kept_fields() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.jsonl"), LINES).unwrap();
        let read = build(
            tmp.path(),
            "paths = [\"a.jsonl\"]\nkeep_fields = [\"title\"]\nsource = \"web\"",
        );
        let ds = run_stage(&read, &[], &tmp.path().join("out"), 100).unwrap();
        let b = read_all(&ds).unwrap();
        assert_eq!(b.num_rows(), 5);
        let ids = strings(&b, "id");
        assert_eq!(ids[0].as_deref(), Some("a"));
        assert_eq!(ids[1].as_deref(), Some("7"));
        // Derived ids: a hash of source and url, else of source and text.
        assert_eq!(
            ids[2].as_deref(),
            Some(derived_id("web", Some("http://x/c"), "").as_str())
        );
        assert_eq!(
            ids[3].as_deref(),
            Some(derived_id("web", None, "no id, no url").as_str())
        );
        assert_eq!(strings(&b, "text")[4].as_deref(), Some("café 😀"));
        assert_eq!(
            strings(&b, "url"),
            vec![
                Some("http://x/a".into()),
                None,
                Some("http://x/c".into()),
                None,
                None
            ]
        );
        assert_eq!(
            strings(&b, "title")[..2],
            [Some("A".into()), Some("{\"nested\": true}".into())]
        );
        assert_eq!(strings(&b, "source")[0].as_deref(), Some("web"));
        assert_eq!(ds.manifest().counters.get("blank_lines"), 1);
    }

    #[test]
    fn same_output_at_any_batch_size() {
        let tmp = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!(
                "{{\"id\": \"d{i}\", \"text\": \"document {i} {}\"}}\n",
                "word ".repeat(i)
            ));
        }
        std::fs::write(tmp.path().join("a.jsonl"), &text).unwrap();
        let mut outputs = Vec::new();
        for rows in [1, 7, 4096] {
            let read = build(
                tmp.path(),
                &format!("paths = [\"a.jsonl\"]\nbatch_rows = {rows}"),
            );
            let ds = run_stage(&read, &[], &tmp.path().join(format!("out{rows}")), 100).unwrap();
            outputs.push(read_all(&ds).unwrap());
        }
        assert_eq!(outputs[0].num_rows(), 50);
        assert_eq!(outputs[0], outputs[1]);
        assert_eq!(outputs[0], outputs[2]);
    }

    #[test]
    fn compressed_and_text_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        let gz = std::fs::File::create(tmp.path().join("b.jsonl.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
        std::io::Write::write_all(&mut enc, LINES.as_bytes()).unwrap();
        enc.finish().unwrap();
        std::fs::write(
            tmp.path().join("c.jsonl.zst"),
            zstd::encode_all(LINES.as_bytes(), 3).unwrap(),
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("page.txt"),
            "A whole file is one document.\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("bad.txt"), b"caf\xe9").unwrap();
        let read = build(tmp.path(), "paths = [\"*.jsonl.*\", \"*.txt\"]");
        let ds = run_stage(&read, &[], &tmp.path().join("out"), 100).unwrap();
        let b = read_all(&ds).unwrap();
        assert_eq!(b.num_rows(), 11);
        let texts = strings(&b, "text");
        assert_eq!(
            texts[10].as_deref(),
            Some("A whole file is one document.\n")
        );
        assert_eq!(ds.manifest().counters.get("dropped.invalid_utf8"), 1);
        assert!(
            ds.manifest()
                .warnings
                .iter()
                .any(|w| w.contains("bad.txt: invalid UTF-8 at byte 3"))
        );
    }

    #[test]
    fn parquet_round_trip_keeps_other_columns() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.jsonl"), LINES).unwrap();
        let read = build(
            tmp.path(),
            "paths = [\"a.jsonl\"]\nkeep_fields = [\"title\"]",
        );
        let ds = run_stage(&read, &[], &tmp.path().join("docs"), 100).unwrap();
        let first = read_all(&ds).unwrap();
        // A Parquet file with the text under another name, and an extra column.
        let write: crate::WriteConfig =
            toml::from_str("path = \"pq\"\nformat = \"parquet\"").unwrap();
        let write = write
            .build(&BuildContext {
                stage_id: "w",
                base_dir: tmp.path(),
            })
            .unwrap();
        run_stage(&write, std::slice::from_ref(&ds), &tmp.path().join("w"), 2).unwrap();
        let read = build(tmp.path(), "paths = [\"pq/*.parquet\"]");
        assert_eq!(read.schema.field(4).name(), "title");
        let again =
            read_all(&run_stage(&read, &[], &tmp.path().join("docs2"), 100).unwrap()).unwrap();
        assert_eq!(strings(&first, "id"), strings(&again, "id"));
        assert_eq!(strings(&first, "text"), strings(&again, "text"));
        assert_eq!(strings(&first, "title"), strings(&again, "title"));
        assert_eq!(strings(&again, "source")[0].as_deref(), Some("docs"));
    }

    #[test]
    fn missing_text_column_in_parquet_is_a_build_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.jsonl"), LINES).unwrap();
        let read = build(tmp.path(), "paths = [\"a.jsonl\"]");
        let ds = run_stage(&read, &[], &tmp.path().join("docs"), 100).unwrap();
        let cfg: ReadConfig =
            toml::from_str("paths = [\"docs/*.parquet\"]\ntext_field = \"body\"").unwrap();
        let err = cfg
            .build(&BuildContext {
                stage_id: "x",
                base_dir: tmp.path(),
            })
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(
                "no column `body` (text_field); columns are: `id`, `text`, `source`, `url`"
            ),
            "{err}"
        );
        drop(ds);
    }
}
