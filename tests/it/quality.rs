//! The quality loop through the `primer` binary: the recipe pipelines (web-edu, phi1-code,
//! edu-classifier) against a scripted OpenAI server, a killed `annotate` that loses no paid
//! answer, and — when CI has started it — the real small model's ratings training and
//! scoring a classifier in one run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use primer_fake_openai::{AnswerRequest, Config, Server};

use super::util::{kill_after_answers, manifest, primer, repo, run_ok};

/// A copy of a recipe pipeline with the demo data and prompts it reads.
pub(super) fn recipe_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("pipelines");
    std::fs::create_dir_all(p.join("demo-data")).unwrap();
    std::fs::create_dir_all(p.join("prompts")).unwrap();
    for f in std::fs::read_dir(repo().join("pipelines/demo-data")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), p.join("demo-data").join(f.file_name())).unwrap();
    }
    for f in std::fs::read_dir(repo().join("pipelines/prompts")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), p.join("prompts").join(f.file_name())).unwrap();
    }
    std::fs::copy(repo().join("pipelines").join(name), p.join(name)).unwrap();
    (tmp, p)
}

/// A rater that answers in the form each prompt asks for, from the document: pages that
/// speak of a tutorial and code with docstrings score 4, the rest 1 — a rule the
/// classifier can learn from words.
pub(super) fn rater(r: &AnswerRequest) -> String {
    let p = r.prompt.to_lowercase();
    let text = ["the extract:", "the code:", "text:"]
        .iter()
        .find_map(|m| p.split_once(m))
        .map_or(p.as_str(), |x| x.1);
    // Without the instructions after the document.
    let text = ["how useful is this text", "after examining"]
        .iter()
        .find_map(|m| text.split_once(m))
        .map_or(text, |x| x.0);
    let good = text.contains("tutorial") || text.contains("\"\"\"");
    let score = if good { 4 } else { 1 };
    if p.contains("answer with json") {
        format!(r#"{{"score": {score}, "rationale": "scripted"}}"#)
    } else {
        format!("Scripted rationale.\nEducational score: {score}")
    }
}

/// Runs a copy of recipe `name` against the OpenAI-compatible server at `base_url`
/// (model `model`); returns its directory and log, having checked that it succeeded.
fn run_recipe(name: &str, base_url: &str, model: &str) -> (tempfile::TempDir, String) {
    let (tmp, dir) = recipe_copy(name);
    let out = primer()
        .args(["run", name])
        .current_dir(&dir)
        .env("PRIMER_LLM_BASE_URL", base_url)
        .env("PRIMER_LLM_MODEL", model)
        .env_remove("PRIMER_LLM_API_KEY")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{name}:\n{log}");
    (tmp, log)
}

#[test]
fn the_quality_recipes_run_against_a_scripted_rater() {
    let server = Server::start(Config {
        responder: std::sync::Arc::new(rater),
        ..Default::default()
    });
    // web-edu: filters, dedupe, annotate, train, score above 0.5, tokenize.
    let url = server.base_url();
    let (tmp, log) = run_recipe("web-edu.toml", &url, "fake-rater");
    let work = tmp.path().join("work/web-edu");
    let rated = manifest(&work.join("rated"));
    let dedup = manifest(&work.join("dedup"));
    // The demo pages that pass FineWeb's filters are fewer than the sample of 200: all.
    assert_eq!(
        rated["rows"].as_u64().unwrap(),
        dedup["rows"].as_u64().unwrap().min(200),
        "{rated}"
    );
    assert!(
        rated["counters"]["annotate.score.4"].as_u64().unwrap() > 0,
        "{log}"
    );
    assert!(
        rated["counters"]["annotate.score.1"].as_u64().unwrap() > 0,
        "{log}"
    );
    let trained = manifest(&work.join("classifier"));
    assert!(
        trained["notes"]["evaluation"]["documents"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Every deduplicated page is kept or dropped by the classifier's score (on 30-odd
    // pages with 4 of them positive, it may well keep none).
    let kept = manifest(&work.join("educational"));
    assert_eq!(
        kept["rows"].as_u64().unwrap() + kept["counters"]["dropped.quality"].as_u64().unwrap(),
        dedup["rows"].as_u64().unwrap()
    );
    assert!(
        tmp.path()
            .join("work/web-edu-shards/manifest.json")
            .exists()
    );
    assert!(log.contains("held out:"), "{log}");

    // phi1-code: dedupe, annotate with the coding prompt, keep the top half, decontaminate.
    let (tmp, log) = run_recipe("phi1-code.toml", &url, "fake-rater");
    let work = tmp.path().join("work/phi1-code");
    let near = manifest(&work.join("near"))["rows"].as_u64().unwrap();
    let top = manifest(&work.join("top"))["rows"].as_u64().unwrap();
    assert!(top >= near / 2 && top < near, "{top} of {near}\n{log}");
    assert!(
        tmp.path()
            .join("work/phi1-code-shards/manifest.json")
            .exists()
    );

    // edu-classifier: JSON answers, scores on the whole corpus.
    let (tmp, _) = run_recipe("edu-classifier.toml", &url, "fake-rater");
    let work = tmp.path().join("work/edu-classifier");
    assert_eq!(manifest(&work.join("rated"))["rows"], 32);
    assert_eq!(
        manifest(&work.join("scored"))["rows"],
        manifest(&work.join("corpus"))["rows"]
    );
    assert!(server.answers_per_prompt().values().all(|&n| n == 1));
}

fn annotate_pipeline(dir: &Path, url: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let text = format!(
        r#"[pipeline]
name = "ann"
workdir = "work"

[stages.docs.read]
paths = ["{}"]

[stages.rated]
inputs = ["docs"]
[stages.rated.annotate]
sample_size = 120
seed = 2
max_chars = 400
[stages.rated.annotate.llm]
base_url = "{url}"
model = "fake"
[stages.rated.annotate.llm.limits]
max_in_flight = 4
"#,
        repo()
            .join("pipelines/demo-data/python-docs.jsonl.zst")
            .display()
    );
    std::fs::write(dir.join("p.toml"), text).unwrap();
}

#[test]
fn a_killed_annotate_run_loses_no_paid_answer() {
    let server = Server::start(Config {
        latency: Duration::from_millis(15),
        responder: std::sync::Arc::new(rater),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    annotate_pipeline(dir, &server.base_url());
    let before = kill_after_answers(
        &["run", "p.toml"],
        dir,
        &server,
        40,
        Duration::from_millis(500),
    );
    assert!((40..120).contains(&before), "killed after {before} answers");
    server.release();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(out.contains(&format!("{before} from the cache")), "{out}");
    let per = server.answers_per_prompt();
    assert_eq!(per.len(), 120);
    assert!(
        per.values().all(|&n| n == 1),
        "a paid answer was asked again: {per:?}"
    );
}

/// SmolLM2-135M-Instruct rates the demo corpus (pipelines/edu-classifier.toml), and the
/// classifier trained on its ratings scores every document, in one run. The ratings of a
/// 135M model are a weak signal; the figures are reported, not judged.
#[test]
fn a_real_model_s_ratings_train_and_score_a_classifier_in_one_run() {
    let Some((url, model)) = primer_testdata::llm_server_or_skip() else {
        return;
    };
    let t0 = Instant::now();
    let (tmp, _) = run_recipe("edu-classifier.toml", &url, &model);
    let work = tmp.path().join("work/edu-classifier");
    let rated = manifest(&work.join("rated"));
    let trained = manifest(&work.join("classifier"));
    let scored = manifest(&work.join("scored"));
    assert_eq!(rated["rows"], 32);
    assert_eq!(scored["rows"], manifest(&work.join("corpus"))["rows"]);
    let e = &trained["notes"]["evaluation"];
    primer_testdata::report(&format!(
        "real model {model}: ratings of 32 documents {} (no score: {}); classifier held out {} documents, accuracy {:.2}, macro F1 {:.2}; scored {} documents; {:.0} s",
        rated["notes"]["scores"],
        rated["counters"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("annotate.no_score."))
            .map(|(k, v)| format!("{} {v}", k.trim_start_matches("annotate.no_score.")))
            .collect::<Vec<_>>()
            .join(", "),
        e["documents"],
        e["accuracy"].as_f64().unwrap_or(0.0),
        e["macro_f1"].as_f64().unwrap_or(0.0),
        scored["rows"],
        t0.elapsed().as_secs_f64()
    ));
}
