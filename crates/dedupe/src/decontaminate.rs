//! The `decontaminate` stage: an index of the word n-grams of benchmark items (built when
//! the stage is built, in memory: about 40 bytes per distinct n-gram), then every document
//! is checked against it. Text on both sides is normalised as datatrove does
//! ([`crate::text`]; numbers are kept), so reformatted whitespace, case and punctuation do
//! not hide a leak.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, StringBuilder, UInt32Builder,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::text;

fn default_ngram() -> usize {
    13
}
fn default_min_item_words() -> usize {
    8
}
fn default_min_distinct_words() -> usize {
    7
}

/// Settings of the `decontaminate` stage: drop or flag documents that share word n-grams
/// with benchmark items (HumanEval, GSM8K, MMLU, … as JSONL, Parquet or CSV files). The
/// index is built in memory when the stage starts (about 40 bytes per distinct n-gram);
/// the side dataset `hits` and the manifest's `leaked.<benchmark>:<item>` counters say
/// which item each document matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecontaminateConfig {
    /// The benchmarks to check against, each a table: `name` (required; names the benchmark
    /// in the output), `paths` (required; files or globs relative to the pipeline file:
    /// JSONL, optionally `.gz`/`.zst`, Parquet, or CSV with a header row), `fields`
    /// (required; the fields whose values, joined by newlines, make an item's text),
    /// `id_field` (the field with the item's id; default `FILE:N`, the 1-based line or row)
    /// and `format` (`auto` by extension, `jsonl`, `parquet` or `csv`; default `auto`).
    /// Required, at least one.
    pub benchmarks: Vec<BenchmarkConfig>,
    /// Words per n-gram, 1 to 64. Text is normalised as datatrove does (lowercase,
    /// punctuation and whitespace runs become one space, accents removed) but numbers are
    /// kept as written: a generic phrase such as "a mean of 25 and a standard deviation of
    /// 4" should not match every statistics text. Default 13.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// An item with fewer than `ngram` words is indexed whole, as one shorter n-gram, when
    /// it has at least this many words; shorter items are skipped and counted in the
    /// manifest's notes. Default 8.
    #[serde(default = "default_min_item_words")]
    pub min_item_words: usize,
    /// An item's n-grams with fewer distinct words than this are not indexed: runs like
    /// `0 0 0 …` or `1 0 1 0 …` (lists of numbers) would match any table of figures. For an item indexed whole with fewer than `ngram` words,
    /// the bar is scaled down in proportion. 1 to `ngram`. Default 7.
    #[serde(default = "default_min_distinct_words")]
    pub min_distinct_words: usize,
    /// A document matches an item when it contains at least this fraction (0 to 1) of the
    /// item's distinct n-grams; 0 means any one n-gram. Default 0.
    #[serde(default)]
    pub min_fraction: f64,
    /// `drop` the matching documents, or `flag` them with the columns `contaminated`
    /// (bool) and `contamination` (the matched items, `benchmark:item`, comma-separated).
    /// Either way the side dataset `hits` lists each document–item match. Default `drop`.
    #[serde(default)]
    pub action: ContaminationAction,
}

