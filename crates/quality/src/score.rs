//! The `score` stage: a fastText classifier's probabilities as columns, computed by
//! primer's own predictor (fastText's C++ answers, bit for bit; or, with `projected`, the
//! same up to float rounding and 2.6× faster), optionally keeping the documents above a
//! threshold or the top fraction.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use serde::{Deserialize, Serialize};

use crate::train::MODEL_FILE;

/// Settings of the `score` stage: every document of the input gets one column per class
/// of a fastText classifier, `<prefix>_<class>` (the class's probability), and
/// `<prefix>_label` (the most probable class); with `threshold` or `top_fraction` only the
/// documents whose `keep` class probability is at least the threshold, or among the top
/// fraction, are kept (the rest are counted as `dropped.<prefix>`, and written to
/// `side/dropped/` with `keep_dropped`). The text is read as one line (line breaks are
/// spaces), as training read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The `train_classifier` stage (one of the inputs) whose model to use; the other
    /// input is scored. Default none (then `model` is required).
    #[serde(default)]
    pub classifier: Option<String>,
    /// A fastText model file (`.bin` or `.ftz`), relative to the pipeline file, instead
    /// of `classifier`. Default none.
    #[serde(default)]
    pub model: Option<String>,
    /// The column holding the text. Default `text`.
    #[serde(default = "default_text")]
    pub text_column: String,
    /// The new columns' prefix. Default `quality`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The class whose probability `threshold` and `top_fraction` compare. Default `hq`.
    #[serde(default = "default_keep")]
    pub keep: String,
    /// Keep documents whose `keep` probability is at least this. Default none.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Keep this fraction of documents with the highest `keep` probability (documents tied
    /// at the cutoff are all kept). Default none.
    #[serde(default)]
    pub top_fraction: Option<f64>,
    /// Write the documents not kept, with their probabilities, to `side/dropped/`.
    /// Default false.
    #[serde(default)]
    pub keep_dropped: bool,
    /// The classes that get a column, which must be the classifier's. Default: a model
    /// file's classes; with `classifier`, `["hq", "lq"]` (train_classifier's default
    /// labels) — set it when the classifier was trained on other labels (scores as
    /// classes: `["0", "1", "2", "3", "4", "5"]`).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// Predict with the classifier projected onto its classes (the output layer folded
    /// into the input rows when the model is loaded, so a token adds a row of one float
    /// per class instead of `dim`). The probabilities equal fastText's up to float
    /// rounding instead of bit for bit (on 5,689 docs pages: at most 2.2e-5 apart, the
    /// same labels); on a DCLM-shaped classifier (dim 100, 2 classes, 2M buckets)
    /// scoring is 2.6× faster and the process holds 16 MB of rows instead of 800 MB. A
    /// classifier with as many classes as `dim` is used as it is. Default false.
    #[serde(default)]
    pub projected: bool,
}

fn default_text() -> String {
    "text".into()
}
fn default_prefix() -> String {
    "quality".into()
}
fn default_keep() -> String {
    "hq".into()
}

/// The `score` stage, built.
pub struct Score {
    cfg: ScoreConfig,
    inputs: Vec<String>,
    model_path: Option<PathBuf>,
    model: OnceLock<std::result::Result<primer_fasttext::Model, String>>,
    /// The classes that get a column, in order, fixed when the stage is built (the
    /// schema must not change once the model is loaded).
    classes: Vec<String>,
}

