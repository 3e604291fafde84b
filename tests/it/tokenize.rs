use std::path::Path;
use std::time::Duration;

use super::util::*;

/// The demo's `tokens` stage writes shards that `primer shards inspect` reads back and
/// checks; a single shard file can be inspected too.
#[test]
fn demo_shards_are_inspected() {
    let tmp = demo_copy();
    let dir = tmp.path();
    let out = run_ok(&["run", "pipelines/demo.toml"], dir);
    assert!(out.contains("tokens (tokenize): done"), "{out}");
    let m = manifest(&dir.join("work/demo/tokens"));
    let mix = manifest(&dir.join("work/demo/mix"));
    assert_eq!(m["rows"], mix["rows"], "every mixed document is tokenized");
    let tokens = m["counters"]["tokens"].as_u64().unwrap();
    assert!(
        out.contains(&format!("tokens: {tokens} tokens of ")),
        "{out}"
    );
    let shards: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("work/demo-shards/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(shards["tokens"].as_u64().unwrap(), tokens);
    assert_eq!(shards["documents"], mix["rows"]);
    assert_eq!(shards["tokenizer"]["eos_id"], 50256);

    let inspect = run_ok(&["shards", "inspect", "work/demo-shards"], dir);
    for want in [
        "tokenizer   ",
        "(vocabulary 50,257, eos <|endoftext|> = 50256, bos none)",
        "formats     megatron (uint16, code 8), llmc (uint16, magic 20240520 version 1)",
        "headers, pointers and document indices ok",
        "same tokens as megatron",
        "manifest: ",
        "val-00000",
        "train-00000",
        "first 3 document(s) of val-00000",
        "  [2] ",
    ] {
        assert!(inspect.contains(want), "missing {want:?} in:\n{inspect}");
    }
    let one = run_ok(
        &[
            "shards",
            "inspect",
            "work/demo-shards/llmc/train-00000.bin",
            "--docs",
            "2",
        ],
        dir,
    );
    assert!(
        one.contains("magic 20240520 version 1") && one.contains("[1] "),
        "{one}"
    );

    // A damaged shard is refused with the file and what is wrong.
    let bin = dir.join("work/demo-shards/megatron/train-00000.bin");
    let len = std::fs::metadata(&bin).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let (code, _, stderr) = run(&["shards", "inspect", "work/demo-shards"], dir);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("train-00000.bin") && stderr.contains("the index describes"),
        "{stderr}"
    );
}

fn make_inputs(dir: &Path, files: usize) {
    let docs = demo_doc_lines();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for f in 0..files {
        let mut text = String::new();
        for line in &docs {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["id"] = format!("{}#{f}", v["id"].as_str().unwrap()).into();
            text.push_str(&v.to_string());
            text.push('\n');
        }
        std::fs::write(dir.join(format!("in/f{f:03}.jsonl")), text).unwrap();
    }
    let tok = repo().join("pipelines/demo-data/gpt2-tokenizer.json");
    std::fs::write(
        dir.join("p.toml"),
        format!(
            r#"[pipeline]
name = "big"

[stages.docs.read]
paths = ["in/*.jsonl"]

[stages.tok]
inputs = ["docs"]
[stages.tok.tokenize]
tokenizer = {:?}
output = "shards"
shard_tokens = 1000000
validation_fraction = 0.01
seed = 5
# The tokenizers path (slower than the fast one): the kill must land mid-run.
fast_bpe = false
"#,
            tok.display().to_string()
        ),
    )
    .unwrap();
}

/// `kill -9` while documents are being tokenized, then a rerun: finished parts are kept,
/// and the shards equal an uninterrupted run's byte for byte.
#[test]
fn killed_tokenize_resumes_to_identical_shards() {
    const FILES: usize = 12;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    make_inputs(a.path(), FILES);
    make_inputs(b.path(), FILES);
    run_ok(&["run", "p.toml", "-j", "2"], b.path());

    let tok = a.path().join("work/big/tok");
    let done_before = run_and_kill_after(a.path(), &tok, 2, Duration::from_secs(300));
    assert!(done_before >= 2, "no tokenize task finished in time");
    assert!(
        done_before < FILES && !a.path().join("work/big/tok/_manifest.json").exists(),
        "the run finished before it was killed; make the input bigger"
    );
    let out = run_ok(&["run", "p.toml", "-j", "2"], a.path());
    assert!(out.contains("tok (tokenize): resuming:"), "{out}");
    let m = manifest(&a.path().join("work/big/tok"));
    assert!(
        m["tasks_reused"].as_u64().unwrap() >= done_before as u64,
        "{m}"
    );
    let got = files_under(&a.path().join("shards"));
    let want = files_under(&b.path().join("shards"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        if k != "manifest.json" {
            assert!(&got[k] == v, "{k} differs from the uninterrupted run");
        }
    }
    let ma: serde_json::Value = serde_json::from_slice(&got["manifest.json"]).unwrap();
    let mb: serde_json::Value = serde_json::from_slice(&want["manifest.json"]).unwrap();
    assert_eq!(ma["shards"], mb["shards"]);
    assert_eq!(ma["tokens"], mb["tokens"]);
}
