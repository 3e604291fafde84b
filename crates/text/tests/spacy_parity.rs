//! The word splitter and sentence counter against datatrove's own English tokenizer
//! (spaCy 3.8's blank English pipeline, through `datatrove.utils.word_tokenizers`), run
//! here on real documents from `../shared/data`: docs pages, Linux kernel docs (reST) and
//! CPython source files. Every document's words must be equal, token for token, and its
//! sentence count too.
//!
//! Needs `PRIMER_REF_PYTHON` (a Python with datatrove 0.10.1 and spaCy, as `.ci/run`
//! installs them) and the shared data; skipped with a message otherwise.

use std::io::{BufRead, Write};
use std::path::Path;

use primer_text::words::{count_sentences, min_word_count, split_words};

const DOCS_PAGES: usize = 700;
const KERNEL_DOCS: usize = 200;
const CODE_FILES: usize = 200;

fn read_zst_jsonl(path: &Path) -> impl Iterator<Item = serde_json::Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(zstd::Decoder::new(f).expect("zstd"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("JSON"))
}

fn sample(dir: &Path) -> Vec<(String, String)> {
    let take = |file: &str, n: usize, every: usize| -> Vec<(String, String)> {
        read_zst_jsonl(&dir.join(file))
            .filter(|v| v["text"].as_str().is_some_and(|t| t.len() <= 60_000))
            .step_by(every)
            .take(n)
            .map(|v| {
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let mut out = take("docs-pages-extracted.jsonl.zst", DOCS_PAGES, 3);
    out.extend(take("linux-kernel-docs-rst.jsonl.zst", KERNEL_DOCS, 5));
    out.extend(take("cpython-stdlib-9-versions.jsonl.zst", CODE_FILES, 37));
    out
}

const SCRIPT: &str = r#"
import json, sys
from datatrove.utils.word_tokenizers import load_word_tokenizer
tok = load_word_tokenizer("en")
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        d = json.loads(line)
        out.write(json.dumps({"id": d["id"], "words": tok.word_tokenize(d["text"]),
                              "sentences": len(tok.sent_tokenize(d["text"]))}) + "\n")
"#;

#[test]
fn words_and_sentences_as_datatrove_splits_them() {
    let Some(python) = primer_testdata::ref_python_or_skip("datatrove 0.10.1 and spaCy") else {
        return;
    };
    let Some(dir) = primer_testdata::shared_file_or_skip("corpora") else {
        return;
    };
    let docs = sample(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let output = tmp.path().join("out.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for (id, text) in &docs {
        serde_json::to_writer(&mut w, &serde_json::json!({"id": id, "text": text})).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let st = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(&input)
        .arg(&output)
        .status()
        .expect("run the reference python");
    assert!(st.success(), "datatrove's tokenizer failed");
    let mut bad = Vec::new();
    let (mut n, mut words) = (0, 0);
    let mut mine = Vec::new();
    for (line, (id, text)) in std::io::BufReader::new(std::fs::File::open(&output).unwrap())
        .lines()
        .zip(&docs)
    {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(v["id"].as_str(), Some(id.as_str()));
        let want: Vec<&str> = v["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        split_words(text, &mut mine);
        n += 1;
        words += want.len();
        if mine != want {
            let at = mine.iter().zip(&want).take_while(|(a, b)| a == b).count();
            bad.push(format!(
                "{id}: words differ at {at}: primer {:?} vs datatrove {:?}",
                &mine[at..(at + 5).min(mine.len())],
                &want[at..(at + 5).min(want.len())]
            ));
        }
        // The bound the fineweb filter decides with when C4 changed the text.
        if min_word_count(text) > want.len() {
            bad.push(format!(
                "{id}: min_word_count {} above datatrove's {} words",
                min_word_count(text),
                want.len()
            ));
        }
        let sents = v["sentences"].as_u64().unwrap() as usize;
        if count_sentences(text) != sents {
            bad.push(format!(
                "{id}: {} sentences, datatrove {sents}",
                count_sentences(text)
            ));
        }
    }
    assert_eq!(n, docs.len());
    eprintln!("{n} documents, {words} words: {} differences", bad.len());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