impl ScoreConfig {
    pub fn build(&self, ctx: &BuildContext, inputs: &[String]) -> Result<Score> {
        let mut problems = Vec::new();
        match (&self.classifier, &self.model) {
            (Some(_), Some(_)) => problems.push("set `classifier` or `model`, not both".into()),
            (None, None) => problems.push("set `classifier` (a train_classifier stage among the inputs) or `model` (a fastText file)".into()),
            (Some(c), None) => {
                if !inputs.contains(c) {
                    problems.push(format!("classifier `{c}` is not one of the inputs ({})", inputs.join(", ")));
                }
                if inputs.len() != 2 {
                    problems.push("with `classifier`, give two inputs: the classifier and the documents".into());
                }
            }
            (None, Some(m)) => {
                let p = ctx.resolve(m);
                if !p.is_file() {
                    problems.push(format!("model: {} is not a file", p.display()));
                }
                if inputs.len() != 1 {
                    problems.push("with `model`, give one input: the documents".into());
                }
            }
        }
        if let Some(t) = self.threshold
            && !(0.0..=1.0).contains(&t)
        {
            problems.push(format!("threshold = {t}: use 0 to 1"));
        }
        if let Some(f) = self.top_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            problems.push(format!("top_fraction = {f}: use a value above 0, up to 1"));
        }
        if self.threshold.is_some() && self.top_fraction.is_some() {
            problems.push("set `threshold` or `top_fraction`, not both".into());
        }
        if self.prefix.is_empty() {
            problems.push("prefix is empty".into());
        }
        if !problems.is_empty() {
            return Err(Error::input(problems.join("; ")));
        }
        // A model file is checked now, so `primer validate` says when it is not fastText's.
        let model = OnceLock::new();
        let mut classes = self
            .classes
            .clone()
            .unwrap_or_else(|| vec!["hq".into(), "lq".into()]);
        if let Some(m) = &self.model {
            let p = ctx.resolve(m);
            let mut loaded = primer_fasttext::Model::load(&p)
                .map_err(|e| Error::input(format!("model: {e}")))?;
            if self.projected {
                loaded = loaded.project();
            }
            if self.classes.is_none() {
                classes = loaded
                    .labels()
                    .iter()
                    .map(|l| l.strip_prefix("__label__").unwrap_or(l).to_string())
                    .collect();
            }
            let _ = model.set(Ok(loaded));
        }
        Ok(Score {
            cfg: self.clone(),
            inputs: inputs.to_vec(),
            model_path: self.model.as_ref().map(|m| ctx.resolve(m)),
            model,
            classes,
        })
    }
}

impl Score {
    /// Index of the documents among the inputs.
    fn docs_input(&self) -> usize {
        match &self.cfg.classifier {
            Some(c) => usize::from(self.inputs.first() == Some(c)),
            None => 0,
        }
    }

    fn model(&self, inputs: &[Dataset]) -> Result<&primer_fasttext::Model> {
        self.model
            .get_or_init(|| {
                let path = match &self.model_path {
                    Some(p) => p.clone(),
                    None => {
                        let c = &inputs[1 - self.docs_input()];
                        c.dir().join(
                            c.manifest()
                                .notes
                                .get("model")
                                .and_then(|m| m.as_str())
                                .unwrap_or(MODEL_FILE),
                        )
                    }
                };
                let model = primer_fasttext::Model::load(&path).map_err(|e| e.to_string())?;
                Ok(match self.cfg.projected {
                    true => model.project(),
                    false => model,
                })
            })
            .as_ref()
            .map_err(|e| Error::input(format!("the classifier's model: {e}")))
    }

    /// For each column's class, its label id in `model`; an error names the difference.
    fn columns_of(&self, model: &primer_fasttext::Model) -> Result<Vec<usize>> {
        let classes = &self.classes;
        let ids: Vec<Option<usize>> = classes
            .iter()
            .map(|c| model.label_id_unprefixed(c))
            .collect();
        if ids.iter().any(Option::is_none) || classes.len() != model.labels().len() {
            return Err(Error::input(format!(
                "the classifier's classes are {}, the columns' are {}: set `classes` to the classifier's",
                model
                    .labels()
                    .iter()
                    .map(|l| l.strip_prefix("__label__").unwrap_or(l))
                    .collect::<Vec<_>>()
                    .join(", "),
                classes.join(", ")
            )));
        }
        Ok(ids.into_iter().map(|i| i.expect("checked")).collect())
    }

    fn selecting(&self) -> bool {
        self.cfg.threshold.is_some() || self.cfg.top_fraction.is_some()
    }

