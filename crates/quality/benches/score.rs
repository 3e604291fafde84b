//! Throughput of the `score` stage's prediction (primer's fastText predictor, every class's
//! probability per document, the text read as one line) beside fastText's Python package
//! on the same model and texts, run by `bench/score.sh`: the exact predictor
//! (bit-identical to fastText) and the projected one (`score`'s `projected = true`).
//!
//! `score MODEL TEXTS.jsonl [THREADS...]`: loads the texts (`{"text": …}` per line), times
//! three passes per predictor and thread count (documents split evenly over the threads),
//! prints a line per run and one JSON line per run for the script. With
//! `PRIMER_SCORE_PROBS=DIR`, writes every document's probabilities (one line per
//! document, the model's labels in order) to `DIR/primer.txt` and `DIR/projected.txt`.

use std::io::{BufRead, Write};
use std::time::Instant;

use primer_fasttext::Model;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!("usage: score MODEL TEXTS.jsonl [THREADS...] (bench/score.sh runs it)");
        return;
    }
    let texts: Vec<String> = std::io::BufReader::new(std::fs::File::open(&args[1]).expect("texts"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("JSON");
            v["text"].as_str().expect("text").to_string()
        })
        .collect();
    let threads: Vec<usize> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|t| t.parse().expect("a thread count"))
            .collect()
    } else {
        vec![1, 2]
    };
    let probs_dir = std::env::var_os("PRIMER_SCORE_PROBS").map(std::path::PathBuf::from);

    let t0 = Instant::now();
    let model = Model::load(&args[0]).expect("model");
    let load_s = t0.elapsed().as_secs_f64();
    run("primer", &model, &texts, &threads, probs_dir.as_deref());

    drop(model);
    let t0 = Instant::now();
    let loaded = Model::load(&args[0]).expect("model");
    let load2_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let projected = loaded.project();
    let project_s = t0.elapsed().as_secs_f64();
    assert!(
        projected.is_projected(),
        "the bench model has fewer labels than dims"
    );
    println!(
        "model loaded in {load_s:.2} s and {load2_s:.2} s; projected to {} labels (from dim 100) in {project_s:.2} s",
        projected.dim()
    );
    run(
        "projected",
        &projected,
        &texts,
        &threads,
        probs_dir.as_deref(),
    );
}

/// Timed passes over the texts per run, after a warm-up pass (bench/score_fasttext.py
/// makes as many).
const TIMED_PASSES: usize = 3;

/// Times [`TIMED_PASSES`] passes per thread count and prints their mean figures.
fn run(
    tool: &str,
    model: &Model,
    texts: &[String],
    threads: &[usize],
    probs_dir: Option<&std::path::Path>,
) {
    let bytes: usize = texts.iter().map(String::len).sum();
    for &n in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool");
        let mut checksum = 0.0f64;
        let mut wall = 0.0;
        let mut cpu = 0.0;
        for pass in 0..=TIMED_PASSES {
            let (c0, t0) = (primer_testdata::cpu_seconds(), Instant::now());
            checksum = pool.install(|| {
                texts
                    .par_chunks(texts.len().div_ceil(n).max(1))
                    .map(|chunk| {
                        let mut p = model.predictor();
                        let mut out = Vec::new();
                        let mut s = 0.0f64;
                        for t in chunk {
                            p.read_document(t.as_bytes());
                            p.predict(usize::MAX, 0.0, &mut out);
                            s += out.first().map_or(0.0, |x| f64::from(x.prob));
                        }
                        s
                    })
                    .sum()
            });
            // The first pass warms the caches, as a long run is; the others are timed.
            if pass > 0 {
                wall += t0.elapsed().as_secs_f64() / TIMED_PASSES as f64;
                cpu += (primer_testdata::cpu_seconds() - c0) / TIMED_PASSES as f64;
            }
        }
        let mb = bytes as f64 / 1e6;
        println!(
            "{tool}: {} documents, {mb:.1} MB, {n} thread(s): {:.0} documents/s, {:.1} MB/s, {:.1} MB per CPU second",
            texts.len(),
            texts.len() as f64 / wall,
            mb / wall,
            mb / cpu.max(1e-9)
        );
        println!(
            "{}",
            serde_json::json!({"tool": tool, "threads": n, "documents": texts.len(), "mb": mb,
                "wall_s": wall, "cpu_s": cpu, "checksum": checksum})
        );
    }
    if let Some(dir) = probs_dir {
        let path = dir.join(format!("{tool}.txt"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("probs file"));
        let mut p = model.predictor();
        let mut out = Vec::new();
        for t in texts {
            p.read_document(t.as_bytes());
            p.predict(usize::MAX, 0.0, &mut out);
            let mut probs = vec![0.0f32; model.labels().len()];
            for x in &out {
                probs[x.label] = x.prob;
            }
            let line: Vec<String> = probs.iter().map(|x| format!("{x:e}")).collect();
            writeln!(w, "{}", line.join(" ")).expect("write probs");
        }
        w.flush().expect("write probs");
    }
}
