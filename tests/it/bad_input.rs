use super::util::*;

/// Invalid UTF-8, a truncated JSON line and an empty file: messages with file and line,
/// good rows kept, counts in the manifest.
#[test]
fn bad_lines_are_reported_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs = demo_doc_lines();
    let mut bytes = Vec::new();
    for l in &docs[..5] {
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"{\"id\": \"bad-utf8\", \"text\": \"caf\xe9\"}\n"); // line 6
    for l in &docs[5..8] {
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"{\"id\": \"no-text\", \"body\": \"x\"}\n"); // line 10
    let cut = &docs[8][..docs[8].len() / 2]; // line 11: truncated, no newline
    bytes.extend_from_slice(cut.as_bytes());
    std::fs::write(dir.join("mixed.jsonl"), &bytes).unwrap();
    std::fs::write(dir.join("empty.jsonl"), "").unwrap();
    std::fs::write(
        dir.join("p.toml"),
        "[pipeline]\nname = \"bad\"\n[stages.docs.read]\npaths = [\"*.jsonl\"]\n",
    )
    .unwrap();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(
        out.contains("mixed.jsonl:6: invalid UTF-8 at byte 31; line skipped"),
        "{out}"
    );
    assert!(
        out.contains("mixed.jsonl:10: no field `text`; line skipped"),
        "{out}"
    );
    assert!(
        out.contains("mixed.jsonl:11: invalid JSON (EOF while parsing"),
        "{out}"
    );
    assert!(out.contains("empty.jsonl: empty file"), "{out}");
    let m = manifest(&dir.join("work/bad/docs"));
    assert_eq!(m["rows"], 8, "{m}");
    let c = &m["counters"];
    assert_eq!(c["dropped.invalid_utf8"], 1, "{m}");
    assert_eq!(c["dropped.invalid_json"], 1, "{m}");
    assert_eq!(c["dropped.missing_text"], 1, "{m}");
    assert_eq!(c["empty_files"], 1, "{m}");
    assert_eq!(c["rows_in"], 11, "{m}");
    assert_eq!(c["files"], 2, "{m}");
    assert!(
        m["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("mixed.jsonl:6:"))
    );
}

/// A corrupt compressed file keeps the rows read before the damage and says where.
#[test]
fn truncated_zstd_keeps_what_was_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = std::fs::read(repo().join("pipelines/demo-data/python-docs.jsonl.zst")).unwrap();
    std::fs::write(dir.join("cut.jsonl.zst"), &data[..data.len() / 2]).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        "[pipeline]\nname = \"cut\"\n[stages.docs.read]\npaths = [\"cut.jsonl.zst\"]\n",
    )
    .unwrap();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(out.contains("cut.jsonl.zst: after line"), "{out}");
    let m = manifest(&dir.join("work/cut/docs"));
    let rows = m["rows"].as_u64().unwrap();
    assert!(rows > 20 && rows < 220, "{m}");
    assert_eq!(m["counters"]["files_truncated"], 1);
}

/// A glob that matches nothing is a validation error naming the pattern.
#[test]
fn missing_input_files_are_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("p.toml"),
        "[pipeline]\nname = \"none\"\n[stages.docs.read]\npaths = [\"nothing/*.jsonl\"]\n",
    )
    .unwrap();
    let (code, _, err) = run(&["run", "p.toml"], dir);
    assert_eq!(code, 2);
    assert!(
        err.contains("p.toml:3:9: stage `docs` (read): paths: `nothing/*.jsonl` matches no file"),
        "{err}"
    );
}

/// A file that is not Parquet at all, among good ones: skipped with a message naming it,
/// the good files' rows kept.
#[test]
fn unreadable_parquet_file_is_skipped() {
    let tmp = demo_copy();
    let dir = tmp.path();
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let pq = dir.join("pq");
    std::fs::create_dir_all(&pq).unwrap();
    for e in std::fs::read_dir(dir.join("work/demo/docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "parquet") {
            std::fs::copy(&p, pq.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(pq.join("zz-broken.parquet"), b"PAR1 this is not parquet").unwrap();
    std::fs::write(
        dir.join("p.toml"),
        "[pipeline]\nname = \"pq\"\n[stages.docs.read]\npaths = [\"pq/*.parquet\"]\n",
    )
    .unwrap();
    let out = run_ok(&["run", "p.toml"], dir);
    assert!(
        out.contains("zz-broken.parquet") && out.contains("file skipped"),
        "{out}"
    );
    let m = manifest(&dir.join("work/pq/docs"));
    assert_eq!(m["rows"], 220, "{m}");
    assert_eq!(m["counters"]["files_unreadable"], 1, "{m}");
}
