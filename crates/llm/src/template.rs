//! Prompt templates: a system and a user message in MiniJinja (Jinja2) syntax, the
//! variables they use, a row of an Arrow batch as variables, and a prompt's id. Shared by
//! every stage that builds prompts (`generate`, `annotate`).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, ArrayRef, RecordBatch};
use primer_core::InputSchema;

use crate::Message;

/// Template values: strings, numbers, booleans, nothing.
pub type Value = minijinja::Value;

/// A compiled pair of templates.
pub struct Prompts {
    env: minijinja::Environment<'static>,
    has_system: bool,
    variables: BTreeSet<String>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompts")
            .field("variables", &self.variables)
            .finish_non_exhaustive()
    }
}

/// A template error with its line.
fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

impl Prompts {
    /// Compile `user` (and `system`); every problem is a sentence naming the template.
    /// Undefined variables are errors when rendering (`SemiStrict`), never empty text.
    pub fn new(system: Option<&str>, user: &str) -> Result<Prompts, Vec<String>> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        let mut problems = Vec::new();
        if let Err(e) = env.add_template_owned("prompt", user.to_string()) {
            problems.push(format!("the prompt template: {}", describe(&e)));
        }
        if let Some(s) = system
            && let Err(e) = env.add_template_owned("system", s.to_string())
        {
            problems.push(format!("the system template: {}", describe(&e)));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut variables = BTreeSet::new();
        for name in ["prompt", "system"] {
            if let Ok(t) = env.get_template(name) {
                variables.extend(t.undeclared_variables(false));
            }
        }
        let globals: BTreeSet<String> = env.globals().map(|(k, _)| k.to_string()).collect();
        variables.retain(|v| !globals.contains(v));
        Ok(Prompts {
            env,
            has_system: system.is_some(),
            variables,
        })
    }

    /// The variables the templates use (not set inside them, not built-in functions).
    pub fn variables(&self) -> &BTreeSet<String> {
        &self.variables
    }

    /// Each variable must be one of `own` (the stage's: design variables, say) or a
    /// column of every input; the problem names the variable and what there is.
    pub fn check(
        &self,
        own: &BTreeSet<&str>,
        own_name: &str,
        inputs: &[InputSchema],
    ) -> Result<(), String> {
        let mut missing = Vec::new();
        for v in &self.variables {
            if own.contains(v.as_str()) {
                continue;
            }
            let own_list = if own.is_empty() {
                "there are none".to_string()
            } else {
                own.iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if inputs.is_empty() {
                missing.push(format!(
                    "the template uses `{{{{ {v} }}}}`, which is not {own_name} ({own_list})"
                ));
                continue;
            }
            for i in inputs {
                if i.schema.index_of(v).is_err() {
                    let cols: Vec<String> = i
                        .schema
                        .fields()
                        .iter()
                        .map(|f| format!("`{}`", f.name()))
                        .collect();
                    missing.push(format!(
                        "the template uses `{{{{ {v} }}}}`, which is neither {own_name} nor a column of input `{}` ({})",
                        i.id,
                        cols.join(", ")
                    ));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }

    /// The messages for one set of variables.
    pub fn render(&self, vars: &BTreeMap<String, Value>) -> Result<Vec<Message>, String> {
        let ctx = Value::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let mut messages = Vec::with_capacity(2);
        if self.has_system {
            let t = self.env.get_template("system").map_err(|e| describe(&e))?;
            messages
                .push(Message::system(t.render(&ctx).map_err(|e| {
                    format!("the system template: {}", describe(&e))
                })?));
        }
        let t = self.env.get_template("prompt").map_err(|e| describe(&e))?;
        messages
            .push(Message::user(t.render(&ctx).map_err(|e| {
                format!("the prompt template: {}", describe(&e))
            })?));
        Ok(messages)
    }
}

/// A prompt's id: 16 hex digits of a hash of its messages (roles and contents).
pub fn prompt_id(messages: &[Message]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for m in messages {
        h.update(m.role.as_bytes());
        h.update(&[0]);
        h.update(m.content.as_bytes());
        h.update(&[0]);
    }
    format!("{:016x}", h.digest())
}

/// Row `r` of `batch` as template variables, by column name.
pub fn row_values(batch: &RecordBatch, r: usize) -> BTreeMap<String, Value> {
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().clone(), cell(batch.column(i), r)))
        .collect()
}

/// A cell as a template value: strings and numbers as themselves, the rest as text.
pub fn cell(a: &ArrayRef, r: usize) -> Value {
    use arrow::array::AsArray;
    use arrow::datatypes::*;
    if a.is_null(r) {
        return Value::from(());
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(r).into(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(r).into(),
        DataType::Utf8View => a.as_string_view().value(r).into(),
        DataType::Boolean => a.as_boolean().value(r).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(r).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(r).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(r).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(r).into(),
        DataType::Float64 => a.as_primitive::<Float64Type>().value(r).into(),
        DataType::Float32 => f64::from(a.as_primitive::<Float32Type>().value(r)).into(),
        _ => arrow::util::display::array_value_to_string(a, r)
            .unwrap_or_default()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_rendering_and_errors() {
        let p = Prompts::new(
            Some("You teach {{ audience }}."),
            "{% set n = 3 %}Write {{ n }} paragraphs on {{ topic }}{% for x in range(2) %}.{% endfor %}",
        )
        .unwrap();
        let vars: Vec<&str> = p.variables().iter().map(String::as_str).collect();
        assert_eq!(vars, ["audience", "topic"]);
        let mut v = BTreeMap::new();
        v.insert("audience".to_string(), Value::from("kids"));
        v.insert("topic".to_string(), Value::from("loops"));
        let m = p.render(&v).unwrap();
        assert_eq!(m[0].content, "You teach kids.");
        assert_eq!(m[1].content, "Write 3 paragraphs on loops..");
        assert_eq!(prompt_id(&m).len(), 16);
        v.remove("topic");
        let e = p.render(&v).unwrap_err();
        assert!(e.starts_with("the prompt template: undefined value"), "{e}");
        let e = Prompts::new(None, "{% if %}").unwrap_err();
        assert!(
            e[0].starts_with("the prompt template: syntax error"),
            "{e:?}"
        );
    }
}
