//! Throughput and added latency of the LLM client, as the `generate` stage uses it (every
//! answer committed to the response cache before it is returned), against a loopback
//! server with a fixed latency (`fake-openai --latency-ms 50`, started by
//! `bench/llm_client.sh`, which runs the official `openai` package's `AsyncOpenAI` against
//! the same server in the same run).
//!
//! `client BASE_URL [REQUESTS] [IN_FLIGHT] [SERVER_LATENCY_MS]` prints one line of figures
//! and one JSON line (`{"tool": "primer", …}`) for the script.

use std::sync::Arc;
use std::time::{Duration, Instant};

use primer_llm::{Client, LlmConfig, Message};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(url) = args.first() else {
        eprintln!("usage: client BASE_URL [REQUESTS] [IN_FLIGHT] [SERVER_LATENCY_MS]");
        eprintln!("(bench/llm_client.sh starts the server and runs this)");
        return;
    };
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let in_flight: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let server_ms: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50.0);
    let mut cfg: LlmConfig = serde_json::from_value(serde_json::json!({
        "base_url": url, "model": "bench-model", "max_tokens": 64, "seed": 1,
    }))
    .expect("config");
    cfg.limits.max_in_flight = in_flight;
    cfg.limits.timeout_secs = 30.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Arc::new(Client::new(&cfg, &dir.path().join("cache.redb")).expect("client"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // One stream of requests, `in_flight` at a time: the first `warm` open the connections
    // and fill the pipeline and are not measured, so the figures are of the sustained
    // state rather than of the first burst.
    let warm = 2 * in_flight;
    let (latencies, t0, cpu0): (Vec<Duration>, Instant, f64) = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
        let mut h = Vec::with_capacity(n + warm);
        let mut start = (Instant::now(), primer_testdata::cpu_seconds());
        for i in 0..n + warm {
            if i == warm {
                start = (Instant::now(), primer_testdata::cpu_seconds());
            }
            let c = client.clone();
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            h.push(tokio::spawn(async move {
                let t = Instant::now();
                let prompt = format!(
                    "Write a short textbook section about topic number {i} for a beginner."
                );
                c.chat(&[Message::user(prompt)], 0).await.expect("answer");
                drop(permit);
                t.elapsed()
            }));
        }
        let mut out = Vec::with_capacity(n);
        for (i, x) in h.into_iter().enumerate() {
            let d = x.await.expect("join");
            if i >= warm {
                out.push(d);
            }
        }
        (out, start.0, start.1)
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = primer_testdata::cpu_seconds() - cpu0;
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    let rps = n as f64 / wall;
    println!(
        "primer: {n} requests, {in_flight} in flight: {rps:.0} requests/s, {cpu:.2} CPU s ({:.0} requests per CPU second), added latency p50 {:.2} ms p99 {:.2} ms (server {server_ms} ms)",
        n as f64 / cpu.max(1e-9),
        pct(0.5) - server_ms,
        pct(0.99) - server_ms
    );
    println!(
        "{}",
        serde_json::json!({
            "tool": "primer", "requests": n, "in_flight": in_flight, "wall_s": wall,
            "cpu_s": cpu, "rps": rps, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "cached_answers": client.live().answered.load(std::sync::atomic::Ordering::Relaxed),
        })
    );
}
