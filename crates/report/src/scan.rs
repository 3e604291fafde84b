//! One pass over a dataset for the report: text size, the distributions of its numeric
//! columns, the mix of its categorical columns, the largest duplicate clusters and a few
//! rows. A dataset larger than the sample reads whole row groups spread evenly over its
//! parts, and its totals are scaled from them (the page says so).
//!
//! Memory: 8 bytes per sampled row for each numeric column and for the word count (at most
//! `sample_rows` rows), a count per distinct categorical value (capped), ten cluster rows
//! and the few sample rows: about 5 MB for 100,000 rows and six numeric columns, whatever
//! the dataset's size.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use primer_core::{Dataset, Error, Result};

/// Columns shown as a mix (value → count) rather than a histogram.
pub const CATEGORICAL: &[&str] = &[
    "lang",
    "source",
    "status",
    "content_type",
    "html_lang",
    "record_type",
    "benchmark",
    "filter",
    "reason",
];

/// Distinct values kept per categorical column; the rest are counted as "other".
const MAX_DISTINCT: usize = 10_000;
/// Bars shown per mix.
const TOP_VALUES: usize = 12;

/// How much to read.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Read at most about this many rows (whole row groups); larger datasets are sampled.
    pub sample_rows: u64,
    /// Rows shown as samples.
    pub sample_docs: usize,
    /// Characters of text shown per sample row.
    pub sample_chars: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            sample_rows: 100_000,
            sample_docs: 3,
            sample_chars: 400,
        }
    }
}

/// A distribution: the sampled values binned, and their summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub column: String,
    /// Bin edges (`counts.len() + 1` of them); on a log scale when `log` is set.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub log: bool,
    pub n: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// Rows whose value was null (not in the bins).
    pub nulls: u64,
}

/// A categorical column's values by count, largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub column: String,
    pub top: Vec<(String, u64)>,
    /// Rows with any other value.
    pub other: u64,
}

/// One row shown on the page: column → value (text cut to length).
pub type SampleRow = Vec<(String, String)>;

/// What one pass over a dataset found.
#[derive(Debug, Clone, Default)]
pub struct DatasetStats {
    /// Rows in the dataset (its manifest).
    pub rows: u64,
    /// Rows read (all of them unless sampled).
    pub scanned: u64,
    /// Bytes of the `text` column and whitespace-separated words in it; scaled to the
    /// whole dataset when sampled. `None` when there is no text column.
    pub text_bytes: Option<f64>,
    pub words: Option<f64>,
    pub histograms: Vec<Histogram>,
    pub mixes: Vec<Mix>,
    /// The largest duplicate clusters: (cluster-size column, size, id, text start).
    pub clusters: Vec<(String, u64, String, String)>,
    pub samples: Vec<SampleRow>,
}

impl DatasetStats {
    pub fn sampled(&self) -> bool {
        self.scanned < self.rows
    }
}

/// Whether a numeric column is a measure worth a histogram (not an id or a time).
pub fn is_measure(name: &str, dt: &DataType) -> bool {
    dt.is_numeric()
        && !CATEGORICAL.contains(&name)
        && name != "id"
        && !name.ends_with("_id")
        && !name.ends_with("_cluster")
        && !name.ends_with("_time")
        && !name.ends_with("_unix")
}

