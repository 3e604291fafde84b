//! Reading and replacing the `text` column, whether it is `Utf8` or `LargeUtf8`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, LargeStringArray, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{Error, InputSchema, Result};

/// The output schema of a stage that reads `text` (and keeps every column): the input's,
/// after checking it has one input with a string `text` column.
pub(crate) fn require_text(inputs: &[InputSchema], kind: &str) -> Result<SchemaRef> {
    let [input] = inputs else {
        return Err(Error::input(format!(
            "a `{kind}` stage reads exactly one input, not {}",
            inputs.len()
        )));
    };
    match input.schema.field_with_name("text") {
        Ok(f) if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) => {
            Ok(input.schema.clone())
        }
        Ok(f) => Err(Error::input(format!(
            "input `{}`: column `text` is {}, not a string",
            input.id,
            f.data_type()
        ))),
        Err(_) => Err(Error::input(format!(
            "input `{}` has no column `text` (a `{kind}` stage needs document text)",
            input.id
        ))),
    }
}

/// The `text` column of a batch.
pub(crate) enum TextColumn {
    Small(StringArray),
    Large(LargeStringArray),
}

pub(crate) fn text_column(batch: &RecordBatch) -> Result<TextColumn> {
    let col = batch
        .column_by_name("text")
        .ok_or_else(|| Error::input("the batch has no column `text`"))?;
    if let Some(a) = col.as_any().downcast_ref::<LargeStringArray>() {
        return Ok(TextColumn::Large(a.clone()));
    }
    if let Some(a) = col.as_any().downcast_ref::<StringArray>() {
        return Ok(TextColumn::Small(a.clone()));
    }
    Err(Error::input(format!(
        "column `text` is {}, not a string",
        col.data_type()
    )))
}

impl TextColumn {
    /// Row `i`, or `None` when null.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            TextColumn::Small(a) => (!a.is_null(i)).then(|| a.value(i)),
            TextColumn::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }

    /// The column with rows replaced where `new[i]` is `Some`.
    pub(crate) fn replaced(&self, new: &[Option<String>]) -> ArrayRef {
        let vals = new
            .iter()
            .enumerate()
            .map(|(i, n)| n.as_deref().or_else(|| self.get(i)));
        match self {
            TextColumn::Small(_) => Arc::new(vals.collect::<StringArray>()),
            TextColumn::Large(_) => Arc::new(vals.collect::<LargeStringArray>()),
        }
    }
}

/// Test helper: a document dataset (`id`, `text`, `source`, `url`) of the given texts, one
/// part per slice.
#[cfg(test)]
pub(crate) fn test_dataset(dir: &std::path::Path, parts: &[&[&str]]) -> primer_core::Dataset {
    use primer_core::{StageDir, StageInfo, WriteOptions, documents_schema};
    let schema = documents_schema();
    let sd = StageDir::open(dir, "fp", schema.clone(), WriteOptions::default()).unwrap();
    let mut n = 0;
    for (p, texts) in parts.iter().enumerate() {
        let mut out = sd.task_output(p).unwrap();
        let ids: Vec<String> = texts
            .iter()
            .map(|_| {
                n += 1;
                format!("d{n}")
            })
            .collect();
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(LargeStringArray::from(texts.to_vec())),
                Arc::new(StringArray::from(vec!["test"; texts.len()])),
                Arc::new(StringArray::from(vec![None::<&str>; texts.len()])),
            ],
        )
        .unwrap();
        out.write(&b).unwrap();
        sd.complete(out).unwrap();
    }
    let info = StageInfo {
        id: "docs".into(),
        kind: "test".into(),
    };
    sd.finalize(
        info,
        Default::default(),
        parts.len(),
        0,
        0.0,
        Default::default(),
    )
    .unwrap();
    primer_core::Dataset::open(dir).unwrap()
}
