//! Parity with datatrove 0.10.1: the same real documents go through datatrove's filters
//! (run here, from the virtualenv `.ci/run` makes, named by `PRIMER_REF_PYTHON`) and through
//! primer's, each filter on its own; every filter must make the same keep/drop decision on
//! ≥ 99% of the documents. Every disagreement is printed with the document id and both
//! tools' reasons.
//!
//! Input: 3,600 web-like documentation pages (docs-pages-extracted, the first ones in file
//! order) and 1,600 code files (every 5th file of at most 12 KB of cpython-stdlib-9-versions,
//! to keep datatrove's run to minutes), 5,200 in all,
//! from `../shared/data`. datatrove's output is cached under the target directory, keyed by
//! a hash of the input and of the script, because it takes minutes.
//!
//! Measured (2026-11-27, datatrove 0.10.1, spaCy 3.8.18, fastText 0.9.2): 0 disagreements
//! in 26,000 decisions — 100% on every filter (kept: gopher_quality 1,955, gopher_repetition
//! 4,495, c4 3,546 with identical text, fineweb 2,712; lid.176 labels all equal, scores
//! within 1.2e-16). Known places where primer can still differ, none met in this sample:
//! spaCy's tokenizer exceptions containing whitespace are not re-matched after
//! tokenization; Python's and Rust's `lower()` differ on a few exotic characters; and the
//! IP validator follows Python 3.11.7's `is_global` table (newer Pythons changed it).
//!
//! C4: datatrove 0.10.1 counts C4's sentences with spaCy's sentencizer (its English
//! `split_into_sentences`), not with NLTK punkt, so the punkt data is not needed; the script
//! still runs with `NLTK_DATA=../shared/reference/nltk_data` (an English Punkt model trained
//! on the shared documentation text, not NLTK's official one) so that nothing in datatrove
//! that imports NLTK tries to download.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use primer_filters::{
    C4Config, Decision, FinewebConfig, GopherQualityConfig, GopherRepetitionConfig, LanguageConfig,
    PiiConfig,
};

const DOCS_PAGES: usize = 3600;
const CODE_EVERY: usize = 5;
const CODE_MAX_BYTES: usize = 12_000;
const CODE_FILES: usize = 1600;

fn read_zst_jsonl(path: &Path) -> impl Iterator<Item = serde_json::Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dec = zstd::Decoder::new(f).expect("zstd");
    std::io::BufReader::new(dec)
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("JSON"))
}

/// The documents of the test, as (id, text), from the shared data directory `data`.
fn sample(data: &Path) -> Vec<(String, String)> {
    let d = data.join("corpora");
    let mut out = Vec::new();
    for v in read_zst_jsonl(&d.join("docs-pages-extracted.jsonl.zst")).take(DOCS_PAGES) {
        out.push((
            v["id"].as_str().unwrap().to_string(),
            v["text"].as_str().unwrap().to_string(),
        ));
    }
    for v in read_zst_jsonl(&d.join("cpython-stdlib-9-versions.jsonl.zst"))
        .filter(|v| {
            v["text"]
                .as_str()
                .is_some_and(|t| t.len() <= CODE_MAX_BYTES)
        })
        .step_by(CODE_EVERY)
        .take(CODE_FILES)
    {
        out.push((
            v["id"].as_str().unwrap().to_string(),
            v["text"].as_str().unwrap().to_string(),
        ));
    }
    out
}

fn reason(d: &Decision) -> String {
    match d {
        Decision::Drop(r) => (*r).to_string(),
        _ => "keep".to_string(),
    }
}

