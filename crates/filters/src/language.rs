//! The `language` stage: fastText language identification (lid.176) through fastText's own
//! C++ code (the `fasttext` crate's bindings), as datatrove's `LanguageFilter` does it:
//! newlines become spaces, every label is scored, the best one is recorded in `lang` and
//! `lang_score`, and a document is kept when one of the wanted languages scores above
//! `min_score` (or, with no languages listed, when the best one does).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::text::{require_text, text_column};

/// fastText's file-format magic number (`FASTTEXT_FILEFORMAT_MAGIC_INT32`).
const FASTTEXT_MAGIC: i32 = 793_712_314;
/// The newest file-format version fastText 0.9 reads (`FASTTEXT_VERSION`).
const FASTTEXT_VERSION: i32 = 12;

/// Settings of the `language` stage: fastText language identification (lid.176), as
/// datatrove's `LanguageFilter`. Adds the columns `lang` (the best label) and `lang_score`
/// (its probability); counts `lang.<code>` per document and `dropped.language`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// Path of a fastText language-identification model (`lid.176.bin` or `lid.176.ftz`),
    /// relative to the pipeline file. Required.
    pub model: String,
    /// Language codes to keep (`en`, `de`, …, as the model's labels without `__label__`).
    /// Default `[]`: any language.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Keep a document when a wanted language scores above this. Default 0.65 (datatrove's).
    #[serde(default = "d_min_score")]
    pub min_score: f64,
    /// Only label documents (`lang`, `lang_score`), drop none. Default false.
    #[serde(default)]
    pub label_only: bool,
    /// Also write dropped documents, with their `lang` and `lang_score`, to the side
    /// dataset `side/dropped/`. Default false.
    #[serde(default)]
    pub keep_dropped: bool,
}

fn d_min_score() -> f64 {
    0.65
}

/// Check that `path` is a fastText model file: it exists and starts with fastText's magic
/// number and a version fastText can read. fastText's C++ loader may abort the process on
/// other files, so this runs first.
pub fn check_fasttext_header(path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::input(format!(
            "language.model: cannot open {}: {e} (download lid.176.ftz or lid.176.bin from fastText)",
            path.display()
        ))
    })?;
    let mut head = [0u8; 8];
    if f.read_exact(&mut head).is_err() {
        return Err(Error::input(format!(
            "language.model: {} is too short to be a fastText model",
            path.display()
        )));
    }
    let magic = i32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    let version = i32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if magic != FASTTEXT_MAGIC {
        return Err(Error::input(format!(
            "language.model: {} is not a fastText model (its first bytes are not fastText's magic number {FASTTEXT_MAGIC})",
            path.display()
        )));
    }
    if !(1..=FASTTEXT_VERSION).contains(&version) {
        return Err(Error::input(format!(
            "language.model: {} is fastText format version {version}; this fastText reads versions up to {FASTTEXT_VERSION}",
            path.display()
        )));
    }
    Ok(())
}

impl LanguageConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<LanguageStage> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(Error::input(format!(
                "language.min_score = {}: must be between 0 and 1",
                self.min_score
            )));
        }
        let path = ctx.resolve(&self.model);
        let model = load_model(&path)?;
        Ok(LanguageStage {
            config: self.clone(),
            path,
            model: Arc::new(model),
        })
    }
}

fn load_model(path: &std::path::Path) -> Result<fasttext::FastText> {
    check_fasttext_header(path)?;
    let mut ft = fasttext::FastText::new();
    let p = path
        .to_str()
        .ok_or_else(|| Error::input(format!("language.model: {} is not UTF-8", path.display())))?;
    ft.load_model(p).map_err(|e| {
        Error::input(format!(
            "language.model: fastText could not load {}: {e}",
            path.display()
        ))
    })?;
    Ok(ft)
}

/// The runtime `language` stage.
pub struct LanguageStage {
    config: LanguageConfig,
    path: PathBuf,
    model: Arc<fasttext::FastText>,
}

impl LanguageStage {
    /// The best label (without `__label__`) and its score, and whether the document is kept.
    pub fn predict(&self, text: &str) -> (String, f64, bool) {
        let mut line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
            .collect();
        // Python's fastText appends the newline that ends the line (fastText's EOS token).
        line.push('\n');
        let preds = self.model.predict(&line, -1, 0.0).unwrap_or_default();
        let mut best = (String::new(), 0.0f64);
        let mut wanted = false;
        for p in &preds {
            let label = p.label.strip_prefix("__label__").unwrap_or(&p.label);
            let score = p.prob as f64;
            if score > best.1 || best.0.is_empty() {
                best = (label.to_string(), score);
            }
            if self.config.languages.iter().any(|l| l == label) && score > self.config.min_score {
                wanted = true;
            }
        }
        let keep = self.config.label_only
            || if self.config.languages.is_empty() {
                best.1 > self.config.min_score
            } else {
                wanted
            };
        (best.0, best.1, keep)
    }
}

fn with_lang(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("lang", DataType::Utf8, false));
    fields.push(Field::new("lang_score", DataType::Float64, false));
    Arc::new(Schema::new(fields))
}

