//! Throughput of the `score` stage's prediction (primer's fastText predictor, every class's
//! probability per document, the text read as one line) beside fastText's Python package
//! on the same model and texts, run by `bench/score.sh`.
//!
//! `score MODEL TEXTS.jsonl [THREADS...]`: loads the texts (`{"text": …}` per line), times
//! one pass per thread count (documents split evenly over the threads), prints a line per
//! count and one JSON line per count for the script.

use std::io::BufRead;
use std::time::Instant;

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
    let model = primer_fasttext::Model::load(&args[0]).expect("model");
    let texts: Vec<String> = std::io::BufReader::new(std::fs::File::open(&args[1]).expect("texts"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("JSON");
            v["text"].as_str().expect("text").to_string()
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let threads: Vec<usize> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|t| t.parse().expect("a thread count"))
            .collect()
    } else {
        vec![1, 2]
    };
    for &n in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool");
        // Two passes; the second is timed (the first warms the caches, as a long run is).
        let mut checksum = 0.0f64;
        let mut wall = 0.0;
        let mut cpu = 0.0;
        for pass in 0..2 {
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
            if pass == 1 {
                wall = t0.elapsed().as_secs_f64();
                cpu = primer_testdata::cpu_seconds() - c0;
            }
        }
        let mb = bytes as f64 / 1e6;
        println!(
            "primer: {} documents, {mb:.1} MB, {n} thread(s): {:.0} documents/s, {:.1} MB/s, {:.1} MB per CPU second",
            texts.len(),
            texts.len() as f64 / wall,
            mb / wall,
            mb / cpu.max(1e-9)
        );
        println!(
            "{}",
            serde_json::json!({"tool": "primer", "threads": n, "documents": texts.len(), "mb": mb,
                "wall_s": wall, "cpu_s": cpu, "checksum": checksum})
        );
    }
}
