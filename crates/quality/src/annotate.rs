//! The `annotate` stage: an LLM rates a seeded sample of documents.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, Int64Builder, LargeStringBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use primer_core::{
    BuildContext, Counters, Dataset, Error, InputSchema, Manifest, Result, Stage, TaskContext,
    TaskOutput,
};
use primer_llm::template::{Prompts, Value, prompt_id, row_values};
use primer_llm::{
    ChatError, Client, LlmConfig, Message, OrderedJson, StageClient, Summary, count_failure,
    summary_notes,
};
use serde::{Deserialize, Serialize};

use crate::parse::{Parsed, ScoreParser, educational_score};
use crate::prompts::{FINEWEB_EDU, JSON_TAIL, PHI1_CODE, score_schema};

/// Settings of the `annotate` stage: a seeded sample of the input documents (a size or a
/// fraction, optionally stratified by a column such as `source`), each rated by an LLM
/// with a prompt template; the score is read from the answer (FineWeb-Edu's
/// `Educational score: N`, a regex of yours, or a JSON field) and checked against the
/// scale. Every sampled document is kept in the output with its score, or with no score
/// and the `problem` why (an unparseable answer, a failed request): never a guess.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnotateConfig {
    /// A built-in prompt: `fineweb_edu` (FineWeb-Edu's additive 0–5 educational-value
    /// prompt, as HuggingFace published it) or `phi1_code` (phi-1's "educational value for
    /// a student whose goal is to learn basic coding concepts", on the same 0–5 scale).
    /// Default `fineweb_edu`, unless `prompt` or `prompt_file` is set.
    #[serde(default)]
    pub template: Option<AnnotateTemplate>,
    /// The user message, a MiniJinja template over the document's columns (`{{ text }}`
    /// is the text cut to `max_chars`). Default: the built-in's.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The user message template from a file, instead of `prompt`. Default none.
    #[serde(default)]
    pub prompt_file: Option<String>,
    /// A system message template. Default none.
    #[serde(default)]
    pub system: Option<String>,
    /// How many documents to annotate, drawn without repeats with `seed` (the ones whose
    /// seeded hash of input and id is smallest). Default: all, or `sample_fraction`.
    #[serde(default)]
    pub sample_size: Option<u64>,
    /// The fraction of documents to annotate (each kept when its seeded hash falls below
    /// it), instead of `sample_size`. Default none.
    #[serde(default)]
    pub sample_fraction: Option<f64>,
    /// Draw `sample_size` per value of this column: in proportion to how many documents
    /// have it, or the same number from each (`allocation`). Default none.
    #[serde(default)]
    pub stratify_by: Option<String>,
    /// With `stratify_by`: `proportional` or `equal`. Default `proportional`.
    #[serde(default)]
    pub allocation: Allocation,
    /// The sample's seed. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// The column holding the text. Default `text`.
    #[serde(default = "default_text")]
    pub text_column: String,
    /// Characters of the text the prompt shows (the rest is cut, at a character
    /// boundary). Default 10,000.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// Ask for a JSON answer `{"score": …, "rationale": …}`: the request carries that JSON
    /// schema, the score an `enum` of the scale (unless `llm.json_schema` is set), the
    /// built-in prompt ends by asking for it, and the score is read from `json_field`.
    /// Servers with constrained decoding then answer in a readable form even with a small
    /// model. Default false.
    #[serde(default)]
    pub json: bool,
    /// The JSON field holding the score. Default `score`.
    #[serde(default = "default_json_field")]
    pub json_field: String,
    /// A regex whose first group is the score, instead of `Educational score: N` (the
    /// last match counts). Default none.
    #[serde(default)]
    pub score_regex: Option<String>,
    /// The lowest valid score. Default 0.
    #[serde(default)]
    pub score_min: i64,
    /// The highest valid score; others are kept as `out_of_range`. Default 5.
    #[serde(default = "default_score_max")]
    pub score_max: i64,
    /// The endpoint, model, sampling, limits, budget and price (as `generate`'s).
    pub llm: LlmConfig,
}

fn default_text() -> String {
    "text".into()
}
fn default_max_chars() -> usize {
    10_000
}
fn default_json_field() -> String {
    "score".into()
}
fn default_score_max() -> i64 {
    5
}

