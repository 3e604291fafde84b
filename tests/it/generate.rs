//! The `generate` stage through the `primer` binary, against a loopback server that speaks
//! OpenAI's wire format (`primer-fake-openai`) and, when CI has started one, a real small
//! model (SmolLM2-135M-Instruct served by llama-cpp-python): a killed run resumes without
//! repeating a paid request, the API key reaches no file and no output, a budget stops a
//! run that a larger budget continues, `primer validate` names bad settings before any
//! request, and the synthetic-exercises recipe runs end to end.

use std::path::Path;
use std::time::{Duration, Instant};

use primer_core::Dataset;
use primer_core::testing::read_all;
use primer_fake_openai::{AnswerRequest, Config, Server};

use super::util::{answered, kill_after_answers, primer, repo, run, run_ok};

/// A pipeline with one `generate` stage named `gen` over the textbook set.
fn textbook_pipeline(dir: &Path, base_url: &str, extra_stage: &str, extra_llm: &str) {
    let text = format!(
        r#"[pipeline]
name = "gen"
workdir = "work"

[stages.gen.generate]
template = "textbook"
seed = 11
{extra_stage}
[stages.gen.generate.llm]
base_url = "{base_url}"
model = "fake"
seed = 3
{extra_llm}
[stages.gen.generate.llm.limits]
max_in_flight = 4
timeout_secs = 2
backoff_initial_secs = 0.01
backoff_max_secs = 0.1
max_retries = 3
"#
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("p.toml"), text).unwrap();
}

