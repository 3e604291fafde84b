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

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

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

#[cfg(test)]
mod tests {
    #[test]
    fn responses_schema_matches_its_file() {
        primer_core::testing::check_schema_file("responses", &super::responses_schema());
    }
}