/// Scan the dataset in `dir`. `measures` are the numeric columns to histogram (the report
/// asks for those the stage added).
pub fn scan(dir: &Path, measures: &[String], opts: &ScanOptions) -> Result<DatasetStats> {
    let ds = Dataset::open(dir)?;
    let schema = ds.schema();
    let has = |n: &str| {
        schema
            .field_with_name(n)
            .ok()
            .map(|f| f.data_type().clone())
    };
    let is_str = |dt: &DataType| {
        matches!(
            dt,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    };
    let text_col = has("text").filter(is_str).map(|_| "text".to_string());
    let id_col = has("id").map(|_| "id".to_string());
    let cats: Vec<String> = CATEGORICAL
        .iter()
        .filter(|c| has(c).is_some())
        .map(|c| c.to_string())
        .collect();
    let measures: Vec<String> = measures
        .iter()
        .filter(|m| has(m).is_some_and(|dt| is_measure(m, &dt)))
        .cloned()
        .collect();
    // Cluster-size columns: `<x>_cluster_size` next to `<x>_cluster`.
    let cluster_sizes: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n.ends_with("_cluster_size") && has(n).is_some_and(|d| d.is_integer()))
        .collect();
    // Short columns shown in sample rows beside id and text.
    let shown: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| {
            let n = f.name().as_str();
            n != "text" && n != "id" && (f.data_type().is_numeric() || is_str(f.data_type()))
        })
        .map(|f| f.name().clone())
        .take(6)
        .collect();

    let mut wanted: Vec<String> = Vec::new();
    for c in text_col
        .iter()
        .chain(id_col.iter())
        .chain(&cats)
        .chain(&measures)
        .chain(&cluster_sizes)
        .chain(&shown)
    {
        if !wanted.contains(c) {
            wanted.push(c.clone());
        }
    }

    // Row groups of every part, then an even choice among them when there are too many rows.
    // Each part's footer is read once and kept for the reading pass.
    let mut parts: Vec<(PathBuf, ArrowReaderMetadata)> = Vec::new();
    let mut groups: Vec<(usize, usize, u64)> = Vec::new();
    for path in ds.part_paths() {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let meta = ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|e| Error::parquet(&path, e))?;
        for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
            groups.push((parts.len(), i, rg.num_rows().max(0) as u64));
        }
        parts.push((path, meta));
    }
    let total: u64 = groups.iter().map(|g| g.2).sum();
    let chosen: Vec<usize> = if total <= opts.sample_rows || groups.len() <= 1 {
        (0..groups.len()).collect()
    } else {
        let want = ((groups.len() as u64 * opts.sample_rows).div_ceil(total)).max(1) as usize;
        let mut v: Vec<usize> = (0..want).map(|k| k * groups.len() / want).collect();
        v.dedup();
        v
    };

    let mut acc = Accumulator::new(&measures, &cats, &cluster_sizes);
    let mut by_part: Vec<(usize, Vec<usize>)> = Vec::new();
    for &g in &chosen {
        let (part, rg, _) = groups[g];
        match by_part.last_mut() {
            Some((p, v)) if *p == part => v.push(rg),
            _ => by_part.push((part, vec![rg])),
        }
    }
    for (part, rgs) in by_part {
        let (path, meta) = &parts[part];
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
        let mask = ProjectionMask::columns(b.parquet_schema(), wanted.iter().map(|s| s.as_str()));
        let reader = b
            .with_projection(mask)
            .with_row_groups(rgs)
            .with_batch_size(8192)
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::arrow(path.display().to_string(), e))?;
            acc.add(&batch, text_col.as_deref(), &shown, opts);
        }
    }
    Ok(acc.finish(ds.rows(), text_col.is_some()))
}

struct Accumulator {
    scanned: u64,
    text_bytes: u64,
    words: Vec<f64>,
    measures: Vec<(String, Vec<f64>, u64)>,
    cats: Vec<(String, HashMap<String, u64>, u64)>,
    clusters: Vec<(String, u64, String, String)>,
    cluster_cols: Vec<String>,
    samples: Vec<SampleRow>,
}

impl Accumulator {
    fn new(measures: &[String], cats: &[String], cluster_cols: &[String]) -> Accumulator {
        Accumulator {
            scanned: 0,
            text_bytes: 0,
            words: Vec::new(),
            measures: measures
                .iter()
                .map(|m| (m.clone(), Vec::new(), 0))
                .collect(),
            cats: cats
                .iter()
                .map(|c| (c.clone(), HashMap::new(), 0))
                .collect(),
            clusters: Vec::new(),
            cluster_cols: cluster_cols.to_vec(),
            samples: Vec::new(),
        }
    }

