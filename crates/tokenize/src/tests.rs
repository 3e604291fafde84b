//! Stage tests: real tokenizers and text (the repository's demo corpus and GPT-2
//! tokenizer; the shared corpora and Qwen3's tokenizer when they are there), reference
//! readers, determinism across thread counts, and invariants under random settings
//! (proptest).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, StringArray};
use arrow::record_batch::RecordBatch;
use primer_core::testing::{read_all, run_stage_with};
use primer_core::{
    BuildContext, Dataset, InputSchema, Provenance, Stage, StageDir, StageInfo, WriteOptions,
    documents_schema,
};

use crate::reader::{LlmcShard, MegatronShard, read_manifest, verify};
use crate::shards::document_order;
use crate::{ShardFormat, TokenWidth, Tokenize, TokenizeConfig};

/// GPT-2's tokenizer.json, the repository's copy.
fn gpt2() -> PathBuf {
    primer_testdata::demo_data("gpt2-tokenizer.json")
}

/// A document dataset at `dir` with one part per entry of `parts`; `None` text is null.
pub(crate) fn docs_dataset(dir: &Path, parts: &[Vec<(String, Option<String>)>]) -> Dataset {
    let mut schema = documents_schema().as_ref().clone();
    // Let the text be null for the bad-input test.
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "text" {
                Arc::new(f.as_ref().clone().with_nullable(true))
            } else {
                f.clone()
            }
        })
        .collect();
    schema = arrow::datatypes::Schema::new(fields);
    let schema = Arc::new(schema);
    let sd = StageDir::open(dir, "docs", schema.clone(), WriteOptions::default()).unwrap();
    for (t, docs) in parts.iter().enumerate() {
        let mut out = sd.task_output(t).unwrap();
        if !docs.is_empty() {
            let ids: Vec<&str> = docs.iter().map(|d| d.0.as_str()).collect();
            let texts: Vec<Option<&str>> = docs.iter().map(|d| d.1.as_deref()).collect();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(LargeStringArray::from(texts)),
                Arc::new(StringArray::from(vec!["test"; docs.len()])),
                Arc::new(StringArray::from(vec![None::<&str>; docs.len()])),
            ];
            out.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
                .unwrap();
        }
        sd.complete(out).unwrap();
    }
    let info = StageInfo {
        id: "docs".into(),
        kind: "read".into(),
    };
    sd.finalize(
        info,
        Provenance::default(),
        parts.len(),
        0,
        0.0,
        Default::default(),
    )
    .unwrap();
    Dataset::open(dir).unwrap()
}

/// The first `n` documents of a `.jsonl.zst` file, as (id, text).
fn jsonl_zst_docs(path: &Path, n: usize) -> Vec<(String, String)> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = std::io::BufReader::new(zstd::stream::read::Decoder::new(f).unwrap());
    r.lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The first `n` documents of a shared corpus, as (id, text); `None` after saying the
/// test is skipped when the shared data is not there.
pub(crate) fn corpus_docs(name: &str, n: usize) -> Option<Vec<(String, String)>> {
    let path = primer_testdata::shared_file_or_skip(&format!("corpora/{name}"))?;
    Some(jsonl_zst_docs(&path, n))
}

/// `n` documents of the repository's demo corpus: the Python documentation pages (220),
/// then CPython source files (46).
fn demo_docs(n: usize) -> Vec<(String, String)> {
    let mut docs = jsonl_zst_docs(&primer_testdata::demo_data("python-docs.jsonl.zst"), n);
    let more = n - docs.len();
    docs.extend(jsonl_zst_docs(
        &primer_testdata::demo_data("cpython-stdlib.jsonl.zst"),
        more,
    ));
    assert_eq!(
        docs.len(),
        n,
        "the demo corpus has fewer than {n} documents"
    );
    docs
}

fn config(tokenizer: &Path, output: &Path) -> TokenizeConfig {
    toml::from_str(&format!(
        "tokenizer = {:?}\noutput = {:?}\n",
        tokenizer.display().to_string(),
        output.display().to_string()
    ))
    .unwrap()
}

fn build(c: &TokenizeConfig) -> primer_core::Result<Tokenize> {
    c.build(&BuildContext {
        stage_id: "tok",
        base_dir: Path::new("/"),
    })
}