/// One benchmark: files and the fields that make an item's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// The benchmark's name in the manifest and the `hits` side dataset. Required.
    pub name: String,
    /// Files or glob patterns, relative to the pipeline file: JSONL (optionally `.gz` or
    /// `.zst`), Parquet or CSV with a header row. Required.
    pub paths: Vec<String>,
    /// The fields (columns) whose values, joined by newlines, make an item's text, e.g.
    /// `["prompt", "canonical_solution"]`. Required.
    pub fields: Vec<String>,
    /// The field holding an item's id. Default: `FILE:N`, the file name and the item's
    /// 1-based line (JSONL) or row (CSV, Parquet) number.
    #[serde(default)]
    pub id_field: Option<String>,
    /// `auto` (by extension), `jsonl`, `parquet` or `csv`. Default `auto`.
    #[serde(default)]
    pub format: BenchmarkFormat,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkFormat {
    #[default]
    Auto,
    Jsonl,
    Parquet,
    Csv,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ContaminationAction {
    #[default]
    Drop,
    Flag,
}

/// One indexed benchmark item.
#[derive(Debug, Clone)]
struct Item {
    bench: usize,
    id: String,
    /// Distinct n-grams of the item.
    ngrams: u32,
}

/// The `decontaminate` stage, built: the n-gram index of every benchmark item.
pub struct Decontaminate {
    config: DecontaminateConfig,
    files: Vec<PathBuf>,
    items: Vec<Item>,
    /// n-gram length → n-gram hash → items containing it.
    index: BTreeMap<usize, HashMap<u64, Vec<u32>>>,
    notes: serde_json::Map<String, serde_json::Value>,
}

const ROLL_BASE: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hashes of all `n`-word windows of `words` (a rolling hash of the words' xxh3
/// hashes), passed to `f` with the window's start.
fn window_hashes(word_hashes: &[u64], n: usize, mut f: impl FnMut(usize, u64)) {
    if n == 0 || word_hashes.len() < n {
        return;
    }
    let top = (0..n - 1).fold(1u64, |p, _| p.wrapping_mul(ROLL_BASE));
    let mut h = 0u64;
    for (i, &w) in word_hashes.iter().enumerate() {
        if i >= n {
            h = h.wrapping_sub(word_hashes[i - n].wrapping_mul(top));
        }
        h = h.wrapping_mul(ROLL_BASE).wrapping_add(w);
        if i + 1 >= n {
            f(i + 1 - n, h);
        }
    }
}

/// The xxh3 hashes of the words of `text_in`, normalised as datatrove does except that
/// numbers are kept as written.
fn word_hashes(text_in: &str, simplified: &mut String, out: &mut Vec<u64>) {
    text::simplify_text_with(text_in, false, simplified);
    let mut words = Vec::new();
    text::words(simplified, &mut words);
    out.clear();
    out.extend(words.iter().map(|w| xxh3_64(w.as_bytes())));
}

fn format_of(path: &Path, f: BenchmarkFormat) -> BenchmarkFormat {
    if f != BenchmarkFormat::Auto {
        return f;
    }
    let name = path.to_string_lossy().to_lowercase();
    let name = name.trim_end_matches(".gz").trim_end_matches(".zst");
    if name.ends_with(".parquet") {
        BenchmarkFormat::Parquet
    } else if name.ends_with(".csv") {
        BenchmarkFormat::Csv
    } else {
        BenchmarkFormat::Jsonl
    }
}

fn open_maybe_compressed(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let name = path.to_string_lossy().to_lowercase();
    let r: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if name.ends_with(".zst") {
        Box::new(zstd::Decoder::new(f).map_err(|e| Error::io(path, e))?)
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::new(r)))
}

/// Read the items (id, text) of one benchmark file.
fn read_items(path: &Path, b: &BenchmarkConfig) -> Result<Vec<(String, String)>> {
    let file_name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut items = Vec::new();
    let missing = |field: &str, place: String| {
        Error::input(format!(
            "{place}: no field `{field}` (benchmark `{}`)",
            b.name
        ))
    };
    match format_of(path, b.format) {
        BenchmarkFormat::Jsonl | BenchmarkFormat::Auto => {
            let r = open_maybe_compressed(path)?;
            for (n, line) in r.lines().enumerate() {
                let line = line.map_err(|e| Error::io(path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let place = format!("{}:{}", path.display(), n + 1);
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| Error::input(format!("{place}: invalid JSON ({e})")))?;
                let get = |f: &str| -> Result<String> {
                    match v.get(f) {
                        Some(serde_json::Value::String(s)) => Ok(s.clone()),
                        Some(serde_json::Value::Null) | None => Err(missing(f, place.clone())),
                        Some(other) => Ok(other.to_string()),
                    }
                };
                let text = b
                    .fields
                    .iter()
                    .map(|f| get(f))
                    .collect::<Result<Vec<_>>>()?
                    .join("\n");
                let id = match &b.id_field {
                    Some(f) => get(f)?,
                    None => format!("{file_name}:{}", n + 1),
                };
                items.push((id, text));
            }
        }
        BenchmarkFormat::Csv => {
            let mut r = csv::Reader::from_reader(open_maybe_compressed(path)?);
            let headers = r
                .headers()
                .map_err(|e| Error::input(format!("{}: {e}", path.display())))?
                .clone();
            let col = |f: &str| {
                headers.iter().position(|h| h == f).ok_or_else(|| {
                    Error::input(format!(
                        "{}: no column `{f}` (benchmark `{}`); columns are: {}",
                        path.display(),
                        b.name,
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ))
                })
            };
            let cols = b
                .fields
                .iter()
                .map(|f| col(f))
                .collect::<Result<Vec<_>>>()?;
            let id_col = b.id_field.as_deref().map(col).transpose()?;
            for (n, rec) in r.records().enumerate() {
                let rec = rec.map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
                let text = cols
                    .iter()
                    .map(|&c| rec.get(c).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n");
                let id = match id_col {
                    Some(c) => rec.get(c).unwrap_or("").to_string(),
                    None => format!("{file_name}:{}", n + 1),
                };
                items.push((id, text));
            }
        }
        BenchmarkFormat::Parquet => {
            let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .map_err(|e| Error::parquet(path, e))?
                .build()
                .map_err(|e| Error::parquet(path, e))?;
            let mut n = 0usize;
            for batch in reader {
                let batch = batch.map_err(|e| Error::arrow(path.display().to_string(), e))?;
                let col = |f: &str| -> Result<ArrayRef> {
                    let c = batch
                        .column_by_name(f)
                        .ok_or_else(|| missing(f, path.display().to_string()))?;
                    cast(c, &DataType::Utf8).map_err(|e| Error::arrow(f.to_string(), e))
                };
                let cols = b
                    .fields
                    .iter()
                    .map(|f| col(f))
                    .collect::<Result<Vec<_>>>()?;
                let id_col = b.id_field.as_deref().map(col).transpose()?;
                for i in 0..batch.num_rows() {
                    n += 1;
                    let text = cols
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            if c.is_null(i) { "" } else { c.value(i) }
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    let id = match &id_col {
                        Some(c) => c.as_string::<i32>().value(i).to_string(),
                        None => format!("{file_name}:{n}"),
                    };
                    items.push((id, text));
                }
            }
        }
    }
    Ok(items)
}

impl DecontaminateConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Decontaminate> {
        if self.benchmarks.is_empty() {
            return Err(Error::input("`benchmarks` is empty: name at least one"));
        }
        if !(1..=64).contains(&self.ngram) {
            return Err(Error::input(format!(
                "`ngram` = {}: must be from 1 to 64",
                self.ngram
            )));
        }
        if self.min_item_words == 0 || self.min_item_words > self.ngram {
            return Err(Error::input(format!(
                "`min_item_words` = {}: must be from 1 to ngram ({})",
                self.min_item_words, self.ngram
            )));
        }
        if self.min_distinct_words == 0 || self.min_distinct_words > self.ngram {
            return Err(Error::input(format!(
                "`min_distinct_words` = {}: must be from 1 to ngram ({})",
                self.min_distinct_words, self.ngram
            )));
        }
        if !(0.0..=1.0).contains(&self.min_fraction) {
            return Err(Error::input(format!(
                "`min_fraction` = {}: must be from 0 to 1",
                self.min_fraction
            )));
        }
        let mut files = Vec::new();
        let mut items = Vec::new();
        let mut index: BTreeMap<usize, HashMap<u64, Vec<u32>>> = BTreeMap::new();
        let mut notes = serde_json::Map::new();
        let mut names = HashSet::new();
        let mut simplified = String::new();
        let mut hashes = Vec::new();
        for (bi, b) in self.benchmarks.iter().enumerate() {
            if !names.insert(b.name.clone()) {
                return Err(Error::input(format!(
                    "benchmark `{}` is named twice",
                    b.name
                )));
            }
            if b.fields.is_empty() {
                return Err(Error::input(format!(
                    "benchmark `{}`: `fields` is empty",
                    b.name
                )));
            }
            let mut found = Vec::new();
            for pattern in &b.paths {
                let full = ctx.resolve(pattern);
                let matches = glob::glob(&full.to_string_lossy()).map_err(|e| {
                    Error::input(format!("benchmark `{}`: `{pattern}`: {e}", b.name))
                })?;
                let mut these: Vec<PathBuf> = matches
                    .filter_map(|m| m.ok())
                    .filter(|p| p.is_file())
                    .collect();
                if these.is_empty() {
                    return Err(Error::input(format!(
                        "benchmark `{}`: `{pattern}` matches no file (looked for {})",
                        b.name,
                        full.display()
                    )));
                }
                these.sort();
                found.extend(these);
            }
            let (mut n_items, mut n_short) = (0u64, 0u64);
            for path in &found {
                for (id, t) in read_items(path, b)? {
                    word_hashes(&t, &mut simplified, &mut hashes);
                    let n = if hashes.len() >= self.ngram {
                        self.ngram
                    } else if hashes.len() >= self.min_item_words {
                        hashes.len()
                    } else {
                        n_short += 1;
                        continue;
                    };
                    let idx = items.len() as u32;
                    let map = index.entry(n).or_default();
                    let mut distinct = HashSet::new();
                    let need = (self.min_distinct_words * n).div_ceil(self.ngram);
                    window_hashes(&hashes, n, |start, h| {
                        let w = &hashes[start..start + n];
                        let words = w
                            .iter()
                            .enumerate()
                            .filter(|(i, x)| !w[..*i].contains(x))
                            .count();
                        if words >= need && distinct.insert(h) {
                            map.entry(h).or_default().push(idx);
                        }
                    });
                    if distinct.is_empty() {
                        n_short += 1;
                        continue;
                    }
                    items.push(Item {
                        bench: bi,
                        id,
                        ngrams: distinct.len() as u32,
                    });
                    n_items += 1;
                }
            }
            notes.insert(
                format!("benchmark.{}", b.name),
                serde_json::json!({
                    "files": found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "items_indexed": n_items,
                    "items_too_short": n_short,
                }),
            );
            files.extend(found);
        }
        notes.insert(
            "ngrams_indexed".into(),
            index.values().map(HashMap::len).sum::<usize>().into(),
        );
        Ok(Decontaminate {
            config: self.clone(),
            files,
            items,
            index,
            notes,
        })
    }
}

/// One document–item match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub item: u32,
    pub matched: u32,
}

impl Decontaminate {
    /// The items `text` matches (by the `min_fraction` rule), in item order.
    pub fn matches(&self, text: &str, simplified: &mut String, hashes: &mut Vec<u64>) -> Vec<Hit> {
        word_hashes(text, simplified, hashes);
        let mut found: HashMap<u32, HashSet<u64>> = HashMap::new();
        for (&n, map) in &self.index {
            window_hashes(hashes, n, |_, h| {
                if let Some(items) = map.get(&h) {
                    for &i in items {
                        found.entry(i).or_default().insert(h);
                    }
                }
            });
        }
        let mut hits: Vec<Hit> = found
            .into_iter()
            .filter(|(i, grams)| {
                let need = (self.config.min_fraction * self.items[*i as usize].ngrams as f64)
                    .ceil()
                    .max(1.0);
                grams.len() as f64 >= need
            })
            .map(|(item, grams)| Hit {
                item,
                matched: grams.len() as u32,
            })
            .collect();
        hits.sort_by_key(|h| h.item);
        hits
    }

    /// `benchmark:item` of an item.
    pub fn item_name(&self, item: u32) -> String {
        let it = &self.items[item as usize];
        format!("{}:{}", self.config.benchmarks[it.bench].name, it.id)
    }

    fn hits_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("benchmark", DataType::Utf8, false),
            Field::new("item", DataType::Utf8, false),
            Field::new("matched_ngrams", DataType::UInt32, false),
            Field::new("item_ngrams", DataType::UInt32, false),
        ]))
    }
}

