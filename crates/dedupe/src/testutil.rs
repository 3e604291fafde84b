//! Helpers for this crate's tests: document datasets from strings or from the shared
//! corpora.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, RecordBatch, StringArray};
use primer_core::{
    Dataset, Provenance, StageDir, StageInfo, WriteOptions, documents_schema, testing::read_all,
};

/// A document dataset at `dir` holding `docs` (id, text), split into `parts` parts of
/// consecutive documents.
pub fn dataset(dir: &Path, docs: &[(String, String)], parts: usize) -> Dataset {
    let sd = StageDir::open(dir, "docs", documents_schema(), WriteOptions::default()).unwrap();
    let per = docs.len().div_ceil(parts.max(1)).max(1);
    let mut n = 0;
    for (t, chunk) in docs.chunks(per).enumerate() {
        let mut out = sd.task_output(t).unwrap();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|d| d.0.as_str()),
            )),
            Arc::new(LargeStringArray::from_iter_values(
                chunk.iter().map(|d| d.1.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|_| "test"))),
            Arc::new(StringArray::from(vec![None::<&str>; chunk.len()])),
        ];
        out.write(&RecordBatch::try_new(documents_schema(), cols).unwrap())
            .unwrap();
        sd.complete(out).unwrap();
        n += 1;
    }
    let info = StageInfo {
        id: "docs".into(),
        kind: "test".into(),
    };
    sd.finalize(info, Provenance::default(), n, 0, 0.0, Default::default())
        .unwrap();
    Dataset::open(dir).unwrap()
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
