//! The `generate` stage at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, LargeStringBuilder, RecordBatch, StringBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use primer_core::{
    BuildContext, Counters, Dataset, Error, InputSchema, Manifest, Result, Stage, TaskContext,
    TaskOutput,
};
use primer_llm::template::{Prompts, Value, cell, prompt_id, row_values};
use primer_llm::{ChatError, Client, Message, StageClient, Summary, count_failure, summary_notes};

use crate::config::{GenerateConfig, ParseKind};
use crate::design::{Design, SplitMix64};
use crate::execute::{RunResult, Sandbox};
use crate::exercise::{Exercise, parse_exercise};

/// Rows per written batch.
const BATCH_ROWS: usize = 1024;

/// The `generate` stage, built from its settings.
pub struct Generate {
    cfg: GenerateConfig,
    source: String,
    prompts: Prompts,
    /// The user prompt's text, for the fingerprint when it comes from a file.
    prompt_source: String,
    design: Design,
    parse: ParseKind,
    template_name: String,
    selected: OnceLock<Vec<u64>>,
    llm: StageClient,
    sandbox: OnceLock<Sandbox>,
}

impl GenerateConfig {
    /// Check the settings and prepare the templates. Reads the prompt file and the API
    /// key's variable; sends nothing.
    pub fn build(&self, ctx: &BuildContext) -> Result<Generate> {
        let mut problems = Vec::new();
        let set = self.template.map(|t| t.set());
        let prompt = match (&self.prompt, &self.prompt_file) {
            (Some(_), Some(_)) => {
                problems.push("set `prompt` or `prompt_file`, not both".to_string());
                None
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => {
                let path = ctx.resolve(f);
                match std::fs::read_to_string(&path) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(format!("prompt_file: cannot read {}: {e}", path.display()));
                        None
                    }
                }
            }
            (None, None) => match set {
                Some(s) => Some(s.prompt.to_string()),
                None => {
                    problems.push(
                        "no prompt: set `template` (`textbook` or `exercises`), `prompt` or `prompt_file`"
                            .to_string(),
                    );
                    None
                }
            },
        };
        let system = self
            .system
            .clone()
            .or_else(|| set.map(|s| s.system.to_string()));
        let design_vars = match set {
            Some(s) => s.design_with(&self.design),
            None => self.design.clone(),
        };
        let design = Design::new(&design_vars);
        problems.extend(design.problems());
        problems.extend(self.llm.problems());
        if self.n == 0 {
            problems.push("n must be at least 1".to_string());
        }
        if self.sample == Some(0) {
            problems.push("sample must be at least 1".to_string());
        }
        if self.prompts_per_task == 0 {
            problems.push("prompts_per_task must be at least 1".to_string());
        }
        if !(self.exec.timeout_secs > 0.0 && self.exec.timeout_secs.is_finite()) {
            problems.push(format!(
                "exec.timeout_secs = {}: use a positive number",
                self.exec.timeout_secs
            ));
        }
        let prompts = match &prompt {
            Some(p) => match Prompts::new(system.as_deref(), p) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.extend(e);
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(Error::input(problems.join("; ")));
        }
        let parse = self
            .parse
            .unwrap_or_else(|| set.map_or(ParseKind::Text, |s| s.parse));
        Ok(Generate {
            source: self
                .source
                .clone()
                .unwrap_or_else(|| ctx.stage_id.to_string()),
            prompts: prompts.expect("no problems, so the prompt compiled"),
            prompt_source: prompt.unwrap_or_default(),
            design,
            parse,
            template_name: self
                .template
                .map_or_else(|| "custom".to_string(), |t| t.name().to_string()),
            selected: OnceLock::new(),
            llm: StageClient::new(&self.llm),
            sandbox: OnceLock::new(),
            cfg: self.clone(),
        })
    }
}

/// One prompt: its messages and what identifies it.
struct Prompt {
    messages: Vec<Message>,
    prompt_id: String,
    vars: String,
    seed_id: Option<String>,
    /// Position of the prompt (input, part, row, combination) for the documents' ids.
    position: String,
}

/// What one sample of a prompt came to.
enum Outcome {
    Kept {
        text: String,
        model: String,
        prompt_tokens: u64,
        completion_tokens: u64,
        finish_reason: String,
        exercise: Option<(Exercise, Option<bool>)>,
    },
    Rejected {
        reason: String,
        detail: String,
        answer: Option<String>,
        model: Option<String>,
        finish_reason: Option<String>,
    },
}