/// Run the stage with `threads` rayon threads.
fn run(stage: &Tokenize, input: &Dataset, dir: &Path, batch: usize, threads: usize) -> Dataset {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        run_stage_with(stage, std::slice::from_ref(input), dir, batch, threads).unwrap()
    })
}

/// Every Megatron sequence of every shard, in manifest order.
fn megatron_sequences(out: &Path) -> Vec<Vec<u32>> {
    let m = read_manifest(out).unwrap();
    let mut seqs = Vec::new();
    for s in &m.shards {
        let sh = MegatronShard::open(&out.join("megatron").join(&s.name)).unwrap();
        for i in 0..sh.sequences() {
            seqs.push(sh.sequence(i).unwrap());
        }
    }
    seqs
}

/// Every shard file under `out` (relative path → bytes).
fn shard_bytes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["megatron", "llmc"] {
        let Ok(rd) = std::fs::read_dir(out.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            files.insert(
                format!("{sub}/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    files.insert(
        "manifest.json".into(),
        std::fs::read(out.join("manifest.json")).unwrap(),
    );
    files
}

fn write_jsonl(path: &Path, docs: &[(String, String)]) {
    let mut s = String::new();
    for (id, text) in docs {
        s.push_str(&serde_json::json!({"id": id, "text": text}).to_string());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Run `tests/reference/read_shards.py` with `$PRIMER_REF_PYTHON` (numpy + tokenizers);
/// skipped, loudly, when the variable is unset.
fn reference_readers(out: &Path, docs_jsonl: &Path) {
    let Some(python) = primer_testdata::ref_python_or_skip(
        "numpy and tokenizers, for the Megatron/llm.c reference readers",
    ) else {
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/read_shards.py"
    );
    let o = std::process::Command::new(python)
        .arg(script)
        .arg(out)
        .arg(docs_jsonl)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "reference readers failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("reference readers ok"), "{stdout}");
    eprintln!("{stdout}");
}

/// GPT-2 on real documentation pages and source files: both formats, a validation split and several
/// shards; the shards read back equal a direct `tokenizers` encoding of each document, in
/// the seeded order, and the Python reference readers agree.
#[test]
fn gpt2_shards_hold_exactly_the_encoded_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = demo_docs(240);
    let parts: Vec<Vec<(String, Option<String>)>> = docs
        .chunks(80)
        .map(|c| {
            c.iter()
                .map(|(i, t)| (i.clone(), Some(t.clone())))
                .collect()
        })
        .collect();
    let input = docs_dataset(&tmp.path().join("docs"), &parts);
    let tok_path = gpt2();
    let out = tmp.path().join("shards");
    let mut c = config(&tok_path, &out);
    c.shard_tokens = 40_000;
    c.validation_fraction = 0.1;
    c.seed = 42;
    let stage = build(&c).unwrap();
    assert_eq!(stage.eos.as_ref().unwrap().0, 50256);
    assert_eq!(stage.width, TokenWidth::U16);
    let ds = run(&stage, &input, &tmp.path().join("tok"), 64, 2);

    // A direct encoding with the tokenizers crate, independent of the stage.
    let direct = tokenizers::Tokenizer::from_file(&tok_path).unwrap();
    let want: Vec<Vec<u32>> = docs
        .iter()
        .map(|(_, t)| {
            let mut ids = direct.encode(t.as_str(), false).unwrap().get_ids().to_vec();
            ids.push(50256);
            ids
        })
        .collect();
    assert!(docs.iter().all(|(_, t)| !t.is_empty()));
    assert_eq!(ds.rows(), 240);
    let m = read_manifest(&out).unwrap();
    let total: u64 = want.iter().map(|w| w.len() as u64).sum();
    assert_eq!(m.tokens, total);
    assert_eq!(ds.manifest().counters.get("tokens"), total);
    assert_eq!(m.documents, 240);
    assert_eq!(m.splits["val"].documents, 24);
    assert!(m.splits["train"].shards >= 3, "{:?}", m.splits);
    assert_eq!(m.dtype, "uint16");
    // Sequences in manifest order are the documents in the seeded order.
    let order = document_order(240, true, 42);
    let got = megatron_sequences(&out);
    assert_eq!(got.len(), 240);
    for (k, &d) in order.iter().enumerate() {
        assert_eq!(got[k], want[d as usize], "sequence {k} is document {d}");
    }
    let v = verify(&out, &m).unwrap();
    assert_eq!((v.documents, v.tokens), (240, total));
    // The llm.c shards: GPT-2 header and the same tokens.
    let first = LlmcShard::open(&out.join("llmc/val-00000.bin")).unwrap();
    assert_eq!((first.magic, first.version), (20240520, 1));
    assert_eq!(first.ntok, m.shards[0].tokens);
    assert_eq!(first.tokens(0, 3).unwrap(), want[order[0] as usize][..3]);

    let jsonl = tmp.path().join("docs.jsonl");
    write_jsonl(&jsonl, &docs);
    reference_readers(&out, &jsonl);
}

/// Qwen3's 151,669-token vocabulary needs 4-byte tokens: Megatron int32 (code 4), llm.c
/// uint32 (20240801 / 7).
#[test]
fn qwen3_shards_use_four_byte_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(tok_path) = primer_testdata::shared_file_or_skip("tokenizers/qwen3/tokenizer.json")
    else {
        return;
    };
    let Some(docs) = corpus_docs("linux-kernel-docs-rst.jsonl.zst", 40) else {
        return;
    };
    let parts = vec![
        docs.iter()
            .map(|(i, t)| (i.clone(), Some(t.clone())))
            .collect::<Vec<_>>(),
    ];
    let input = docs_dataset(&tmp.path().join("docs"), &parts);
    let out = tmp.path().join("shards");
    let mut c = config(&tok_path, &out);
    c.shard_tokens = 20_000;
    let stage = build(&c).unwrap();
    assert_eq!(stage.width, TokenWidth::U32);
    assert_eq!(stage.eos.as_ref().unwrap().1, "<|endoftext|>");
    let eos = stage.eos.as_ref().unwrap().0;
    run(&stage, &input, &tmp.path().join("tok"), 16, 2);
    let m = read_manifest(&out).unwrap();
    assert_eq!(m.dtype, "uint32");
    let sh = MegatronShard::open(&out.join("megatron/train-00000")).unwrap();
    assert_eq!((sh.dtype_code, sh.dtype), (4, "int32"));
    let l = LlmcShard::open(&out.join("llmc/train-00000.bin")).unwrap();
    assert_eq!(
        (l.magic, l.version, l.width),
        (20240801, 7, TokenWidth::U32)
    );
    let direct = tokenizers::Tokenizer::from_file(&tok_path).unwrap();
    let order = document_order(40, true, 0);
    let got = megatron_sequences(&out);
    for (k, &d) in order.iter().enumerate() {
        let mut want = direct
            .encode(docs[d as usize].1.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        want.push(eos);
        assert_eq!(got[k], want, "sequence {k}");
    }
    assert!(
        got.iter().flatten().any(|&t| t >= 65536),
        "ids above uint16"
    );
    verify(&out, &m).unwrap();
    let jsonl = tmp.path().join("docs.jsonl");
    write_jsonl(&jsonl, &docs);
    reference_readers(&out, &jsonl);
}

/// Same input and seed: byte-identical shards at 1 and 2 threads and at batch sizes 1, 7
/// and 500.
#[test]
fn shards_are_byte_identical_across_threads_and_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = demo_docs(150);
    let parts: Vec<Vec<(String, Option<String>)>> = docs
        .chunks(50)
        .map(|c| {
            c.iter()
                .map(|(i, t)| (i.clone(), Some(t.clone())))
                .collect()
        })
        .collect();
    let input = docs_dataset(&tmp.path().join("docs"), &parts);
    let tok_path = gpt2();
    let mut results = Vec::new();
    for (threads, batch) in [(1, 500), (2, 7), (2, 1)] {
        let out = tmp.path().join(format!("shards-{threads}-{batch}"));
        let mut c = config(&tok_path, &out);
        c.shard_tokens = 30_000;
        c.validation_fraction = 0.05;
        c.seed = 3;
        let stage = build(&c).unwrap();
        run(
            &stage,
            &input,
            &tmp.path().join(format!("tok-{threads}-{batch}")),
            batch,
            threads,
        );
        let mut files = shard_bytes(&out);
        // The manifest names the stage's own output path; the rest must be equal.
        let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        files.insert("manifest.json".into(), m["shards"].to_string().into_bytes());
        results.push(files);
    }
    assert!(results[0].len() > 6, "{:?}", results[0].keys());
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// A tiny word-level tokenizer: `<end>` = 0, `<bos>` = 1, word `wN` = N + 2 for N < 5000.
/// Words it does not know fail to encode (its unk token is not in the vocabulary).
pub(crate) fn word_tokenizer(dir: &Path) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<end>".into(), 0.into());
    vocab.insert("<bos>".into(), 1.into());
    for n in 0..5000u32 {
        vocab.insert(format!("w{n}"), (n + 2).into());
    }
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<end>"), special(1, "<bos>")],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    let path = dir.join("words.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// Bad records: a document that fails to encode and one with null text are skipped with a
/// warning naming them and counted; empty documents are dropped and counted; the rest
/// flow on.
#[test]
fn bad_documents_are_skipped_named_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(tmp.path());
    let d = |id: &str, t: Option<&str>| (id.to_string(), t.map(str::to_string));
    let input = docs_dataset(
        &tmp.path().join("docs"),
        &[vec![
            d("good-1", Some("w5 w6")),
            d("unknown-word", Some("w5 zebra")),
            d("null-text", None),
            d("empty", Some("   ")),
            d("good-2", Some("w7")),
        ]],
    );
    let out = tmp.path().join("shards");
    let mut c = config(&tok, &out);
    c.eos = "<end>".into();
    c.bos = "<bos>".into();
    c.shuffle = false;
    let stage = build(&c).unwrap();
    let ds = run(&stage, &input, &tmp.path().join("tok"), 10, 2);
    let m = ds.manifest();
    assert_eq!(m.rows, 2);
    assert_eq!(m.counters.get("rows_in"), 5);
    assert_eq!(m.counters.get("dropped.encode_error"), 1);
    assert_eq!(m.counters.get("dropped.null_text"), 1);
    assert_eq!(m.counters.get("dropped.empty"), 1);
    assert_eq!(m.counters.get("tokens"), 7);
    assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("document `unknown-word` could not be encoded"),
        "{:?}",
        m.warnings
    );
    assert!(m.warnings[1].contains("document `null-text`: the text is null"));
    assert_eq!(megatron_sequences(&out), [vec![1, 7, 8, 0], vec![1, 9, 0]]);
    let rows = read_all(&ds).unwrap();
    assert_eq!(rows.num_rows(), 2);
}

/// Settings are checked with messages that say what to change.
#[test]
fn bad_settings_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(tmp.path());
    let out = tmp.path().join("out");
    let err = |c: &TokenizeConfig| build(c).err().expect("refused").to_string();

    let c = config(&tmp.path().join("missing.json"), &out);
    assert!(
        err(&c).contains("missing.json does not exist"),
        "{}",
        err(&c)
    );
    let not_json = tmp.path().join("vocab.txt");
    std::fs::write(&not_json, "hello\n").unwrap();
    let c = config(&not_json, &out);
    assert!(err(&c).contains("is not a Hugging Face tokenizer.json"));

    let mut c = config(&tok, &out);
    assert!(
        err(&c).contains("eos = \"auto\": the tokenizer has none of `<|endoftext|>`"),
        "{}",
        err(&c)
    );
    c.eos = "<|endoftext|>".into();
    assert!(err(&c).contains("the tokenizer has no such token"));
    c.eos = "none".into();
    c.eos_id = Some(99999);
    assert!(err(&c).contains("give one of them"));
    c.eos = "auto".into();
    assert!(err(&c).contains("eos_id 99999 is not a token of this tokenizer (ids 0 to 5001)"));
    c.eos_id = Some(0);
    let s = build(&c).unwrap();
    assert_eq!(s.eos, Some((0, "<end>".into())));
    assert_eq!(s.width, TokenWidth::U16);
    c.shard_tokens = 0;
    assert!(err(&c).contains("shard_tokens = 0: must be from 1 to 2000000000"));
    c.shard_tokens = 10;
    c.validation_fraction = 0.7;
    assert!(err(&c).contains("validation_fraction = 0.7: must be from 0 to 0.5"));
    c.validation_fraction = 0.0;
    c.formats = vec![];
    assert!(err(&c).contains("formats is empty"));
    // Unknown keys are refused by the parser.
    let e =
        toml::from_str::<TokenizeConfig>("tokenizer = \"t\"\noutput = \"o\"\nshard_token = 5\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("unknown field `shard_token`"), "{e}");

    // An input without the text column is refused before any work, naming the column.
    c.formats = vec![ShardFormat::Llmc];
    c.text_column = "body".into();
    let s = build(&c).unwrap();
    let e = s
        .output_schema(&[InputSchema {
            id: "docs".into(),
            schema: documents_schema(),
        }])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input `docs` has no column `body` (text); it has `id`, `text`"),
        "{e}"
    );
}

