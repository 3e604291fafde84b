//! `extract`'s HTML-to-text on every page of a site, on one core: pages/s and MB/s, and
//! the texts as JSONL for bench/extract_score.py to score against ground truth.
//!
//!   cargo bench -p primer-crawl --bench extract -- SITE_DIR OUT.jsonl [ROUNDS]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if !p.ends_with("_sources") {
                pages(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "html") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let (Some(site), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: extract SITE_DIR OUT.jsonl [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(3).map_or(3, |r| r.parse().expect("ROUNDS"));
    let mut paths = Vec::new();
    pages(Path::new(site), &mut paths);
    let docs: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    let options = primer_crawl::html::ExtractOptions::default();
    let mut texts = Vec::new();
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        texts = docs
            .iter()
            .map(|(_, b)| {
                let (html, _, _) = primer_crawl::charset::decode_html(b, None);
                primer_crawl::html::extract(&html, &options).text
            })
            .collect();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "primer extract: {} pages, {:.1} MB, best of {rounds}: {:.3} s = {:.0} pages/s, {:.1} MB/s (one core)",
        docs.len(),
        bytes as f64 / 1e6,
        best,
        docs.len() as f64 / best,
        bytes as f64 / 1e6 / best
    );
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for ((url, _), text) in docs.iter().zip(&texts) {
        writeln!(f, "{}", serde_json::json!({ "url": url, "text": text })).unwrap();
    }
}
