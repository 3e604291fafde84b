//! The `train_classifier` stage: a fastText classifier trained by fastText's own C++
//! trainer, evaluated on a seeded held-out split.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Manifest, Result, Stage, TaskContext, TaskOutput,
};
use serde::{Deserialize, Serialize};

use crate::metrics::{Evaluation, evaluate};

/// The model file a `train_classifier` stage writes into its dataset directory.
pub const MODEL_FILE: &str = "model.bin";

/// Settings of the `train_classifier` stage: a supervised fastText model (the standard
/// `.bin` every fastText tool loads, written by fastText's C++ trainer) on labelled
/// documents — annotations binarised at `threshold` or kept as classes, or all documents
/// of `positive` and `negative` reference inputs (DCLM's way) — with DCLM's recipe as the
/// defaults. A seeded `validation_fraction` is held out and evaluated: precision, recall
/// and F1 per class, the confusion matrix and the precision–recall curve go to the
/// manifest, and the held-out predictions are the stage's dataset. With one training
/// thread the model is the same for the same input and settings; with more, fastText's
/// threads race on the shared weights (hogwild) and the model changes from run to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainClassifierConfig {
    /// The column with the label: annotation scores, or any column. Default `score`.
    #[serde(default = "default_label_column")]
    pub label_column: String,
    /// The column with the text. Default `text`.
    #[serde(default = "default_text")]
    pub text_column: String,
    /// Binarise: a label at or above it is `positive_label`, below it `negative_label`
    /// (FineWeb-Edu kept scores of 3 and more). Default none: every label value is a class.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Inputs (by stage id) whose every document is positive, instead of labels: DCLM's
    /// reference positives. Default none.
    #[serde(default)]
    pub positive: Vec<String>,
    /// Inputs whose every document is negative. Default none.
    #[serde(default)]
    pub negative: Vec<String>,
    /// The positive class's name (fastText label `__label__<name>`). Default `hq`.
    #[serde(default = "default_pos")]
    pub positive_label: String,
    /// The negative class's name. Default `lq`.
    #[serde(default = "default_neg")]
    pub negative_label: String,
    /// The fraction held out for evaluation (by a seeded hash of the id), 0 to 0.5.
    /// Default 0.1.
    #[serde(default = "default_validation")]
    pub validation_fraction: f64,
    /// The seed of the held-out split. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Characters of each text used (all by default).
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// Learning rate. Default 0.1 (DCLM).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Vector size. Default 100.
    #[serde(default = "default_dim")]
    pub dim: u32,
    /// Context window (used by fastText for word vectors). Default 5.
    #[serde(default = "default_ws")]
    pub ws: u32,
    /// Passes over the data. Default 5.
    #[serde(default = "default_epoch")]
    pub epoch: u32,
    /// Words seen fewer times are dropped. Default 1.
    #[serde(default = "default_one")]
    pub min_count: u32,
    /// Word n-grams. Default 2.
    #[serde(default = "default_ngrams")]
    pub word_ngrams: u32,
    /// Hash buckets for n-grams. Default 2,000,000.
    #[serde(default = "default_bucket")]
    pub bucket: u32,
    /// Character n-grams from `minn` to `maxn` (0: none). Default 0 and 0.
    #[serde(default)]
    pub minn: u32,
    #[serde(default)]
    pub maxn: u32,
    /// Training threads; 1 makes the model reproducible. Default 1.
    #[serde(default = "default_one")]
    pub threads: u32,
}

fn default_label_column() -> String {
    "score".into()
}
fn default_text() -> String {
    "text".into()
}
fn default_pos() -> String {
    "hq".into()
}
fn default_neg() -> String {
    "lq".into()
}
fn default_validation() -> f64 {
    0.1
}
fn default_lr() -> f64 {
    0.1
}
fn default_dim() -> u32 {
    100
}
fn default_ws() -> u32 {
    5
}
fn default_epoch() -> u32 {
    5
}
fn default_one() -> u32 {
    1
}
fn default_ngrams() -> u32 {
    2
}
fn default_bucket() -> u32 {
    2_000_000
}

/// The `train_classifier` stage, built.
pub struct TrainClassifier {
    cfg: TrainClassifierConfig,
    /// The input ids (in order) this stage was built with.
    inputs: Vec<String>,
}