fn generated_fields(exercise: bool) -> Vec<Field> {
    let mut f = primer_core::documents_fields();
    f.extend([
        Field::new("prompt_id", DataType::Utf8, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("vars", DataType::Utf8, false),
        Field::new("seed_id", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, false),
        Field::new("prompt_tokens", DataType::UInt64, false),
        Field::new("completion_tokens", DataType::UInt64, false),
        Field::new("finish_reason", DataType::Utf8, false),
    ]);
    if exercise {
        f.extend([
            Field::new("function", DataType::Utf8, false),
            Field::new("signature", DataType::Utf8, false),
            Field::new("docstring", DataType::LargeUtf8, false),
            Field::new("solution", DataType::LargeUtf8, false),
            Field::new("tests", DataType::LargeUtf8, false),
            Field::new("tests_passed", DataType::Boolean, true),
        ]);
    }
    f
}

/// The schema of `generate`'s documents (`exercise`: with the exercise columns).
pub fn generated_schema(exercise: bool) -> SchemaRef {
    Arc::new(Schema::new(generated_fields(exercise)))
}

/// The schema of `side/rejected/`: prompts and answers that did not become documents.
pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("prompt_id", DataType::Utf8, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("vars", DataType::Utf8, false),
        Field::new("seed_id", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::LargeUtf8, false),
        Field::new("answer", DataType::LargeUtf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("finish_reason", DataType::Utf8, true),
    ]))
}

impl Generate {
    fn exercise(&self) -> bool {
        self.parse == ParseKind::Exercise
    }

    fn selected(&self) -> &[u64] {
        self.selected
            .get_or_init(|| self.design.select(self.cfg.sample, self.cfg.seed))
    }

    fn prompt(
        &self,
        mut vars: BTreeMap<String, Value>,
        combo: u64,
        seed_id: Option<String>,
        position: String,
    ) -> Result<Prompt> {
        let mut design_json = serde_json::Map::new();
        for (k, v) in self.design.combination(combo) {
            vars.insert(k.to_string(), Value::from(v));
            design_json.insert(k.to_string(), v.into());
        }
        let messages = self.prompts.render(&vars).map_err(Error::input)?;
        Ok(Prompt {
            prompt_id: prompt_id(&messages),
            messages,
            vars: serde_json::Value::Object(design_json).to_string(),
            seed_id,
            position,
        })
    }

