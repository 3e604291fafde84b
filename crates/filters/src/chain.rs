//! The `filter` stage: an ordered chain of heuristic filters applied in one pass.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::{
    C4Config, C4LineCounts, Decision, FinewebConfig, GopherQualityConfig, GopherRepetitionConfig,
    cached_words,
};
use crate::text::text_column;

/// One filter of a chain: exactly one key naming the filter, with its settings (all
/// optional; defaults are the published values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterRule {
    /// Gopher quality rules (word counts, mean word length, symbols, bullets, ellipses,
    /// alphabetic words, stop words).
    GopherQuality(GopherQualityConfig),
    /// Gopher repetition rules (duplicate lines, paragraphs and n-grams).
    GopherRepetition(GopherRepetitionConfig),
    /// C4 rules: removes lines (javascript, policy, no terminal punctuation, short,
    /// citation markers) and drops documents (lorem ipsum, curly bracket, too few
    /// sentences). Changes the text of the documents it keeps.
    C4(C4Config),
    /// FineWeb rules (line punctuation, short lines, duplicate line characters, newlines
    /// per word).
    Fineweb(FinewebConfig),
}

impl FilterRule {
    /// The filter's name, as in counters and the side dataset's `filter` column.
    pub fn name(&self) -> &'static str {
        match self {
            FilterRule::GopherQuality(_) => "gopher_quality",
            FilterRule::GopherRepetition(_) => "gopher_repetition",
            FilterRule::C4(_) => "c4",
            FilterRule::Fineweb(_) => "fineweb",
        }
    }

    /// This filter's decision on `text`, whose words are in `words` once split.
    fn check<'a>(
        &self,
        text: &'a str,
        words: &mut Option<Vec<&'a str>>,
        counts: &mut ChainCounts,
    ) -> Decision {
        match self {
            FilterRule::GopherQuality(c) => c.check_words(text, cached_words(text, words)),
            FilterRule::GopherRepetition(c) => c.check_with(text, words),
            FilterRule::C4(c) => c.check_counting(text, &mut counts.c4_lines),
            FilterRule::Fineweb(c) => c.check_with(text, words),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            FilterRule::GopherQuality(c) => c.validate(),
            FilterRule::GopherRepetition(c) => c.validate(),
            FilterRule::C4(c) => c.validate(),
            FilterRule::Fineweb(c) => c.validate(),
        }
    }
}

/// Settings of the `filter` stage: heuristic filters applied in order, in one pass; a
/// document dropped by one filter is not seen by the next, and C4's line removals are seen
/// by the filters after it.
/// Memory: while a document is checked, about 150 bytes per word of it (its tokens, words
/// and n-gram hashes); each thread keeps these buffers for the next document when it had
/// at most 65,536 words, and nothing else from one document to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The filters, in the order they apply: a list of one-key tables, e.g.
    /// `chain = [{ gopher_quality = {} }, { c4 = { min_num_sentences = 3 } }]` or
    /// `[[stages.<id>.filter.chain]]` tables. Keys: `gopher_quality`,
    /// `gopher_repetition`, `c4`, `fineweb`. Required, at least one.
    pub chain: Vec<FilterRule>,
    /// Also write every dropped document, with the `filter` and `reason` that dropped it,
    /// to the side dataset `side/dropped/`. Default false.
    #[serde(default)]
    pub keep_dropped: bool,
}

impl FilterConfig {
    pub fn build(&self, _ctx: &BuildContext) -> Result<FilterStage> {
        if self.chain.is_empty() {
            return Err(Error::Input(
                "filter.chain is empty: list at least one of gopher_quality, gopher_repetition, c4, fineweb".into(),
            ));
        }
        for r in &self.chain {
            r.validate().map_err(Error::Input)?;
        }
        Ok(FilterStage {
            config: self.clone(),
        })
    }
}

/// The runtime `filter` stage.
pub struct FilterStage {
    config: FilterConfig,
}

/// What the chain decided for one document.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOutcome {
    /// Kept; `Some(text)` when a filter changed the text.
    Keep(Option<String>),
    /// Dropped by filter `.0` for reason `.1`.
    Drop(&'static str, &'static str),
}

/// Per-document counts the chain accumulates besides decisions.
#[derive(Debug, Default)]
pub struct ChainCounts {
    pub c4_lines: C4LineCounts,
}

