//! The `language` stage: fastText language identification (lid.176) through
//! `primer-fasttext` (fastText's predictions bit for bit, in Rust), as datatrove's
//! `LanguageFilter` does it: newlines become spaces, the best label is recorded in `lang`
//! and `lang_score`, and a document is kept when one of the wanted languages scores above
//! `min_score` (or, with no languages listed, when the best one does).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use primer_fasttext::{Model, Predictor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::text::{require_text, text_column};

/// Settings of the `language` stage: fastText language identification (lid.176), as
/// datatrove's `LanguageFilter`. Adds the columns `lang` (the best label) and `lang_score`
/// (its probability); counts `lang.<code>` per document and `dropped.language`.
/// Memory: the model once (lid.176.ftz takes about 4 MB: a quantized matrix is decoded when
/// loaded if that takes at most 64 MB), and per thread a cache of recent tokens' model rows
/// of 18 MB; nothing per document.
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
        // Languages the model does not know are never kept (as before, by name).
        let wanted = self
            .languages
            .iter()
            .filter_map(|l| model.label_id_unprefixed(l))
            .collect();
        Ok(LanguageStage {
            config: self.clone(),
            path,
            model: Arc::new(model),
            wanted,
        })
    }
}

fn load_model(path: &std::path::Path) -> Result<Model> {
    Model::load(path).map_err(|e| match e {
        primer_fasttext::Error::Io { file, source } => Error::input(format!(
            "language.model: cannot open {}: {source} (download lid.176.ftz or lid.176.bin from fastText)",
            file.display()
        )),
        e => Error::input(format!("language.model: {e}")),
    })
}

/// The runtime `language` stage.
pub struct LanguageStage {
    config: LanguageConfig,
    path: PathBuf,
    model: Arc<Model>,
    /// Label ids of `config.languages`.
    wanted: Vec<usize>,
}

impl LanguageStage {
    /// The best label (without `__label__`) and its score, and whether the document is kept.
    /// (Makes a new predictor each time: to label many texts, hold one [`Self::predictor`]
    /// and call [`Self::predict_with`], as the stage does.)
    pub fn predict(&self, text: &str) -> (String, f64, bool) {
        let (label, score, keep) = self.predict_with(&mut self.predictor(), text);
        (label.to_string(), score, keep)
    }

    /// Scratch space for [`Self::predict_with`], for one thread; it remembers the input rows
    /// of recent tokens, so one predictor for many texts is faster than one per text.
    pub fn predictor(&self) -> Predictor<'_> {
        self.model.predictor()
    }

    /// What fastText's `predict(text.replace("\n", " "), k=-1)` gives, as Python's fastText
    /// reads it (a final newline ends the line): its first (best) label and that label's
    /// probability; and whether a wanted language is among the labels with a probability
    /// above `min_score`. `p`: this thread's predictor.
    pub fn predict_with(&self, p: &mut Predictor<'_>, text: &str) -> (&str, f64, bool) {
        p.read_document(text.as_bytes());
        let (label, score) = match p.best() {
            Some(b) => {
                let l = &self.model.labels()[b.label];
                (l.strip_prefix("__label__").unwrap_or(l), b.prob as f64)
            }
            None => ("", 0.0),
        };
        let keep = self.config.label_only
            || if self.config.languages.is_empty() {
                score > self.config.min_score
            } else {
                self.wanted.iter().any(|&l| {
                    p.label(l, 0.0)
                        .is_some_and(|w| w.prob as f64 > self.config.min_score)
                })
            };
        (label, score, keep)
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
        let (len, mtime) = primer_core::file_stamp(&self.path)?;
        Ok(format!(
            "{}|{}|{}",
            primer_core::location_name(&self.path),
            len,
            mtime
        ))
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
        let mut predictor = self.model.predictor();
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
                let (l, s, k) = self.predict_with(&mut predictor, text);
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

    /// lid.176.ftz, the repository's copy (the demo uses it).
    fn model() -> String {
        primer_testdata::demo_data("lid.176.ftz")
            .to_string_lossy()
            .into_owned()
    }

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
        let error_of = |path: &std::path::Path| {
            config(path.to_str().unwrap())
                .build(&ctx())
                .err()
                .unwrap()
                .to_string()
        };
        let e = error_of(std::path::Path::new("/nonexistent/lid.176.ftz"));
        assert!(
            e.starts_with("language.model: cannot open /nonexistent/lid.176.ftz"),
            "{e}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("model.bin");
        let with_version = |v: i32| {
            let mut head = primer_fasttext::MAGIC.to_le_bytes().to_vec();
            head.extend(v.to_le_bytes());
            head
        };
        std::fs::write(&p, b"this is not a fastText model at all").unwrap();
        let e = error_of(&p);
        assert!(e.contains("is not a fastText model"), "{e}");
        std::fs::write(&p, b"abc").unwrap();
        let e = error_of(&p);
        assert!(e.contains("is not a fastText model"), "{e}");
        std::fs::write(&p, with_version(12)).unwrap();
        let e = error_of(&p);
        assert!(
            e.starts_with(&format!("language.model: {} is truncated: ", p.display())),
            "{e}"
        );
        std::fs::write(&p, with_version(99)).unwrap();
        let e = error_of(&p);
        assert!(e.contains("format version 99"), "{e}");
    }

    /// Python's fastText (datatrove) reads `text.replace("\n", " ")` and a final newline;
    /// NULs, which a C string cannot hold, are separators like spaces.
    #[test]
    fn newlines_and_nuls_read_as_spaces() {
        let stage = config(&model()).build(&ctx()).unwrap();
        let spaced = stage.predict("Der schnelle braune Fuchs springt über den faulen Hund.");
        assert_eq!(spaced.0, "de");
        assert_eq!(
            stage.predict("Der schnelle\nbraune Fuchs\0springt über den faulen Hund.\n"),
            spaced
        );
        assert_eq!(stage.predict(""), stage.predict("\n"));
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
        let stage = config(&model()).build(&ctx()).unwrap();
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
