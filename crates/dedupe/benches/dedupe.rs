//! The `minhash_dedupe` stage on a large corpus, timed phase by phase, with peak RSS.
//! Driven by `bench/dedupe.sh`; links no DataFusion.
//!
//! ```text
//! cargo bench -p primer-dedupe --bench dedupe -- prepare IN_DIR DATASET_DIR
//!     # IN_DIR/*.jsonl (id, text) → a document dataset, one part per file
//! cargo bench -p primer-dedupe --bench dedupe -- run DATASET_DIR OUT_DIR THREADS CLUSTERS.tsv
//!     # run minhash_dedupe (14 × 8, 5-grams, drop_duplicates = false); print timings as JSON;
//!     # write `id<TAB>dup_cluster` for every document in a cluster to CLUSTERS.tsv
//! ```

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, LargeStringArray, RecordBatch, StringArray};
use primer_core::{
    BuildContext, Dataset, InputSchema, Provenance, Stage, StageDir, StageInfo, TaskContext,
    WriteOptions, documents_schema,
};
use primer_dedupe::MinhashDedupeConfig;

fn prepare(input: &Path, dir: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let sd = StageDir::open(dir, "bench", documents_schema(), WriteOptions::default()).unwrap();
    for (t, f) in files.iter().enumerate() {
        let mut out = sd.task_output(t).unwrap();
        let mut rows: Vec<(String, String)> = Vec::new();
        let flush = |rows: &mut Vec<(String, String)>, out: &mut primer_core::TaskOutput| {
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.as_str()),
                )),
                Arc::new(LargeStringArray::from_iter_values(
                    rows.iter().map(|r| r.1.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "bench"))),
                Arc::new(StringArray::from(vec![None::<&str>; rows.len()])),
            ];
            out.write(&RecordBatch::try_new(documents_schema(), cols).unwrap())
                .unwrap();
            rows.clear();
        };
        let r = std::io::BufReader::new(std::fs::File::open(f).unwrap());
        for line in r.lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            rows.push((
                v["id"].as_str().unwrap().into(),
                v["text"].as_str().unwrap().into(),
            ));
            if rows.len() == 1024 {
                flush(&mut rows, &mut out);
            }
        }
        if !rows.is_empty() {
            flush(&mut rows, &mut out);
        }
        sd.complete(out).unwrap();
    }
    let info = StageInfo {
        id: "bench".into(),
        kind: "read".into(),
    };
    sd.finalize(
        info,
        Provenance::default(),
        files.len(),
        0,
        0.0,
        Default::default(),
    )
    .unwrap();
}

fn run(dataset: &Path, out_dir: &Path, threads: usize, clusters: &Path) {
    let input = Dataset::open(dataset).unwrap();
    let bytes: u64 = {
        let mut b = 0u64;
        for batch in input.batches(8192) {
            let batch = batch.unwrap();
            let t = batch.column_by_name("text").unwrap();
            b += t.as_string::<i64>().value_data().len() as u64;
        }
        b
    };
    let cfg: MinhashDedupeConfig =
        serde_json::from_value(serde_json::json!({ "drop_duplicates": false })).unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "bench",
            base_dir: Path::new("."),
        })
        .unwrap();
    let inputs = std::slice::from_ref(&input);
    let schema = stage
        .output_schema(&[InputSchema {
            id: "in".into(),
            schema: input.schema(),
        }])
        .unwrap();
    let mut sd = StageDir::open(out_dir, "bench", schema.clone(), WriteOptions::default()).unwrap();
    sd.set_side_outputs(stage.side_outputs(&schema));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let scratch = sd.scratch_dir();
    let phases = stage.phases(inputs).unwrap();
    let names = ["signatures", "clustering", "output"];
    let mut seconds = Vec::new();
    let mut cpu = Vec::new();
    let mut start = 0;
    for &n in &phases {
        let t0 = Instant::now();
        let c0 = primer_testdata::cpu_seconds();
        pool.install(|| {
            use rayon::prelude::*;
            (start..start + n).into_par_iter().for_each(|t| {
                let ctx = TaskContext {
                    stage_id: "bench",
                    inputs,
                    batch_size: 1024,
                    threads,
                    dir: out_dir,
                    earlier_parts: &[],
                    scratch_dir: &scratch,
                    cancel: &cancel,
                };
                let mut out = sd.task_output(t).unwrap();
                stage.run_task(t, &ctx, &mut out).unwrap();
                sd.complete(out).unwrap();
            })
        });
        seconds.push(t0.elapsed().as_secs_f64());
        cpu.push(primer_testdata::cpu_seconds() - c0);
        start += n;
    }
    let info = StageInfo {
        id: "bench".into(),
        kind: stage.kind().into(),
    };
    let m = sd
        .finalize(
            info,
            Provenance::default(),
            start,
            0,
            seconds.iter().sum(),
            stage.notes(),
        )
        .unwrap()
        .unwrap();
    let rss = primer_testdata::peak_rss_mb();
    let out = Dataset::open(out_dir).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(clusters).unwrap());
    for batch in out.batches(8192) {
        let batch = batch.unwrap();
        let id = batch
            .column_by_name("id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let cl = batch
            .column_by_name("dup_cluster")
            .unwrap()
            .as_string::<i32>()
            .clone();
        for i in 0..batch.num_rows() {
            if !cl.is_null(i) {
                writeln!(f, "{}\t{}", id.value(i), cl.value(i)).unwrap();
            }
        }
    }
    let mb = bytes as f64 / 1e6;
    let sig_cluster: f64 = seconds[0] + seconds[1];
    let report = serde_json::json!({
        "tool": "primer",
        "threads": threads,
        "documents": m.counters.get("rows_in"),
        "text_mb": (mb * 10.0).round() / 10.0,
        "seconds": names.iter().zip(&seconds).map(|(n, s)| (n.to_string(), serde_json::json!((s * 100.0).round() / 100.0))).collect::<serde_json::Map<_, _>>(),
        "signatures_plus_clustering_s": (sig_cluster * 100.0).round() / 100.0,
        "mb_per_s": (mb / sig_cluster * 10.0).round() / 10.0,
        "mb_per_s_per_core": (mb / sig_cluster / threads as f64 * 10.0).round() / 10.0,
        "cpu_seconds_signatures_plus_clustering": ((cpu[0] + cpu[1]) * 100.0).round() / 100.0,
        "mb_per_cpu_second": (mb / (cpu[0] + cpu[1]) * 10.0).round() / 10.0,
        "peak_rss_mb": rss.round(),
        "clusters": m.counters.get("clusters"),
        "duplicates": m.counters.get("duplicates"),
    });
    println!("{report}");
}

fn main() {
    // Measure memory as the `primer` program runs: with its allocator settings.
    primer_core::tune_allocator();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("prepare") => prepare(Path::new(&args[1]), Path::new(&args[2])),
        Some("run") => run(
            Path::new(&args[1]),
            Path::new(&args[2]),
            args[3].parse().unwrap(),
            Path::new(&args[4]),
        ),
        _ => eprintln!("usage: see the top of crates/dedupe/benches/dedupe.rs"),
    }
}