    /// Probabilities of every class for every row of `batch` (one row per document, one
    /// column per class, in the model's label order).
    fn probabilities(
        &self,
        pred: &mut primer_fasttext::Predictor<'_>,
        batch: &RecordBatch,
    ) -> Result<Vec<Vec<f32>>> {
        let texts = batch
            .column_by_name(&self.cfg.text_column)
            .ok_or_else(|| Error::input(format!("no column `{}`", self.cfg.text_column)))?;
        let texts = arrow::compute::cast(texts, &DataType::LargeUtf8)
            .map_err(|e| Error::arrow("score", e))?;
        let texts = texts.as_string::<i64>();
        let n = pred.model().labels().len();
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            let mut p = vec![0f32; n];
            if !texts.is_null(r) {
                pred.read_document(texts.value(r).as_bytes());
                pred.predict(usize::MAX, 0.0, &mut buf);
                for x in &buf {
                    p[x.label] = x.prob;
                }
            }
            out.push(p);
        }
        Ok(out)
    }

    fn keep_index(&self, model: &primer_fasttext::Model) -> Result<usize> {
        model.label_id_unprefixed(&self.cfg.keep).ok_or_else(|| {
            Error::input(format!(
                "keep = `{}` is not a class of the classifier ({})",
                self.cfg.keep,
                model.labels().join(", ")
            ))
        })
    }
}

/// The cutoff of the top fraction: written by the middle phase.
const CUTOFF: &str = "cutoff.json";

