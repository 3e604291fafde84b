use super::util::*;

/// `primer sql` answers a query joining two datasets.
#[test]
fn sql_joins_two_datasets() {
    let tmp = demo_copy();
    let dir = tmp.path();
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let out = run_ok(
        &[
            "sql",
            "SELECT d.source, count(*) AS n, sum(length(m.text)) AS chars \
             FROM docs d JOIN mix m ON d.id = m.id GROUP BY d.source",
            "--table",
            "docs=work/demo/docs",
            "--table",
            "mix=work/demo/mix",
            "--format",
            "jsonl",
        ],
        dir,
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["source"], "python-docs");
    // Every docs row in the mix joins: count equals the docs part of the mix.
    let mix_docs = run_ok(
        &[
            "sql",
            "SELECT count(*) AS n FROM mix WHERE source = 'python-docs'",
            "-t",
            "mix=work/demo/mix",
            "--format",
            "jsonl",
        ],
        dir,
    );
    let n: serde_json::Value =
        serde_json::from_str(mix_docs.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(rows[0]["n"], n["n"]);
    // The demo keeps the documentation pages its filters pass (about 45 of 220).
    assert!(rows[0]["n"].as_u64().unwrap() > 30);
}

/// A query naming a table that is not given says so.
#[test]
fn sql_reports_unknown_tables() {
    let tmp = demo_copy();
    let dir = tmp.path();
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let (code, _, err) = run(
        &["sql", "SELECT * FROM nope", "-t", "docs=work/demo/docs"],
        dir,
    );
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
}