impl FilterStage {
    /// Apply the chain to one text.
    pub fn apply(&self, text: &str, counts: &mut ChainCounts) -> ChainOutcome {
        let mut current: Option<String> = None;
        // The words of `text`, split once for all the filters that count them. Once a
        // filter has changed the text, the filters after it split the new text themselves
        // (C4, the filter that changes text, usually comes after those that count words).
        let mut words: Option<Vec<&str>> = None;
        for rule in &self.config.chain {
            let d = match current.as_deref() {
                None => rule.check(text, &mut words, counts),
                Some(t) => rule.check(t, &mut None, counts),
            };
            match d {
                Decision::Keep => {}
                Decision::KeepText(new) => current = Some(new),
                Decision::Drop(reason) => return ChainOutcome::Drop(rule.name(), reason),
            }
        }
        ChainOutcome::Keep(current)
    }

    fn modifies_text(&self) -> bool {
        self.config
            .chain
            .iter()
            .any(|r| matches!(r, FilterRule::C4(_)))
    }
}

/// The schema of the `dropped` side dataset: the input's columns plus `filter` and `reason`.
fn dropped_schema(output: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = output.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("filter", DataType::Utf8, false));
    fields.push(Field::new("reason", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

impl Stage for FilterStage {
    fn kind(&self) -> &'static str {
        "filter"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        crate::text::require_text(inputs, "filter")
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts())
    }

    fn side_outputs(&self, output: &SchemaRef) -> Vec<(String, SchemaRef)> {
        if self.config.keep_dropped {
            vec![("dropped".into(), dropped_schema(output))]
        } else {
            Vec::new()
        }
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("modifies_text".into(), self.modifies_text().into());
        m.insert(
            "chain".into(),
            self.config
                .chain
                .iter()
                .map(|r| serde_json::Value::from(r.name()))
                .collect::<Vec<_>>()
                .into(),
        );
        m.insert("reference".into(), "datatrove 0.10.1".into());
        m
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let input = &ctx.inputs[0];
        let mut counts = ChainCounts::default();
        for batch in input.read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            let col = text_column(&batch)?;
            let ids = batch
                .column_by_name("id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
            let n = batch.num_rows();
            let mut keep = Vec::with_capacity(n);
            let mut new_texts: Vec<Option<String>> = vec![None; n];
            let mut any_new = false;
            let mut dropped_rows: Vec<u32> = Vec::new();
            let mut dropped_filter: Vec<&'static str> = Vec::new();
            let mut dropped_reason: Vec<&'static str> = Vec::new();
            for (i, slot) in new_texts.iter_mut().enumerate() {
                let Some(text) = col.get(i) else {
                    let id = ids
                        .as_ref()
                        .map(|a| a.value(i).to_string())
                        .unwrap_or_else(|| format!("row {i}"));
                    out.warn(format!("document {id}: text is null; dropped"));
                    out.dropped("null_text", 1);
                    keep.push(false);
                    continue;
                };
                match self.apply(text, &mut counts) {
                    ChainOutcome::Keep(t) => {
                        keep.push(true);
                        if t.is_some() {
                            any_new = true;
                        }
                        *slot = t;
                    }
                    ChainOutcome::Drop(filter, reason) => {
                        keep.push(false);
                        out.dropped(&format!("{filter}.{reason}"), 1);
                        if self.config.keep_dropped {
                            dropped_rows.push(i as u32);
                            dropped_filter.push(filter);
                            dropped_reason.push(reason);
                        }
                    }
                }
            }
            let batch_out = if any_new {
                let replaced = col.replaced(&new_texts);
                let idx = batch.schema().index_of("text").expect("checked");
                let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
                cols[idx] = replaced;
                RecordBatch::try_new(batch.schema(), cols)
                    .map_err(|e| Error::arrow("replacing text", e))?
            } else {
                batch.clone()
            };
            let mask = BooleanArray::from(keep);
            let kept = arrow::compute::filter_record_batch(&batch_out, &mask)
                .map_err(|e| Error::arrow("filtering rows", e))?;
            out.count("kept", kept.num_rows() as u64);
            out.write(&kept)?;
            if !dropped_rows.is_empty() {
                let idx = arrow::array::UInt32Array::from(dropped_rows);
                let mut cols: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|c| arrow::compute::take(c, &idx, None))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| Error::arrow("taking dropped rows", e))?;
                cols.push(Arc::new(StringArray::from(dropped_filter)));
                cols.push(Arc::new(StringArray::from(dropped_reason)));
                let side = RecordBatch::try_new(dropped_schema(&batch.schema()), cols)
                    .map_err(|e| Error::arrow("dropped rows", e))?;
                out.write_side("dropped", &side)?;
            }
        }
        let l = counts.c4_lines;
        for (name, v) in [
            ("c4.lines_removed.too_long_word", l.too_long_word),
            ("c4.lines_removed.no_terminal_punct", l.no_terminal_punct),
            ("c4.lines_removed.too_few_words", l.too_few_words),
            ("c4.lines_removed.javascript", l.javascript),
            ("c4.lines_removed.policy", l.policy),
        ] {
            if v > 0 {
                out.count(name, v);
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

    fn good_page() -> String {
        (0..8)
            .map(|i| {
                format!(
                    "Paragraph {i} explains how the parser reads the input and what it does with each token that it finds in the stream."
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn parse(toml_text: &str) -> FilterConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn chain_counts_reasons_and_writes_dropped_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let good = good_page();
        let with_js = format!("{good}\nPlease enable JavaScript in your browser.");
        let short = "Too short to keep.";
        let curly = format!("{good}\nA dict looks like {{1: 2}} in the text.");
        let input = test_dataset(
            &tmp.path().join("in"),
            &[&[good.as_str(), short], &[with_js.as_str(), curly.as_str()]],
        );
        let cfg = parse(
            r#"
            keep_dropped = true
            [[chain]]
            gopher_quality = {}
            [[chain]]
            c4 = { min_num_sentences = 5 }
            "#,
        );
        let stage = cfg
            .build(&BuildContext {
                stage_id: "f",
                base_dir: std::path::Path::new("."),
            })
            .unwrap();
        let ds = run_stage(&stage, &[input], &tmp.path().join("out"), 100).unwrap();
        let b = read_all(&ds).unwrap();
        let ids: Vec<&str> = b
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(ids, ["d1", "d3"]);
        // C4 removed the javascript line.
        let texts: Vec<&str> = b
            .column(1)
            .as_string::<i64>()
            .iter()
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(texts, [good.as_str(), good.as_str()]);
        let m = ds.manifest();
        let counters = serde_json::to_value(&m.counters).unwrap();
        assert_eq!(counters["dropped.gopher_quality.gopher_short_doc"], 1);
        assert_eq!(counters["dropped.c4.curly_bracket"], 1);
        assert_eq!(counters["c4.lines_removed.javascript"], 1);
        assert_eq!(counters["rows_in"], 4);
        assert_eq!(counters["kept"], 2);
        assert_eq!(m.notes["modifies_text"], true);
        let side = primer_core::Dataset::open(tmp.path().join("out/side/dropped")).unwrap();
        let s = read_all(&side).unwrap();
        let col = |name: &str| -> Vec<String> {
            s.column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|x| x.unwrap().to_string())
                .collect()
        };
        assert_eq!(col("id"), ["d2", "d4"]);
        assert_eq!(col("filter"), ["gopher_quality", "c4"]);
        assert_eq!(col("reason"), ["gopher_short_doc", "curly_bracket"]);
    }

    #[test]
    fn settings_are_strict_and_validated() {
        let e = toml::from_str::<FilterConfig>("[[chain]]\ngopher_quality = { min_words = 3 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `min_words`"), "{e}");
        let e = toml::from_str::<FilterConfig>("[[chain]]\nbogus = {}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `bogus`"), "{e}");
        let ctx = BuildContext {
            stage_id: "f",
            base_dir: std::path::Path::new("."),
        };
        let e = parse("chain = []").build(&ctx).err().unwrap().to_string();
        assert!(e.contains("filter.chain is empty"), "{e}");
        let e = parse("chain = [{ fineweb = { line_punct_thr = 1.5 } }]")
            .build(&ctx)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("fineweb.line_punct_thr = 1.5: must be between 0 and 1"),
            "{e}"
        );
        // Defaults are the published values.
        let c = parse("chain = [{ gopher_repetition = {} }]");
        assert_eq!(c.chain[0], FilterRule::GopherRepetition(Default::default()));
        assert!(!c.keep_dropped);
    }

    #[test]
    fn missing_text_column_is_named() {
        let stage = parse("chain = [{ fineweb = {} }]")
            .build(&BuildContext {
                stage_id: "f",
                base_dir: std::path::Path::new("."),
            })
            .unwrap();
        let schema =
            std::sync::Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let e = stage
            .output_schema(&[InputSchema {
                id: "docs".into(),
                schema,
            }])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "input `docs` has no column `text` (a `filter` stage needs document text)"
        );
    }
}
