//! The `read_warc` stage: WARC and WET files to a responses dataset, one task per file.

use std::io::BufReader;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput, file_stamp,
    hash_hex,
};
use serde::{Deserialize, Serialize};

use crate::http::parse_response;
use crate::warc::{WarcReader, WarcRecord};
use crate::{Response, ResponseRows};

/// Settings of the `read_warc` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadWarcConfig {
    /// WARC or WET files: paths or glob patterns, relative to the pipeline file's
    /// directory; plain or gzip (one member per record, or one for the whole file). Every
    /// pattern must match at least one file. Required.
    pub paths: Vec<String>,
    /// The value of the `source` column. Default: the stage id.
    #[serde(default)]
    pub source: Option<String>,
    /// The record types to keep: `response` (HTTP responses), `conversion` (WET text),
    /// `resource` (documents stored without HTTP; crawlers such as wget put their logs
    /// there). Requests, metadata, revisits and warcinfo records hold no document and
    /// are counted and passed over. Default `response` and `conversion`.
    #[serde(default = "default_record_types")]
    pub record_types: Vec<String>,
    /// Rows per record batch (a batch also ends at 64 MiB of payload). Default 256.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_record_types() -> Vec<String> {
    vec!["response".into(), "conversion".into()]
}
fn default_batch_rows() -> usize {
    256
}

const KNOWN_TYPES: &[&str] = &["response", "resource", "conversion"];
const MAX_BATCH_BYTES: usize = 64 << 20;

/// The `read_warc` stage, built: the matched files.
pub struct ReadWarc {
    config: ReadWarcConfig,
    source: String,
    files: Vec<PathBuf>,
}

impl ReadWarcConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<ReadWarc> {
        if self.paths.is_empty() {
            return Err(Error::input(
                "`paths` is empty: name at least one WARC file or glob",
            ));
        }
        if self.batch_rows == 0 {
            return Err(Error::input("`batch_rows` must be at least 1"));
        }
        for t in &self.record_types {
            if !KNOWN_TYPES.contains(&t.as_str()) {
                return Err(Error::input(format!(
                    "record_types: `{t}` is not one of `response`, `resource`, `conversion`"
                )));
            }
        }
        let files = ctx.expand_paths("paths", &self.paths)?;
        Ok(ReadWarc {
            config: self.clone(),
            source: self
                .source
                .clone()
                .unwrap_or_else(|| ctx.stage_id.to_string()),
            files,
        })
    }
}

impl Stage for ReadWarc {
    fn kind(&self) -> &'static str {
        "read_warc"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        if !inputs.is_empty() {
            return Err(Error::input(
                "a `read_warc` stage takes no inputs; it reads `paths`",
            ));
        }
        Ok(crate::responses_schema())
    }

    fn external_fingerprint(&self) -> Result<String> {
        let mut s = String::new();
        for p in &self.files {
            let (len, mtime) = file_stamp(p)?;
            s.push_str(&format!(
                "{}|{}|{}\n",
                primer_core::location_name(p),
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
        let path = &self.files[task];
        primer_core::fetch_input(path)?;
        let display = path.display().to_string();
        out.count("files", 1);
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                out.warn(format!("{display}: {e}; file skipped"));
                out.count("files_unreadable", 1);
                return Ok(());
            }
        };
        if let Ok(m) = file.metadata() {
            out.count("bytes_in", m.len());
        }
        let reader = WarcReader::new(BufReader::with_capacity(1 << 20, file))
            .map_err(|e| Error::io(path, e))?;
        let mut b = ResponseRows::default();
        for (n, item) in reader.enumerate() {
            if n % 256 == 0 {
                ctx.check_cancelled()?;
            }
            let record = match item {
                Ok(r) => r,
                Err(e) => {
                    out.warn(format!("{display}: {e}; skipped"));
                    out.count("records_damaged", 1);
                    continue;
                }
            };
            if let Some(note) = &record.note {
                out.warn(format!("{display}: byte offset {}: {note}", record.offset));
                out.count("records_with_bad_length", 1);
            }
            let kind = record.record_type().to_ascii_lowercase();
            out.count(&format!("records.{kind}"), 1);
            if !self.config.record_types.contains(&kind) {
                continue;
            }
            if let Err(message) = self.push(&record, &kind, &mut b) {
                let url = record.target_uri().unwrap_or("(no URL)");
                out.warn(format!(
                    "{display}: byte offset {}: {url}: {message}; record skipped",
                    record.offset
                ));
                out.dropped("bad_http", 1);
                continue;
            }
            out.count("rows_in", 1);
            if b.rows >= self.config.batch_rows || b.bytes >= MAX_BATCH_BYTES {
                b.flush(out)?;
            }
        }
        b.flush(out)?;
        Ok(())
    }
}

impl ReadWarc {
    /// Add one record's row, or say why it cannot be read.
    fn push(
        &self,
        record: &WarcRecord,
        kind: &str,
        b: &mut ResponseRows,
    ) -> std::result::Result<(), String> {
        let warc_type = record.field("Content-Type").unwrap_or("");
        let is_http = kind == "response"
            && (warc_type
                .to_ascii_lowercase()
                .starts_with("application/http")
                || record.block.starts_with(b"HTTP/"));
        let url = record.target_uri();
        let date = record.field("WARC-Date");
        let (status, content_type, headers, body) = if is_http {
            let r = parse_response(&record.block)?;
            let ct = r.header("Content-Type").map(str::to_string);
            let headers = r.headers_text();
            (Some(r.status as i32), ct, Some(headers), r.body)
        } else {
            let ct = (!warc_type.is_empty()).then(|| warc_type.to_string());
            (None, ct, None, record.block.clone())
        };
        let key = match record.field("WARC-Record-ID") {
            Some(rid) => format!("{}\0{rid}", self.source),
            None => format!(
                "{}\0{}\0{}",
                self.source,
                url.unwrap_or(""),
                date.unwrap_or("")
            ),
        };
        b.push(Response {
            id: hash_hex(key.as_bytes()),
            url,
            final_url: url,
            source: &self.source,
            fetch_time: date,
            status,
            content_type: content_type.as_deref(),
            headers: headers.as_deref(),
            body: &body,
            record_type: kind,
        });
        Ok(())
    }
}