    /// The prompts of a task.
    fn prompts(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<Vec<Prompt>> {
        if ctx.inputs.is_empty() {
            let per = self.cfg.prompts_per_task;
            let sel = self.selected();
            let range = (task * per).min(sel.len())..((task + 1) * per).min(sel.len());
            return sel[range]
                .iter()
                .map(|&c| self.prompt(BTreeMap::new(), c, None, format!("c{c}")))
                .collect();
        }
        // Task `task` is the task-th part over all inputs, in order.
        let (mut input, mut part) = (0, task);
        while part >= ctx.inputs[input].num_parts() {
            part -= ctx.inputs[input].num_parts();
            input += 1;
        }
        let ds: &Dataset = &ctx.inputs[input];
        let mut prompts = Vec::new();
        let mut row_no = 0usize;
        for batch in ds.read_part(part, ctx.batch_size)? {
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            let schema = batch.schema();
            for r in 0..batch.num_rows() {
                let vars = row_values(&batch, r);
                let seed_id = schema.index_of("id").ok().and_then(|i| {
                    let c = batch.column(i);
                    (!c.is_null(r)).then(|| cell(c, r).to_string())
                });
                let combos: Vec<u64> = match self.cfg.sample {
                    Some(k) if (k as u64) < self.design.size() => {
                        let key =
                            format!("{}\0{}", self.cfg.seed, seed_id.as_deref().unwrap_or(""));
                        let s = xxhash_rust::xxh3::xxh3_64(key.as_bytes())
                            ^ SplitMix64(row_no as u64).next_u64();
                        self.design.select(Some(k), s)
                    }
                    _ => (0..self.design.size()).collect(),
                };
                for c in combos {
                    prompts.push(self.prompt(
                        vars.clone(),
                        c,
                        seed_id.clone(),
                        format!("i{input}p{part}r{row_no}c{c}"),
                    )?);
                }
                row_no += 1;
            }
        }
        Ok(prompts)
    }

    /// Answer, read and (for exercises) test one sample.
    async fn sample(
        &self,
        client: &Client,
        prompt: &Prompt,
        sample: u32,
        counters: &Mutex<Counters>,
    ) -> std::result::Result<Outcome, ChatError> {
        let answer = match client.chat(&prompt.messages, sample).await {
            Ok(a) => a,
            Err(ChatError::Failed(f)) => {
                count_failure(&f, &mut counters.lock().unwrap_or_else(|e| e.into_inner()));
                return Ok(Outcome::Rejected {
                    reason: format!("llm_{}", f.cause.name()),
                    detail: f.detail,
                    answer: None,
                    model: None,
                    finish_reason: None,
                });
            }
            Err(e) => return Err(e),
        };
        answer
            .stats
            .count(&mut counters.lock().unwrap_or_else(|e| e.into_inner()));
        let rejected = |reason: &str, detail: String| Outcome::Rejected {
            reason: reason.to_string(),
            detail,
            answer: Some(answer.text.clone()),
            model: Some(answer.model.clone()),
            finish_reason: Some(answer.finish_reason.clone()),
        };
        if answer.text.trim().is_empty() {
            return Ok(rejected("empty", "the answer is empty".into()));
        }
        if answer.finish_reason == "length" && !self.cfg.keep_truncated {
            return Ok(rejected(
                "truncated",
                format!(
                    "the answer was cut off at llm.max_tokens = {} (finish reason `length`)",
                    self.cfg.llm.max_tokens
                ),
            ));
        }
        let exercise = if self.exercise() {
            let e = match parse_exercise(&answer.text) {
                Ok(e) => e,
                Err(inv) => return Ok(rejected(inv.reason, inv.detail)),
            };
            let passed = if self.cfg.execute {
                let sandbox = self.sandbox.get_or_init(|| Sandbox::new(&self.cfg.exec));
                match sandbox.run(&e.solution, &e.tests).await {
                    Ok(RunResult::Passed) => Some(true),
                    Ok(RunResult::Failed { reason, detail }) => {
                        return Ok(rejected(reason, detail));
                    }
                    Err(msg) => return Err(ChatError::Fatal(format!("exercise tests: {msg}"))),
                }
            } else {
                None
            };
            Some((e, passed))
        } else {
            None
        };
        let text = match &exercise {
            Some((e, _)) => e.solution.clone(),
            None => answer.text.clone(),
        };
        Ok(Outcome::Kept {
            text,
            model: answer.model,
            prompt_tokens: answer.prompt_tokens,
            completion_tokens: answer.completion_tokens,
            finish_reason: answer.finish_reason,
            exercise,
        })
    }

    fn doc_id(&self, p: &Prompt, sample: u32) -> String {
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(
                format!("{}\0{}\0{sample}", p.position, p.prompt_id).as_bytes()
            )
        )
    }
}

/// One sample's row: a document or a rejection.
struct Row {
    id: String,
    prompt_id: String,
    vars: String,
    sample: u32,
    seed_id: Option<String>,
    outcome: Outcome,
}

/// Rows of documents and of rejections, built up and written in batches.
struct Rows<'a> {
    exercise: bool,
    source: &'a str,
    rows: Vec<Row>,
}

