//! End-to-end tests of the dedupe stages on real data from `../shared/data`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use primer_core::testing::{read_all, run_stage_sharded, run_stage_with};
use primer_core::{BuildContext, Dataset, Stage};
use serde_json::json;
use xxhash_rust::xxh3::xxh3_64;

use crate::minhash::{MinHasher, jaccard};
use crate::testutil::{column, corpus, dataset};
use crate::{ExactDedupeConfig, MinhashDedupeConfig};

fn ctx() -> BuildContext<'static> {
    BuildContext {
        stage_id: "t",
        base_dir: Path::new("/"),
    }
}

fn minhash(settings: serde_json::Value) -> crate::MinhashDedupe {
    serde_json::from_value::<MinhashDedupeConfig>(settings)
        .unwrap()
        .build(&ctx())
        .unwrap()
}

fn docs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The CPython corpus restricted to one path in `every` (all versions of each chosen path,
/// so the sample keeps its near-duplicates), in corpus order.
fn cpython_sample(every: u64) -> Option<Vec<(String, String)>> {
    let all = corpus("cpython-stdlib-9-versions.jsonl.zst")?;
    Some(
        all.into_iter()
            .filter(|(id, _)| {
                let path = id.split_once(':').map_or(id.as_str(), |x| x.1);
                xxh3_64(path.as_bytes()).is_multiple_of(every)
            })
            .collect(),
    )
}

#[test]
fn exact_dedupe_keeps_the_first_and_lists_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let input = dataset(
        &tmp.path().join("in"),
        &docs(&[
            ("a", "Hello  world"),
            ("b", "other text"),
            ("c", "Hello world\n"),
            ("d", "hello, World!"),
            ("e", "Hello  world"),
        ]),
        2,
    );
    let run = |normalize: &str, dir: &str| {
        let stage = serde_json::from_value::<ExactDedupeConfig>(json!({ "normalize": normalize }))
            .unwrap()
            .build(&ctx())
            .unwrap();
        run_stage_with(
            &stage,
            std::slice::from_ref(&input),
            &tmp.path().join(dir),
            2,
            2,
        )
        .unwrap()
    };
    let ws = run("whitespace", "ws");
    assert_eq!(
        column(&ws, "id"),
        [Some("a".into()), Some("b".into()), Some("d".into())]
    );
    assert_eq!(
        column(&ws, "exact_dup_cluster"),
        [Some("a".into()), None, None]
    );
    assert_eq!(
        column(&ws, "exact_dup_cluster_size"),
        [Some("3".into()), Some("1".into()), Some("1".into())]
    );
    let removed = Dataset::open(ws.dir().join("side/removed")).unwrap();
    assert_eq!(column(&removed, "id"), [Some("c".into()), Some("e".into())]);
    assert_eq!(
        column(&removed, "duplicate_of"),
        [Some("a".into()), Some("a".into())]
    );
    assert_eq!(ws.manifest().counters.get("dropped.duplicate"), 2);
    assert_eq!(ws.manifest().counters.get("rows_in"), 5);
    let dt = run("datatrove", "dt");
    assert_eq!(column(&dt, "id"), [Some("a".into()), Some("b".into())]);
    let none = run("none", "none");
    assert_eq!(
        column(&none, "exact_dup_cluster"),
        [Some("a".into()), None, None, None]
    );
}

#[test]
fn keep_rules_choose_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let input = dataset(
        &tmp.path().join("in"),
        &docs(&[("z", "same"), ("m", "same "), ("a", " same")]),
        3,
    );
    for (keep, kept) in [("first", "z"), ("smallest_id", "a"), ("longest", "m")] {
        let stage = serde_json::from_value::<ExactDedupeConfig>(json!({ "keep": keep }))
            .unwrap()
            .build(&ctx())
            .unwrap();
        let out = run_stage_with(
            &stage,
            std::slice::from_ref(&input),
            &tmp.path().join(keep),
            1,
            1,
        )
        .unwrap();
        assert_eq!(
            column(&out, "id"),
            [Some(kept.to_string())],
            "keep = {keep}"
        );
    }
    let bad = serde_json::from_value::<ExactDedupeConfig>(json!({ "keep": "highest_score" }))
        .unwrap()
        .build(&ctx());
    assert!(
        bad.err()
            .unwrap()
            .to_string()
            .contains("needs `score_column`")
    );
}

