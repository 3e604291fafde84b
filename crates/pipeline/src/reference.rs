//! The pipeline-file reference, generated from the settings types' doc comments.
//!
//! `docs/pipeline-reference.md` is this output; a test fails when the two differ (run the
//! tests with `PRIMER_BLESS=1` to rewrite the file after changing a setting's docs).

use schemars::{JsonSchema, Schema};
use serde_json::Value;

use crate::config::PipelineSection;

/// One documented table of the pipeline file.
fn section<T: JsonSchema>(out: &mut String, title: &str, intro: &str) {
    let schema: Schema = schemars::schema_for!(T);
    let root = schema.as_value();
    out.push_str(&format!("## {title}\n\n"));
    if let Some(d) = root.get("description").and_then(Value::as_str) {
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    if !intro.is_empty() {
        out.push_str(intro);
        out.push_str("\n\n");
    }
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| setting | type | default | meaning |\n|---|---|---|---|\n");
    if let Some(props) = root.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let default = if required.contains(&name.as_str()) {
                "required".to_string()
            } else {
                match prop.get("default") {
                    None | Some(Value::Null) => "none".to_string(),
                    Some(v) => format!("`{}`", serde_json::to_string(v).unwrap_or_default()),
                }
            };
            let meaning = prop
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace("\n\n", "<br>")
                .replace('\n', " ")
                // A `|` (as in `<|endoftext|>`) would end the table cell, even in code.
                .replace('|', "\\|");
            out.push_str(&format!(
                "| `{name}` | {} | {default} | {meaning} |\n",
                type_name(prop, root)
            ));
        }
    }
    out.push('\n');
}

fn type_name(prop: &Value, root: &Value) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let def = root.get("$defs").and_then(|d| d.get(name));
        return def
            .map(|d| type_name(d, root))
            .unwrap_or_else(|| name.to_string());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = prop.get(key).and_then(Value::as_array) {
            let consts: Vec<String> = alts
                .iter()
                .filter_map(|a| {
                    a.get("const")
                        .or_else(|| a.get("enum").and_then(|e| e.get(0)))
                })
                .filter_map(Value::as_str)
                .map(|s| format!("`{s}`"))
                .collect();
            if consts.len() == alts.len() {
                return format!("one of {}", consts.join(", "));
            }
            let names: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| type_name(a, root))
                .collect();
            return names.join(" or ");
        }
    }
    if let Some(e) = prop.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = e
            .iter()
            .filter_map(Value::as_str)
            .map(|s| format!("`{s}`"))
            .collect();
        return format!("one of {}", vals.join(", "));
    }
    match prop.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = prop
                .get("items")
                .map(|i| type_name(i, root))
                .unwrap_or_default();
            format!("list of {item}")
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(|t| {
                if t == "array" {
                    let item = prop
                        .get("items")
                        .map(|i| type_name(i, root))
                        .unwrap_or_default();
                    format!("list of {item}")
                } else {
                    t.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    }
}

/// The whole reference, as Markdown.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Pipeline file reference\n\n\
         Generated from the settings types' doc comments by `primer-pipeline`'s \
         `reference_markdown()`; a test keeps this file up to date (`PRIMER_BLESS=1 cargo test` \
         rewrites it).\n\n\
         A pipeline file has one `[pipeline]` table and one `[stages.<id>]` table per stage. A \
         stage has `inputs` (a list of stage ids, default none) and exactly one kind key, \
         `[stages.<id>.<kind>]`, holding that kind's settings. Unknown keys are errors. \
         Relative paths are relative to the pipeline file's directory.\n\n",
    );
    section::<PipelineSection>(&mut out, "`[pipeline]`", "");
    crate::config::document_kinds(&mut out, &mut |out, kind, f| f(out, kind));
    // The entries of a `filter` stage's chain, one table each.
    section::<primer_filters::GopherQualityConfig>(
        &mut out,
        "`filter` chain entry `gopher_quality`",
        "`{ gopher_quality = { … } }` in `chain`",
    );
    section::<primer_filters::GopherRepetitionConfig>(
        &mut out,
        "`filter` chain entry `gopher_repetition`",
        "`{ gopher_repetition = { … } }` in `chain`",
    );
    section::<primer_filters::C4Config>(
        &mut out,
        "`filter` chain entry `c4`",
        "`{ c4 = { … } }` in `chain`",
    );
    section::<primer_filters::FinewebConfig>(
        &mut out,
        "`filter` chain entry `fineweb`",
        "`{ fineweb = { … } }` in `chain`",
    );
    // The LLM client's settings, shared by the stages that call a model.
    section::<primer_llm::LlmConfig>(
        &mut out,
        "`llm` (the LLM client)",
        "`[stages.<id>.generate.llm]`, `[stages.<id>.annotate.llm]`",
    );
    section::<primer_llm::LimitsConfig>(
        &mut out,
        "`llm.limits`",
        "`[stages.<id>.generate.llm.limits]`",
    );
    section::<primer_llm::BudgetConfig>(
        &mut out,
        "`llm.budget`",
        "`[stages.<id>.generate.llm.budget]`",
    );
    section::<primer_llm::PriceConfig>(
        &mut out,
        "`llm.price`",
        "`[stages.<id>.generate.llm.price]`",
    );
    section::<primer_synth::ExecConfig>(
        &mut out,
        "`generate.exec` (exercise test runs)",
        "`[stages.<id>.generate.exec]`",
    );
    out
}

pub(crate) fn kind_section<T: JsonSchema>(out: &mut String, kind: &str) {
    section::<T>(
        out,
        &format!("`{kind}`"),
        &format!("`[stages.<id>.{kind}]`"),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_reference_is_up_to_date() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/pipeline-reference.md"
        );
        let want = super::reference_markdown();
        if std::env::var_os("PRIMER_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/pipeline-reference.md is out of date: run `PRIMER_BLESS=1 cargo test -p primer-pipeline` and commit it"
        );
    }
}