impl TrainClassifierConfig {
    pub fn build(&self, _ctx: &BuildContext, inputs: &[String]) -> Result<TrainClassifier> {
        let mut problems = Vec::new();
        if !(0.0..=0.5).contains(&self.validation_fraction) {
            problems.push(format!(
                "validation_fraction = {}: use 0 to 0.5",
                self.validation_fraction
            ));
        }
        let reference = !self.positive.is_empty() || !self.negative.is_empty();
        if reference {
            if self.positive.is_empty() || self.negative.is_empty() {
                problems
                    .push("reference training needs both `positive` and `negative` inputs".into());
            }
            if self.threshold.is_some() {
                problems.push("`threshold` labels annotations; with `positive`/`negative` inputs there are none".into());
            }
            for id in self.positive.iter().chain(&self.negative) {
                if !inputs.contains(id) {
                    problems.push(format!(
                        "`{id}` is not one of the stage's inputs ({})",
                        inputs.join(", ")
                    ));
                }
            }
            for id in inputs {
                if !self.positive.contains(id) && !self.negative.contains(id) {
                    problems.push(format!(
                        "input `{id}` is in neither `positive` nor `negative`"
                    ));
                }
            }
        }
        if self.positive_label == self.negative_label {
            problems.push("positive_label and negative_label must differ".into());
        }
        for (name, l) in [
            ("positive_label", &self.positive_label),
            ("negative_label", &self.negative_label),
        ] {
            if l.is_empty() || l.contains(char::is_whitespace) {
                problems.push(format!("{name} `{l}`: a label is one word"));
            }
        }
        for (name, v) in [
            ("dim", self.dim),
            ("epoch", self.epoch),
            ("threads", self.threads),
            ("word_ngrams", self.word_ngrams),
        ] {
            if v == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            problems.push(format!("lr = {}: use a positive number", self.lr));
        }
        if self.maxn < self.minn {
            problems.push("maxn must be at least minn".into());
        }
        if !problems.is_empty() {
            return Err(Error::input(problems.join("; ")));
        }
        Ok(TrainClassifier {
            cfg: self.clone(),
            inputs: inputs.to_vec(),
        })
    }
}

/// The held-out predictions' schema.
pub fn predictions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("predicted", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, false),
        Field::new("positive_probability", DataType::Float64, true),
    ]))
}