impl Stage for Decontaminate {
    fn kind(&self) -> &'static str {
        "decontaminate"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let [input] = inputs else {
            return Err(Error::input(format!(
                "a `decontaminate` stage takes exactly one input, got {}",
                inputs.len()
            )));
        };
        for col in ["id", "text"] {
            if input.schema.field_with_name(col).is_err() {
                return Err(Error::input(format!(
                    "input `{}` has no column `{col}`, which `decontaminate` needs",
                    input.id
                )));
            }
        }
        let mut fields: Vec<Field> = input
            .schema
            .fields()
            .iter()
            .filter(|f| {
                self.config.action == ContaminationAction::Drop
                    || (f.name() != "contaminated" && f.name() != "contamination")
            })
            .map(|f| f.as_ref().clone())
            .collect();
        if self.config.action == ContaminationAction::Flag {
            fields.push(Field::new("contaminated", DataType::Boolean, false));
            fields.push(Field::new("contamination", DataType::Utf8, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn external_fingerprint(&self) -> Result<String> {
        let mut s = String::new();
        for p in &self.files {
            let (len, mtime) = primer_core::file_stamp(p)?;
            s.push_str(&format!(
                "{}|{}|{mtime}\n",
                primer_core::location_name(p),
                len
            ));
        }
        Ok(s)
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts())
    }

    fn side_outputs(&self, _output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        vec![("hits".to_string(), Self::hits_schema())]
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        self.notes.clone()
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let schema = out.schema();
        let path = ctx.inputs[0].part_path(task);
        let mut row = 0usize;
        for batch in ctx.inputs[0].read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            let n = batch.num_rows();
            out.count("rows_in", n as u64);
            let text = cast(
                batch
                    .column_by_name("text")
                    .ok_or_else(|| Error::input("no column `text`"))?,
                &DataType::LargeUtf8,
            )
            .map_err(|e| Error::arrow("text", e))?;
            let text = text.as_string::<i64>();
            let id = cast(
                batch
                    .column_by_name("id")
                    .ok_or_else(|| Error::input("no column `id`"))?,
                &DataType::Utf8,
            )
            .map_err(|e| Error::arrow("id", e))?;
            let id = id.as_string::<i32>();
            for i in 0..n {
                if text.is_null(i) {
                    out.warn(format!(
                        "{}: row {}: `text` is null; not checked",
                        path.display(),
                        row + i
                    ));
                    out.count("null_text", 1);
                }
            }
            let hits: Vec<Vec<Hit>> = (0..n)
                .into_par_iter()
                .map_init(
                    || (String::new(), Vec::new()),
                    |(s, h), i| {
                        if text.is_null(i) {
                            Vec::new()
                        } else {
                            self.matches(text.value(i), s, h)
                        }
                    },
                )
                .collect();
            row += n;
            let mut hid = StringBuilder::new();
            let mut hbench = StringBuilder::new();
            let mut hitem = StringBuilder::new();
            let mut hmatched = UInt32Builder::new();
            let mut hngrams = UInt32Builder::new();
            let mut flag = BooleanBuilder::with_capacity(n);
            let mut what = StringBuilder::new();
            for (i, hs) in hits.iter().enumerate() {
                flag.append_value(!hs.is_empty());
                if hs.is_empty() {
                    what.append_null();
                    continue;
                }
                out.count("contaminated", 1);
                what.append_value(
                    hs.iter()
                        .map(|h| self.item_name(h.item))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                for h in hs {
                    let it = &self.items[h.item as usize];
                    let bench = &self.config.benchmarks[it.bench].name;
                    out.count(&format!("hits.{bench}"), 1);
                    out.count(&format!("leaked.{bench}:{}", it.id), 1);
                    hid.append_value(id.value(i));
                    hbench.append_value(bench);
                    hitem.append_value(&it.id);
                    hmatched.append_value(h.matched);
                    hngrams.append_value(it.ngrams);
                }
            }
            let flag = flag.finish();
            let out_batch = match self.config.action {
                ContaminationAction::Drop => {
                    let keep: BooleanArray =
                        flag.iter().map(|f| Some(!f.unwrap_or(false))).collect();
                    let dropped = n - keep.true_count();
                    if dropped > 0 {
                        out.dropped("contaminated", dropped as u64);
                    }
                    let projected = batch
                        .project(
                            &schema
                                .fields()
                                .iter()
                                .map(|f| batch.schema().index_of(f.name()))
                                .collect::<std::result::Result<Vec<_>, _>>()
                                .map_err(|e| Error::arrow("decontaminate", e))?,
                        )
                        .map_err(|e| Error::arrow("decontaminate", e))?;
                    filter_record_batch(&projected, &keep)
                        .map_err(|e| Error::arrow("decontaminate", e))?
                }
                ContaminationAction::Flag => {
                    let mut cols: Vec<ArrayRef> = Vec::new();
                    let mut flag = Some(Arc::new(flag) as ArrayRef);
                    let mut what = Some(Arc::new(what.finish()) as ArrayRef);
                    for f in schema.fields() {
                        cols.push(match f.name().as_str() {
                            "contaminated" => flag.take().expect("once"),
                            "contamination" => what.take().expect("once"),
                            name => batch
                                .column_by_name(name)
                                .ok_or_else(|| Error::input(format!("no column `{name}`")))?
                                .clone(),
                        });
                    }
                    RecordBatch::try_new(schema.clone(), cols)
                        .map_err(|e| Error::arrow("decontaminate", e))?
                }
            };
            out.write(&out_batch)?;
            let side = RecordBatch::try_new(
                Self::hits_schema(),
                vec![
                    Arc::new(hid.finish()),
                    Arc::new(hbench.finish()),
                    Arc::new(hitem.finish()),
                    Arc::new(hmatched.finish()),
                    Arc::new(hngrams.finish()),
                ],
            )
            .map_err(|e| Error::arrow("hits", e))?;
            if side.num_rows() > 0 {
                out.write_side("hits", &side)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::path::Path;

    use primer_core::testing::run_stage_with;
    use primer_core::{BuildContext, Dataset};
    use serde_json::json;

    use super::*;
    use crate::testutil::{column, corpus, dataset};
    use primer_testdata::{demo_data, demo_data_dir, shared_file_or_skip};

    /// HumanEval's (task_id, prompt, canonical_solution), from the repository's copy.
    fn humaneval() -> Vec<(String, String, String)> {
        let path = demo_data("HumanEval.jsonl.gz");
        let r = std::io::BufReader::new(flate2::read::GzDecoder::new(
            std::fs::File::open(path).unwrap(),
        ));
        r.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
                (
                    v["task_id"].as_str().unwrap().to_string(),
                    v["prompt"].as_str().unwrap().to_string(),
                    v["canonical_solution"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The stage against HumanEval (the repository's copy) with `extra` settings.
    fn stage(extra: serde_json::Value) -> Decontaminate {
        let benchmarks = json!([
            { "name": "humaneval", "paths": ["HumanEval.jsonl.gz"],
              "fields": ["prompt", "canonical_solution"], "id_field": "task_id" },
        ]);
        stage_over(&demo_data_dir(), benchmarks, extra)
    }

    /// The stage against HumanEval, GSM8K and MMLU from the shared data directory `base`.
    fn stage_all(base: &Path, extra: serde_json::Value) -> Decontaminate {
        let benchmarks = json!([
            { "name": "humaneval", "paths": ["benchmarks/HumanEval.jsonl.gz"],
              "fields": ["prompt", "canonical_solution"], "id_field": "task_id" },
            { "name": "gsm8k", "paths": ["benchmarks/gsm8k/test.jsonl"],
              "fields": ["question", "answer"] },
            { "name": "mmlu", "paths": ["benchmarks/mmlu/test/*.csv"],
              "fields": ["question", "choice0", "choice1", "choice2", "choice3"] },
        ]);
        stage_over(base, benchmarks, extra)
    }

    fn stage_over(
        base: &Path,
        benchmarks: serde_json::Value,
        extra: serde_json::Value,
    ) -> Decontaminate {
        let mut cfg = json!({ "benchmarks": benchmarks });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let ctx = BuildContext {
            stage_id: "decon",
            base_dir: base,
        };
        serde_json::from_value::<DecontaminateConfig>(cfg)
            .unwrap()
            .build(&ctx)
            .unwrap()
    }

    /// Leaked HumanEval items pasted into real documentation pages, whole, in part and with
    /// whitespace reformatted, are all caught and attributed to their item; the clean pages
    /// are not flagged.
    #[test]
    fn planted_humaneval_leaks_are_caught_and_clean_pages_pass() {
        let Some(benchmarks) = shared_file_or_skip("benchmarks") else {
            return;
        };
        let base = benchmarks.parent().unwrap().to_path_buf();
        let Some(pages) = corpus("docs-pages-extracted.jsonl.zst") else {
            return;
        };
        let clean: Vec<(String, String)> = pages.into_iter().step_by(10).take(400).collect();
        let mut docs = clean.clone();
        let mut expected = Vec::new();
        for (k, (task, prompt, solution)) in humaneval().into_iter().enumerate() {
            let host = &clean[k % clean.len()].1;
            let cut = host.len() / 2;
            let cut = (0..=cut).rev().find(|&i| host.is_char_boundary(i)).unwrap();
            let whole = format!("{}\n{prompt}{solution}\n{}", &host[..cut], &host[cut..]);
            // Part of the prompt: its first lines, at least 20 words.
            let mut part = String::new();
            for line in prompt.lines() {
                part.push_str(line);
                part.push('\n');
                if part.split_whitespace().count() >= 20 {
                    break;
                }
            }
            let partial = format!("Notes from class.\n{part}\nThat is all.");
            let reformatted = format!(
                "Exercise:\r\n{}",
                format!("{prompt}{solution}")
                    .replace("    ", "\t")
                    .replace('\n', " \r\n  ")
                    .replace(", ", " ,  ")
            );
            for (kind, text) in [
                ("whole", whole),
                ("partial", partial),
                ("reformatted", reformatted),
            ] {
                docs.push((format!("leak-{kind}-{k}"), text));
                expected.push((format!("leak-{kind}-{k}"), task.clone()));
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let input = dataset(&tmp.path().join("in"), &docs, 3);
        let st = stage_all(&base, json!({ "action": "flag" }));
        let out = run_stage_with(
            &st,
            std::slice::from_ref(&input),
            &tmp.path().join("o"),
            500,
            2,
        )
        .unwrap();
        let ids = column(&out, "id");
        let flags = column(&out, "contaminated");
        let flagged: Vec<&String> = ids
            .iter()
            .zip(&flags)
            .filter(|(_, f)| f.as_deref() == Some("true"))
            .map(|(i, _)| i.as_ref().unwrap())
            .collect();
        let clean_flagged: Vec<_> = flagged.iter().filter(|i| !i.starts_with("leak-")).collect();
        let what = column(&out, "contamination");
        let why: Vec<_> = ids
            .iter()
            .zip(&what)
            .filter(|(i, w)| w.is_some() && !i.as_ref().unwrap().starts_with("leak-"))
            .collect();
        assert!(clean_flagged.is_empty(), "clean pages flagged: {why:?}");
        assert_eq!(flagged.len(), expected.len(), "every leak is caught");
        let hits = Dataset::open(out.dir().join("side/hits")).unwrap();
        let hit_pairs: HashSet<(String, String)> = column(&hits, "id")
            .into_iter()
            .zip(column(&hits, "item"))
            .map(|(a, b)| (a.unwrap(), b.unwrap()))
            .collect();
        for (doc, task) in &expected {
            assert!(
                hit_pairs.contains(&(doc.clone(), task.clone())),
                "{doc} should match {task}"
            );
        }
        let humaneval_hits = column(&hits, "benchmark")
            .iter()
            .filter(|b| b.as_deref() == Some("humaneval"))
            .count();
        assert_eq!(
            out.manifest().counters.get("hits.humaneval") as usize,
            humaneval_hits
        );
        // HumanEval/0 leaked into three documents; two other items' leaks share one of its
        // 13-grams (`from typing import List` and docstring boilerplate), so five match it.
        assert_eq!(
            out.manifest()
                .counters
                .get(&format!("leaked.humaneval:{}", expected[0].1)),
            5
        );
        assert_eq!(
            out.manifest().notes["benchmark.humaneval"]["items_indexed"],
            164
        );
        // Dropping instead: the leaks go, the clean pages stay.
        let dropped = run_stage_with(
            &stage_all(&base, json!({})),
            std::slice::from_ref(&input),
            &tmp.path().join("d"),
            500,
            2,
        )
        .unwrap();
        assert_eq!(dropped.rows() as usize, clean.len());
        assert_eq!(
            dropped.manifest().counters.get("dropped.contaminated") as usize,
            expected.len()
        );
    }

    #[test]
    fn a_fraction_threshold_ignores_small_overlaps() {
        let (_, prompt, solution) = humaneval().remove(0);
        let item = format!("{prompt}{solution}");
        let st = stage(json!({ "min_fraction": 0.5 }));
        let (mut s, mut h) = (String::new(), Vec::new());
        assert_eq!(st.matches(&item, &mut s, &mut h).len(), 1);
        let words: Vec<&str> = item.split_whitespace().collect();
        let quarter = words[..words.len() / 4].join(" ");
        assert!(st.matches(&quarter, &mut s, &mut h).is_empty());
        let any = stage(json!({}));
        assert_eq!(any.matches(&quarter, &mut s, &mut h).len(), 1);
    }

    #[test]
    fn a_missing_field_names_the_file_and_line() {
        let base = demo_data_dir();
        let ctx = BuildContext {
            stage_id: "d",
            base_dir: &base,
        };
        let err = serde_json::from_value::<DecontaminateConfig>(json!({
            "benchmarks": [{ "name": "h", "paths": ["HumanEval.jsonl.gz"], "fields": ["promt"] }]
        }))
        .unwrap()
        .build(&ctx)
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.ends_with("HumanEval.jsonl.gz:1: no field `promt` (benchmark `h`)"),
            "{err}"
        );
        let err = serde_json::from_value::<DecontaminateConfig>(json!({
            "benchmarks": [{ "name": "h", "paths": ["nope/*.csv"], "fields": ["q"] }]
        }))
        .unwrap()
        .build(&ctx)
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("`nope/*.csv` matches no file"), "{err}");
    }
}
