//! The `extract` stage: HTML pages to documents holding their main content as text.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, LargeStringBuilder, StringArray,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
    documents_fields,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::charset::decode_html;
use crate::html::{ExtractOptions, extract};
use crate::http::{charset_param, media_type};

/// Settings of the `extract` stage: the main content of HTML pages as text. Reads a
/// responses dataset (`read_warc`) or any dataset whose `field` column holds HTML (bytes
/// or text) beside an `id`. Keeps `<pre>` code blocks verbatim, indentation included;
/// drops navigation, headers, footers, sidebars, banners, scripts and styles. Bytes are
/// decoded by the charset of the `Content-Type`, a `<meta>`, or detection.
///
/// Writes documents (`id`, `text`, `source`, `url`) with `title`, `html_lang` (from
/// `<html lang>`) and `canonical_url` (`<link rel=canonical>`), then the input's other
/// columns but the HTML. Rows are dropped, and counted, when the HTTP `status` is not
/// 2xx (`dropped.http_status`), the `content_type` is neither HTML nor plain text
/// (`dropped.content_type`; plain text passes through as it is) or the page has no text
/// (`dropped.no_text`). Memory: one batch of pages and their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    /// The column holding the page: binary (bytes, decoded by charset) or text.
    /// Default `body`.
    #[serde(default = "default_field")]
    pub field: String,
    /// Keep tables: rows as lines, cells joined by ` | `. Default true.
    #[serde(default = "default_true")]
    pub tables: bool,
}

fn default_field() -> String {
    "body".into()
}
fn default_true() -> bool {
    true
}

/// Columns `extract` writes besides the document columns.
const ADDED: [&str; 3] = ["title", "html_lang", "canonical_url"];

/// The `extract` stage, built.
pub struct Extract {
    config: ExtractConfig,
    source: String,
}

impl ExtractConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Extract> {
        Ok(Extract {
            config: self.clone(),
            source: ctx.stage_id.to_string(),
        })
    }
}

/// What became of one page.
enum Outcome {
    Kept {
        text: String,
        title: Option<String>,
        lang: Option<String>,
        canonical: Option<String>,
    },
    Dropped(&'static str),
}

impl Extract {
    /// The input columns carried over, after the document and added columns.
    fn carried(&self, input: &Schema) -> Vec<Field> {
        input
            .fields()
            .iter()
            .filter(|f| {
                let n = f.name().as_str();
                n != self.config.field
                    && !primer_core::DOCUMENTS_COLUMNS.contains(&n)
                    && !ADDED.contains(&n)
            })
            .map(|f| f.as_ref().clone())
            .collect()
    }

    fn process(&self, page: Page<'_>, status: Option<i32>, content_type: Option<&str>) -> Outcome {
        if status.is_some_and(|s| !(200..300).contains(&s)) {
            return Outcome::Dropped("http_status");
        }
        let media = content_type.map(media_type).unwrap_or_default();
        let plain = media == "text/plain";
        let html_like = media.is_empty()
            || media == "text/html"
            || media == "application/xhtml+xml"
            || media.ends_with("+html");
        if !plain && !html_like {
            return Outcome::Dropped("content_type");
        }
        let text = match page {
            Page::Text(t) => std::borrow::Cow::Borrowed(t),
            Page::Bytes(b) => decode_html(b, content_type.and_then(charset_param)).0,
        };
        if plain {
            let t = text.trim();
            if t.is_empty() {
                return Outcome::Dropped("no_text");
            }
            return Outcome::Kept {
                text: t.to_string(),
                title: None,
                lang: None,
                canonical: None,
            };
        }
        let e = extract(
            &text,
            &ExtractOptions {
                tables: self.config.tables,
                links: false,
            },
        );
        if e.text.is_empty() {
            return Outcome::Dropped("no_text");
        }
        Outcome::Kept {
            text: e.text,
            title: e.title,
            lang: e.lang,
            canonical: e.canonical,
        }
    }
}

#[derive(Clone, Copy)]
enum Page<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
}

fn page_at(col: &dyn Array, i: usize) -> Option<Page<'_>> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Utf8 => Page::Text(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Page::Text(col.as_string::<i64>().value(i)),
        DataType::Binary => Page::Bytes(col.as_binary::<i32>().value(i)),
        DataType::LargeBinary => Page::Bytes(col.as_binary::<i64>().value(i)),
        DataType::Utf8View => Page::Text(col.as_string_view().value(i)),
        DataType::BinaryView => Page::Bytes(col.as_binary_view().value(i)),
        _ => return None,
    })
}