/// A built-in annotation prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnotateTemplate {
    FinewebEdu,
    Phi1Code,
}

/// How a stratified sample is shared out.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    #[default]
    Proportional,
    Equal,
}

/// The `annotate` stage, built.
pub struct Annotate {
    cfg: AnnotateConfig,
    prompts: Prompts,
    prompt_source: String,
    parser: ScoreParser,
    llm: StageClient,
}

impl AnnotateConfig {
    /// Check the settings and compile the prompt; sends nothing.
    pub fn build(&self, ctx: &BuildContext) -> Result<Annotate> {
        let mut problems = Vec::new();
        let builtin = match self.template {
            Some(t) => Some(t),
            None if self.prompt.is_none() && self.prompt_file.is_none() => {
                Some(AnnotateTemplate::FinewebEdu)
            }
            None => None,
        };
        let prompt = match (&self.prompt, &self.prompt_file, builtin) {
            (Some(_), Some(_), _) => {
                problems.push("set `prompt` or `prompt_file`, not both".to_string());
                String::new()
            }
            (Some(p), None, _) => p.clone(),
            (None, Some(f), _) => {
                let path = ctx.resolve(f);
                std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    problems.push(format!("prompt_file: cannot read {}: {e}", path.display()));
                    String::new()
                })
            }
            (None, None, Some(t)) => {
                let text = match t {
                    AnnotateTemplate::FinewebEdu => FINEWEB_EDU,
                    AnnotateTemplate::Phi1Code => PHI1_CODE,
                };
                if self.json {
                    let cut = text.find("After examining").unwrap_or(text.len());
                    format!("{}{JSON_TAIL}", &text[..cut])
                } else {
                    text.to_string()
                }
            }
            (None, None, None) => unreachable!("a built-in is chosen when nothing is set"),
        };
        let prompts = match Prompts::new(self.system.as_deref(), &prompt) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.extend(e);
                None
            }
        };
        let parser = if self.json {
            ScoreParser::Json {
                field: self.json_field.clone(),
                rationale_field: "rationale".into(),
            }
        } else {
            match &self.score_regex {
                Some(r) => match regex::Regex::new(r) {
                    Ok(re) if re.captures_len() >= 2 => ScoreParser::Regex(re),
                    Ok(_) => {
                        problems.push(format!(
                            "score_regex `{r}` has no capture group for the score"
                        ));
                        ScoreParser::Regex(educational_score())
                    }
                    Err(e) => {
                        problems.push(format!("score_regex `{r}`: {e}"));
                        ScoreParser::Regex(educational_score())
                    }
                },
                None => ScoreParser::Regex(educational_score()),
            }
        };
        match (self.sample_size, self.sample_fraction) {
            (Some(_), Some(_)) => {
                problems.push("set `sample_size` or `sample_fraction`, not both".into())
            }
            (Some(0), None) => problems.push("sample_size must be at least 1".into()),
            (None, Some(f)) if !(f > 0.0 && f <= 1.0) => problems.push(format!(
                "sample_fraction = {f}: use a value above 0, up to 1"
            )),
            _ => {}
        }
        if self.stratify_by.is_some() && self.sample_size.is_none() {
            problems.push(
                "stratify_by needs sample_size (a fraction is the same in every stratum)".into(),
            );
        }
        if self.score_min > self.score_max {
            problems.push(format!(
                "score_min = {} is above score_max = {}",
                self.score_min, self.score_max
            ));
        }
        if self.max_chars == 0 {
            problems.push("max_chars must be at least 1".into());
        }
        let mut llm = self.llm.clone();
        if self.json && llm.json_schema.is_none() {
            llm.json_schema = Some(OrderedJson::String(score_schema(
                self.score_min,
                self.score_max,
            )));
        }
        problems.extend(llm.problems());
        if !problems.is_empty() {
            return Err(Error::input(problems.join("; ")));
        }
        Ok(Annotate {
            prompts: prompts.expect("no problems, so the prompt compiled"),
            prompt_source: prompt,
            parser,
            llm: StageClient::new(&llm),
            cfg: self.clone(),
        })
    }
}