    fn add(&mut self, b: &RecordBatch, text: Option<&str>, shown: &[String], opts: &ScanOptions) {
        let n = b.num_rows();
        self.scanned += n as u64;
        let text_col = text.and_then(|t| b.column_by_name(t));
        if let Some(col) = text_col {
            for i in 0..n {
                if let Some(s) = str_at(col, i) {
                    self.text_bytes += s.len() as u64;
                    self.words.push(s.split_whitespace().count() as f64);
                }
            }
        }
        for (name, values, nulls) in &mut self.measures {
            let Some(col) = b.column_by_name(name) else {
                continue;
            };
            let Ok(f) = arrow::compute::cast(col, &DataType::Float64) else {
                continue;
            };
            let f = f.as_primitive::<Float64Type>();
            for i in 0..n {
                if f.is_null(i) || f.value(i).is_nan() {
                    *nulls += 1;
                } else {
                    values.push(f.value(i));
                }
            }
        }
        for (name, counts, other) in &mut self.cats {
            let Some(col) = b.column_by_name(name) else {
                continue;
            };
            for i in 0..n {
                let v = value_text(col, i);
                if let Some(c) = counts.get_mut(&v) {
                    *c += 1;
                } else if counts.len() < MAX_DISTINCT {
                    counts.insert(v, 1);
                } else {
                    *other += 1;
                }
            }
        }
        let id_col = b.column_by_name("id");
        for name in &self.cluster_cols {
            let Some(col) = b.column_by_name(name) else {
                continue;
            };
            let Ok(f) = arrow::compute::cast(col, &DataType::UInt64) else {
                continue;
            };
            let f = f.as_primitive::<arrow::datatypes::UInt64Type>();
            for i in 0..n {
                if f.is_null(i) || f.value(i) < 2 {
                    continue;
                }
                let size = f.value(i);
                let smallest = self.clusters.iter().map(|c| c.1).min().unwrap_or(0);
                if self.clusters.len() < 10 || size > smallest {
                    let id = id_col.map(|c| value_text(c, i)).unwrap_or_default();
                    let t = text_col
                        .and_then(|c| str_at(c, i))
                        .map(|s| cut(s, 160))
                        .unwrap_or_default();
                    self.clusters.push((name.clone(), size, id, t));
                    self.clusters
                        .sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
                    self.clusters.truncate(10);
                }
            }
        }
        for i in 0..n {
            if self.samples.len() >= opts.sample_docs {
                break;
            }
            let mut row: SampleRow = Vec::new();
            if let Some(c) = id_col {
                row.push(("id".into(), value_text(c, i)));
            }
            for s in shown {
                if let Some(c) = b.column_by_name(s) {
                    row.push((s.clone(), cut(&value_text(c, i), 120)));
                }
            }
            if let Some(c) = text_col {
                row.push((
                    "text".into(),
                    cut(str_at(c, i).unwrap_or_default(), opts.sample_chars),
                ));
            }
            self.samples.push(row);
        }
    }

    fn finish(self, rows: u64, has_text: bool) -> DatasetStats {
        let scale = if self.scanned == 0 {
            0.0
        } else {
            rows as f64 / self.scanned as f64
        };
        let words_total: f64 = self.words.iter().sum();
        let mut histograms = Vec::new();
        if has_text {
            histograms.extend(histogram("text length (words)", self.words, 0));
        }
        for (name, values, nulls) in self.measures {
            histograms.extend(histogram(&name, values, nulls));
        }
        let mixes = self
            .cats
            .into_iter()
            .map(|(column, counts, mut other)| {
                let mut v: Vec<(String, u64)> = counts.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                other += v.iter().skip(TOP_VALUES).map(|x| x.1).sum::<u64>();
                v.truncate(TOP_VALUES);
                Mix {
                    column,
                    top: v,
                    other,
                }
            })
            .collect();
        DatasetStats {
            rows,
            scanned: self.scanned,
            text_bytes: has_text.then_some(self.text_bytes as f64 * scale),
            words: has_text.then_some(words_total * scale),
            histograms,
            mixes,
            clusters: self.clusters,
            samples: self.samples,
        }
    }
}

/// Rows of a side dataset (dropped documents, removed duplicates, hits) to show: up to
/// `per_reason` for each distinct `filter`/`reason` (or `benchmark`) among its first rows,
/// at most `max` in all, text cut to `opts.sample_chars`. Returns the dataset's rows too.
pub fn side_samples(
    dir: &Path,
    per_reason: usize,
    max: usize,
    opts: &ScanOptions,
) -> Result<(u64, Vec<SampleRow>)> {
    let ds = Dataset::open(dir)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<SampleRow> = Vec::new();
    let mut read = 0usize;
    for batch in ds.batches(2048) {
        let b = batch?;
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let key: String = ["filter", "reason", "benchmark"]
                .iter()
                .filter_map(|c| b.column_by_name(c).map(|col| value_text(col, i)))
                .collect::<Vec<_>>()
                .join("/");
            let n = seen.entry(key).or_insert(0);
            if *n >= per_reason {
                continue;
            }
            *n += 1;
            let mut row: SampleRow = Vec::new();
            for (f, col) in schema.fields().iter().zip(b.columns()) {
                let limit = if f.name() == "text" {
                    opts.sample_chars
                } else {
                    120
                };
                row.push((f.name().clone(), cut(&value_text(col, i), limit)));
            }
            // Text last, so the short columns line up.
            row.sort_by_key(|(k, _)| k == "text");
            out.push(row);
            if out.len() >= max {
                return Ok((ds.rows(), out));
            }
        }
        read += b.num_rows();
        if read >= 20_000 {
            break;
        }
    }
    Ok((ds.rows(), out))
}