/// A text as one fastText line: every line break and NUL a space (DCLM: lines joined by
/// spaces), cut to `max` characters.
pub fn one_line(text: &str, max: Option<usize>) -> String {
    let t = match max.and_then(|m| text.char_indices().nth(m)) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    t.chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The label column's value as a class name.
fn label_name(a: &ArrayRef, r: usize) -> Option<String> {
    if a.is_null(r) {
        return None;
    }
    Some(primer_llm::template::cell(a, r).to_string())
}

impl TrainClassifier {
    fn reference(&self) -> bool {
        !self.cfg.positive.is_empty()
    }

    /// The class of row `r` of input `input`, or `None` when it has none (a null label).
    fn class_of(&self, input: &str, batch: &RecordBatch, r: usize) -> Result<Option<String>> {
        if self.reference() {
            return Ok(Some(if self.cfg.positive.iter().any(|p| p == input) {
                self.cfg.positive_label.clone()
            } else {
                self.cfg.negative_label.clone()
            }));
        }
        let col = batch
            .column_by_name(&self.cfg.label_column)
            .ok_or_else(|| {
                Error::input(format!(
                    "input `{input}` has no column `{}`",
                    self.cfg.label_column
                ))
            })?;
        let Some(v) = label_name(col, r) else {
            return Ok(None);
        };
        Ok(Some(match self.cfg.threshold {
            Some(t) => {
                let x: f64 = v.parse().map_err(|_| {
                    Error::input(format!(
                        "input `{input}`: label `{v}` in `{}` is not a number, so `threshold` cannot binarise it",
                        self.cfg.label_column
                    ))
                })?;
                if x >= t {
                    self.cfg.positive_label.clone()
                } else {
                    self.cfg.negative_label.clone()
                }
            }
            None => v.split_whitespace().collect::<Vec<_>>().join("_"),
        }))
    }

    fn held_out(&self, input: usize, id: &str) -> bool {
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(self.cfg.seed);
        h.update(&(input as u64).to_le_bytes());
        h.update(id.as_bytes());
        (h.digest() as f64) < self.cfg.validation_fraction * (u64::MAX as f64)
    }

    /// Train with fastText's C++ trainer on `train` and save the model to `model`.
    fn train(&self, train: &Path, model: &Path) -> Result<()> {
        let c = &self.cfg;
        let mut args = fasttext::Args::new();
        args.set_input(&train.to_string_lossy())
            .map_err(|e| Error::Internal(format!("fastText input: {e}")))?;
        args.set_model(fasttext::ModelName::SUP);
        args.set_loss(fasttext::LossName::SOFTMAX);
        args.set_lr(c.lr);
        args.set_dim(c.dim as i32);
        args.set_ws(c.ws as i32);
        args.set_epoch(c.epoch as i32);
        args.set_min_count(c.min_count as i32);
        args.set_word_ngrams(c.word_ngrams as i32);
        args.set_bucket(c.bucket as i32);
        args.set_minn(c.minn as i32);
        args.set_maxn(c.maxn as i32);
        args.set_thread(c.threads as i32);
        args.set_verbose(0);
        let mut ft = fasttext::FastText::new();
        ft.train(&args)
            .map_err(|e| Error::Internal(format!("fastText training failed: {e}")))?;
        let tmp = primer_core::tmp_path(model);
        ft.save_model(&tmp.to_string_lossy())
            .map_err(|e| Error::io(&tmp, std::io::Error::other(e)))?;
        std::fs::rename(&tmp, model).map_err(|e| Error::io(model, e))
    }
}

impl Stage for TrainClassifier {
    fn kind(&self) -> &'static str {
        "train_classifier"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        if inputs.is_empty() {
            return Err(Error::input(
                "train_classifier needs inputs: labelled documents",
            ));
        }
        for i in inputs {
            let mut cols = vec!["id", self.cfg.text_column.as_str()];
            if !self.reference() {
                cols.push(&self.cfg.label_column);
            }
            for c in cols {
                if i.schema.index_of(c).is_err() {
                    return Err(Error::input(format!(
                        "input `{}` has no column `{c}`",
                        i.id
                    )));
                }
            }
        }
        Ok(predictions_schema())
    }

    fn num_tasks(&self, _inputs: &[Dataset]) -> Result<usize> {
        Ok(1)
    }

    fn run_task(&self, _task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        std::fs::create_dir_all(ctx.scratch_dir).map_err(|e| Error::io(ctx.scratch_dir, e))?;
        let train_path = ctx.scratch_dir.join("train.txt");
        let mut train = std::io::BufWriter::new(
            std::fs::File::create(&train_path).map_err(|e| Error::io(&train_path, e))?,
        );
        // Held-out documents: (id, class, line).
        let mut held: Vec<(String, String, String)> = Vec::new();
        let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut unlabelled = 0u64;
        for (i, ds) in ctx.inputs.iter().enumerate() {
            let input = &self.inputs[i];
            for batch in ds.batches(ctx.batch_size) {
                ctx.check_cancelled()?;
                let batch = batch?;
                out.count("rows_in", batch.num_rows() as u64);
                let ids = batch.column_by_name("id").expect("checked");
                let texts = batch
                    .column_by_name(&self.cfg.text_column)
                    .expect("checked");
                for r in 0..batch.num_rows() {
                    let (Some(id), Some(text)) = (label_name(ids, r), label_name(texts, r)) else {
                        unlabelled += 1;
                        continue;
                    };
                    let Some(class) = self.class_of(input, &batch, r)? else {
                        unlabelled += 1;
                        continue;
                    };
                    let line = one_line(&text, self.cfg.max_chars);
                    let c = counts.entry(class.clone()).or_default();
                    if self.held_out(i, &id) {
                        c.1 += 1;
                        held.push((id, class, line));
                    } else {
                        c.0 += 1;
                        writeln!(train, "__label__{class} {line}")
                            .map_err(|e| Error::io(&train_path, e))?;
                    }
                }
            }
        }
        train.flush().map_err(|e| Error::io(&train_path, e))?;
        drop(train);
        out.count("train.unlabelled", unlabelled);
        for (class, (t, v)) in &counts {
            out.count(&format!("train.examples.{class}"), *t);
            out.count(&format!("validation.examples.{class}"), *v);
        }
        // Every class needs training examples; a binary split needs both classes.
        let mut expected: Vec<String> = counts.keys().cloned().collect();
        if self.reference() || self.cfg.threshold.is_some() {
            expected = vec![
                self.cfg.positive_label.clone(),
                self.cfg.negative_label.clone(),
            ];
        }
        let empty: Vec<&String> = expected
            .iter()
            .filter(|c| counts.get(*c).is_none_or(|n| n.0 == 0))
            .collect();
        if !empty.is_empty() || counts.is_empty() {
            let have: Vec<String> = counts
                .iter()
                .map(|(c, n)| format!("{c}: {} to train, {} held out", n.0, n.1))
                .collect();
            return Err(Error::input(format!(
                "no training examples of class {} (the data has {}); {}",
                empty
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if have.is_empty() {
                    "no labelled documents".to_string()
                } else {
                    have.join("; ")
                },
                if self.cfg.threshold.is_some() {
                    "check `threshold` against the scores"
                } else {
                    "add documents of it"
                }
            )));
        }
        if expected.len() < 2 {
            return Err(Error::input(format!(
                "only one class (`{}`) in the labels: a classifier needs two or more",
                expected[0]
            )));
        }
        let model_path: PathBuf = ctx.dir.join(MODEL_FILE);
        self.train(&train_path, &model_path)?;
        // Evaluate with primer's predictor (fastText's C++ answers, bit for bit).
        let model = primer_fasttext::Model::load(&model_path)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let names: Vec<String> = model
            .labels()
            .iter()
            .map(|l| l.strip_prefix("__label__").unwrap_or(l).to_string())
            .collect();
        let binary = names.len() == 2 && (self.reference() || self.cfg.threshold.is_some());
        let positive = binary.then(|| self.cfg.positive_label.clone());
        let pos_id = positive
            .as_ref()
            .and_then(|p| names.iter().position(|n| n == p));
        let mut pred = model.predictor();
        let mut buf = Vec::new();
        let mut results = Vec::with_capacity(held.len());
        let (mut id_b, mut label_b, mut pred_b) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let (mut prob_b, mut pos_b) = (Float64Builder::new(), Float64Builder::new());
        for (id, class, line) in &held {
            pred.read_line(line.as_bytes());
            pred.predict(usize::MAX, 0.0, &mut buf);
            let Some(best) = buf.first() else { continue };
            let predicted = names[best.label].clone();
            let pos_p = pos_id.map(|p| {
                buf.iter()
                    .find(|x| x.label == p)
                    .map_or(0.0, |x| f64::from(x.prob))
            });
            results.push((class.clone(), predicted.clone(), pos_p.unwrap_or(0.0)));
            id_b.append_value(id);
            label_b.append_value(class);
            pred_b.append_value(&predicted);
            prob_b.append_value(f64::from(best.prob));
            pos_b.append_option(pos_p);
        }
        let eval: Evaluation = evaluate(&names, &results, positive.as_deref(), 50);
        out.note("model", MODEL_FILE.into());
        out.note("labels", serde_json::to_value(&names).unwrap_or_default());
        out.note(
            "evaluation",
            serde_json::to_value(&eval).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let batch = RecordBatch::try_new(
            out.schema(),
            vec![
                Arc::new(id_b.finish()) as ArrayRef,
                Arc::new(label_b.finish()),
                Arc::new(pred_b.finish()),
                Arc::new(prob_b.finish()),
                Arc::new(pos_b.finish()),
            ],
        )
        .map_err(|e| Error::arrow("train_classifier", e))?;
        out.write(&batch)
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "fasttext".into(),
            serde_json::json!({
                "lr": self.cfg.lr, "dim": self.cfg.dim, "ws": self.cfg.ws, "epoch": self.cfg.epoch,
                "minCount": self.cfg.min_count, "wordNgrams": self.cfg.word_ngrams,
                "bucket": self.cfg.bucket, "minn": self.cfg.minn, "maxn": self.cfg.maxn,
                "thread": self.cfg.threads, "loss": "softmax",
            }),
        );
        m
    }

    fn report(&self, manifest: &Manifest) -> Vec<String> {
        let Some(e) = manifest.notes.get("evaluation") else {
            return Vec::new();
        };
        let mut lines = vec![format!(
            "held out: {} documents, accuracy {:.3}, macro F1 {:.3}",
            e["documents"],
            e["accuracy"].as_f64().unwrap_or(0.0),
            e["macro_f1"].as_f64().unwrap_or(0.0)
        )];
        if let Some(classes) = e["classes"].as_object() {
            for (c, s) in classes {
                lines.push(format!(
                    "  {c}: precision {:.3} recall {:.3} F1 {:.3} ({} documents)",
                    s["precision"].as_f64().unwrap_or(0.0),
                    s["recall"].as_f64().unwrap_or(0.0),
                    s["f1"].as_f64().unwrap_or(0.0),
                    s["support"]
                ));
            }
        }
        lines.push(format!(
            "model: {}",
            manifest
                .notes
                .get("model")
                .and_then(|m| m.as_str())
                .unwrap_or(MODEL_FILE)
        ));
        lines
    }
}
