use super::util::*;

/// The demo's language → filter chain → pii stages: counters per rule, the dropped rows in
/// the side dataset with their rule, and the manifest notes.
#[test]
fn demo_filters_count_reasons_and_keep_dropped_rows() {
    let tmp = demo_copy();
    let dir = tmp.path();
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let work = dir.join("work/demo");
    let english = manifest(&work.join("english"));
    let c = &english["counters"];
    // The 220 read pages and the 10 crawled ones.
    assert_eq!(c["rows_in"], 230, "{english}");
    assert!(c["lang.en"].as_u64().unwrap() > 200, "{english}");
    let quality = manifest(&work.join("quality"));
    let c = quality["counters"].as_object().unwrap();
    let dropped: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("dropped.gopher_"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert!(dropped > 0, "{quality}");
    assert_eq!(
        c["rows_in"].as_u64().unwrap(),
        dropped + quality["rows"].as_u64().unwrap()
    );
    assert_eq!(quality["notes"]["modifies_text"], false);
    let side = manifest(&work.join("quality/side/dropped"));
    assert_eq!(side["rows"].as_u64().unwrap(), dropped);
    let names: Vec<&str> = side["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[names.len() - 2..], ["filter", "reason"]);
    let clean = manifest(&work.join("redact"));
    assert_eq!(clean["rows"], quality["rows"]);
    assert_eq!(clean["notes"]["modifies_text"], true);
}

/// Filter settings are strict (line and column of the bad key) and a missing or wrong
/// model file is refused before anything runs.
#[test]
fn filter_settings_and_model_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("a.jsonl"),
        "{\"id\": \"1\", \"text\": \"hello\"}\n",
    )
    .unwrap();
    std::fs::write(dir.join("fake.bin"), "not a model").unwrap();
    let text = r#"[pipeline]
name = "f"

[stages.docs.read]
paths = ["a.jsonl"]

[stages.q]
inputs = ["docs"]
[[stages.q.filter.chain]]
gopher_quality = { min_words = 3 }
"#;
    std::fs::write(dir.join("f.toml"), text).unwrap();
    let (code, _out, err) = run(&["validate", "f.toml"], dir);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("f.toml:10:"), "{err}");
    assert!(err.contains("unknown field `min_words`"), "{err}");

    let text = r#"[pipeline]
name = "l"

[stages.docs.read]
paths = ["a.jsonl"]

[stages.lang]
inputs = ["docs"]
[stages.lang.language]
model = "missing.ftz"

[stages.lang2]
inputs = ["docs"]
[stages.lang2.language]
model = "fake.bin"
"#;
    std::fs::write(dir.join("l.toml"), text).unwrap();
    let (code, _out, err) = run(&["validate", "l.toml"], dir);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("language.model: cannot open"), "{err}");
    assert!(err.contains("fake.bin is not a fastText model"), "{err}");
}
