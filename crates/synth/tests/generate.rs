//! The `generate` stage against a loopback server that speaks OpenAI's wire format
//! (`primer-fake-openai`): faults end as documents or rejections with their reason, a
//! rerun reads every answer from the cache and writes the same rows, exercises are
//! parsed, validated and tested, and input rows fill the template.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use primer_core::testing::{read_all, run_stage};
use primer_core::{BuildContext, Dataset, InputSchema, Stage};
use primer_fake_openai::{AnswerRequest, Config, Server};
use primer_synth::{Generate, GenerateConfig};

fn build(toml_text: &str, base: &Path) -> primer_core::Result<Generate> {
    let cfg: GenerateConfig = toml::from_str(toml_text).expect("settings parse");
    cfg.build(&BuildContext {
        stage_id: "gen",
        base_dir: base,
    })
}

fn strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"));
    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap();
    let c = c.as_string::<i32>();
    (0..c.len())
        .map(|i| {
            if c.is_null(i) {
                String::new()
            } else {
                c.value(i).to_string()
            }
        })
        .collect()
}

fn llm(server: &Server) -> String {
    format!(
        "[llm]\nbase_url = \"{}\"\nmodel = \"fake\"\nseed = 5\n[llm.limits]\ntimeout_secs = 0.5\nbackoff_initial_secs = 0.01\nbackoff_max_secs = 0.05\nmax_retries = 3\nmax_in_flight = 8\n",
        server.base_url()
    )
}

