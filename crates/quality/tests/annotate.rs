//! The `annotate` stage against a loopback server that speaks OpenAI's wire format
//! (`primer-fake-openai`): a seeded, stratified sample; every answer form the parser meets
//! (the FineWeb-Edu line in its variants, no score, out of range, not a whole number,
//! JSON, malformed JSON); failed requests kept with their reason; nothing answered twice.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use primer_core::testing::{documents_dataset, read_all, run_stage};
use primer_core::{BuildContext, InputSchema, Stage};
use primer_fake_openai::{AnswerRequest, Config, Server};
use primer_quality::AnnotateConfig;

/// The answer a document asks for: its text names the form.
fn answer(r: &AnswerRequest) -> String {
    let p = &r.prompt;
    let form = [
        "form-a", "form-b", "form-c", "form-d", "form-e", "form-f", "form-g", "form-h", "form-i",
    ]
    .into_iter()
    .find(|f| p.contains(f))
    .unwrap_or("form-a");
    match form {
        "form-a" => "The extract explains loops with examples.\nEducational score: 4".into(),
        "form-b" => "It is a tutorial.\n\n**Educational Score:** 3/5".into(),
        "form-c" => "Some information, poorly organised. Educational score:  2".into(),
        "form-d" => "I would give it a high score.".into(),
        "form-e" => "Educational score: 10".into(),
        "form-f" => "Educational score: 2.5".into(),
        "form-g" => r#"{"score": 5, "rationale": "A textbook chapter."}"#.into(),
        "form-h" => r#"{"score": 9, "rationale": "Too high."}"#.into(),
        _ => r#"{ "rationale": "3.0}"#.into(),
    }
}

fn build(toml_text: &str, url: &str) -> primer_quality::Annotate {
    let text = format!(
        "{toml_text}\n[llm]\nbase_url = \"{url}\"\nmodel = \"fake\"\n[llm.limits]\ntimeout_secs = 1\nbackoff_initial_secs = 0.01\nbackoff_max_secs = 0.05\nmax_retries = 2\n"
    );
    let cfg: AnnotateConfig = toml::from_str(&text).unwrap();
    cfg.build(&BuildContext {
        stage_id: "ann",
        base_dir: Path::new("/"),
    })
    .unwrap()
}

fn col(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = arrow::compute::cast(
        b.column_by_name(name).unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let c = c.as_string::<i32>();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
        .collect()
}

#[test]
fn every_answer_form_is_read_or_kept_with_its_reason() {
    let server = Server::start(Config {
        responder: Arc::new(answer),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<(String, String, String)> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                format!("doc{i}"),
                format!("A page of form-{f} about lists."),
                "web".into(),
            )
        })
        .chain([
            (
                "fail".to_string(),
                "Refused [[faults: 400]]".to_string(),
                "web".to_string(),
            ),
            (
                "retry".to_string(),
                "form-a after [[faults: 500, malformed]]".to_string(),
                "web".to_string(),
            ),
        ])
        .collect();
    let input = documents_dataset(&tmp.path().join("docs"), &rows, 2);
    let stage = build("", &server.base_url());
    stage
        .output_schema(&[InputSchema {
            id: "docs".into(),
            schema: input.schema(),
        }])
        .unwrap();
    let out = run_stage(
        &stage,
        std::slice::from_ref(&input),
        &tmp.path().join("ann"),
        3,
    )
    .unwrap();
    let b = read_all(&out).unwrap();
    assert_eq!(b.num_rows(), 8, "every document stays");
    let ids = col(&b, "id");
    let scores = col(&b, "score");
    let problems = col(&b, "problem");
    let got: Vec<(String, Option<String>, Option<String>)> = ids
        .into_iter()
        .zip(scores)
        .zip(problems)
        .map(|((i, s), p)| (i.unwrap(), s, p))
        .collect();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        vec![
            ("doc0".into(), s("4"), None),
            ("doc1".into(), s("3"), None),
            ("doc2".into(), s("2"), None),
            ("doc3".into(), None, s("no_score")),
            ("doc4".into(), None, s("out_of_range")),
            ("doc5".into(), None, s("not_integer")),
            ("fail".into(), None, s("llm_failed")),
            ("retry".into(), s("4"), None),
        ]
    );
    // The rationale is the text before the score; the failure says why.
    let why = col(&b, "rationale");
    assert_eq!(
        why[0].as_deref(),
        Some("The extract explains loops with examples.")
    );
    assert!(
        why[6].as_deref().unwrap().contains("HTTP 400"),
        "{:?}",
        why[6]
    );
    assert!(col(&b, "answer")[6].is_none());
    let m = out.manifest();
    assert_eq!(m.counters.get("annotate.score.4"), 2);
    assert_eq!(m.counters.get("annotate.no_score.out_of_range"), 1);
    assert_eq!(
        m.counters.get("llm.retries.http_500") + m.counters.get("llm.retries.malformed"),
        2
    );
    assert_eq!(m.notes["scores"]["4"], 2);
    let report = stage.report(m).join("\n");
    assert!(
        report.contains("scores: 0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 0; no score: llm_failed 1, no_score 1, not_integer 1, out_of_range 1"),
        "{report}"
    );
    assert!(server.answers_per_prompt().values().all(|&n| n == 1));

    // JSON answers: the field, a value off the scale, broken JSON.
    let rows: Vec<(String, String, String)> = ["g", "h", "i"]
        .iter()
        .map(|f| {
            (
                format!("j{f}"),
                format!("A page of form-{f}."),
                "web".into(),
            )
        })
        .collect();
    let input = documents_dataset(&tmp.path().join("jdocs"), &rows, 1);
    let stage = build("json = true", &server.base_url());
    let out = run_stage(&stage, &[input], &tmp.path().join("jann"), 10).unwrap();
    let b = read_all(&out).unwrap();
    assert_eq!(col(&b, "score"), [Some("5".to_string()), None, None]);
    assert_eq!(
        col(&b, "problem"),
        [
            None,
            Some("out_of_range".to_string()),
            Some("not_json".to_string())
        ]
    );
    assert_eq!(
        col(&b, "rationale")[0].as_deref(),
        Some("A textbook chapter.")
    );
}

