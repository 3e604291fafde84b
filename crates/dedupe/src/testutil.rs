//! Helpers for this crate's tests: document datasets from strings or from the shared
//! corpora.

use std::io::BufRead;
use std::path::Path;

use arrow::array::StringArray;
use primer_core::Dataset;
use primer_core::testing::{documents_dataset, read_all};

/// A document dataset at `dir` holding `docs` (id, text; source `test`), split into
/// `parts` parts of consecutive documents.
pub fn dataset(dir: &Path, docs: &[(String, String)], parts: usize) -> Dataset {
    let rows: Vec<(&str, &str, &str)> = docs
        .iter()
        .map(|(id, text)| (id.as_str(), text.as_str(), "test"))
        .collect();
    documents_dataset(dir, &rows, parts)
}

/// Every (id, text) of a JSONL.zst corpus in the shared data's `corpora/`, or `None`
/// (after saying the test is skipped) when the shared data is not there.
pub fn corpus(name: &str) -> Option<Vec<(String, String)>> {
    let path = primer_testdata::shared_file_or_skip(&format!("corpora/{name}"))?;
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = std::io::BufReader::new(zstd::Decoder::new(f).unwrap());
    let mut docs = Vec::new();
    for line in r.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        docs.push((
            v["id"].as_str().unwrap().to_string(),
            v["text"].as_str().unwrap().to_string(),
        ));
    }
    Some(docs)
}

/// A column of a dataset as strings (nulls as `None`).
pub fn column(ds: &Dataset, name: &str) -> Vec<Option<String>> {
    let b = read_all(ds).unwrap();
    let c = arrow::compute::cast(
        b.column_by_name(name).unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let c = c.as_any().downcast_ref::<StringArray>().unwrap();
    c.iter().map(|v| v.map(String::from)).collect()
}