impl Stage for Generate {
    fn kind(&self) -> &'static str {
        "generate"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        // Every template variable must be a design variable or a column of every input.
        let design: BTreeSet<&str> = self.design.names().collect();
        self.prompts
            .check(&design, "a design variable", inputs)
            .map_err(Error::input)?;
        Ok(generated_schema(self.exercise()))
    }

    fn external_fingerprint(&self) -> Result<String> {
        // The prompt file's text (inline prompts are in the settings already), and the
        // endpoint and model when they come from environment variables.
        let mut f = String::new();
        if self.cfg.prompt_file.is_some() {
            f.push_str(&self.prompt_source);
        }
        if self.cfg.llm.base_url_env.is_some() || self.cfg.llm.model_env.is_some() {
            f.push_str(&format!(
                "\0{}\0{}",
                self.cfg.llm.base_url().map_err(Error::input)?,
                self.cfg.llm.model().map_err(Error::input)?
            ));
        }
        Ok(f)
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        if inputs.is_empty() {
            Ok(self.selected().len().div_ceil(self.cfg.prompts_per_task))
        } else {
            Ok(inputs.iter().map(Dataset::num_parts).sum())
        }
    }

    fn side_outputs(&self, _output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        vec![("rejected".to_string(), rejected_schema())]
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let prompts = self.prompts(task, ctx, out)?;
        let client = self.llm.client(ctx.dir)?;
        let rt = self.llm.runtime()?;
        let n = self.cfg.n;
        let jobs: Vec<(usize, u32)> = (0..prompts.len())
            .flat_map(|p| (0..n).map(move |s| (p, s)))
            .collect();
        if ctx.inputs.is_empty() {
            out.count("rows_in", jobs.len() as u64);
        }
        out.count("generate.prompts", prompts.len() as u64);
        out.count("generate.samples", jobs.len() as u64);
        let counters = Mutex::new(Counters::default());
        let results: Vec<Outcome> = self.llm.run_all(
            &client,
            jobs.clone(),
            "samples",
            ctx.cancel,
            out.status_callback(),
            |(p, s)| self.sample(&client, &prompts[p], s, &counters),
        )?;
        for (k, v) in counters
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.count(k, v);
        }
        if self.cfg.execute && self.exercise() {
            let how = rt
                .block_on(
                    self.sandbox
                        .get_or_init(|| Sandbox::new(&self.cfg.exec))
                        .probe(),
                )
                .unwrap_or_else(|e| format!("unknown ({e})"));
            out.note("exercise_sandbox_network", how.into());
        }
        let mut rows = Rows {
            exercise: self.exercise(),
            source: &self.source,
            rows: Vec::new(),
        };
        for (&(p, s), outcome) in jobs.iter().zip(results) {
            let prompt = &prompts[p];
            rows.rows.push(Row {
                id: self.doc_id(prompt, s),
                prompt_id: prompt.prompt_id.clone(),
                vars: prompt.vars.clone(),
                sample: s,
                seed_id: prompt.seed_id.clone(),
                outcome,
            });
            if rows.rows.len() >= BATCH_ROWS {
                rows.flush(out)?;
            }
        }
        rows.flush(out)
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("template".into(), self.template_name.clone().into());
        m.insert(
            "parse".into(),
            format!("{:?}", self.parse).to_lowercase().into(),
        );
        m.insert(
            "model_requested".into(),
            self.cfg.llm.model().unwrap_or_default().into(),
        );
        m.insert("prompts".into(), self.selected().len().into());
        m
    }

    fn counter_notes(&self, counters: &Counters) -> serde_json::Map<String, serde_json::Value> {
        summary_notes(counters)
    }

    fn report(&self, manifest: &Manifest) -> Vec<String> {
        let c = &manifest.counters;
        let mut lines = Summary::from_counters(c)
            .map(|s| s.lines())
            .unwrap_or_default();
        if self.exercise() {
            let samples = c.get("generate.samples");
            let rejected: Vec<String> = c
                .iter()
                .filter_map(|(k, n)| k.strip_prefix("dropped.").map(|r| format!("{r} {n}")))
                .collect();
            lines.push(format!(
                "exercises: {samples} answers: {} parsed, {} kept{}; rejected: {}",
                c.get("exercises.parsed"),
                manifest.rows,
                if self.cfg.execute {
                    format!(" ({} passed their tests)", c.get("exercises.passed"))
                } else {
                    String::new()
                },
                if rejected.is_empty() {
                    "none".to_string()
                } else {
                    rejected.join(", ")
                }
            ));
        }
        lines
    }
}