/// The annotations' schema: the documents' columns and the rating.
pub fn annotations_schema() -> SchemaRef {
    let mut fields = primer_core::documents_fields();
    fields.extend([
        Field::new("score", DataType::Int64, true),
        Field::new("rationale", DataType::LargeUtf8, true),
        Field::new("problem", DataType::Utf8, true),
        Field::new("answer", DataType::LargeUtf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("prompt_id", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// The sample key of a document: a seeded hash of its input and id.
fn key(seed: u64, input: usize, id: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(seed);
    h.update(&(input as u64).to_le_bytes());
    h.update(id.as_bytes());
    h.digest()
}

/// The first `max` characters of `text`.
fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

const SELECTION: &str = "selection.bin";

/// The string in column `name` of row `r`, if the batch has the column and it is set.
fn string_at(b: &RecordBatch, name: &str, r: usize) -> Option<String> {
    let c = b.column_by_name(name)?;
    (!c.is_null(r)).then(|| primer_llm::template::cell(c, r).to_string())
}

impl Annotate {
    fn two_phases(&self) -> bool {
        self.cfg.sample_size.is_some()
    }

    /// Phase 0 with `sample_size`: the keys of the sampled documents, in every stratum
    /// the smallest; written to the scratch directory. Holds at most `sample_size` keys
    /// (8 bytes each) per stratum.
    fn select(&self, ctx: &TaskContext) -> Result<Vec<u64>> {
        let size = self.cfg.sample_size.expect("two phases have a size") as usize;
        let mut strata: BTreeMap<String, (u64, BinaryHeap<u64>)> = BTreeMap::new();
        let strat = self.cfg.stratify_by.as_deref();
        for (i, ds) in ctx.inputs.iter().enumerate() {
            let mut cols = vec!["id"];
            cols.extend(strat);
            for part in 0..ds.num_parts() {
                for batch in ds.read_part_columns(part, 8192, &cols)? {
                    ctx.check_cancelled()?;
                    let batch = batch?;
                    for r in 0..batch.num_rows() {
                        let Some(id) = string_at(&batch, "id", r) else {
                            continue;
                        };
                        let stratum = strat
                            .map(|s| string_at(&batch, s, r).unwrap_or_default())
                            .unwrap_or_default();
                        let (count, heap) = strata.entry(stratum).or_default();
                        *count += 1;
                        heap.push(key(self.cfg.seed, i, &id));
                        if heap.len() > size {
                            heap.pop();
                        }
                    }
                }
            }
        }
        let total: u64 = strata.values().map(|s| s.0).sum();
        let want = (size as u64).min(total);
        // How many from each stratum.
        let counts: Vec<u64> = strata.values().map(|s| s.0).collect();
        let take = match self.cfg.allocation {
            Allocation::Proportional => {
                // Largest remainder.
                let exact: Vec<f64> = counts
                    .iter()
                    .map(|&c| want as f64 * c as f64 / total.max(1) as f64)
                    .collect();
                let mut take: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
                let mut left = want - take.iter().sum::<u64>();
                let mut order: Vec<usize> = (0..take.len()).collect();
                order.sort_by(|&a, &b| {
                    (exact[b] - exact[b].floor())
                        .total_cmp(&(exact[a] - exact[a].floor()))
                        .then(a.cmp(&b))
                });
                for k in order {
                    if left == 0 {
                        break;
                    }
                    if take[k] < counts[k] {
                        take[k] += 1;
                        left -= 1;
                    }
                }
                take
            }
            Allocation::Equal => {
                let n = counts.len().max(1) as u64;
                counts.iter().map(|&c| c.min(want.div_ceil(n))).collect()
            }
        };
        let mut keys = Vec::new();
        for ((_, (_, heap)), t) in strata.into_iter().zip(take) {
            let mut v = heap.into_sorted_vec();
            v.truncate(t as usize);
            keys.extend(v);
        }
        keys.sort_unstable();
        Ok(keys)
    }

    fn selected(&self, ctx: &TaskContext) -> Result<Option<Vec<u64>>> {
        if !self.two_phases() {
            return Ok(None);
        }
        let path = ctx.scratch_dir.join(SELECTION);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Some(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    }

    fn sampled(&self, selection: Option<&[u64]>, k: u64) -> bool {
        match (selection, self.cfg.sample_fraction) {
            (Some(s), _) => s.binary_search(&k).is_ok(),
            (None, Some(f)) => (k as f64) < f * (u64::MAX as f64),
            (None, None) => true,
        }
    }

    async fn rate(
        &self,
        client: &Client,
        messages: &[Message],
        counters: &Mutex<Counters>,
    ) -> std::result::Result<Rating, ChatError> {
        match client.chat(messages, 0).await {
            Ok(a) => {
                a.stats
                    .count(&mut counters.lock().unwrap_or_else(|e| e.into_inner()));
                let parsed = self
                    .parser
                    .parse(&a.text, self.cfg.score_min, self.cfg.score_max);
                Ok(Rating {
                    parsed,
                    answer: Some(a.text),
                    model: Some(a.model),
                })
            }
            Err(ChatError::Failed(f)) => {
                count_failure(&f, &mut counters.lock().unwrap_or_else(|e| e.into_inner()));
                Ok(Rating {
                    parsed: Parsed::Problem {
                        reason: "llm_failed",
                        detail: format!("{} ({})", f.detail, f.cause),
                    },
                    answer: None,
                    model: None,
                })
            }
            Err(e) => Err(e),
        }
    }
}

struct Rating {
    parsed: Parsed,
    answer: Option<String>,
    model: Option<String>,
}

/// A sampled document waiting for its rating.
struct Doc {
    id: String,
    text: String,
    source: String,
    url: Option<String>,
    messages: Vec<Message>,
}

impl Stage for Annotate {
    fn kind(&self) -> &'static str {
        "annotate"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        if inputs.is_empty() {
            return Err(Error::input(
                "annotate needs an input: the documents to rate",
            ));
        }
        for i in inputs {
            for col in ["id", self.cfg.text_column.as_str()]
                .into_iter()
                .chain(self.cfg.stratify_by.as_deref())
            {
                if i.schema.index_of(col).is_err() {
                    return Err(Error::input(format!(
                        "input `{}` has no column `{col}`",
                        i.id
                    )));
                }
            }
        }
        let own: BTreeSet<&str> = ["text"].into_iter().collect();
        self.prompts
            .check(&own, "the text", inputs)
            .map_err(Error::input)?;
        Ok(annotations_schema())
    }

    fn external_fingerprint(&self) -> Result<String> {
        let mut f = String::new();
        if self.cfg.prompt_file.is_some() {
            f.push_str(&self.prompt_source);
        }
        let llm = &self.cfg.llm;
        if llm.base_url_env.is_some() || llm.model_env.is_some() {
            f.push_str(&format!(
                "\0{}\0{}",
                llm.base_url().map_err(Error::input)?,
                llm.model().map_err(Error::input)?
            ));
        }
        Ok(f)
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(self.phases(inputs)?.iter().sum())
    }

    fn phases(&self, inputs: &[Dataset]) -> Result<Vec<usize>> {
        let parts: usize = inputs.iter().map(Dataset::num_parts).sum();
        Ok(if self.two_phases() {
            vec![1, parts]
        } else {
            vec![parts]
        })
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        if self.two_phases() && task == 0 {
            let keys = self.select(ctx)?;
            std::fs::create_dir_all(ctx.scratch_dir).map_err(|e| Error::io(ctx.scratch_dir, e))?;
            let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
            primer_core::write_atomic(&ctx.scratch_dir.join(SELECTION), &bytes)?;
            out.count("annotate.sample", keys.len() as u64);
            return Ok(());
        }
        let selection = self.selected(ctx)?;
        let mut part = task - usize::from(self.two_phases());
        let mut input = 0;
        while part >= ctx.inputs[input].num_parts() {
            part -= ctx.inputs[input].num_parts();
            input += 1;
        }
        let ds = &ctx.inputs[input];
        let input_id = ds.manifest().stage.id.clone();
        let mut docs = Vec::new();
        for batch in ds.read_part(part, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            for r in 0..batch.num_rows() {
                let Some(id) = string_at(&batch, "id", r) else {
                    out.warn(format!("{input_id}: a row without an id; skipped"));
                    continue;
                };
                if !self.sampled(selection.as_deref(), key(self.cfg.seed, input, &id)) {
                    continue;
                }
                let text = string_at(&batch, &self.cfg.text_column, r).unwrap_or_default();
                let mut vars: BTreeMap<String, Value> = row_values(&batch, r);
                vars.insert("text".into(), Value::from(cut(&text, self.cfg.max_chars)));
                let messages = self.prompts.render(&vars).map_err(Error::input)?;
                docs.push(Doc {
                    source: string_at(&batch, "source", r).unwrap_or_else(|| input_id.clone()),
                    url: string_at(&batch, "url", r),
                    id,
                    text,
                    messages,
                });
            }
        }
        if docs.is_empty() {
            return Ok(());
        }
        let client = self.llm.client(ctx.dir)?;
        let counters = Mutex::new(Counters::default());
        let ratings: Vec<Rating> = self.llm.run_all(
            &client,
            docs.iter().collect(),
            "documents",
            ctx.cancel,
            out.status_callback(),
            |d: &Doc| self.rate(&client, &d.messages, &counters),
        )?;
        for (k, v) in counters
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.count(k, v);
        }
        let mut id = StringBuilder::new();
        let mut text = LargeStringBuilder::new();
        let mut source = StringBuilder::new();
        let mut url = StringBuilder::new();
        let mut score = Int64Builder::new();
        let mut rationale = LargeStringBuilder::new();
        let mut problem = StringBuilder::new();
        let mut answer = LargeStringBuilder::new();
        let mut model = StringBuilder::new();
        let mut pid = StringBuilder::new();
        for (d, r) in docs.iter().zip(ratings) {
            id.append_value(&d.id);
            text.append_value(&d.text);
            source.append_value(&d.source);
            url.append_option(d.url.as_deref());
            match r.parsed {
                Parsed::Score {
                    score: s,
                    rationale: why,
                } => {
                    score.append_value(s);
                    rationale.append_option(why.as_deref());
                    problem.append_null();
                    out.count(&format!("annotate.score.{s}"), 1);
                }
                Parsed::Problem { reason, detail } => {
                    score.append_null();
                    rationale.append_value(&detail);
                    problem.append_value(reason);
                    out.count(&format!("annotate.no_score.{reason}"), 1);
                }
            }
            answer.append_option(r.answer.as_deref());
            model.append_option(r.model.as_deref());
            pid.append_value(prompt_id(&d.messages));
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(text.finish()),
            Arc::new(source.finish()),
            Arc::new(url.finish()),
            Arc::new(score.finish()),
            Arc::new(rationale.finish()),
            Arc::new(problem.finish()),
            Arc::new(answer.finish()),
            Arc::new(model.finish()),
            Arc::new(pid.finish()),
        ];
        let batch =
            RecordBatch::try_new(out.schema(), cols).map_err(|e| Error::arrow("annotate", e))?;
        out.write(&batch)
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "template".into(),
            match (self.cfg.template, &self.cfg.prompt, &self.cfg.prompt_file) {
                (Some(AnnotateTemplate::Phi1Code), _, _) => "phi1_code",
                (_, Some(_), _) | (_, _, Some(_)) => "custom",
                _ => "fineweb_edu",
            }
            .into(),
        );
        m.insert(
            "scale".into(),
            serde_json::json!([self.cfg.score_min, self.cfg.score_max]),
        );
        m
    }

    fn counter_notes(&self, counters: &Counters) -> serde_json::Map<String, serde_json::Value> {
        let mut m = summary_notes(counters);
        let dist: serde_json::Map<String, serde_json::Value> = counters
            .iter()
            .filter_map(|(k, n)| {
                k.strip_prefix("annotate.score.")
                    .map(|s| (s.to_string(), n.into()))
            })
            .collect();
        m.insert("scores".into(), dist.into());
        m
    }

    fn report(&self, manifest: &Manifest) -> Vec<String> {
        let c = &manifest.counters;
        let mut lines = Summary::from_counters(c)
            .map(|s| s.lines())
            .unwrap_or_default();
        let scores: Vec<String> = (self.cfg.score_min..=self.cfg.score_max)
            .map(|s| format!("{s}: {}", c.get(&format!("annotate.score.{s}"))))
            .collect();
        let problems: Vec<String> = c
            .iter()
            .filter_map(|(k, n)| {
                k.strip_prefix("annotate.no_score.")
                    .map(|r| format!("{r} {n}"))
            })
            .collect();
        lines.push(format!(
            "scores: {}; no score: {}",
            scores.join(", "),
            if problems.is_empty() {
                "none".to_string()
            } else {
                problems.join(", ")
            }
        ));
        lines
    }
}
