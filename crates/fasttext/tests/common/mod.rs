//! Shared by the parity tests: where the real data is, and one comparison of the Rust
//! predictor with fastText's C++ (the `fasttext` crate) on one text.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};

use primer_fasttext::{Model, Prediction, Predictor};

/// The shared data directory, or `None` after saying the test is skipped.
pub fn data_dir() -> Option<PathBuf> {
    primer_testdata::shared_data_or_skip()
}

/// lid.176.ftz as the repository carries it for the demo.
pub fn lid_model() -> PathBuf {
    primer_testdata::demo_data("lid.176.ftz")
}

/// `(id, text)` of every `every`-th record of a `.jsonl.zst` (the others are not parsed),
/// at most `limit`.
pub fn read_zst_jsonl(path: &Path, every: usize, limit: usize) -> Vec<(String, String)> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = std::io::BufReader::new(zstd::Decoder::new(f).expect("zstd"));
    r.lines()
        .step_by(every)
        .take(limit)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("JSON");
            (
                v["id"].as_str().expect("id").to_string(),
                v["text"].as_str().expect("text").to_string(),
            )
        })
        .collect()
}

/// The C++ side.
pub fn load_cpp(path: &Path) -> fasttext::FastText {
    let mut ft = fasttext::FastText::new();
    ft.load_model(path.to_str().unwrap())
        .unwrap_or_else(|e| panic!("C++ fastText cannot load {}: {e}", path.display()));
    ft
}

/// Compares every way the Rust predictor answers with the C++ on each text it is given;
/// collects disagreements with the text's id.
pub struct Parity<'m> {
    model: &'m Model,
    pred: Predictor<'m>,
    cpp: fasttext::FastText,
    out: Vec<Prediction>,
    /// The labels whose one-label probability is checked (all, for small label sets).
    check_labels: Vec<usize>,
    pub texts: usize,
    pub comparisons: usize,
    pub disagreements: Vec<String>,
}

type Cpp = Vec<(String, u32)>;

fn show(v: &[(String, u32)]) -> String {
    let items: Vec<String> = v
        .iter()
        .take(6)
        .map(|(l, p)| format!("{l}:{:e}", f32::from_bits(*p)))
        .collect();
    format!(
        "[{}{}]",
        items.join(" "),
        if v.len() > 6 {
            format!(" …{}", v.len())
        } else {
            String::new()
        }
    )
}

impl<'m> Parity<'m> {
    pub fn new(model: &'m Model, path: &Path) -> Self {
        Parity {
            model,
            pred: model.predictor(),
            cpp: load_cpp(path),
            out: Vec::new(),
            check_labels: (0..model.labels().len()).collect(),
            texts: 0,
            comparisons: 0,
            disagreements: Vec::new(),
        }
    }

    fn cpp(&self, text: &str, k: i32, threshold: f32) -> Cpp {
        self.cpp
            .predict(text, k, threshold)
            .unwrap_or_else(|e| panic!("C++ predict: {e}"))
            .into_iter()
            .map(|p| (p.label, p.prob.to_bits()))
            .collect()
    }

    fn rust(&mut self, k: usize, threshold: f32) -> Cpp {
        self.pred.predict(k, threshold, &mut self.out);
        self.out
            .iter()
            .map(|p| (self.model.labels()[p.label].clone(), p.prob.to_bits()))
            .collect()
    }

    fn same(&mut self, id: &str, what: &str, rust: &Cpp, cpp: &Cpp) {
        self.comparisons += 1;
        if rust != cpp {
            self.disagreements.push(format!(
                "{id} {what}: rust {} c++ {}",
                show(rust),
                show(cpp)
            ));
        }
    }

    /// Both ways of reading `text` (one document with newlines as spaces, as the
    /// `language` stage does; and as a raw line, up to its first newline).
    pub fn check(&mut self, id: &str, text: &str) {
        self.texts += 1;
        // The C++ gets a C string: its NULs become spaces, which fastText reads alike.
        let doc: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
            .chain(std::iter::once('\n'))
            .collect();
        self.pred.read_document(text.as_bytes());
        self.check_read(id, "document", &doc);
        let line = text.replace('\0', " ");
        self.pred.read_line(text.as_bytes());
        self.check_read(id, "line", &line);
    }

    fn check_read(&mut self, id: &str, mode: &str, cpp_text: &str) {
        if self.pred.hidden().iter().any(|x| x.is_nan()) {
            // fastText's dense dotRow would throw, and abort this test.
            self.disagreements.push(format!(
                "{id} {mode}: the hidden vector has a NaN (the C++ would throw); not compared"
            ));
            return;
        }
        let all = self.cpp(cpp_text, -1, 0.0);
        let r = self.rust(usize::MAX, 0.0);
        self.same(id, &format!("{mode} k=-1"), &r, &all);
        let c = self.cpp(cpp_text, 1, 0.0);
        let r = self.rust(1, 0.0);
        self.same(id, &format!("{mode} k=1"), &r, &c);
        let c = self.cpp(cpp_text, 3, 0.05);
        let r = self.rust(3, 0.05);
        self.same(id, &format!("{mode} k=3 threshold 0.05"), &r, &c);
        let above = self.cpp(cpp_text, -1, 0.05);
        let r = self.rust(usize::MAX, 0.05);
        self.same(id, &format!("{mode} k=-1 threshold 0.05"), &r, &above);

        // The cheap paths against the full C++ search.
        let best: Cpp = self
            .pred
            .best()
            .map(|p| (self.model.labels()[p.label].clone(), p.prob.to_bits()))
            .into_iter()
            .collect();
        let first: Cpp = all.first().cloned().into_iter().collect();
        self.same(id, &format!("{mode} best"), &best, &first);
        for (threshold, list) in [(0.0, &all), (0.05, &above)] {
            let mut wrong = Vec::new();
            for i in 0..self.check_labels.len() {
                let l = self.check_labels[i];
                let name = &self.model.labels()[l];
                let r = self.pred.label(l, threshold).map(|p| p.prob.to_bits());
                let c = list.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
                if r != c {
                    wrong.push(format!("{name} rust {r:?} c++ {c:?}"));
                }
            }
            self.comparisons += 1;
            if !wrong.is_empty() {
                self.disagreements.push(format!(
                    "{id} {mode} one-label probabilities (threshold {threshold}): {}",
                    wrong.join(", ")
                ));
            }
        }
    }

    /// Prints the tally and every disagreement; fails if there is one.
    pub fn finish(&self, what: &str) {
        eprintln!(
            "{what}: {} texts, {} comparisons, {} disagreements",
            self.texts,
            self.comparisons,
            self.disagreements.len()
        );
        for d in self.disagreements.iter().take(100) {
            eprintln!("  {d}");
        }
        assert!(
            self.disagreements.is_empty(),
            "{what}: {} disagreements with the C++ fastText (listed above)",
            self.disagreements.len()
        );
    }
}