/// Bin `values` into at most 30 bins: log-scaled when they are non-negative and span more
/// than two decades (lengths, counts), linear otherwise.
pub fn histogram(column: &str, mut values: Vec<f64>, nulls: u64) -> Option<Histogram> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let min = values[0];
    let max = values[n - 1];
    let mean = values.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let integral = values.iter().all(|v| v.fract() == 0.0);
    let log = min >= 0.0 && max >= 100.0 * min.max(1.0);
    let bins = if integral && !log {
        ((max - min) as usize + 1).clamp(1, 30)
    } else {
        30
    };
    let edges: Vec<f64> = if log {
        let (lo, hi) = (min.max(1.0).ln(), (max + 1.0).ln());
        (0..=bins)
            .map(|k| {
                if k == 0 {
                    min
                } else {
                    (lo + (hi - lo) * k as f64 / bins as f64).exp()
                }
            })
            .collect()
    } else if integral {
        let width = ((max - min + 1.0) / bins as f64).ceil().max(1.0);
        (0..=bins).map(|k| min + width * k as f64).collect()
    } else if max > min {
        (0..=bins)
            .map(|k| min + (max - min) * k as f64 / bins as f64)
            .collect()
    } else {
        vec![min, min + 1.0]
    };
    let bins = edges.len() - 1;
    let mut counts = vec![0u64; bins];
    for v in &values {
        // The bin whose [lo, hi) holds v; the last bin is closed.
        let b = edges[1..].partition_point(|e| *e <= *v).min(bins - 1);
        counts[b] += 1;
    }
    Some(Histogram {
        column: column.to_string(),
        edges,
        counts,
        log,
        n: n as u64,
        min,
        max,
        mean,
        median,
        nulls,
    })
}

/// A string cell, for the string types primer writes.
fn str_at(col: &ArrayRef, i: usize) -> Option<&str> {
    if col.is_null(i) {
        return None;
    }
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(col.as_string_view().value(i)),
        _ => None,
    }
}

/// Any cell as text (null as the empty string).
fn value_text(col: &ArrayRef, i: usize) -> String {
    if let Some(s) = str_at(col, i) {
        return s.to_string();
    }
    if col.is_null(i) {
        return String::new();
    }
    arrow::util::display::ArrayFormatter::try_new(col.as_ref(), &Default::default())
        .map(|f| f.value(i).to_string())
        .unwrap_or_default()
}

/// The first `max` characters of `s`, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_every_value_once() {
        let h = histogram("x", (0..1000).map(|v| v as f64 / 999.0).collect(), 2).unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), 1000);
        assert_eq!(h.counts.len(), 30);
        assert!(!h.log);
        assert_eq!((h.min, h.max, h.nulls), (0.0, 1.0, 2));
        assert!((h.median - 0.5).abs() < 1e-9);
    }

    #[test]
    fn wide_counts_are_log_binned_and_small_integers_get_a_bin_each() {
        let h = histogram("w", (1..=100_000).map(f64::from).collect(), 0).unwrap();
        assert!(h.log);
        assert_eq!(h.counts.iter().sum::<u64>(), 100_000);
        // On a log scale the bins hold more and more values.
        assert!(h.counts[29] > h.counts[5]);
        let h = histogram("s", vec![2.0, 2.0, 3.0, 5.0], 0).unwrap();
        assert_eq!(h.counts, vec![2, 1, 0, 1]);
        assert_eq!(h.edges, vec![2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn cut_counts_characters_not_bytes() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("hé", 2), "hé");
    }
}