impl Stage for LanguageStage {
    fn kind(&self) -> &'static str {
        "language"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let s = require_text(inputs, "language")?;
        for c in ["lang", "lang_score"] {
            if s.field_with_name(c).is_ok() {
                return Err(Error::input(format!(
                    "input `{}` already has a column `{c}`; drop or rename it before `language`",
                    inputs[0].id
                )));
            }
        }
        Ok(with_lang(&s))
    }

    fn external_fingerprint(&self) -> Result<String> {
        let m = std::fs::metadata(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(format!("{}|{}|{}", self.path.display(), m.len(), mtime))
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts())
    }

    fn side_outputs(&self, output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        if self.config.keep_dropped {
            vec![("dropped".into(), output.clone())]
        } else {
            Vec::new()
        }
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("modifies_text".into(), false.into());
        m.insert(
            "model".into(),
            self.path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
                .into(),
        );
        m
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        for batch in ctx.inputs[0].read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            let col = text_column(&batch)?;
            let n = batch.num_rows();
            let mut langs = Vec::with_capacity(n);
            let mut scores = Vec::with_capacity(n);
            let mut keep = Vec::with_capacity(n);
            let ids = batch
                .column_by_name("id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            for i in 0..n {
                let text = col.get(i).unwrap_or_else(|| {
                    let id = ids
                        .as_ref()
                        .map(|a| a.value(i).to_string())
                        .unwrap_or_else(|| format!("row {i}"));
                    out.warn(format!(
                        "document {id}: text is null; labelled as empty text"
                    ));
                    ""
                });
                let (l, s, k) = self.predict(text);
                out.count(&format!("lang.{l}"), 1);
                if !k {
                    out.dropped("language", 1);
                }
                langs.push(l);
                scores.push(s);
                keep.push(k);
            }
            let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
            cols.push(Arc::new(StringArray::from(langs)));
            cols.push(Arc::new(Float64Array::from(scores)));
            let full = RecordBatch::try_new(with_lang(&batch.schema()), cols)
                .map_err(|e| Error::arrow("adding lang", e))?;
            let mask = BooleanArray::from(keep);
            let kept = arrow::compute::filter_record_batch(&full, &mask)
                .map_err(|e| Error::arrow("filtering rows", e))?;
            out.write(&kept)?;
            if self.config.keep_dropped {
                let not = arrow::compute::not(&mask).map_err(|e| Error::arrow("mask", e))?;
                let dropped = arrow::compute::filter_record_batch(&full, &not)
                    .map_err(|e| Error::arrow("filtering rows", e))?;
                if dropped.num_rows() > 0 {
                    out.write_side("dropped", &dropped)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use primer_core::testing::{read_all, run_stage};

    use super::*;
    use crate::text::test_dataset;

    const MODEL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/models/lid.176.ftz"
    );

    fn ctx() -> BuildContext<'static> {
        BuildContext {
            stage_id: "lang",
            base_dir: Path::new("/"),
        }
    }
    use std::path::Path;

    fn config(model: &str) -> LanguageConfig {
        LanguageConfig {
            model: model.into(),
            languages: vec!["en".into()],
            min_score: 0.65,
            label_only: false,
            keep_dropped: true,
        }
    }

    #[test]
    fn bad_model_files_are_refused_with_a_message() {
        let e = config("/nonexistent/lid.176.ftz")
            .build(&ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("language.model: cannot open /nonexistent/lid.176.ftz"),
            "{e}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("model.bin");
        std::fs::write(&p, b"this is not a fastText model at all").unwrap();
        let e = config(p.to_str().unwrap())
            .build(&ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is not a fastText model"), "{e}");
        std::fs::write(&p, b"abc").unwrap();
        let e = config(p.to_str().unwrap())
            .build(&ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("too short to be a fastText model"), "{e}");
        let mut head = FASTTEXT_MAGIC.to_le_bytes().to_vec();
        head.extend(99i32.to_le_bytes());
        std::fs::write(&p, &head).unwrap();
        let e = config(p.to_str().unwrap())
            .build(&ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("format version 99"), "{e}");
    }

    #[test]
    fn labels_and_keeps_wanted_languages() {
        let tmp = tempfile::tempdir().unwrap();
        let input = test_dataset(
            &tmp.path().join("in"),
            &[&[
                "The quick brown fox jumps over the lazy dog.\nIt was a sunny day.",
                "Der schnelle braune Fuchs springt über den faulen Hund.",
            ]],
        );
        let stage = config(MODEL).build(&ctx()).unwrap();
        let ds = run_stage(&stage, &[input], &tmp.path().join("out"), 100).unwrap();
        let b = read_all(&ds).unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(
            b.column_by_name("lang")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "en"
        );
        let score = b
            .column_by_name("lang_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0);
        assert!(score > 0.65, "{score}");
        let side = read_all(&Dataset::open(tmp.path().join("out/side/dropped")).unwrap()).unwrap();
        assert_eq!(
            side.column_by_name("lang")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "de"
        );
        let c = serde_json::to_value(&ds.manifest().counters).unwrap();
        assert_eq!(c["dropped.language"], 1);
        assert_eq!(c["lang.en"], 1);
        assert_eq!(c["lang.de"], 1);
    }
}
