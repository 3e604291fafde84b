use std::path::Path;

use super::util::*;

/// The demo runs; a second run skips every stage; editing one stage's setting reruns
/// exactly that stage and its descendants.
#[test]
fn demo_reruns_only_what_changed() {
    let tmp = demo_copy();
    let dir = tmp.path();
    let first = run_ok(&["run", "pipelines/demo.toml"], dir);
    for stage in [
        "docs", "code", "crawl", "pages", "web", "english", "quality", "redact", "mix", "exact",
        "near", "clean", "export", "tokens",
    ] {
        assert!(first.contains(&format!("{stage} (")), "{first}");
    }
    assert!(first.contains("outputs of pipeline `demo`"), "{first}");
    let work = dir.join("work/demo");
    let mix = manifest(&work.join("mix"));
    let docs = manifest(&work.join("docs"));
    assert_eq!(docs["rows"], 220);
    // The ten crawled pages become documents and join the read ones.
    assert_eq!(manifest(&work.join("pages"))["rows"], 10);
    assert_eq!(manifest(&work.join("web"))["rows"], 230);
    // The filters keep the better pages: fewer than half of them reach the mix.
    assert!(mix["rows"].as_u64().unwrap() > 50, "{mix}");
    // The export holds exactly the cleaned corpus's rows, as JSONL documents.
    let exported: usize = files_under(&dir.join("work/demo-export"))
        .values()
        .map(|b| String::from_utf8_lossy(b).lines().count())
        .sum();
    assert_eq!(
        exported as u64,
        manifest(&work.join("clean"))["rows"].as_u64().unwrap()
    );
    // Dedupe and decontamination only remove rows, and say how many.
    let rows = |s: &str| manifest(&work.join(s))["rows"].as_u64().unwrap();
    let counter = |s: &str, c: &str| manifest(&work.join(s))["counters"][c].as_u64().unwrap_or(0);
    assert_eq!(
        rows("exact") + counter("exact", "dropped.duplicate"),
        rows("mix")
    );
    assert_eq!(
        rows("near") + counter("near", "dropped.duplicate"),
        rows("exact")
    );
    assert_eq!(
        rows("clean") + counter("clean", "dropped.contaminated"),
        rows("near")
    );
    assert_eq!(
        manifest(&work.join("near/side/removed"))["rows"]
            .as_u64()
            .unwrap(),
        counter("near", "dropped.duplicate")
    );

    let second = run_ok(&["run", "pipelines/demo.toml"], dir);
    assert_eq!(
        second.matches("skipped, up to date").count(),
        14,
        "{second}"
    );
    let plan = run_ok(&["plan", "pipelines/demo.toml"], dir);
    assert_eq!(plan.matches("skip").count(), 14, "{plan}");

    // Change the mix's threshold: docs and code stay, mix and export rerun.
    raise_mix_threshold(dir);
    let plan = run_ok(&["plan", "pipelines/demo.toml"], dir);
    assert!(plan.contains("skip    docs (read)"), "{plan}");
    assert!(
        plan.contains("run     mix (sql)") && plan.contains("settings changed"),
        "{plan}"
    );
    assert!(plan.contains("run     export (write)"), "{plan}");
    let third = run_ok(&["run", "pipelines/demo.toml"], dir);
    assert_eq!(third.matches("skipped, up to date").count(), 8, "{third}");
    assert!(third.contains("[1/14] docs (read): skipped"), "{third}");
    assert!(third.contains("[2/14] code (read): skipped"), "{third}");
    assert!(third.contains("[4/14] pages (extract): skipped"), "{third}");
    assert!(third.contains("[9/14] mix (sql): running"), "{third}");
    assert!(
        third.contains("[11/14] near (minhash_dedupe): running"),
        "{third}"
    );
    assert!(third.contains("[13/14] export (write): running"), "{third}");
    assert!(
        third.contains("[14/14] tokens (tokenize): running"),
        "{third}"
    );
    let mix2 = manifest(&work.join("mix"));
    assert!(mix2["rows"].as_u64() < mix["rows"].as_u64());

    // --force reruns a stage; its output is the same, so nothing downstream reruns.
    let forced = run_ok(&["run", "pipelines/demo.toml", "--force", "docs"], dir);
    assert!(forced.contains("docs (read): running"), "{forced}");
    assert!(forced.contains("mix (sql): skipped"), "{forced}");
}

/// `inspect` shows the manifest, counters, schema and sample rows.
#[test]
fn inspect_shows_a_dataset() {
    let tmp = demo_copy();
    let dir = tmp.path();
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let out = run_ok(&["inspect", "work/demo/docs"], dir);
    for want in [
        "stage       docs (read)",
        "rows        220",
        "rows_in",
        "schema",
        "text",
        "LargeUtf8",
        "first 3 row(s)",
        "python-docs",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

/// `status` shows each stage's state and the manifests' figures, before and after a run
/// and after a setting changed.
#[test]
fn status_shows_states_and_the_manifests_figures() {
    let tmp = demo_copy();
    let dir = tmp.path();
    let before = run_ok(&["status", "pipelines/demo.toml"], dir);
    assert!(before.starts_with("stage"), "{before}");
    assert_eq!(before.matches("not started").count(), 14, "{before}");
    run_ok(&["run", "pipelines/demo.toml"], dir);
    let after = run_ok(&["status", "pipelines/demo.toml"], dir);
    let work = dir.join("work/demo");
    for stage in ["docs", "pages", "english", "quality", "near", "tokens"] {
        let m = manifest(&work.join(stage));
        let line = after
            .lines()
            .find(|l| l.starts_with(&format!("{stage} (")))
            .unwrap_or_else(|| panic!("{stage} in {after}"));
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells[1], "done", "{line}");
        assert_eq!(
            cells[2],
            m["counters"]["rows_in"].as_u64().unwrap_or(0).to_string(),
            "{line}"
        );
        assert_eq!(cells[3], m["rows"].to_string(), "{line}");
    }
    let quality = after.lines().find(|l| l.starts_with("quality (")).unwrap();
    assert!(
        quality.contains("gopher_quality.gopher_below_alpha_threshold"),
        "{quality}"
    );
    // A changed setting makes the stage and what follows it stale.
    raise_mix_threshold(dir);
    let stale = run_ok(&["status", "pipelines/demo.toml"], dir);
    assert!(
        stale
            .lines()
            .any(|l| l.starts_with("mix (sql)") && l.contains("stale")),
        "{stale}"
    );
    assert!(
        stale
            .lines()
            .any(|l| l.starts_with("docs (read)") && l.contains("done")),
        "{stale}"
    );
}

/// Change the demo copy's `mix` threshold (1000 → 3000 characters): `mix` and what follows
/// it become stale; its inputs stay up to date.
fn raise_mix_threshold(dir: &Path) {
    let path = dir.join("pipelines/demo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("length(text) >= 1000"));
    std::fs::write(
        &path,
        text.replace("length(text) >= 1000", "length(text) >= 3000"),
    )
    .unwrap();
}
