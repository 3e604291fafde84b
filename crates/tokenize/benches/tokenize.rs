//! Benchmark of the `tokenize` stage on real text (no DataFusion linked):
//!
//!   cargo bench -p primer-tokenize --bench tokenize -- JSONL[.zst] TOKENIZER.json [THREADS] [MAX_DOCS]
//!
//! Builds a document dataset from the JSONL (not timed), then times the whole stage —
//! reading the Parquet input, encoding in parallel, writing the token parts and assembling
//! the shuffled Megatron + llm.c shards — on a pool of THREADS threads (default: all
//! cores). Prints one line of `key=value` pairs: documents, text bytes, tokens, wall
//! seconds and CPU seconds (user + system, from /proc/self/stat). `bench/tokenize.sh`
//! runs it beside datatrove's DocumentTokenizer and prints the ratio.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, StringArray};
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Provenance, StageDir, StageInfo, WriteOptions, documents_schema,
};
use primer_tokenize::TokenizeConfig;

/// User + system CPU seconds of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn main() {
    // Measure memory as the `primer` program runs: with its allocator settings.
    primer_core::tune_allocator();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!("usage: tokenize JSONL[.zst] TOKENIZER.json [THREADS] [MAX_DOCS]");
        std::process::exit(2);
    }
    let input = Path::new(&args[0]);
    let tokenizer = Path::new(&args[1]);
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let max_docs: usize = args
        .get(3)
        .and_then(|t| t.parse().ok())
        .unwrap_or(usize::MAX);
    let work = tempfile::tempdir().expect("temp dir");

    // The input dataset: 8 parts of documents.
    let file = std::fs::File::open(input).expect("input");
    let reader: Box<dyn BufRead> = if input.to_string_lossy().ends_with(".zst") {
        Box::new(std::io::BufReader::new(
            zstd::stream::read::Decoder::new(file).expect("zstd"),
        ))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut docs: Vec<(String, String)> = Vec::new();
    for line in reader.lines().take(max_docs) {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        docs.push((
            v["id"].as_str().unwrap_or("").to_string(),
            v["text"].as_str().unwrap_or("").to_string(),
        ));
    }
    let bytes: u64 = docs.iter().map(|d| d.1.len() as u64).sum();
    let schema = documents_schema();
    let in_dir = work.path().join("docs");
    let sd = StageDir::open(&in_dir, "in", schema.clone(), WriteOptions::default()).unwrap();
    let parts = 8usize;
    let chunk = docs.len().div_ceil(parts).max(1);
    let mut n_parts = 0;
    for (t, c) in docs.chunks(chunk).enumerate() {
        let mut out = sd.task_output(t).unwrap();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|d| d.0.as_str()),
            )),
            Arc::new(LargeStringArray::from_iter_values(
                c.iter().map(|d| d.1.as_str()),
            )),
            Arc::new(StringArray::from(vec!["bench"; c.len()])),
            Arc::new(StringArray::from(vec![None::<&str>; c.len()])),
        ];
        out.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
        sd.complete(out).unwrap();
        n_parts += 1;
    }
    let info = StageInfo {
        id: "docs".into(),
        kind: "read".into(),
    };
    sd.finalize(
        info,
        Provenance::default(),
        n_parts,
        0,
        0.0,
        Default::default(),
    )
    .unwrap();
    let input = Dataset::open(&in_dir).unwrap();
    let n_docs = docs.len();
    drop(docs);

    let config: TokenizeConfig = toml::from_str(&format!(
        "tokenizer = {:?}\noutput = {:?}\nshard_tokens = 10000000\nvalidation_fraction = 0.01\n",
        tokenizer.display().to_string(),
        work.path().join("shards").display().to_string()
    ))
    .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let cpu0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    // Build (loading the tokenizer) is timed too: datatrove loads its tokenizer in the run.
    let stage = config
        .build(&BuildContext {
            stage_id: "tokens",
            base_dir: Path::new("/"),
        })
        .unwrap();
    let out = pool.install(|| {
        primer_core::testing::run_stage_with(
            &stage,
            std::slice::from_ref(&input),
            &work.path().join("tokens"),
            8192,
            threads,
        )
        .unwrap()
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let tokens = out.manifest().counters.get("tokens");
    println!(
        "tool=primer threads={threads} docs={n_docs} bytes={bytes} tokens={tokens} wall={wall:.3} cpu={cpu:.3}"
    );
}