/// A rerun with other settings replaces the shards: files of the old plan that the new one
/// does not write are removed, and the manifest matches what is there.
#[test]
fn a_rerun_removes_stale_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(tmp.path());
    let docs: Vec<(String, Option<String>)> = (0..30)
        .map(|i| (format!("d{i}"), Some(format!("w{i} w{} w{}", i + 1, i + 2))))
        .collect();
    let input = docs_dataset(&tmp.path().join("docs"), &[docs]);
    let out = tmp.path().join("shards");
    let mut c = config(&tok, &out);
    c.eos = "<end>".into();
    c.shard_tokens = 8;
    run(&build(&c).unwrap(), &input, &tmp.path().join("t1"), 10, 2);
    assert!(out.join("megatron/train-00014.idx").exists());
    c.shard_tokens = 60;
    c.formats = vec![ShardFormat::Megatron];
    run(&build(&c).unwrap(), &input, &tmp.path().join("t2"), 10, 2);
    let files: Vec<String> = shard_bytes(&out).into_keys().collect();
    assert_eq!(
        files,
        [
            "manifest.json",
            "megatron/train-00000.bin",
            "megatron/train-00000.idx",
            "megatron/train-00001.bin",
            "megatron/train-00001.idx"
        ]
    );
    let m = read_manifest(&out).unwrap();
    assert_eq!(verify(&out, &m).unwrap().tokens, 120);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// Whatever the documents, shard size, split and seed: the manifest's token count
        /// is the sum over shards (and over the documents), and every document is in
        /// exactly one shard, whole.
        #[test]
        fn no_document_is_lost_or_duplicated(
            lens in proptest::collection::vec(0usize..12, 0..60),
            parts in 1usize..4,
            shard_tokens in 1u64..80,
            fraction in 0.0f64..0.5,
            shuffle in any::<bool>(),
            seed in any::<u64>(),
            llmc in any::<bool>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let tok = word_tokenizer(tmp.path());
            // Document i: word w{i} first (its identity), then len-1 more words.
            let docs: Vec<(String, Option<String>)> = lens
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    let words: Vec<String> = (0..len).map(|k| format!("w{}", if k == 0 { i } else { 1000 + k })).collect();
                    (format!("doc-{i}"), Some(words.join(" ")))
                })
                .collect();
            let chunk = docs.len().div_ceil(parts).max(1);
            let mut split: Vec<Vec<(String, Option<String>)>> = docs.chunks(chunk).map(<[_]>::to_vec).collect();
            split.resize(parts.max(split.len()), Vec::new());
            let input = docs_dataset(&tmp.path().join("docs"), &split);
            let out = tmp.path().join("shards");
            let mut c = config(&tok, &out);
            c.eos = "<end>".into();
            c.shard_tokens = shard_tokens;
            c.validation_fraction = fraction;
            c.shuffle = shuffle;
            c.seed = seed;
            if llmc {
                c.formats = vec![ShardFormat::Megatron, ShardFormat::Llmc];
            } else {
                c.formats = vec![ShardFormat::Megatron];
            }
            let stage = build(&c).unwrap();
            let ds = run(&stage, &input, &tmp.path().join("tok"), 5, 2);
            let m = read_manifest(&out).unwrap();
            let kept: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] > 0).collect();
            let want_tokens: u64 = kept.iter().map(|&i| lens[i] as u64 + 1).sum();
            prop_assert_eq!(m.tokens, want_tokens);
            prop_assert_eq!(m.tokens, m.shards.iter().map(|s| s.tokens).sum::<u64>());
            prop_assert_eq!(m.documents, kept.len() as u64);
            prop_assert_eq!(ds.manifest().counters.get("dropped.empty"), (lens.len() - kept.len()) as u64);
            let split_sum: u64 = m.splits.values().map(|t| t.tokens).sum();
            prop_assert_eq!(split_sum, m.tokens);
            prop_assert_eq!(
                m.splits.get("val").map_or(0, |t| t.documents),
                crate::shards::validation_count(kept.len() as u64, fraction)
            );
            // Every shard but the last of its split reaches the target.
            for split in ["train", "val"] {
                let s: Vec<_> = m.shards.iter().filter(|s| s.split == split).collect();
                for sh in s.iter().rev().skip(1) {
                    prop_assert!(sh.tokens >= shard_tokens, "{:?}", sh);
                }
            }
            let v = verify(&out, &m).unwrap();
            prop_assert_eq!(v.tokens, m.tokens);
            // Identity word of every sequence: each kept document exactly once.
            let mut seen: Vec<u32> = megatron_sequences(&out)
                .iter()
                .map(|s| {
                    assert_eq!(*s.last().unwrap(), 0, "ends with <end>");
                    s[0] - 2
                })
                .collect();
            seen.sort();
            prop_assert_eq!(seen, kept.iter().map(|&i| i as u32).collect::<Vec<_>>());
        }
    }
}