impl Stage for Score {
    fn kind(&self) -> &'static str {
        "score"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let docs = inputs
            .get(self.docs_input())
            .ok_or_else(|| Error::input("score needs the documents as an input"))?;
        if docs.schema.index_of(&self.cfg.text_column).is_err() {
            return Err(Error::input(format!(
                "input `{}` has no column `{}`",
                docs.id, self.cfg.text_column
            )));
        }
        let mut fields: Vec<Arc<Field>> = docs.schema.fields().iter().cloned().collect();
        if self.cfg.classifier.is_some() {
            let c = &inputs[1 - self.docs_input()];
            if c.schema.index_of("predicted").is_err() {
                return Err(Error::input(format!(
                    "classifier `{}` is not a train_classifier stage",
                    c.id
                )));
            }
        }
        for name in &self.classes {
            fields.push(Arc::new(Field::new(
                format!("{}_{name}", self.cfg.prefix),
                DataType::Float64,
                false,
            )));
        }
        fields.push(Arc::new(Field::new(
            format!("{}_label", self.cfg.prefix),
            DataType::Utf8,
            false,
        )));
        Ok(Arc::new(Schema::new(fields)))
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(self.phases(inputs)?.iter().sum())
    }

    fn phases(&self, inputs: &[Dataset]) -> Result<Vec<usize>> {
        let parts = inputs.get(self.docs_input()).map_or(0, Dataset::num_parts);
        Ok(if self.cfg.top_fraction.is_some() {
            // The probabilities of each part, then the cutoff, then the rows.
            vec![parts, 1, parts]
        } else {
            vec![parts]
        })
    }

    fn side_outputs(&self, output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        if self.cfg.keep_dropped && self.selecting() {
            vec![("dropped".into(), output.clone())]
        } else {
            Vec::new()
        }
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let docs = &ctx.inputs[self.docs_input()];
        let model = self.model(ctx.inputs)?;
        let parts = docs.num_parts();
        let top = self.cfg.top_fraction.is_some();
        if top && task < parts {
            // Phase 1: this part's `keep` probabilities, sorted, to scratch.
            let k = self.keep_index(model)?;
            let mut probs = Vec::new();
            let mut pred = model.predictor();
            for batch in docs.read_part(task, ctx.batch_size)? {
                ctx.check_cancelled()?;
                probs.extend(
                    self.probabilities(&mut pred, &batch?)?
                        .into_iter()
                        .map(|p| p[k]),
                );
            }
            probs.sort_by(|a, b| b.total_cmp(a));
            std::fs::create_dir_all(ctx.scratch_dir).map_err(|e| Error::io(ctx.scratch_dir, e))?;
            let bytes: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
            primer_core::write_atomic(
                &ctx.scratch_dir.join(format!("probs-{task:05}.bin")),
                &bytes,
            )?;
            return Ok(());
        }
        if top && task == parts {
            // Phase 2: the cutoff: the probability of the ceil(n * fraction)-th document.
            // Reads 4 bytes per document.
            let mut all = Vec::new();
            for p in 0..parts {
                let path = ctx.scratch_dir.join(format!("probs-{p:05}.bin"));
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                all.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                );
            }
            let n = all.len();
            let want = ((n as f64) * self.cfg.top_fraction.expect("top")).ceil() as usize;
            let cutoff = if want == 0 || n == 0 {
                f32::INFINITY
            } else {
                let (_, v, _) = all.select_nth_unstable_by(want - 1, |a, b| b.total_cmp(a));
                *v
            };
            let text =
                serde_json::json!({ "cutoff": cutoff, "documents": n, "wanted": want }).to_string();
            primer_core::write_atomic(&ctx.scratch_dir.join(CUTOFF), text.as_bytes())?;
            out.note("top_fraction_cutoff", serde_json::json!(cutoff));
            return Ok(());
        }
        let part = if top { task - parts - 1 } else { task };
        let threshold: Option<f32> = match (self.cfg.threshold, top) {
            (Some(t), _) => Some(t as f32),
            (None, true) => {
                let path = ctx.scratch_dir.join(CUTOFF);
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| Error::Internal(e.to_string()))?;
                Some(v["cutoff"].as_f64().map_or(f32::INFINITY, |c| c as f32))
            }
            (None, false) => None,
        };
        let keep_idx = if threshold.is_some() {
            Some(self.keep_index(model)?)
        } else {
            None
        };
        let columns = self.columns_of(model)?;
        let names: Vec<String> = model
            .labels()
            .iter()
            .map(|l| l.strip_prefix("__label__").unwrap_or(l).to_string())
            .collect();
        let drop_reason = self.cfg.prefix.clone();
        // One predictor per task: its token cache stays warm from batch to batch.
        let mut pred = model.predictor();
        for batch in docs.read_part(part, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            let probs = self.probabilities(&mut pred, &batch)?;
            let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
            for &j in &columns {
                let mut b = Float64Builder::with_capacity(probs.len());
                for p in &probs {
                    b.append_value(f64::from(p[j]));
                }
                cols.push(Arc::new(b.finish()));
            }
            let mut label = StringBuilder::new();
            for p in &probs {
                // The first of the highest, as fastText orders equal scores by label id.
                let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
                label.append_value(&names[best]);
            }
            cols.push(Arc::new(label.finish()));
            let scored =
                RecordBatch::try_new(out.schema(), cols).map_err(|e| Error::arrow("score", e))?;
            match (threshold, keep_idx) {
                (Some(t), Some(k)) => {
                    let keep: BooleanArray = probs.iter().map(|p| Some(p[k] >= t)).collect();
                    let kept = arrow::compute::filter_record_batch(&scored, &keep)
                        .map_err(|e| Error::arrow("score", e))?;
                    let dropped = scored.num_rows() - kept.num_rows();
                    out.dropped(&drop_reason, dropped as u64);
                    out.write(&kept)?;
                    if self.cfg.keep_dropped && dropped > 0 {
                        let not =
                            arrow::compute::not(&keep).map_err(|e| Error::arrow("score", e))?;
                        let side = arrow::compute::filter_record_batch(&scored, &not)
                            .map_err(|e| Error::arrow("score", e))?;
                        out.write_side("dropped", &side)?;
                    }
                }
                _ => out.write(&scored)?,
            }
        }
        Ok(())
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(Ok(model)) = self.model.get() {
            m.insert(
                "labels".into(),
                serde_json::to_value(model.labels()).unwrap_or_default(),
            );
        }
        m
    }
}