impl Stage for Extract {
    fn kind(&self) -> &'static str {
        "extract"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let [input] = inputs else {
            return Err(Error::input("`extract` takes exactly one input"));
        };
        let s = &input.schema;
        let field = &self.config.field;
        match s.field_with_name(field).map(|f| f.data_type()) {
            Ok(
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView,
            ) => {}
            Ok(t) => {
                return Err(Error::input(format!(
                    "input `{}`: column `{field}` (field) is {t}, not text or bytes",
                    input.id
                )));
            }
            Err(_) => {
                return Err(Error::input(format!(
                    "input `{}` has no column `{field}` (field): name the column that holds the HTML",
                    input.id
                )));
            }
        }
        if !matches!(
            s.field_with_name("id").map(|f| f.data_type()),
            Ok(DataType::Utf8)
        ) {
            return Err(Error::input(format!(
                "input `{}` has no text column `id`",
                input.id
            )));
        }
        let mut fields = documents_fields();
        for a in ADDED {
            fields.push(Field::new(a, DataType::Utf8, true));
        }
        fields.extend(self.carried(s));
        Ok(Arc::new(Schema::new(fields)))
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts())
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("modifies_text".into(), true.into());
        m
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let schema = out.schema();
        for batch in ctx.inputs[0].read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            let n = batch.num_rows();
            out.count("rows_in", n as u64);
            let col = batch
                .column_by_name(&self.config.field)
                .ok_or_else(|| Error::Internal("the field column went missing".into()))?;
            let status = batch
                .column_by_name("status")
                .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned());
            let ctype = batch
                .column_by_name("content_type")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            let outcomes: Vec<Outcome> = (0..n)
                .into_par_iter()
                .map(|i| {
                    let Some(page) = page_at(col.as_ref(), i) else {
                        return Outcome::Dropped("no_text");
                    };
                    let st = status
                        .as_ref()
                        .and_then(|s| s.is_valid(i).then(|| s.value(i)));
                    let ct = ctype
                        .as_ref()
                        .and_then(|c| c.is_valid(i).then(|| c.value(i)));
                    self.process(page, st, ct)
                })
                .collect();
            let mut keep = Vec::with_capacity(n);
            let mut text = LargeStringBuilder::new();
            let mut title = StringBuilder::new();
            let mut lang = StringBuilder::new();
            let mut canonical = StringBuilder::new();
            for o in outcomes {
                match o {
                    Outcome::Kept {
                        text: t,
                        title: ti,
                        lang: l,
                        canonical: c,
                    } => {
                        keep.push(true);
                        out.count("bytes_out", t.len() as u64);
                        text.append_value(t);
                        title.append_option(ti);
                        lang.append_option(l);
                        canonical.append_option(c);
                    }
                    Outcome::Dropped(reason) => {
                        keep.push(false);
                        out.dropped(reason, 1);
                    }
                }
            }
            let mask = BooleanArray::from(keep);
            let kept_in = arrow::compute::filter_record_batch(&batch, &mask)
                .map_err(|e| Error::arrow("filtering rows", e))?;
            let rows = kept_in.num_rows();
            let source: ArrayRef = match kept_in.column_by_name("source") {
                Some(c) if c.data_type() == &DataType::Utf8 => c.clone(),
                _ => Arc::new(StringArray::from(vec![self.source.as_str(); rows])),
            };
            let url: ArrayRef = match kept_in.column_by_name("url") {
                Some(c) if c.data_type() == &DataType::Utf8 => c.clone(),
                _ => arrow::array::new_null_array(&DataType::Utf8, rows),
            };
            let mut cols: Vec<ArrayRef> = vec![
                kept_in.column_by_name("id").expect("checked").clone(),
                Arc::new(text.finish()),
                source,
                url,
                Arc::new(title.finish()),
                Arc::new(lang.finish()),
                Arc::new(canonical.finish()),
            ];
            for f in self.carried(&batch.schema()) {
                cols.push(kept_in.column_by_name(f.name()).expect("carried").clone());
            }
            let out_batch = RecordBatch::try_new(schema.clone(), cols)
                .map_err(|e| Error::arrow("building documents", e))?;
            out.write(&out_batch)?;
        }
        Ok(())
    }
}
