//! Web data into primer: archived or fetched HTTP responses, and the text in them.
//!
//! A **responses** dataset ([`responses_schema`]) holds HTTP responses as they arrived —
//! URL, status, headers, fetch time, content type and the payload bytes — whether they
//! came from WARC archives ([`ReadWarcConfig`], the `read_warc` stage) or, later, from
//! the crawler. The `extract` stage ([`ExtractConfig`]) turns a responses dataset (or any
//! dataset with an HTML column) into documents: the page's main content as text, with
//! code blocks kept verbatim, and its title, `<html lang>` and canonical URL.
//!
//! [`warc`] reads WARC files record by record and reads on after damage; [`http`] parses
//! the HTTP responses inside them; [`charset`] decodes page bytes; [`html`] is the
//! extractor itself.

pub mod charset;
mod crawl;
mod extract;
pub mod html;
pub mod http;
mod read_warc;
pub mod urls;
pub mod warc;
pub mod warc_out;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, LargeBinaryBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{Error, Result, TaskOutput};

pub use crawl::{Crawl, CrawlConfig, crawl_state, rfc3339};
pub use extract::{Extract, ExtractConfig};
pub use read_warc::{ReadWarc, ReadWarcConfig};

/// The responses schema: what `read_warc` (and the crawler) write and `extract` reads.
///
/// `id` (a hash of the source and the WARC record id, or of the URL and fetch time),
/// `url` (the request's target), `final_url` (where redirects led: the URL whose
/// response this is), `source`, `fetch_time` (RFC 3339, as recorded),
/// `status` (HTTP status; null for records that hold a document without HTTP, like
/// WET conversions), `content_type` (the payload's `Content-Type`), `headers` (the HTTP
/// response headers as `Name: value` lines), `body` (the payload, de-chunked and
/// decompressed), `record_type` (`response`, `resource`, `conversion`).
///
/// `schemas/responses.json` holds the same schema; a test keeps the two equal.
pub fn responses_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
        Field::new("final_url", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("fetch_time", DataType::Utf8, true),
        Field::new("status", DataType::Int32, true),
        Field::new("content_type", DataType::Utf8, true),
        Field::new("headers", DataType::Utf8, true),
        Field::new("body", DataType::LargeBinary, false),
        Field::new("record_type", DataType::Utf8, false),
    ]))
}

/// One row of the responses schema.
pub(crate) struct Response<'a> {
    pub id: String,
    pub url: Option<&'a str>,
    pub final_url: Option<&'a str>,
    pub source: &'a str,
    pub fetch_time: Option<&'a str>,
    pub status: Option<i32>,
    pub content_type: Option<&'a str>,
    pub headers: Option<&'a str>,
    pub body: &'a [u8],
    pub record_type: &'a str,
}

/// Rows of the responses schema being gathered into a batch (`read_warc` and `crawl`).
#[derive(Default)]
pub(crate) struct ResponseRows {
    id: StringBuilder,
    url: StringBuilder,
    final_url: StringBuilder,
    source: StringBuilder,
    fetch_time: StringBuilder,
    status: Int32Builder,
    content_type: StringBuilder,
    headers: StringBuilder,
    body: LargeBinaryBuilder,
    record_type: StringBuilder,
    /// Rows and payload bytes since the last flush.
    pub rows: usize,
    pub bytes: usize,
}

impl ResponseRows {
    pub fn push(&mut self, r: Response<'_>) {
        self.id.append_value(r.id);
        self.url.append_option(r.url);
        self.final_url.append_option(r.final_url);
        self.source.append_value(r.source);
        self.fetch_time.append_option(r.fetch_time);
        self.status.append_option(r.status);
        self.content_type.append_option(r.content_type);
        self.headers.append_option(r.headers);
        self.body.append_value(r.body);
        self.record_type.append_value(r.record_type);
        self.rows += 1;
        self.bytes += r.body.len();
    }

    /// Write the gathered rows to `out` as one batch (nothing when there are none).
    pub fn flush(&mut self, out: &mut TaskOutput) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.final_url.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.fetch_time.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.headers.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.record_type.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        let batch = RecordBatch::try_new(out.schema(), cols)
            .map_err(|e| Error::arrow("building responses", e))?;
        out.write(&batch)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn responses_schema_matches_its_file() {
        primer_core::testing::check_schema_file("responses", &super::responses_schema());
    }
}
