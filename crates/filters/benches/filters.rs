//! Throughput of the full filter chain — language (lid.176, keep `en`) → gopher_quality →
//! gopher_repetition → c4 → fineweb — on one core, over real documentation pages, as a
//! pipeline runs it: language identification over all the documents (the `language`
//! stage), then the four filters over the ones it keeps (the `filter` stage).
//!
//! `cargo bench -p primer-filters --bench filters` (bench/filters.sh also runs datatrove's
//! same chain on the same input and prints the ratio). Environment:
//! - `PRIMER_BENCH_DOCS`: documents of docs-pages-extracted to use (default 400).
//! - `PRIMER_BENCH_DUMP`: write the input as JSONL there (for datatrove).
//! - `PRIMER_BENCH_SECONDS`: repeat the pass until this much time has gone (default 3);
//!   each pass starts with empty caches.
//! - `PRIMER_BENCH_PART`: `language`, `chain` or `words` to time one part only.
//! - `PRIMER_BENCH_CHAIN`: the filters of the chain, comma-separated (default
//!   `gopher_quality,gopher_repetition,c4,fineweb`).
//! - `PRIMER_BENCH_ENGLISH`: `1` to time only the documents the language filter keeps (for
//!   the parts), as the chain sees them in the full pass.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use primer_core::BuildContext;
use primer_filters::{ChainCounts, ChainOutcome, FilterConfig, FilterRule, LanguageConfig};

fn main() {
    // Measure memory as the `primer` program runs: with its allocator settings.
    primer_core::tune_allocator();
    let Some(data) = primer_testdata::shared_data() else {
        eprintln!("SKIPPED: the filter bench reads the shared corpora; set PRIMER_TEST_DATA");
        return;
    };
    let n: usize = std::env::var("PRIMER_BENCH_DOCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let min_secs: f64 = std::env::var("PRIMER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let f =
        std::fs::File::open(data.join("corpora/docs-pages-extracted.jsonl.zst")).expect("corpus");
    let docs: Vec<(String, String)> = std::io::BufReader::new(zstd::Decoder::new(f).expect("zstd"))
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("JSON");
            (
                v["id"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    if let Ok(p) = std::env::var("PRIMER_BENCH_DUMP") {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&p).expect("dump"));
        for (id, text) in &docs {
            serde_json::to_writer(&mut w, &serde_json::json!({"id": id, "text": text})).unwrap();
            w.write_all(b"\n").unwrap();
        }
    }
    let ctx = BuildContext {
        stage_id: "bench",
        base_dir: Path::new("/"),
    };
    let lang = LanguageConfig {
        model: primer_testdata::demo_data("lid.176.ftz")
            .to_string_lossy()
            .into_owned(),
        languages: vec!["en".into()],
        min_score: 0.65,
        label_only: false,
        keep_dropped: false,
    }
    .build(&ctx)
    .expect("model");
    let names = std::env::var("PRIMER_BENCH_CHAIN")
        .unwrap_or_else(|_| "gopher_quality,gopher_repetition,c4,fineweb".into());
    let chain = FilterConfig {
        chain: names
            .split(',')
            .map(|n| match n {
                "gopher_quality" => FilterRule::GopherQuality(Default::default()),
                "gopher_repetition" => FilterRule::GopherRepetition(Default::default()),
                "c4" => FilterRule::C4(Default::default()),
                "fineweb" => FilterRule::Fineweb(Default::default()),
                _ => panic!("PRIMER_BENCH_CHAIN: unknown filter {n}"),
            })
            .collect(),
        keep_dropped: false,
    }
    .build(&ctx)
    .expect("chain");
    let part = std::env::var("PRIMER_BENCH_PART").unwrap_or_default();
    // One predictor for many documents, as a task of the `language` stage holds one.
    let mut predictor = lang.predictor();
    let docs = if std::env::var("PRIMER_BENCH_ENGLISH").is_ok_and(|v| v == "1") {
        docs.into_iter()
            .filter(|(_, t)| lang.predict_with(&mut predictor, t).2)
            .collect()
    } else {
        docs
    };
    let bytes: usize = docs.iter().map(|(_, t)| t.len()).sum();
    let start = Instant::now();
    let mut passes = 0;
    let mut kept = 0;
    while passes == 0 || start.elapsed().as_secs_f64() < min_secs {
        kept = 0;
        let mut counts = ChainCounts::default();
        // Each pass starts cold, as a new task does: the caches of fastText's token rows
        // and of the word splitter's chunks would otherwise remember the documents.
        predictor = lang.predictor();
        primer_filters::words::clear_cache();
        if part.is_empty() {
            // The full chain as the pipeline runs it: the `language` stage over the
            // documents, then the `filter` stage over those it keeps (each stage streams a
            // part of the dataset on its own; neither sees a document between the other's
            // calls).
            let english: Vec<&str> = docs
                .iter()
                .map(|(_, t)| t.as_str())
                .filter(|t| lang.predict_with(&mut predictor, t).2)
                .collect();
            for text in english {
                if matches!(chain.apply(text, &mut counts), ChainOutcome::Keep(_)) {
                    kept += 1;
                }
            }
            passes += 1;
            continue;
        }
        for (_, text) in &docs {
            match part.as_str() {
                // Parts, to see where time goes.
                "language" => kept += usize::from(lang.predict_with(&mut predictor, text).2),
                "chain" => {
                    kept += usize::from(matches!(
                        chain.apply(text, &mut counts),
                        ChainOutcome::Keep(_)
                    ))
                }
                "words" => {
                    let mut w = Vec::new();
                    primer_filters::words::split_words(text, &mut w);
                    kept += w.len();
                }
                _ => panic!("PRIMER_BENCH_PART: unknown part {part}"),
            }
        }
        passes += 1;
    }
    let secs = start.elapsed().as_secs_f64() / passes as f64;
    let mbs = bytes as f64 / 1e6 / secs;
    println!(
        "{{\"tool\": \"primer\", \"documents\": {}, \"mb\": {:.2}, \"kept\": {kept}, \"seconds\": {secs:.3}, \"mb_per_s_per_core\": {mbs:.2}}}",
        docs.len(),
        bytes as f64 / 1e6
    );
}
