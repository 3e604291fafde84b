use std::path::Path;

use super::util::*;

/// A pipeline that dedupes the demo's CPython sources, each file pasted twice more with
/// small edits, so there are near-duplicates across input parts.
fn setup(dir: &Path) {
    let text = String::from_utf8(
        zstd::decode_all(
            std::fs::File::open(repo().join("pipelines/demo-data/cpython-stdlib.jsonl.zst"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for copy in 0..3 {
        let mut out = String::new();
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["id"] = format!("{}#{copy}", v["id"].as_str().unwrap()).into();
            if copy > 0 {
                let t = v["text"].as_str().unwrap().replacen("def ", "def  ", copy);
                v["text"] = format!("# copy {copy}\n{t}").into();
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
        std::fs::write(dir.join(format!("in/part{copy}.jsonl")), out).unwrap();
    }
    std::fs::write(
        dir.join("p.toml"),
        r#"[pipeline]
name = "dd"

[stages.docs.read]
paths = ["in/*.jsonl"]

[stages.near]
inputs = ["docs"]
[stages.near.minhash_dedupe]
keep = "smallest_id"
"#,
    )
    .unwrap();
}

/// Sharded runs (`--shard i/N`, each process doing its tasks of a phase and stopping
/// where another shard's tasks are missing, then run again) make the same dataset as one
/// unsharded run, byte for byte.
#[test]
fn minhash_dedupe_sharded_equals_unsharded() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    setup(a.path());
    setup(b.path());
    let one = run_ok(&["run", "p.toml", "--threads", "2"], a.path());
    assert!(one.contains("near (minhash_dedupe): done"), "{one}");
    let m = manifest(&a.path().join("work/dd/near"));
    assert_eq!(m["counters"]["rows_in"], 138);
    // Two copies of each file, except of the empty `email/mime/__init__.py` (no 5-grams).
    assert_eq!(m["counters"]["dropped.duplicate"], 90);
    // Shard 1 first; each run stops where the other shard's tasks of a phase are missing
    // (reading, signatures, clustering, output), and three rounds complete the stage.
    for _ in 0..3 {
        for shard in ["1/2", "0/2"] {
            run_ok(
                &["run", "p.toml", "--shard", shard, "--threads", "1"],
                b.path(),
            );
        }
    }
    assert_eq!(
        files_under(&a.path().join("work/dd/near")),
        files_under(&b.path().join("work/dd/near"))
    );
    let kept = run_ok(
        &[
            "sql",
            "SELECT count(*) AS n FROM near WHERE id LIKE '%#0'",
            "--table",
            "near=work/dd/near",
            "--format",
            "jsonl",
        ],
        a.path(),
    );
    assert!(
        kept.contains(r#"{"n":46}"#),
        "the originals (smallest ids) are kept: {kept}"
    );
}
