use super::util::*;

/// One `validate` call reports a typo'd key (with line and column), an unknown input and
/// a cycle.
#[test]
fn validate_reports_every_problem_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("a.jsonl"),
        "{\"id\": \"1\", \"text\": \"hello\"}\n",
    )
    .unwrap();
    let text = r#"[pipeline]
name = "broken"

[stages.docs.read]
paths = ["a.jsonl"]
text_feild = "body"

[stages.pick]
inputs = ["dcos"]
[stages.pick.sql]
query = "SELECT * FROM dcos"

[stages.a]
inputs = ["b"]
[stages.a.sql]
query = "SELECT * FROM b"

[stages.b]
inputs = ["a"]
[stages.b.sql]
query = "SELECT * FROM a"
"#;
    std::fs::write(dir.join("broken.toml"), text).unwrap();
    let (code, _out, err) = run(&["validate", "broken.toml"], dir);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.toml:6:1: stage `docs`: unknown field `text_feild`, expected one of"),
        "{err}"
    );
    assert!(err.contains("`text_field`"), "{err}");
    assert!(
        err.contains(
            "broken.toml:9:11: stage `pick`: input `dcos` is not a stage; did you mean `docs`?"
        ),
        "{err}"
    );
    assert!(
        err.contains("cycle: a → b → a") || err.contains("cycle: b → a → b"),
        "{err}"
    );
    assert!(err.contains("3 problem(s)"), "{err}");
    // Nothing ran.
    assert!(!dir.join("work").exists());
}

/// A stage that needs a column its input lacks is refused before any work.
#[test]
fn validate_checks_columns_against_input_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("a.jsonl"),
        "{\"id\": \"1\", \"text\": \"hello\"}\n",
    )
    .unwrap();
    let text = r#"[pipeline]
name = "cols"
[stages.docs.read]
paths = ["a.jsonl"]
[stages.pick]
inputs = ["docs"]
[stages.pick.sql]
query = "SELECT id, score FROM docs"
[stages.out]
inputs = ["docs"]
[stages.out.write]
path = "out"
columns = ["id", "title"]
"#;
    std::fs::write(dir.join("cols.toml"), text).unwrap();
    let (code, _out, err) = run(&["validate", "cols.toml"], dir);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("stage `pick` (sql)") && err.contains("score"),
        "{err}"
    );
    assert!(
        err.contains("stage `out` (write): columns: the input has no column `title`"),
        "{err}"
    );
}

#[test]
fn validate_accepts_the_demo() {
    let out = run_ok(&["validate", "pipelines/demo.toml"], &repo());
    assert!(out.contains("ok, 14 stage(s)"), "{out}");
}
