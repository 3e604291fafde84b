//! The run report on a million-row pipeline: how long `primer report` takes to read the
//! datasets and write the page, how big the page is, and how long headless Chromium takes
//! to load and paint it (five opens, median). The goal: under a second in the browser and
//! under 5 MB.
//!
//! The data is made here: a million JSONL documents of 1 to 400 words drawn from a fixed
//! vocabulary (reproducible), read, then filtered by Gopher's quality rules with the
//! dropped rows kept, so the page has reasons, distributions and side samples.
//!
//!     cargo bench -p primer-report --bench report

use std::io::Write;
use std::time::Instant;

use primer_pipeline::{Pipeline, RunOptions};

const ROWS: u64 = 1_000_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    {
        let f = std::fs::File::create(dir.path().join("docs.jsonl.zst")).unwrap();
        let mut z = zstd::Encoder::new(f, 1).unwrap().auto_finish();
        let words = [
            "the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "python", "function",
            "returns", "value", "list", "string", "module", "class", "object", "example", "data",
            "file", "error", "type", "number", "text", "code", "line", "with", "for",
        ];
        let mut line = String::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..ROWS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.clear();
            let n = 1 + (x % 400) as usize;
            line.push_str(&format!("{{\"id\":\"d{i}\",\"text\":\""));
            for k in 0..n {
                line.push_str(words[((x >> (k % 40)) as usize + k * 7) % words.len()]);
                line.push(if k % 12 == 11 { '.' } else { ' ' });
            }
            line.push_str("\"}\n");
            z.write_all(line.as_bytes()).unwrap();
        }
    }
    let made = t.elapsed().as_secs_f64();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[pipeline]\nname = \"million\"\nworkdir = \"work\"\n\
         [stages.docs.read]\npaths = [\"docs.jsonl.zst\"]\nsource = \"synthetic\"\n\
         [stages.quality]\ninputs = [\"docs\"]\n[stages.quality.filter]\nkeep_dropped = true\n\
         chain = [{ gopher_quality = {} }]\n",
    )
    .unwrap();
    let p = Pipeline::load(&file).unwrap_or_else(|d| panic!("{d:?}"));
    let t = Instant::now();
    primer_pipeline::run(&p, &RunOptions::default(), &|_| {}).unwrap();
    println!(
        "data: {ROWS} documents made in {made:.1} s, read and filtered in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let chromium = primer_browser::find_chromium();
    let mut browser = chromium
        .as_ref()
        .map(|c| primer_browser::Browser::launch(c).unwrap());
    for sample_rows in [100_000u64, ROWS] {
        let opts = primer_report::ScanOptions {
            sample_rows,
            ..Default::default()
        };
        let cpu = primer_testdata::cpu_seconds();
        let t = Instant::now();
        let entries = primer_pipeline::plan(&p, &RunOptions::default()).unwrap();
        let facts = primer_report::collect(&p, &entries);
        let out = dir.path().join(format!("report-{sample_rows}.html"));
        primer_report::write_report(&p, &facts, None, &opts, &out).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let cpu = primer_testdata::cpu_seconds() - cpu;
        let bytes = std::fs::metadata(&out).unwrap().len();
        print!(
            "report, {} rows read per dataset: written in {secs:.2} s ({cpu:.2} CPU s), {:.1} kB",
            sample_rows.min(ROWS),
            bytes as f64 / 1e3
        );
        match browser.as_mut() {
            Some(b) => {
                let url = primer_browser::file_url(&out);
                let mut loads = Vec::new();
                let mut paints = Vec::new();
                for _ in 0..5 {
                    let l = b.open(&url).unwrap();
                    assert!(l.console.is_empty() && l.requests.is_empty(), "{l:?}");
                    loads.push(l.load_ms);
                    paints.push(l.painted_ms);
                }
                loads.sort_by(f64::total_cmp);
                paints.sort_by(f64::total_cmp);
                println!(
                    "; Chromium: load {:.0} ms, painted {:.0} ms (median of 5; max {:.0} ms)",
                    loads[2], paints[2], paints[4]
                );
            }
            None => println!("; no Chromium here (set PRIMER_CHROMIUM), so no browser figures"),
        }
    }
    println!("peak RSS {:.0} MB", primer_testdata::peak_rss_mb());
}