#[test]
fn a_killed_run_resumes_without_repeating_a_paid_request_and_ends_identical() {
    let server = Server::start(Config {
        latency: Duration::from_millis(15),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("killed");
    textbook_pipeline(
        &dir,
        &server.base_url(),
        "sample = 120\nprompts_per_task = 40",
        "",
    );
    let before = kill_after_answers(
        &["run", "p.toml", "-j", "1"],
        &dir,
        &server,
        50,
        Duration::from_millis(700),
    );
    assert!((50..120).contains(&before), "killed after {before} answers");
    assert!(
        !dir.join("work/gen/_manifest.json").exists(),
        "the run was killed before the stage finished"
    );
    server.release();

    let out = run_ok(&["run", "p.toml"], &dir);
    assert!(out.contains("from the cache"), "{out}");
    let per = server.answers_per_prompt();
    assert_eq!(per.len(), 120);
    assert!(
        per.values().all(|&n| n == 1),
        "a prompt was answered twice: {per:?}"
    );
    assert_eq!(answered(&server), 120);

    // The same pipeline uninterrupted, against a fresh server: the same rows.
    let fresh = Server::start(Config::default());
    let clean = tmp.path().join("clean");
    textbook_pipeline(
        &clean,
        &fresh.base_url(),
        "sample = 120\nprompts_per_task = 40",
        "",
    );
    run_ok(&["run", "p.toml"], &clean);
    let a = read_all(&Dataset::open(dir.join("work/gen")).unwrap()).unwrap();
    let b = read_all(&Dataset::open(clean.join("work/gen")).unwrap()).unwrap();
    assert_eq!(a.num_rows(), 120);
    assert_eq!(
        a, b,
        "the resumed run's output differs from an uninterrupted run's"
    );
}

/// Every file under `dir`, and every string of every dataset there (Parquet compresses
/// text, so bytes alone could hide it): where `needle` occurs.
fn places_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.join("_manifest.json").exists() {
                    let ds = Dataset::open(&p).unwrap();
                    let b = read_all(&ds).unwrap();
                    for (i, f) in b.schema().fields().iter().enumerate() {
                        let col = arrow::compute::cast(
                            b.column(i),
                            &arrow::datatypes::DataType::LargeUtf8,
                        )
                        .unwrap();
                        let s = col
                            .as_any()
                            .downcast_ref::<arrow::array::LargeStringArray>()
                            .unwrap();
                        if s.iter().flatten().any(|v| v.contains(needle)) {
                            hits.push(format!("{} column {}", p.display(), f.name()));
                        }
                    }
                }
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

#[test]
fn the_api_key_reaches_no_file_and_no_output() {
    let key = "sk-primer-SECRET-7f3a9c2e5b1d";
    let server = Server::start(Config {
        require_key: Some(key.to_string()),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    textbook_pipeline(
        dir,
        &server.base_url(),
        r#"design.topic = ["plain", "echo [[faults: echo_key]]", "retry [[faults: 500]]", "refused [[faults: 400]]", "stall [[faults: stall]]"]
design.audience = ["adults"]
design.style = ["briefly"]"#,
        "api_key_env = \"PRIMER_IT_SECRET_KEY\"",
    );
    let out = primer()
        .args(["run", "p.toml"])
        .current_dir(dir)
        .env("PRIMER_IT_SECRET_KEY", key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The server saw the key on every request; the echoed one was scrubbed.
    let log = server.log();
    assert!(log.iter().all(|e| e.had_key && e.key_ok));
    let inspect = primer()
        .args(["inspect", "work/gen/side/rejected"])
        .current_dir(dir)
        .output()
        .unwrap();
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    assert!(inspect.contains("[api key]"), "{inspect}");
    for text in [&stdout, &stderr, &inspect.as_str().into()] {
        assert!(!text.contains(key), "the key is in the output:\n{text}");
    }
    let hits = places_holding(dir, key);
    assert!(hits.is_empty(), "the key was written to: {hits:?}");
    // And a wrong key: the run stops with a message that does not show it.
    let out = primer()
        .args(["run", "p.toml", "--force", "gen"])
        .current_dir(dir)
        .env("PRIMER_IT_SECRET_KEY", "sk-primer-WRONG-0000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stderr.contains("sk-primer-WRONG-0000"), "{stderr}");
    assert!(places_holding(dir, "sk-primer-WRONG-0000").is_empty());
}

#[test]
fn a_budget_stops_the_run_and_a_larger_budget_continues_from_the_cache() {
    let server = Server::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    textbook_pipeline(
        dir,
        &server.base_url(),
        "sample = 30",
        "[stages.gen.generate.llm.budget]\nmax_requests = 10",
    );
    let (code, stdout, stderr) = run(&["run", "p.toml"], dir);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("LLM budget reached: max_requests = 10 (10 paid requests made)")
            && stderr.contains("a rerun with a larger budget continues"),
        "{stderr}"
    );
    assert_eq!(answered(&server), 10);
    assert!(!dir.join("work/gen/_manifest.json").exists());

    let p = std::fs::read_to_string(dir.join("p.toml")).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        p.replace("max_requests = 10", "max_requests = 100"),
    )
    .unwrap();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(
        out.contains("10 from the cache, 20 answered by the server"),
        "{out}"
    );
    let per = server.answers_per_prompt();
    assert_eq!(per.len(), 30);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    // Limits and budgets are not part of the fingerprint: changing them reruns nothing.
    let p = std::fs::read_to_string(dir.join("p.toml")).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        p.replace("max_in_flight = 4", "max_in_flight = 9"),
    )
    .unwrap();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(
        out.contains("gen (generate): skipped, up to date (30 rows)"),
        "{out}"
    );
}

#[test]
fn validate_names_bad_generate_settings_before_any_request() {
    let server = Server::start(Config::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("docs.jsonl"),
        "{\"id\": \"a\", \"text\": \"lists\"}\n",
    )
    .unwrap();
    let text = format!(
        r#"[pipeline]
name = "bad"

[stages.docs.read]
paths = ["docs.jsonl"]

[stages.missing_column]
inputs = ["docs"]
[stages.missing_column.generate]
prompt = "Explain {{{{ txt }}}}."
[stages.missing_column.generate.llm]
base_url = "{url}"
model = "m"

[stages.bad_url.generate]
template = "textbook"
[stages.bad_url.generate.llm]
base_url = "localhost:8000"
model = "m"

[stages.no_key.generate]
template = "exercises"
[stages.no_key.generate.llm]
base_url = "{url}"
model = "m"
api_key_env = "PRIMER_IT_UNSET_KEY_VARIABLE"
"#,
        url = server.base_url()
    );
    std::fs::write(dir.join("p.toml"), text).unwrap();
    let (code, stdout, stderr) = run(&["validate", "p.toml"], dir);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    for want in [
        "stage `missing_column` (generate): the template uses `{{ txt }}`, which is neither a design variable nor a column of input `docs`",
        "stage `bad_url` (generate): llm.base_url `localhost:8000`",
        "stage `no_key` (generate): llm.api_key_env: the environment variable `PRIMER_IT_UNSET_KEY_VARIABLE` is not set",
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
    // An unknown built-in template is a parse error with its place.
    std::fs::write(
        dir.join("q.toml"),
        format!("[pipeline]\nname = \"q\"\n[stages.g.generate]\ntemplate = \"texbook\"\n[stages.g.generate.llm]\nbase_url = \"{}\"\nmodel = \"m\"\n", server.base_url()),
    )
    .unwrap();
    let (code, _, stderr) = run(&["validate", "q.toml"], dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "q.toml:4:12: stage `g`: unknown variant `texbook`, expected `textbook` or `exercises`"
        ),
        "{stderr}"
    );
    assert_eq!(server.requests(), 0, "validate sent a request");
}

/// Exercise answers for the recipe test: most topics a valid exercise of their own, one
/// a copy of HumanEval/0 (which decontamination must remove), two the same exercise (which
/// exact dedupe must remove), one broken.
fn recipe_answer(r: &AnswerRequest) -> String {
    let topic = r
        .prompt
        .split("about ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or("")
        .to_string();
    let h = xxhash_rust::xxh3::xxh3_64(topic.as_bytes()) % 1000;
    let body = if topic.contains("sorting") {
        // HumanEval/0, verbatim.
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n    \"\"\"\n    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n\n    return False\n\nassert has_close_elements([1.0, 2.0], 0.5) is False\n".to_string()
    } else if topic.contains("recursion") || topic.contains("closures") {
        "def fact(n: int) -> int:\n    \"\"\"Return n factorial, computed recursively.\"\"\"\n    return 1 if n <= 1 else n * fact(n - 1)\n\nassert fact(0) == 1\nassert fact(5) == 120\n".to_string()
    } else if topic.contains("regular") {
        "def broken(:\n    pass\n".to_string()
    } else {
        format!(
            "def scale_{h}(xs: list, k: int) -> list:\n    \"\"\"Multiply every number of `xs` by {h} and by `k`; the topic is {topic}.\"\"\"\n    return [x * {h} * k for x in xs]\n\nassert scale_{h}([1, 2], 1) == [{h}, {}]\nassert scale_{h}([], 3) == []\n",
            2 * h
        )
    };
    format!("```python\n{body}```")
}

#[test]
fn the_synthetic_exercises_recipe_runs_end_to_end() {
    let server = Server::start(Config {
        responder: std::sync::Arc::new(recipe_answer),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pipelines");
    std::fs::create_dir_all(dir.join("demo-data")).unwrap();
    std::fs::copy(
        repo().join("pipelines/synthetic-exercises.toml"),
        dir.join("synthetic-exercises.toml"),
    )
    .unwrap();
    for f in ["HumanEval.jsonl.gz", "gpt2-tokenizer.json"] {
        std::fs::copy(
            repo().join("pipelines/demo-data").join(f),
            dir.join("demo-data").join(f),
        )
        .unwrap();
    }
    let out = primer()
        .args(["run", "synthetic-exercises.toml"])
        .current_dir(&dir)
        .env("PRIMER_LLM_BASE_URL", server.base_url())
        .env("PRIMER_LLM_MODEL", "fake-coder")
        .env_remove("PRIMER_LLM_API_KEY")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{log}");
    let work = tmp.path().join("work/synthetic-exercises");
    let m = |stage: &str| super::util::manifest(&work.join(stage));
    let generated = m("exercises");
    let samples = generated["counters"]["generate.samples"].as_u64().unwrap();
    let kept = generated["rows"].as_u64().unwrap();
    let broken = generated["counters"]["dropped.syntax_error"]
        .as_u64()
        .unwrap_or(0);
    assert!(broken >= 1 && kept + broken == samples, "{generated}");
    assert_eq!(
        generated["counters"]["exercises.passed"].as_u64().unwrap(),
        kept
    );
    // Two topics gave the same exercise: exact dedupe keeps one.
    let exact = m("exact");
    assert!(
        exact["counters"]["dropped.duplicate"].as_u64().unwrap() >= 1,
        "{exact}"
    );
    // The HumanEval copy is caught.
    let clean = m("clean");
    assert!(
        clean["counters"]["leaked.humaneval:HumanEval/0"]
            .as_u64()
            .unwrap()
            >= 1,
        "{clean}"
    );
    assert!(
        tmp.path()
            .join("work/synthetic-exercises-shards/manifest.json")
            .exists(),
        "{log}"
    );
    // The run report shows the LLM stage's calls, requests and tokens as its manifest has them.
    let html = std::fs::read_to_string(work.join("report.html")).unwrap();
    assert!(
        html.contains("<h3>LLM calls</h3>"),
        "no LLM figures in the report"
    );
    assert!(html.contains("data-field=\"llm.requests\""));
    super::report::check_numbers_against_manifests(&html, &work);
    primer_testdata::report(&format!(
        "synthetic-exercises recipe (fake server): {samples} answers, {kept} valid exercises, {broken} broken"
    ));
}

/// SmolLM2-135M-Instruct (llama-cpp-python, started by `.ci/run`) writes textbook sections
/// and exercises through the whole stage; the exercises are parsed and their tests run.
/// A 135M model fails most exercises: the point is that every answer ends as a document
/// or a rejection with its reason, and that the counts are reported.
#[test]
fn a_real_small_model_writes_textbook_sections_and_exercises() {
    let Some((url, model)) = primer_testdata::llm_server_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = format!(
        r#"[pipeline]
name = "real"
workdir = "work"

[stages.book.generate]
template = "textbook"
sample = 3
seed = 2
keep_truncated = true
[stages.book.generate.llm]
base_url = "{url}"
model = "{model}"
seed = 1
temperature = 0.7
max_tokens = 200
[stages.book.generate.llm.limits]
max_in_flight = 2
timeout_secs = 300

[stages.exercises.generate]
template = "exercises"
sample = 8
seed = 5
execute = true
[stages.exercises.generate.llm]
base_url = "{url}"
model = "{model}"
seed = 1
temperature = 0.7
max_tokens = 320
[stages.exercises.generate.llm.limits]
max_in_flight = 2
timeout_secs = 300
"#
    );
    std::fs::write(dir.join("p.toml"), text).unwrap();
    let t0 = Instant::now();
    let out = run_ok(&["run", "p.toml"], dir);
    let seconds = t0.elapsed().as_secs_f64();
    let book = super::util::manifest(&dir.join("work/book"));
    assert_eq!(book["rows"], 3, "{out}");
    let texts = read_all(&Dataset::open(dir.join("work/book")).unwrap()).unwrap();
    let texts = arrow::compute::cast(
        texts.column_by_name("text").unwrap(),
        &arrow::datatypes::DataType::LargeUtf8,
    )
    .unwrap();
    let texts = texts
        .as_any()
        .downcast_ref::<arrow::array::LargeStringArray>()
        .unwrap();
    assert!(
        texts
            .iter()
            .flatten()
            .all(|t| t.split_whitespace().count() >= 20),
        "{out}"
    );
    let ex = super::util::manifest(&dir.join("work/exercises"));
    let c = &ex["counters"];
    let get = |k: &str| c[k].as_u64().unwrap_or(0);
    let dropped: Vec<(String, u64)> = c
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("dropped.")
                .map(|r| (r.to_string(), v.as_u64().unwrap()))
        })
        .collect();
    let rejected: u64 = dropped.iter().map(|d| d.1).sum();
    assert_eq!(ex["rows"].as_u64().unwrap() + rejected, 8, "{out}");
    let tokens =
        get("llm.completion_tokens") + book["counters"]["llm.completion_tokens"].as_u64().unwrap();
    primer_testdata::report(&format!(
        "real model {model}: 3 textbook sections; 8 exercise answers: {} parsed, {} passed their tests, rejected {:?}; {tokens} completion tokens in {seconds:.0} s",
        get("exercises.parsed"),
        get("exercises.passed"),
        dropped
    ));
    // Rerun: every answer from the cache, nothing asked again.
    let again = run_ok(
        &["run", "p.toml", "--force", "book", "--force", "exercises"],
        dir,
    );
    assert!(
        again.contains("3 prompt samples: 3 from the cache"),
        "{again}"
    );
    assert!(
        again.contains("8 prompt samples: 8 from the cache"),
        "{again}"
    );
}