#[test]
fn faults_end_as_documents_or_rejections_and_nothing_is_answered_twice() {
    let server = Server::start(Config {
        stall: Duration::from_secs(3),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        r#"prompt = "Write a textbook section about {{{{ topic }}}}."
n = 2
design.topic = ["plain", "a [[faults: 429ms]]", "b [[faults: 500, 503]]", "c [[faults: stall]]",
  "d [[faults: drop]]", "e [[faults: malformed]]", "f [[faults: empty]]", "g [[faults: length]]",
  "h [[faults: 400]]", "i [[faults: 500, 500, 500, 500]]"]
{}"#,
        llm(&server)
    );
    let stage = build(&text, tmp.path()).unwrap();
    let out = run_stage(&stage, &[], &tmp.path().join("out"), 100).unwrap();
    let docs = read_all(&out).unwrap();
    let rejected = read_all(&Dataset::open(tmp.path().join("out/side/rejected")).unwrap()).unwrap();
    // Every sample is a document or a rejection.
    assert_eq!(docs.num_rows() + rejected.num_rows(), 20);
    let topics_of = |b: &RecordBatch| -> Vec<String> {
        strings(b, "vars")
            .iter()
            .map(|v| {
                let v: serde_json::Value = serde_json::from_str(v).unwrap();
                v["topic"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let mut kept = topics_of(&docs);
    kept.sort();
    assert_eq!(
        kept,
        [
            "a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f", "f", "p", "p"
        ]
    );
    let reasons = strings(&rejected, "reason");
    let mut by_topic: Vec<(String, String)> =
        topics_of(&rejected).into_iter().zip(reasons).collect();
    by_topic.sort();
    assert_eq!(
        by_topic,
        [
            ("g", "truncated"),
            ("g", "truncated"),
            ("h", "llm_http_400"),
            ("h", "llm_http_400"),
            ("i", "llm_http_500"),
            ("i", "llm_http_500"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // The truncated answers are kept in the rejection with their text.
    let answers = strings(&rejected, "answer");
    assert!(answers.iter().filter(|a| a.starts_with("Answer ")).count() == 2);
    let m = out.manifest();
    assert_eq!(m.counters.get("dropped.truncated"), 2);
    assert_eq!(m.counters.get("dropped.llm_http_400"), 2);
    assert_eq!(m.counters.get("llm.retries.timeout"), 2);
    assert_eq!(m.notes["llm"]["answers"], 16);
    // No prompt (with its seed) was answered twice.
    let per = server.answers_per_prompt();
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    assert_eq!(per.len(), 16);
    // The report names what happened.
    let report = stage.report(m).join("\n");
    assert!(report.contains("16 answered by the server"), "{report}");
    assert!(
        report.contains("4 failed: http_400 ×2, http_500 ×2"),
        "{report}"
    );
}

#[test]
fn a_rerun_reads_every_answer_from_the_cache_and_writes_the_same_rows() {
    let server = Server::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "template = \"textbook\"\nsample = 30\nseed = 9\nprompts_per_task = 7\n{}",
        llm(&server)
    );
    let stage = build(&text, tmp.path()).unwrap();
    assert_eq!(stage.num_tasks(&[]).unwrap(), 5);
    let dir = tmp.path().join("out");
    let first = read_all(&run_stage(&stage, &[], &dir, 100).unwrap()).unwrap();
    assert_eq!(first.num_rows(), 30);
    let sent = server.requests();
    assert_eq!(sent, 30);
    // Ids are unique, the design variables are recorded, the text is the answer.
    let ids = strings(&first, "id");
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 30);
    let vars: serde_json::Value = serde_json::from_str(&strings(&first, "vars")[0]).unwrap();
    assert!(vars["topic"].is_string() && vars["audience"].is_string() && vars["style"].is_string());
    assert!(
        strings(&first, "text")
            .iter()
            .all(|t| t.starts_with("Answer "))
    );
    assert!(strings(&first, "source").iter().all(|s| s == "gen"));

    // A new stage object (as a new process would) over the same directory: all from the
    // cache. The first is closed first, as a process ends: until its writer commits (every
    // 50 ms), its answers are in its journal, which only its own process reads.
    drop(stage);
    let stage = build(&text, tmp.path()).unwrap();
    let again = run_stage(&stage, &[], &dir, 3).unwrap();
    assert_eq!(read_all(&again).unwrap(), first);
    assert_eq!(server.requests(), sent, "nothing was sent again");
    assert_eq!(again.manifest().counters.get("llm.cache_hits"), 30);
}

/// Answers a exercise prompt by its topic: a good exercise, one whose tests fail, broken
/// code, one without tests, one without a docstring, a stub.
fn exercise_answer(r: &AnswerRequest) -> String {
    let body = if r.prompt.contains("good") {
        "def add(a: int, b: int) -> int:\n    \"\"\"Return a + b.\"\"\"\n    return a + b\n\nassert add(1, 2) == 3\nassert add(0, 0) == 0\nassert add(-1, 1) == 0\n"
    } else if r.prompt.contains("wrong") {
        "def sub(a: int, b: int) -> int:\n    \"\"\"Return a - b.\"\"\"\n    return a + b\n\nassert sub(3, 1) == 2\n"
    } else if r.prompt.contains("broken") {
        "def mul(a, b):\n    \"\"\"Multiply.\"\"\"\n    return a *\n"
    } else if r.prompt.contains("untested") {
        "def neg(a):\n    \"\"\"Negate.\"\"\"\n    return -a\n"
    } else if r.prompt.contains("undocumented") {
        "def sq(a):\n    return a * a\n\nassert sq(2) == 4\n"
    } else if r.prompt.contains("slow") {
        "def spin(n: int) -> int:\n    \"\"\"Spin.\"\"\"\n    while True:\n        n += 1\n\nassert spin(1) > 0\n"
    } else {
        "def stub(a):\n    \"\"\"Nothing yet.\"\"\"\n    ...\n\nassert stub(1) is None\n"
    };
    format!("Here is the exercise.\n\n```python\n{body}```\n")
}

#[test]
fn exercises_are_parsed_validated_and_tested() {
    let server = Server::start(Config {
        responder: Arc::new(exercise_answer),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "template = \"exercises\"\nexecute = true\nexec.cpu_secs = 1\nexec.timeout_secs = 5\ndesign.topic = [\"good\", \"wrong\", \"broken\", \"untested\", \"undocumented\", \"slow\", \"stub\"]\ndesign.difficulty = [\"easy\"]\n{}",
        llm(&server)
    );
    let stage = build(&text, tmp.path()).unwrap();
    let out = run_stage(&stage, &[], &tmp.path().join("out"), 100).unwrap();
    let docs = read_all(&out).unwrap();
    assert_eq!(docs.num_rows(), 1);
    assert_eq!(strings(&docs, "function"), ["add"]);
    assert_eq!(
        strings(&docs, "signature"),
        ["def add(a: int, b: int) -> int:"]
    );
    assert_eq!(strings(&docs, "docstring"), ["Return a + b."]);
    assert_eq!(strings(&docs, "tests")[0].lines().count(), 3);
    assert_eq!(strings(&docs, "tests_passed"), ["true"]);
    assert!(strings(&docs, "text")[0].starts_with("def add("));
    let rejected = read_all(&Dataset::open(tmp.path().join("out/side/rejected")).unwrap()).unwrap();
    let mut reasons = strings(&rejected, "reason");
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "cpu_limit",
            "no_docstring",
            "no_implementation",
            "no_tests",
            "syntax_error",
            "tests_failed"
        ]
    );
    let m = out.manifest();
    assert_eq!(m.counters.get("exercises.parsed"), 3);
    assert_eq!(m.counters.get("exercises.passed"), 1);
    assert!(m.notes.contains_key("exercise_sandbox_network"));
    let report = stage.report(m).join("\n");
    assert!(
        report.contains("exercises: 7 answers: 3 parsed, 1 kept (1 passed their tests)"),
        "{report}"
    );
}

/// A document dataset of (id, text) rows, one part.
fn docs_dataset(dir: &Path, docs: &[(&str, &str)]) -> Dataset {
    use arrow::array::{ArrayRef, LargeStringArray, StringArray};
    let schema = primer_core::documents_schema();
    let sd = primer_core::StageDir::open(dir, "docs", schema.clone(), Default::default()).unwrap();
    let mut out = sd.task_output(0).unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(docs.iter().map(|d| d.0))),
        Arc::new(LargeStringArray::from_iter_values(docs.iter().map(|d| d.1))),
        Arc::new(StringArray::from_iter_values(docs.iter().map(|_| "seed"))),
        Arc::new(StringArray::from(vec![None::<&str>; docs.len()])),
    ];
    out.write(&RecordBatch::try_new(schema, cols).unwrap())
        .unwrap();
    sd.complete(out).unwrap();
    let info = primer_core::StageInfo {
        id: "docs".into(),
        kind: "read".into(),
    };
    sd.finalize(info, Default::default(), 1, 0, 0.0, Default::default())
        .unwrap();
    Dataset::open(dir).unwrap()
}

#[test]
fn input_rows_fill_the_template_with_a_seeded_draw_per_row() {
    let server = Server::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let input = docs_dataset(
        &tmp.path().join("docs"),
        &[("d1", "lists"), ("d2", "dicts"), ("d3", "sets")],
    );
    let text = format!(
        "prompt = \"Teach {{{{ text }}}} (from {{{{ id }}}}) to {{{{ audience }}}}.\"\nsample = 2\nseed = 4\ndesign.audience = [\"kids\", \"adults\", \"experts\"]\n{}",
        llm(&server)
    );
    let stage = build(&text, tmp.path()).unwrap();
    let schemas = [InputSchema {
        id: "docs".into(),
        schema: input.schema(),
    }];
    stage.output_schema(&schemas).unwrap();
    let out = run_stage(
        &stage,
        std::slice::from_ref(&input),
        &tmp.path().join("out"),
        2,
    )
    .unwrap();
    let b = read_all(&out).unwrap();
    assert_eq!(b.num_rows(), 6);
    assert_eq!(strings(&b, "seed_id"), ["d1", "d1", "d2", "d2", "d3", "d3"]);
    let texts = strings(&b, "text");
    assert!(
        texts[0].contains("Teach lists (from d1) to "),
        "{}",
        texts[0]
    );
    assert_eq!(out.manifest().counters.get("rows_in"), 3);
    // The draw per row is seeded: the same on a rerun into another directory.
    let again = run_stage(&stage, &[input], &tmp.path().join("out2"), 1).unwrap();
    assert_eq!(
        strings(&read_all(&again).unwrap(), "vars"),
        strings(&b, "vars")
    );

    // A variable that is neither a column nor a design variable is refused, named.
    let bad = format!(
        "prompt = \"Teach {{{{ txt }}}} to {{{{ audience }}}}.\"\ndesign.audience = [\"kids\"]\n{}",
        llm(&server)
    );
    let e = build(&bad, tmp.path())
        .unwrap()
        .output_schema(&schemas)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the template uses `{{ txt }}`, which is neither a design variable nor a column of input `docs` (`id`, `text`, `source`, `url`)"),
        "{e}"
    );
    let e = build(&bad, tmp.path())
        .unwrap()
        .output_schema(&[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`{{ txt }}`, which is not a design variable (`audience`)"),
        "{e}"
    );
}

#[test]
fn bad_settings_are_reported_together() {
    let tmp = tempfile::tempdir().unwrap();
    let e = build(
        "prompt = \"{% if %}\"\nn = 0\ndesign.topic = []\n[llm]\nbase_url = \"ftp://x\"\nmodel = \"m\"\napi_key_env = \"PRIMER_UNSET_KEY_VARIABLE_7\"\n",
        tmp.path(),
    )
    .err()
    .unwrap()
    .to_string();
    for want in [
        "design.topic has no values",
        "llm.base_url `ftp://x`: the scheme must be http or https",
        "`PRIMER_UNSET_KEY_VARIABLE_7` is not set",
        "n must be at least 1",
        "the prompt template: syntax error",
    ] {
        assert!(e.contains(want), "{want} not in: {e}");
    }
    let e = build(
        "[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n",
        tmp.path(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("no prompt: set `template`"), "{e}");
    let e = toml::from_str::<GenerateConfig>(
        "template = \"texbook\"\n[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unknown variant `texbook`, expected `textbook` or `exercises`"),
        "{e}"
    );
    let file = build(
        "prompt_file = \"missing.j2\"\n[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n",
        tmp.path(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(file.contains("prompt_file: cannot read"), "{file}");
}