impl Rows<'_> {
    fn flush(&mut self, out: &mut TaskOutput) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let schema = out.schema();
        let mut id = StringBuilder::new();
        let mut text = LargeStringBuilder::new();
        let mut source = StringBuilder::new();
        let mut url = StringBuilder::new();
        let mut prompt_id = StringBuilder::new();
        let mut sample = UInt32Builder::new();
        let mut vars = StringBuilder::new();
        let mut seed_id = StringBuilder::new();
        let mut model = StringBuilder::new();
        let mut pt = UInt64Builder::new();
        let mut ct = UInt64Builder::new();
        let mut finish = StringBuilder::new();
        let mut function = StringBuilder::new();
        let mut signature = StringBuilder::new();
        let mut docstring = LargeStringBuilder::new();
        let mut solution = LargeStringBuilder::new();
        let mut tests = LargeStringBuilder::new();
        let mut passed = BooleanBuilder::new();
        // Rejections.
        let mut r_id = StringBuilder::new();
        let mut r_prompt = StringBuilder::new();
        let mut r_sample = UInt32Builder::new();
        let mut r_vars = StringBuilder::new();
        let mut r_seed = StringBuilder::new();
        let mut r_reason = StringBuilder::new();
        let mut r_detail = LargeStringBuilder::new();
        let mut r_answer = LargeStringBuilder::new();
        let mut r_model = StringBuilder::new();
        let mut r_finish = StringBuilder::new();
        let mut rejected_reasons: Vec<String> = Vec::new();
        let mut parsed = 0u64;
        let mut passed_n = 0u64;
        for row in self.rows.drain(..) {
            let (doc_id, pid, v, s, seed) =
                (row.id, row.prompt_id, row.vars, row.sample, row.seed_id);
            match row.outcome {
                Outcome::Kept {
                    text: t,
                    model: m,
                    prompt_tokens,
                    completion_tokens,
                    finish_reason,
                    exercise,
                } => {
                    id.append_value(&doc_id);
                    text.append_value(&t);
                    source.append_value(self.source);
                    url.append_null();
                    prompt_id.append_value(&pid);
                    sample.append_value(s);
                    vars.append_value(&v);
                    seed_id.append_option(seed.as_deref());
                    model.append_value(&m);
                    pt.append_value(prompt_tokens);
                    ct.append_value(completion_tokens);
                    finish.append_value(&finish_reason);
                    if let Some((e, p)) = exercise {
                        parsed += 1;
                        passed_n += u64::from(p == Some(true));
                        function.append_value(&e.function);
                        signature.append_value(&e.signature);
                        docstring.append_value(&e.docstring);
                        solution.append_value(&e.solution);
                        tests.append_value(&e.tests);
                        passed.append_option(p);
                    }
                }
                Outcome::Rejected {
                    reason,
                    detail,
                    answer,
                    model: m,
                    finish_reason,
                } => {
                    if self.exercise && answer.is_some() && is_test_reason(&reason) {
                        parsed += 1;
                    }
                    r_id.append_value(&doc_id);
                    r_prompt.append_value(&pid);
                    r_sample.append_value(s);
                    r_vars.append_value(&v);
                    r_seed.append_option(seed.as_deref());
                    r_reason.append_value(&reason);
                    r_detail.append_value(&detail);
                    r_answer.append_option(answer.as_deref());
                    r_model.append_option(m.as_deref());
                    r_finish.append_option(finish_reason.as_deref());
                    rejected_reasons.push(reason);
                }
            }
        }
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(text.finish()),
            Arc::new(source.finish()),
            Arc::new(url.finish()),
            Arc::new(prompt_id.finish()),
            Arc::new(sample.finish()),
            Arc::new(vars.finish()),
            Arc::new(seed_id.finish()),
            Arc::new(model.finish()),
            Arc::new(pt.finish()),
            Arc::new(ct.finish()),
            Arc::new(finish.finish()),
        ];
        if self.exercise {
            cols.extend([
                Arc::new(function.finish()) as ArrayRef,
                Arc::new(signature.finish()),
                Arc::new(docstring.finish()),
                Arc::new(solution.finish()),
                Arc::new(tests.finish()),
                Arc::new(passed.finish()),
            ]);
            out.count("exercises.parsed", parsed);
            out.count("exercises.passed", passed_n);
        }
        let batch = RecordBatch::try_new(schema, cols).map_err(|e| Error::arrow("generate", e))?;
        out.write(&batch)?;
        let side = RecordBatch::try_new(
            rejected_schema(),
            vec![
                Arc::new(r_id.finish()),
                Arc::new(r_prompt.finish()),
                Arc::new(r_sample.finish()),
                Arc::new(r_vars.finish()),
                Arc::new(r_seed.finish()),
                Arc::new(r_reason.finish()),
                Arc::new(r_detail.finish()),
                Arc::new(r_answer.finish()),
                Arc::new(r_model.finish()),
                Arc::new(r_finish.finish()),
            ],
        )
        .map_err(|e| Error::arrow("generate rejected", e))?;
        if side.num_rows() > 0 {
            out.write_side("rejected", &side)?;
        }
        for r in rejected_reasons {
            out.dropped(&r, 1);
        }
        Ok(())
    }
}

/// Reasons given after an answer parsed as an exercise (its test run failed).
fn is_test_reason(reason: &str) -> bool {
    matches!(
        reason,
        "tests_failed"
            | "timeout"
            | "cpu_limit"
            | "memory_limit"
            | "file_size_limit"
            | "crashed"
            | "error"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn schemas_equal_the_schema_files() {
        use primer_core::testing::check_schema_file;
        check_schema_file("generated", &super::generated_schema(false));
        check_schema_file("exercises", &super::generated_schema(true));
        check_schema_file("generate-rejected", &super::rejected_schema());
    }
}
