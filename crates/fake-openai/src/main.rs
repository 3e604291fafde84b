//! `fake-openai [--addr 127.0.0.1:0] [--latency-ms N] [--threads N]`: the scripted server as
//! a program, for benchmark scripts. Prints its base URL on the first line of stdout and
//! serves until it is killed. The log is off (benchmarks send millions of requests).

use std::time::Duration;

fn main() {
    let mut addr = "127.0.0.1:0".to_string();
    let mut latency_ms = 0u64;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--addr" => addr = value(),
            "--latency-ms" => {
                latency_ms = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--latency-ms: a number"))
            }
            "--threads" => {
                threads = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--threads: a number"))
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let cfg = primer_fake_openai::Config {
        latency: Duration::from_millis(latency_ms),
        log: false,
        ..Default::default()
    };
    let server = primer_fake_openai::Server::bind(&addr, cfg, threads)
        .unwrap_or_else(|e| usage(&format!("cannot listen on {addr}: {e}")));
    println!("{}", server.base_url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "fake-openai: {msg}\nusage: fake-openai [--addr 127.0.0.1:0] [--latency-ms N] [--threads N]"
    );
    std::process::exit(2)
}
