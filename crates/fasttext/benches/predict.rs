//! Language identification throughput on one core: this crate against fastText's C++ (the
//! `fasttext` crate) on lid.176.ftz, over the same real documentation pages, in one run.
//!
//! `nice cargo bench -p primer-fasttext`. Each document is read as the `language` stage
//! reads it (newlines as spaces, a final newline). Timed, best of `PRIMER_BENCH_RUNS`
//! passes (default 3):
//! - C++ `predict(k = -1)`: what the stage used to call (all labels, then the best);
//! - C++ `predict(k = 1)`;
//! - Rust `predict(k = -1)`: the same answer as the C++ k = -1;
//! - Rust `best` + `label(en)`: what the stage calls now.
//!
//! The C++ is given its input strings ready-made (newlines replaced) outside the timing.
//! `PRIMER_BENCH_MB` (default 30): megabytes of text to use.

use std::io::BufRead;
use std::time::Instant;

use primer_fasttext::{Model, Prediction};

fn main() {
    let Some(corpus) = primer_testdata::shared_file("corpora/docs-pages-extracted.jsonl.zst")
    else {
        eprintln!("SKIPPED: the bench reads the shared docs pages; set PRIMER_TEST_DATA");
        return;
    };
    let model_path = primer_testdata::demo_data("lid.176.ftz");
    let env = |k: &str, d: f64| -> f64 {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let budget = (env("PRIMER_BENCH_MB", 30.0) * 1e6) as usize;
    let runs = env("PRIMER_BENCH_RUNS", 3.0) as usize;

    let f = std::fs::File::open(&corpus).expect("corpus");
    let mut docs = Vec::new();
    let mut bytes = 0;
    for l in std::io::BufReader::new(zstd::Decoder::new(f).expect("zstd")).lines() {
        if bytes >= budget {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("JSON");
        let text = v["text"].as_str().expect("text").to_string();
        bytes += text.len();
        docs.push(text);
    }
    let cpp_docs: Vec<String> = docs
        .iter()
        .map(|t| {
            let mut s: String = t
                .chars()
                .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
                .collect();
            s.push('\n');
            s
        })
        .collect();
    let mb = bytes as f64 / 1e6;
    println!(
        "{} documents, {mb:.1} MB of text, lid.176.ftz, one thread",
        docs.len()
    );

    let model = Model::load(&model_path).expect("model");
    let mut cpp = fasttext::FastText::new();
    cpp.load_model(model_path.to_str().unwrap())
        .expect("C++ model");
    let en = model.label_id("__label__en").expect("en");

    let time = |f: &mut dyn FnMut() -> f64| -> (f64, f64) {
        let mut best = f64::INFINITY;
        let mut check = 0.0;
        for _ in 0..runs {
            let t = Instant::now();
            check = f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        (mb / best, check)
    };

    let (cpp_all, cpp_sum) = time(&mut || {
        let mut s = 0.0;
        for d in &cpp_docs {
            let p = cpp.predict(d, -1, 0.0).expect("predict");
            s += p.first().map_or(0.0, |p| p.prob as f64);
        }
        s
    });
    println!("C++  predict k=-1          {cpp_all:7.1} MB/s");
    let (cpp_one, _) = time(&mut || {
        let mut s = 0.0;
        for d in &cpp_docs {
            let p = cpp.predict(d, 1, 0.0).expect("predict");
            s += p.first().map_or(0.0, |p| p.prob as f64);
        }
        s
    });
    println!("C++  predict k=1           {cpp_one:7.1} MB/s");

    // A new predictor in each timed pass: its token cache starts empty, as in a new task,
    // rather than remembering the last pass's documents.
    let mut out: Vec<Prediction> = Vec::new();
    let (rust_all, rust_sum) = time(&mut || {
        let mut pred = model.predictor();
        let mut s = 0.0;
        for d in &docs {
            pred.read_document(d.as_bytes());
            pred.predict(usize::MAX, 0.0, &mut out);
            s += out.first().map_or(0.0, |p| p.prob as f64);
        }
        s
    });
    println!(
        "Rust predict k=-1          {rust_all:7.1} MB/s  {:.1}× C++ k=-1",
        rust_all / cpp_all
    );
    let (rust_stage, stage_sum) = time(&mut || {
        let mut pred = model.predictor();
        let mut s = 0.0;
        for d in &docs {
            pred.read_document(d.as_bytes());
            s += pred.best().map_or(0.0, |p| p.prob as f64);
            std::hint::black_box(pred.label(en, 0.0));
        }
        s
    });
    println!(
        "Rust best + label(en)      {rust_stage:7.1} MB/s  {:.1}× C++ k=-1, {:.1}× C++ k=1",
        rust_stage / cpp_all,
        rust_stage / cpp_one
    );
    // The same documents, the same best probabilities.
    assert_eq!(cpp_sum, rust_sum, "sum of best probabilities (k=-1)");
    assert_eq!(cpp_sum, stage_sum, "sum of best probabilities (best)");
}