#[test]
fn same_decisions_as_datatrove() {
    let Some(python) = primer_testdata::ref_python_or_skip(
        "datatrove[processing]==0.10.1, spacy and fasttext-wheel",
    ) else {
        return;
    };
    // PRIMER_PARITY_INPUT (a JSONL file of {"id", "text"}) replaces the sample, for debugging.
    let custom = std::env::var("PRIMER_PARITY_INPUT").ok();
    let docs = match &custom {
        Some(p) => std::io::BufReader::new(std::fs::File::open(p).expect("PRIMER_PARITY_INPUT"))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["text"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        None => {
            let Some(data) = primer_testdata::shared_data_or_skip() else {
                return;
            };
            sample(&data)
        }
    };
    let n_code = docs
        .iter()
        .filter(|(id, _)| id.starts_with("cpython-"))
        .count();
    if custom.is_none() {
        assert!(docs.len() >= 5000, "only {} documents", docs.len());
        assert!(n_code >= 1500, "{n_code} code documents");
    }

    // Input file and cached datatrove output.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/datatrove_decisions.py");
    let mut input = Vec::new();
    for (id, text) in &docs {
        serde_json::to_writer(&mut input, &serde_json::json!({"id": id, "text": text})).unwrap();
        input.push(b'\n');
    }
    let key =
        xxhash_rust::xxh3::xxh3_64(&[input.as_slice(), &std::fs::read(&script).unwrap()].concat());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("filters-parity");
    std::fs::create_dir_all(&dir).unwrap();
    let in_path = dir.join("input.jsonl");
    let out_path = dir.join(format!("datatrove-{key:016x}.jsonl"));
    let model = primer_testdata::demo_data("lid.176.ftz");
    if !out_path.exists() {
        std::fs::File::create(&in_path)
            .unwrap()
            .write_all(&input)
            .unwrap();
        // Beside the shared data, when it is there (so nothing imports NLTK's downloader).
        let nltk = primer_testdata::shared_data()
            .map(|d| d.join("../reference/nltk_data"))
            .unwrap_or_default();
        eprintln!(
            "running datatrove on {} documents (minutes; cached afterwards)…",
            docs.len()
        );
        let st = std::process::Command::new(&python)
            .arg(&script)
            .arg(&in_path)
            .arg(&out_path)
            .arg(&model)
            .arg("2")
            .env("NLTK_DATA", nltk)
            .status()
            .expect("run datatrove");
        assert!(st.success(), "datatrove script failed");
    }
    let reference: Vec<serde_json::Value> =
        std::io::BufReader::new(std::fs::File::open(&out_path).unwrap())
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
    assert_eq!(reference.len(), docs.len());

    let gq = GopherQualityConfig::default();
    let gr = GopherRepetitionConfig::default();
    let c4 = C4Config::default();
    let fw = FinewebConfig::default();
    let lang = LanguageConfig {
        model: model.to_string_lossy().into_owned(),
        languages: vec!["en".into()],
        min_score: 0.65,
        label_only: false,
        keep_dropped: false,
    }
    .build(&primer_core::BuildContext {
        stage_id: "parity",
        base_dir: Path::new("/"),
    })
    .expect("lid model");

    let filters = [
        "gopher_quality",
        "gopher_repetition",
        "c4",
        "fineweb",
        "language",
    ];
    let mut agree: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kept: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut disagreements: Vec<String> = Vec::new();
    let (mut c4_text_same, mut c4_both_kept) = (0usize, 0usize);
    let mut max_score_diff = 0f64;
    for ((id, text), r) in docs.iter().zip(&reference) {
        assert_eq!(r["id"].as_str().unwrap(), id);
        let c4d = c4.check(text);
        let (l, s, _) = lang.predict(text);
        let ours: [(&str, String); 5] = [
            ("gopher_quality", reason(&gq.check(text))),
            ("gopher_repetition", reason(&gr.check(text))),
            ("c4", reason(&c4d)),
            ("fineweb", reason(&fw.check(text))),
            ("language", l.clone()),
        ];
        for (name, mine) in ours {
            let theirs = r[if name == "language" { "lang" } else { name }]
                .as_str()
                .unwrap_or("?")
                .to_string();
            let same = if name == "language" {
                max_score_diff = max_score_diff.max((r["lang_score"].as_f64().unwrap() - s).abs());
                mine == theirs
            } else {
                (mine == "keep") == (theirs == "keep")
            };
            let k = kept.entry(name).or_default();
            // Kept documents; for language, documents labelled English.
            let yes = if name == "language" { "en" } else { "keep" };
            k.0 += usize::from(mine == yes);
            k.1 += usize::from(theirs == yes);
            if same {
                *agree.entry(name).or_default() += 1;
            } else {
                disagreements.push(format!("{name}\t{id}\tprimer: {mine}\tdatatrove: {theirs}"));
            }
        }
        if let Some(t) = r["c4_text"].as_str()
            && !matches!(c4d, Decision::Drop(_))
        {
            c4_both_kept += 1;
            let mine = match &c4d {
                Decision::KeepText(x) => x.as_str(),
                _ => text.as_str(),
            };
            c4_text_same += usize::from(mine == t);
        }
    }
    eprintln!("{} disagreements:", disagreements.len());
    for d in &disagreements {
        eprintln!("  {d}");
    }
    let n = docs.len();
    eprintln!(
        "documents: {n} ({n_code} code); C4 sentence counts: spaCy sentencizer (datatrove 0.10.1), NLTK_DATA=../shared/reference/nltk_data"
    );
    for f in filters {
        let a = agree.get(f).copied().unwrap_or(0);
        let (kp, kd) = kept[f];
        eprintln!(
            "{f:18} agree {a}/{n} = {:.2}%   kept: primer {kp}, datatrove {kd}",
            100.0 * a as f64 / n as f64
        );
    }
    eprintln!("c4 text identical on {c4_text_same}/{c4_both_kept} documents both keep");
    eprintln!("language: max |lang_score difference| = {max_score_diff:.2e}");
    for f in filters {
        let a = agree.get(f).copied().unwrap_or(0);
        assert!(a * 100 >= n * 99, "{f}: only {a}/{n} identical decisions");
    }
    assert!(
        c4_text_same * 100 >= c4_both_kept * 99,
        "C4 text differs too often"
    );
}

/// The `pii` stage's redaction equals datatrove's `PIIFormatter` output, text for text, on
/// the same documents (one redactor over all documents in order, as one formatter).
#[test]
fn same_pii_redaction_as_datatrove() {
    let Some(python) = primer_testdata::ref_python_or_skip("datatrove[processing]==0.10.1") else {
        return;
    };
    let Some(data) = primer_testdata::shared_data_or_skip() else {
        return;
    };
    let docs = sample(&data);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("filters-parity-pii");
    std::fs::create_dir_all(&dir).unwrap();
    let in_path = dir.join("input.jsonl");
    let out_path = dir.join("datatrove.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&in_path).unwrap());
    for (id, text) in &docs {
        serde_json::to_writer(&mut w, &serde_json::json!({"id": id, "text": text})).unwrap();
        w.write_all(b"\n").unwrap();
    }
    drop(w);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/datatrove_pii.py");
    let st = std::process::Command::new(&python)
        .arg(&script)
        .arg(&in_path)
        .arg(&out_path)
        .status()
        .expect("run datatrove");
    assert!(st.success(), "datatrove PII script failed");
    let mut red = PiiConfig::default().redactor().unwrap();
    let mut same = 0;
    let mut changed = 0;
    let mut differ = Vec::new();
    let reference = std::io::BufReader::new(std::fs::File::open(&out_path).unwrap()).lines();
    for ((id, text), line) in docs.iter().zip(reference) {
        let r: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let (mine, e, i) = red.redact(text);
        changed += usize::from(e + i > 0);
        if mine == r["text"].as_str().unwrap() {
            same += 1;
        } else {
            differ.push(id.clone());
        }
    }
    eprintln!(
        "pii: identical text on {same}/{} documents ({changed} redacted); differing: {differ:?}",
        docs.len()
    );
    assert!(changed > 0, "the sample should contain addresses to redact");
    assert!(same * 100 >= docs.len() * 99);
}