#[test]
fn a_seeded_stratified_sample() {
    let server = Server::start(Config {
        responder: Arc::new(answer),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    // 90 web pages and 10 code files.
    let rows: Vec<(String, String, String)> = (0..100)
        .map(|i| {
            let src = if i % 10 == 0 { "code" } else { "web" };
            (
                format!("d{i:03}"),
                format!("Document {i}, form-a."),
                src.to_string(),
            )
        })
        .collect();
    let input = documents_dataset(&tmp.path().join("docs"), &rows, 4);
    let run = |settings: &str, dir: &str| -> RecordBatch {
        let stage = build(settings, &server.base_url());
        read_all(
            &run_stage(
                &stage,
                std::slice::from_ref(&input),
                &tmp.path().join(dir),
                7,
            )
            .unwrap(),
        )
        .unwrap()
    };
    let count = |b: &RecordBatch, src: &str| {
        col(b, "source")
            .iter()
            .filter(|s| s.as_deref() == Some(src))
            .count()
    };
    let p = run("sample_size = 20\nstratify_by = \"source\"\nseed = 5", "p");
    assert_eq!(b_rows(&p), 20);
    assert_eq!(
        (count(&p, "web"), count(&p, "code")),
        (18, 2),
        "proportional"
    );
    let e = run(
        "sample_size = 20\nstratify_by = \"source\"\nallocation = \"equal\"\nseed = 5",
        "e",
    );
    assert_eq!((count(&e, "web"), count(&e, "code")), (10, 10), "equal");
    // The same seed draws the same documents; another seed others.
    let again = run("sample_size = 20\nstratify_by = \"source\"\nseed = 5", "p2");
    assert_eq!(col(&again, "id"), col(&p, "id"));
    let other = run("sample_size = 20\nstratify_by = \"source\"\nseed = 6", "p3");
    assert_ne!(col(&other, "id"), col(&p, "id"));
    // A fraction: about that share, the same on every run.
    let f = run("sample_fraction = 0.3\nseed = 1", "f");
    assert!((15..=45).contains(&b_rows(&f)), "{}", b_rows(&f));
    assert_eq!(
        col(&run("sample_fraction = 0.3\nseed = 1", "f2"), "id"),
        col(&f, "id")
    );
}

fn b_rows(b: &RecordBatch) -> usize {
    b.num_rows()
}

#[test]
fn settings_are_checked_before_any_request() {
    let check = |settings: &str| -> String {
        let text =
            format!("{settings}\n[llm]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n");
        let cfg: AnnotateConfig = toml::from_str(&text).unwrap();
        cfg.build(&BuildContext {
            stage_id: "a",
            base_dir: Path::new("/"),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    assert!(check("sample_size = 5\nsample_fraction = 0.5").contains("not both"));
    assert!(check("stratify_by = \"source\"").contains("stratify_by needs sample_size"));
    assert!(check("score_regex = \"score\"").contains("has no capture group"));
    assert!(check("score_regex = \"(\"").contains("score_regex `(`"));
    assert!(check("sample_fraction = 2.0").contains("use a value above 0, up to 1"));
    let cfg: AnnotateConfig = toml::from_str(
        "prompt = \"Rate {{ body }}\"\n[llm]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "a",
            base_dir: Path::new("/"),
        })
        .unwrap();
    let e = stage
        .output_schema(&[InputSchema {
            id: "docs".into(),
            schema: primer_core::documents_schema(),
        }])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "the template uses `{{ body }}`, which is neither the text nor a column of input `docs`"
        ),
        "{e}"
    );
}
