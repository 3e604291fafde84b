//! The client against a real HTTP server on 127.0.0.1 that speaks OpenAI's wire format and
//! injects faults on a schedule (`primer-fake-openai`): every prompt ends answered or
//! failed with its cause, nothing is answered twice, answers come back from the cache, the
//! budget and the rate limits hold as the server measures them, and the key stays secret.

use std::sync::Arc;
use std::time::{Duration, Instant};

use primer_core::Counters;
use primer_fake_openai::{Config, Outcome, Server, max_in_window};
use primer_llm::{Cause, ChatError, Client, LlmConfig, Message, Summary, count_failure};

fn config(base_url: &str) -> LlmConfig {
    let mut c: LlmConfig = serde_json::from_value(serde_json::json!({
        "base_url": base_url,
        "model": "fake-model",
        "seed": 7,
        "max_tokens": 64,
    }))
    .unwrap();
    c.limits.timeout_secs = 0.5;
    c.limits.backoff_initial_secs = 0.01;
    c.limits.backoff_max_secs = 0.05;
    c.limits.max_retries = 3;
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Ask every prompt (sample 0) at once; results in prompt order, with the counters.
fn ask_all(
    rt: &tokio::runtime::Runtime,
    client: &Arc<Client>,
    prompts: &[String],
) -> (Vec<Result<primer_llm::Answer, ChatError>>, Counters) {
    let results = rt.block_on(async {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let c = client.clone();
                let m = vec![Message::user(p.clone())];
                tokio::spawn(async move { c.chat(&m, 0).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    let mut counters = Counters::default();
    for r in &results {
        match r {
            Ok(a) => a.stats.count(&mut counters),
            Err(ChatError::Failed(f)) => count_failure(f, &mut counters),
            Err(_) => {}
        }
    }
    (results, counters)
}

#[test]
fn every_fault_ends_answered_or_failed_and_nothing_is_answered_twice() {
    let server = Server::start(Config {
        stall: Duration::from_secs(3),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let client =
        Arc::new(Client::new(&config(&server.base_url()), &dir.path().join("c.redb")).unwrap());
    let rt = runtime();
    // (prompt script, expected: Ok(finish_reason) or Err(cause))
    let cases: Vec<(&str, Result<&str, Cause>)> = vec![
        ("", Ok("stop")),
        ("[[faults: 429]]", Ok("stop")),
        ("[[faults: 429ms, 429ms]]", Ok("stop")),
        ("[[faults: 500]]", Ok("stop")),
        ("[[faults: 503, 502]]", Ok("stop")),
        ("[[faults: stall]]", Ok("stop")),
        ("[[faults: drop]]", Ok("stop")),
        ("[[faults: malformed]]", Ok("stop")),
        ("[[faults: empty]]", Ok("stop")),
        ("[[faults: drop, malformed, 500]]", Ok("stop")),
        ("[[faults: length]]", Ok("length")),
        ("[[faults: 400]]", Err(Cause::Http(400))),
        ("[[faults: 500, 500, 500, 500]]", Err(Cause::Http(500))),
        (
            "[[faults: stall, stall, stall, stall]]",
            Err(Cause::Timeout),
        ),
        (
            "[[faults: malformed, malformed, malformed, malformed]]",
            Err(Cause::Malformed),
        ),
        ("[[faults: drop, drop, drop, drop]]", Err(Cause::Connection)),
    ];
    let prompts: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (script, _))| format!("Explain topic {i}. {script}"))
        .collect();
    let t0 = Instant::now();
    let (results, counters) = ask_all(&rt, &client, &prompts);
    for ((script, want), got) in cases.iter().zip(&results) {
        match (want, got) {
            (Ok(finish), Ok(a)) => {
                assert_eq!(&a.finish_reason, finish, "{script}");
                assert!(!a.cached);
                assert!(a.text.starts_with("Answer "), "{script}: {}", a.text);
            }
            (Err(cause), Err(ChatError::Failed(f))) => {
                assert_eq!(f.cause, *cause, "{script}: {}", f.detail);
            }
            (want, got) => panic!("{script}: wanted {want:?}, got {got:?}"),
        }
    }
    // 429 with Retry-After: 1 s was honoured.
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let s = Summary::from_counters(&counters).unwrap();
    eprintln!("{}", s.lines().join("\n"));
    let retries = |name: &str| s.retries.iter().find(|r| r.0 == name).map_or(0, |r| r.1);
    assert_eq!(retries("http_429"), 3);
    assert_eq!(retries("http_500"), 1 + 1 + 3);
    assert_eq!(retries("timeout"), 1 + 3);
    assert_eq!(retries("connection"), 2 + 3);
    assert_eq!(retries("malformed"), 2 + 3);
    assert_eq!(retries("no_choices"), 1);
    assert_eq!(s.failed.iter().map(|f| f.1).sum::<u64>(), 5);
    assert_eq!(s.answers, 11);

    // The server's log: no prompt answered twice; every answered prompt once.
    let per = server.answers_per_prompt();
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    assert_eq!(per.len(), 11);
    // The 400 was not retried.
    let log = server.log();
    let four_hundred = log
        .iter()
        .filter(|e| e.outcome == Outcome::Fault("400".into()))
        .count();
    assert_eq!(four_hundred, 1);

    // Asked again: every answer from the cache, nothing sent for them.
    let before = server.requests();
    let (again, counters) = ask_all(&rt, &client, &prompts[..11]);
    assert!(again.iter().all(|r| r.as_ref().is_ok_and(|a| a.cached)));
    assert_eq!(counters.get("llm.cache_hits"), 11);
    assert_eq!(server.requests(), before);
}

#[test]
fn answers_are_cached_across_clients_and_failed_prompts_are_asked_again() {
    let server = Server::start(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let rt = runtime();
    let prompts: Vec<String> = (0..50).map(|i| format!("prompt {i}")).collect();
    let first = {
        let client = Arc::new(Client::new(&config(&server.base_url()), &path).unwrap());
        ask_all(&rt, &client, &prompts).0
    };
    let texts: Vec<String> = first.into_iter().map(|r| r.unwrap().text).collect();
    let sent = server.requests();
    assert_eq!(sent, 50);
    let client = Arc::new(Client::new(&config(&server.base_url()), &path).unwrap());
    let (second, _) = ask_all(&rt, &client, &prompts);
    for (r, t) in second.iter().zip(&texts) {
        let a = r.as_ref().unwrap();
        assert!(a.cached);
        assert_eq!(&a.text, t);
    }
    assert_eq!(server.requests(), sent, "nothing was sent again");
    // Another sample of the same prompt is another request, with seed + 1.
    let a = rt
        .block_on(client.chat(&[Message::user("prompt 0")], 1))
        .unwrap();
    assert!(!a.cached);
    assert!(a.text.contains("(seed 8)"), "{}", a.text);
    // Another model is another key.
    let mut other = config(&server.base_url());
    other.model = Some("other-model".into());
    let c2 = Client::new(&other, &path).unwrap();
    assert_ne!(
        c2.cache_key(&[Message::user("prompt 0")], 0),
        client.cache_key(&[Message::user("prompt 0")], 0)
    );
}

#[test]
fn the_budget_stops_after_n_paid_requests_and_a_larger_one_continues_from_the_cache() {
    let server = Server::start(Config {
        latency: Duration::from_millis(20),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let rt = runtime();
    // Two prompts fail once first, and one is refused (HTTP 400) the first time it is
    // sent: none of those requests is paid, and a refused prompt's share goes to another.
    let prompts: Vec<String> = (0..12)
        .map(|i| match i {
            0 | 6 => format!("prompt {i} [[faults: 500]]"),
            3 => format!("prompt {i} [[faults: 400]]"),
            _ => format!("prompt {i}"),
        })
        .collect();
    let mut cfg = config(&server.base_url());
    cfg.limits.max_in_flight = 4;
    cfg.budget.max_requests = Some(5);
    let client = Arc::new(Client::new(&cfg, &path).unwrap());
    let (results, _) = ask_all(&rt, &client, &prompts);
    let answered = results.iter().filter(|r| r.is_ok()).count();
    let stopped: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Err(ChatError::Budget(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(ChatError::Failed(_))))
        .count();
    assert_eq!(answered, 5);
    assert_eq!(stopped.len() + refused, 7);
    assert!(
        stopped[0].contains("max_requests = 5 (5 paid requests made)")
            && stopped[0].contains("a rerun with a larger budget continues"),
        "{}",
        stopped[0]
    );
    let paid = server
        .log()
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Answered { .. }))
        .count();
    assert_eq!(paid, 5);
    drop(client);

    // The refused prompt's 400 is scripted for its first request only: if it was sent in
    // the first run it is answered now; if the budget stopped it first, it is refused now.
    let refused_before = refused == 1;
    cfg.budget.max_requests = Some(20);
    let client = Arc::new(Client::new(&cfg, &path).unwrap());
    let (results, counters) = ask_all(&rt, &client, &prompts);
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.is_ok() || (i == 3 && !refused_before),
            "prompt {i}: {r:?}"
        );
    }
    assert_eq!(counters.get("llm.cache_hits"), 5);
    assert_eq!(
        counters.get("llm.answers"),
        if refused_before { 7 } else { 6 }
    );
    let per = server.answers_per_prompt();
    assert_eq!(per.len(), if refused_before { 12 } else { 11 });
    assert!(per.values().all(|&n| n == 1), "{per:?}");
}

#[test]
fn the_tokens_budget_and_the_cost_budget_hold() {
    let server = Server::start(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let prompts: Vec<String> = (0..10).map(|i| format!("prompt number {i}")).collect();
    let mut cfg = config(&server.base_url());
    cfg.limits.max_in_flight = 1;
    // Each request reserves 6 + 64 = 70 tokens: 3 fit in 250.
    cfg.budget.max_tokens = Some(250);
    let client = Arc::new(Client::new(&cfg, &dir.path().join("a.redb")).unwrap());
    let (results, counters) = ask_all(&rt, &client, &prompts);
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(ok >= 3, "{ok}");
    let used = counters.get("llm.prompt_tokens") + counters.get("llm.completion_tokens");
    assert!(used <= 250, "{used}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(ChatError::Budget(m)) if m.contains("max_tokens = 250")))
    );

    let mut cfg = config(&server.base_url());
    cfg.limits.max_in_flight = 1;
    cfg.price = Some(primer_llm::PriceConfig {
        prompt_per_million: 1000.0,
        completion_per_million: 2000.0,
    });
    // A request may cost up to 6 × 0.001 + 64 × 0.002 = 0.134.
    cfg.budget.max_cost = Some(0.5);
    let client = Arc::new(Client::new(&cfg, &dir.path().join("b.redb")).unwrap());
    let (results, counters) = ask_all(&rt, &client, &prompts);
    let cost = counters.get("llm.cost_micro") as f64 / 1e6;
    assert!(cost > 0.0 && cost <= 0.5, "{cost}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(ChatError::Budget(m)) if m.contains("max_cost = 0.5")))
    );
}

#[test]
fn rate_limits_hold_as_the_server_measures_them() {
    let server = Server::start(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut cfg = config(&server.base_url());
    cfg.max_tokens = 20;
    // 1,200 requests per minute (20/s), burst 1 s = 20; 3,000 tokens per minute (50/s).
    cfg.limits.requests_per_minute = Some(1200.0);
    cfg.limits.tokens_per_minute = Some(60_000.0);
    cfg.limits.burst_seconds = 1.0;
    let client = Arc::new(Client::new(&cfg, &dir.path().join("c.redb")).unwrap());
    let prompts: Vec<String> = (0..100)
        .map(|i| format!("rate limited prompt {i:03}"))
        .collect();
    let t0 = Instant::now();
    let (results, _) = ask_all(&rt, &client, &prompts);
    let took = t0.elapsed().as_secs_f64();
    assert!(results.iter().all(|r| r.is_ok()));
    // 100 requests: 20 at once, then 20 per second: at least 4 s.
    assert!(took >= 3.9, "{took}");
    let log = server.log();
    for w in [0.5, 1.0, 2.0, 4.0] {
        let (n, tokens) = max_in_window(&log, Duration::from_secs_f64(w));
        // The server sees arrivals, a little jittered after the client's starts: one more
        // request may land in a window than started in it.
        let allowed = 20.0 * w + 20.0 + 1.0;
        eprintln!("window {w} s: {n} requests (allowed {allowed}), {tokens} tokens");
        assert!(n as f64 <= allowed, "{n} requests in {w} s");
        assert!(
            tokens as f64 <= 1000.0 * w + 1000.0 + 40.0,
            "{tokens} tokens in {w} s"
        );
    }

    // Tokens bind: 40 tokens per request estimated (prompt 24 bytes / 3 + 20 completion),
    // 600 per minute = 10 per second, burst 10: after the first, one request per 4 s…
    // too slow for a test; 6,000 per minute = 100 per second, burst 100: 2.5 requests per
    // second after the first two.
    let mut cfg = config(&server.base_url());
    cfg.max_tokens = 20;
    cfg.limits.tokens_per_minute = Some(6000.0);
    let client = Arc::new(Client::new(&cfg, &dir.path().join("d.redb")).unwrap());
    let prompts: Vec<String> = (0..10)
        .map(|i| format!("token limited prompt {i:03}"))
        .collect();
    let before = server.log().len();
    let t0 = Instant::now();
    let (results, counters) = ask_all(&rt, &client, &prompts);
    assert!(results.iter().all(|r| r.is_ok()));
    let log: Vec<_> = server.log()[before..].to_vec();
    let used: u64 = log.iter().map(|e| e.tokens).sum();
    let took = t0.elapsed().as_secs_f64();
    eprintln!(
        "tokens limit: 10 requests, {used} tokens counted by the server, {} paid, in {took:.2} s",
        counters.get("llm.prompt_tokens") + counters.get("llm.completion_tokens")
    );
    for w in [0.5, 1.0, 2.0] {
        let (_, tokens) = max_in_window(&log, Duration::from_secs_f64(w));
        assert!(
            tokens as f64 <= 100.0 * w + 100.0 + 40.0,
            "{tokens} tokens in {w} s"
        );
    }
}

#[test]
fn the_key_is_sent_and_never_shown() {
    let key = "sk-primer-TESTKEY-0123456789abcdef";
    let var = "PRIMER_LLM_TEST_KEY_CLIENT";
    unsafe_set_env(var, key);
    let server = Server::start(Config {
        require_key: Some(key.to_string()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&server.base_url());
    cfg.api_key_env = Some(var.to_string());
    let client = Arc::new(Client::new(&cfg, &dir.path().join("c.redb")).unwrap());
    assert!(!format!("{client:?}").contains(key));
    let rt = runtime();
    let prompts = vec!["hello".to_string(), "echo [[faults: echo_key]]".to_string()];
    let (results, _) = ask_all(&rt, &client, &prompts);
    assert!(results[0].is_ok());
    let Err(ChatError::Failed(f)) = &results[1] else {
        panic!("{:?}", results[1]);
    };
    assert!(f.detail.contains("Bearer [api key]"), "{}", f.detail);
    assert!(!f.detail.contains(key));
    assert!(server.log().iter().all(|e| e.key_ok && e.had_key));
    drop(client);
    let cache = std::fs::read(dir.path().join("c.redb")).unwrap();
    assert!(!cache.windows(key.len()).any(|w| w == key.as_bytes()));

    // A wrong key stops the run, and the message does not show it.
    let wrong = "sk-primer-WRONG-KEY-999";
    unsafe_set_env(var, wrong);
    let client = Client::new(&cfg, &dir.path().join("d.redb")).unwrap();
    let e = rt
        .block_on(client.chat(&[Message::user("hi")], 0))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ChatError::Fatal(_)), "{msg}");
    assert!(
        msg.contains("HTTP 401") && msg.contains("check llm.base_url"),
        "{msg}"
    );
    assert!(!msg.contains(wrong));
}

#[test]
fn a_server_s_lower_rate_limit_is_followed() {
    let server = Server::start(Config {
        advertise_rpm: Some(600),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let client =
        Arc::new(Client::new(&config(&server.base_url()), &dir.path().join("c.redb")).unwrap());
    let rt = runtime();
    // The first answer tells the client 600 per minute (10/s, burst 10); then 30 more take
    // at least 2 s.
    let (_, _) = ask_all(&rt, &client, &["first".to_string()]);
    let prompts: Vec<String> = (0..30).map(|i| format!("after {i}")).collect();
    let t0 = Instant::now();
    let (results, _) = ask_all(&rt, &client, &prompts);
    assert!(results.iter().all(|r| r.is_ok()));
    let took = t0.elapsed().as_secs_f64();
    assert!(took >= 1.9, "{took}");
}

#[test]
fn bad_settings_are_named() {
    let mut c = config("not a url");
    c.temperature = Some(3.0);
    c.api_key_env = Some("PRIMER_SURELY_UNSET_VARIABLE_42".into());
    c.limits.max_in_flight = 0;
    c.budget.max_cost = Some(1.0);
    let p = c.problems();
    let all = p.join("\n");
    assert!(
        all.contains("llm.base_url `not a url` is not a URL"),
        "{all}"
    );
    assert!(all.contains("llm.temperature = 3: use 0 to 2"), "{all}");
    assert!(
        all.contains("the environment variable `PRIMER_SURELY_UNSET_VARIABLE_42` is not set"),
        "{all}"
    );
    assert!(all.contains("max_in_flight must be at least 1"), "{all}");
    assert!(all.contains("max_cost needs llm.price"), "{all}");
    assert_eq!(p.len(), 5, "{all}");
}

/// Set an environment variable (tests run in threads; each test uses its own variable).
fn unsafe_set_env(var: &str, value: &str) {
    // `set_var` is unsafe in edition 2024 because other threads may read the environment;
    // these variables are read by this test only.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(var, value)
    };
}