#[test]
fn minhash_joins_near_duplicates_only() {
    let tmp = tempfile::tempdir().unwrap();
    // 400 distinct words: `ba`, `ca`, … (digits would all normalise to `0`).
    let word = |i: usize| {
        format!(
            "{}{}",
            (b'b' + (i % 20) as u8) as char,
            (b'a' + (i / 20) as u8) as char
        )
    };
    let base: String = (0..400).map(|i| word(i) + " ").collect();
    let lorem = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door";
    // Case and punctuation do not count; one changed word changes 5 of 396 shingles.
    let near = base.replace("ba ca", "Ba, CA!").replace(" ga ", " zzz ");
    let input = dataset(
        &tmp.path().join("in"),
        &docs(&[
            ("x", &base),
            ("y", lorem),
            ("z", &near),
            ("short", "too short"),
        ]),
        2,
    );
    let stage = minhash(json!({ "drop_duplicates": false }));
    let out = run_stage_with(
        &stage,
        std::slice::from_ref(&input),
        &tmp.path().join("o"),
        2,
        2,
    )
    .unwrap();
    assert_eq!(
        column(&out, "dup_cluster"),
        [Some("x".into()), None, Some("x".into()), None]
    );
    assert_eq!(out.manifest().counters.get("docs_without_keys"), 1);
    let removed = Dataset::open(out.dir().join("side/removed")).unwrap();
    assert_eq!(column(&removed, "id"), [Some("z".into())]);
}

/// Brute-force exact Jaccard ≥ `t` pairs of non-empty shingle sets.
fn jaccard_pairs(sets: &[Vec<u64>], t: f64) -> HashSet<(u32, u32)> {
    let mut out = HashSet::new();
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            let (a, b) = (&sets[i], &sets[j]);
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let (lo, hi) = (a.len().min(b.len()), a.len().max(b.len()));
            if (lo as f64) < t * hi as f64 {
                continue; // J ≤ lo/hi < t
            }
            if jaccard(a, b) >= t {
                out.insert((i as u32, j as u32));
            }
        }
    }
    out
}

/// Pairs of documents sharing at least one LSH band (all pairs of each bucket).
fn lsh_pairs(stage: &crate::MinhashDedupe, sets: &[Vec<u64>]) -> HashSet<(u32, u32)> {
    let mut buckets: HashMap<u128, Vec<u32>> = HashMap::new();
    let (mut sig, mut buf, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for (i, s) in sets.iter().enumerate() {
        if s.is_empty() {
            continue;
        }
        stage.hasher().signature(s, &mut sig);
        stage.keyer().band_keys(&sig, &mut buf, &mut keys);
        for k in &keys {
            buckets.entry(*k).or_default().push(i as u32);
        }
    }
    let mut out = HashSet::new();
    for docs in buckets.values() {
        for (x, &a) in docs.iter().enumerate() {
            for &b in &docs[x + 1..] {
                out.insert((a.min(b), a.max(b)));
            }
        }
    }
    out
}

fn prf(found: &HashSet<(u32, u32)>, truth: &HashSet<(u32, u32)>) -> (f64, f64, f64) {
    let tp = found.intersection(truth).count() as f64;
    let p = if found.is_empty() {
        1.0
    } else {
        tp / found.len() as f64
    };
    let r = if truth.is_empty() {
        1.0
    } else {
        tp / truth.len() as f64
    };
    (
        p,
        r,
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        },
    )
}

#[test]
fn minhash_pairs_agree_with_exact_jaccard_on_cpython_versions() {
    let Some(sample) = cpython_sample(8) else {
        return;
    };
    let stage = minhash(json!({ "verify_jaccard": 0.8, "drop_duplicates": false }));
    let mut h = MinHasher::new(5, 112, 1);
    let sets: Vec<Vec<u64>> = sample
        .iter()
        .map(|(_, t)| {
            let mut s = Vec::new();
            h.shingles(t, &mut s);
            s
        })
        .collect();
    let truth = jaccard_pairs(&sets, 0.8);
    let candidates = lsh_pairs(&stage, &sets);
    let verified: HashSet<(u32, u32)> = candidates
        .iter()
        .copied()
        .filter(|&(a, b)| jaccard(&sets[a as usize], &sets[b as usize]) >= 0.8)
        .collect();
    let (p, r, f) = prf(&candidates, &truth);
    let (vp, vr, vf) = prf(&verified, &truth);
    eprintln!(
        "cpython sample: {} docs, {} pairs with Jaccard >= 0.8; LSH candidates {}: P {p:.4} R {r:.4} F1 {f:.4}; verified {}: P {vp:.4} R {vr:.4} F1 {vf:.4}",
        sample.len(),
        truth.len(),
        candidates.len(),
        verified.len()
    );
    assert!(
        truth.len() > 1000,
        "the sample should hold many near-duplicates"
    );
    assert!(vf >= 0.95, "F1 {vf} against exact Jaccard >= 0.8");
    assert!(r >= 0.95, "LSH recall {r}");
    // The stage's clusters contain every verified pair.
    let tmp = tempfile::tempdir().unwrap();
    let input = dataset(&tmp.path().join("in"), &sample, 4);
    let out = run_stage_with(
        &stage,
        std::slice::from_ref(&input),
        &tmp.path().join("o"),
        4096,
        2,
    )
    .unwrap();
    let cl = column(&out, "dup_cluster");
    for &(a, b) in &verified {
        assert!(
            cl[a as usize].is_some() && cl[a as usize] == cl[b as usize],
            "pair {a} {b}"
        );
    }
}