/// The demo's tokenizer is the shared GPT-2 tokenizer.json, whitespace removed.
#[test]
fn demo_tokenizer_is_the_shared_gpt2_json() {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    };
    let Some(shared) = primer_testdata::shared_file_or_skip("tokenizers/gpt2/tokenizer.json")
    else {
        return;
    };
    assert_eq!(read(gpt2()), read(shared));
}

/// primer's byte-level BPE encoder gives exactly the ids of `tokenizers` (encode without
/// special-token templates) on real text: documentation pages in 26 languages, Python
/// source, kernel documentation, and edge cases (special-token text, odd whitespace,
/// scripts without spaces, long runs).
#[test]
fn fast_bpe_equals_tokenizers_on_real_text() {
    use rayon::prelude::*;
    let Some(qwen) = primer_testdata::shared_file_or_skip("tokenizers/qwen3/tokenizer.json") else {
        return;
    };
    let path = gpt2();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let fast = crate::fastbpe::FastBpe::from_json(&json).expect("GPT-2 takes the fast path");
    let hf = tokenizers::Tokenizer::from_file(&path).unwrap();
    let mut texts: Vec<(String, String)> = Vec::new();
    for (name, n) in [
        ("docs-pages-extracted.jsonl.zst", 1200),
        ("cpython-stdlib-9-versions.jsonl.zst", 300),
        ("linux-kernel-docs-rst.jsonl.zst", 300),
    ] {
        let Some(docs) = corpus_docs(name, n) else {
            return;
        };
        texts.extend(docs);
    }
    for (i, t) in [
        "",
        "<|endoftext|>",
        "a<|endoftext|>b <|endoftext|><|endoftext|> c<|endoftext",
        "  leading spaces\n\n\t trailing   \n",
        "emoji 🤗🤗 and 中文没有空格的句子 and e\u{301} combining, Ünïcödé",
        "it's we've THEY'LL I'm you'd 's 't",
        "\u{0}\u{1f}\u{7f} control\r\n",
        &"x".repeat(3000),
        &"ab ".repeat(200),
        "1234567890 3.14159 1e10 0x1F",
    ]
    .iter()
    .enumerate()
    {
        texts.push((format!("edge-{i}"), t.to_string()));
    }
    let tokens: usize = texts
        .par_iter()
        .map(|(id, t)| {
            let want = hf.encode(t.as_str(), false).unwrap().get_ids().to_vec();
            assert_eq!(fast.encode(t).unwrap(), want, "document {id}");
            // Twice: the second time from the cache.
            assert_eq!(fast.encode(t).unwrap(), want, "document {id}, cached");
            want.len()
        })
        .sum();
    assert!(tokens > 3_000_000, "{tokens} tokens compared");
    // Tokenizers it does not reproduce take the tokenizers path.
    let qwen: serde_json::Value = serde_json::from_slice(&std::fs::read(qwen).unwrap()).unwrap();
    assert!(crate::fastbpe::FastBpe::from_json(&qwen).is_none());
    let mut prefixed = json.clone();
    prefixed["pre_tokenizer"]["add_prefix_space"] = true.into();
    assert!(crate::fastbpe::FastBpe::from_json(&prefixed).is_none());
}
