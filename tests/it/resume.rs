use std::path::Path;
use std::time::Duration;

use super::util::*;

/// Inputs for the resume test: `n` JSONL files of real documentation text.
fn make_inputs(dir: &Path, n: usize) {
    let docs = demo_doc_lines();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for f in 0..n {
        let mut text = String::new();
        for copy in 0..1 {
            for line in &docs {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                v["id"] = format!("{}#{f}-{copy}", v["id"].as_str().unwrap()).into();
                text.push_str(&v.to_string());
                text.push('\n');
            }
        }
        std::fs::write(dir.join(format!("in/f{f:03}.jsonl")), text).unwrap();
    }
    std::fs::write(
        dir.join("p.toml"),
        r#"[pipeline]
name = "big"

[stages.docs.read]
paths = ["in/*.jsonl"]

[stages.long]
inputs = ["docs"]
[stages.long.sql]
query = "SELECT id, text, url FROM docs WHERE length(text) > 2000"

[stages.out]
inputs = ["long"]
[stages.out.write]
path = "export"
"#,
    )
    .unwrap();
}

/// `kill -9` during a run, then a rerun: the outputs are byte-identical to an
/// uninterrupted run, and the tasks finished before the kill were not redone.
#[test]
fn killed_run_resumes_to_identical_output() {
    const FILES: usize = 24;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    make_inputs(a.path(), FILES);
    make_inputs(b.path(), FILES);

    // Uninterrupted reference run.
    run_ok(&["run", "p.toml", "-j", "2"], b.path());

    // Start, wait until a few read tasks are recorded, kill -9.
    let docs = a.path().join("work/big/docs");
    let done_before = run_and_kill_after(a.path(), &docs, 3, Duration::from_secs(120));
    assert!(done_before >= 3, "no task finished within the time limit");
    assert!(
        done_before < FILES && !a.path().join("work/big/docs/_manifest.json").exists(),
        "the run finished before it was killed; make the input bigger"
    );
    // The parts of the finished tasks, with their modification times.
    let finished_parts: Vec<(std::path::PathBuf, std::time::SystemTime)> = finished_tasks(&docs)
        .into_iter()
        .flat_map(|path| {
            let rec: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            rec["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["file"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .map(|f| {
            let p = a.path().join("work/big/docs").join(f);
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    assert!(!finished_parts.is_empty());

    let out = run_ok(&["run", "p.toml", "-j", "2"], a.path());
    assert!(out.contains("resuming:"), "{out}");
    let m = manifest(&a.path().join("work/big/docs"));
    assert!(
        m["tasks_reused"].as_u64().unwrap() >= done_before as u64,
        "{m}"
    );
    for (p, t) in &finished_parts {
        assert_eq!(
            std::fs::metadata(p).unwrap().modified().unwrap(),
            *t,
            "{} was rewritten",
            p.display()
        );
    }
    // Byte-identical datasets and export.
    for d in ["work/big/docs", "work/big/long", "export"] {
        let got = files_under(&a.path().join(d));
        let want = files_under(&b.path().join(d));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{d}"
        );
        assert!(got == want, "{d} differs from the uninterrupted run");
    }
    assert_eq!(
        manifest(&a.path().join("work/big/docs"))["rows"],
        manifest(&b.path().join("work/big/docs"))["rows"]
    );
}

/// Shards split the tasks; the last shard to finish writes the manifest, and the result
/// equals an unsharded run.
#[test]
fn shards_together_equal_one_run() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    make_inputs(a.path(), 5);
    make_inputs(b.path(), 5);
    run_ok(&["run", "p.toml", "-j", "2"], b.path());
    let first = run_ok(&["run", "p.toml", "-j", "2", "--shard", "0/2"], a.path());
    assert!(first.contains("task(s) of other shards remain"), "{first}");
    assert!(first.contains("waits for input `docs`"), "{first}");
    let second = run_ok(&["run", "p.toml", "-j", "2", "--shard", "1/2"], a.path());
    assert!(
        second.contains("[1/3] docs (read): resuming: 3 of 5"),
        "{second}"
    );
    // Shard 1 completed `docs`; `long` is one task, task 0 belongs to shard 0.
    let third = run_ok(&["run", "p.toml", "-j", "2", "--shard", "0/2"], a.path());
    assert!(third.contains("docs (read): skipped"), "{third}");
    run_ok(&["run", "p.toml", "-j", "2", "--shard", "1/2"], a.path());
    run_ok(&["run", "p.toml", "-j", "2", "--shard", "0/2"], a.path());
    for d in ["work/big/docs", "work/big/long", "export"] {
        assert!(
            files_under(&a.path().join(d)) == files_under(&b.path().join(d)),
            "{d} differs"
        );
    }
}