#[test]
fn same_output_for_any_threads_batches_and_shards() {
    let Some(sample) = cpython_sample(32) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = dataset(&tmp.path().join("in"), &sample, 5);
    let stages: Vec<(&str, Box<dyn Stage>)> = vec![
        ("minhash", Box::new(minhash(json!({})))),
        (
            "minhash_verified",
            Box::new(minhash(json!({ "verify_jaccard": 0.8, "keep": "longest" }))),
        ),
        (
            "exact",
            Box::new(
                serde_json::from_value::<ExactDedupeConfig>(
                    json!({ "normalize": "datatrove", "keep": "smallest_id" }),
                )
                .unwrap()
                .build(&ctx())
                .unwrap(),
            ),
        ),
    ];
    for (name, stage) in &stages {
        let mut outputs = Vec::new();
        for (k, (batch, threads, shards)) in [(8192, 1, 1), (7, 4, 3), (1000, 2, 11)]
            .into_iter()
            .enumerate()
        {
            let dir = tmp.path().join(format!("{name}-{k}"));
            let ds = run_stage_sharded(
                stage.as_ref(),
                std::slice::from_ref(&input),
                &dir,
                batch,
                threads,
                shards,
            )
            .unwrap();
            let removed = Dataset::open(dir.join("side/removed")).unwrap();
            outputs.push((
                read_all(&ds).unwrap(),
                read_all(&removed).unwrap(),
                ds.manifest().counters.clone(),
            ));
        }
        assert!(
            outputs[0].1.num_rows() > 50,
            "{name}: few duplicates: {}",
            outputs[0].1.num_rows()
        );
        for o in &outputs[1..] {
            assert_eq!(o.0, outputs[0].0, "{name}: output differs");
            assert_eq!(o.1, outputs[0].1, "{name}: removed ids differ");
            let drop_timing = |c: &primer_core::Counters| {
                c.iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                drop_timing(&o.2),
                drop_timing(&outputs[0].2),
                "{name}: counters differ"
            );
        }
    }
}

/// datatrove's signatures (tests/ref/datatrove_signatures.py, run with the Python that
/// `PRIMER_REF_PYTHON` names) equal primer's on a sample of the CPython corpus.
#[test]
fn signatures_equal_datatrove() {
    let Some(python) = primer_testdata::ref_python_or_skip("datatrove 0.10.1") else {
        return;
    };
    let Some(sample) = cpython_sample(64) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sample.jsonl");
    let mut text = String::new();
    for (id, t) in &sample {
        text.push_str(&json!({ "id": id, "text": t }).to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let output = tmp.path().join("sigs.jsonl");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ref/datatrove_signatures.py"
    );
    let status = std::process::Command::new(&python)
        .args([script, input.to_str().unwrap(), output.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "{python} {script} failed");
    let (equal, total) = compare_signatures(&output, &sample);
    eprintln!("datatrove signatures: {equal} of {total} equal");
    assert!(total > 100);
    assert_eq!(equal, total, "every signature is datatrove's, bit for bit");
}

/// How many of the signatures in a datatrove dump equal primer's.
fn compare_signatures(dump: &Path, docs: &[(String, String)]) -> (usize, usize) {
    let texts: HashMap<&str, &str> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut h = MinHasher::new(5, 112, 1);
    let (mut sh, mut sig) = (Vec::new(), Vec::new());
    let (mut equal, mut total) = (0, 0);
    for line in std::fs::read_to_string(dump).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap();
        let theirs: Vec<u64> = v["sig"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        h.shingles(texts[id], &mut sh);
        total += 1;
        if sh.is_empty() {
            eprintln!("{id}: no shingles here, datatrove has some");
            continue;
        }
        h.signature(&sh, &mut sig);
        if sig == theirs {
            equal += 1;
        } else if total - equal <= 5 {
            eprintln!("{id}: signature differs");
        }
    }
    (equal, total)
}

/// A dump made beforehand (`PRIMER_DATATROVE_SIGS=FILE`, written by
/// tests/ref/datatrove_signatures.py from the whole CPython corpus) compared in full. Run
/// by hand: `PRIMER_DATATROVE_SIGS=FILE cargo test -p primer-dedupe -- --ignored dump`.
#[test]
#[ignore = "by hand: needs PRIMER_DATATROVE_SIGS, a datatrove signature dump of the whole corpus"]
fn signatures_equal_a_datatrove_dump() {
    let dump = std::env::var("PRIMER_DATATROVE_SIGS")
        .expect("PRIMER_DATATROVE_SIGS names a datatrove signature dump");
    let Some(all) = corpus("cpython-stdlib-9-versions.jsonl.zst") else {
        return;
    };
    let (equal, total) = compare_signatures(Path::new(&dump), &all);
    eprintln!("datatrove dump {dump}: {equal} of {total} signatures equal");
    assert_eq!(equal, total);
}
