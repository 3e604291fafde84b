//! What each call cost, as counters a stage adds to its task (so they are summed over
//! tasks, kept across resumed runs and end up in the manifest), and the summary read back
//! from them.

use std::time::Duration;

use primer_core::Counters;

/// Why a request was retried or a prompt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// An HTTP status: 429, a 5xx, or (for failures) a refusing 4xx.
    Http(u16),
    /// No whole answer within the timeout (or HTTP 408).
    Timeout,
    /// The connection could not be made or was dropped.
    Connection,
    /// A 2xx body that is not a chat completion.
    Malformed,
    /// A chat completion without a choice or without message content.
    NoChoices,
}

impl Cause {
    /// The counter suffix: `http_429`, `timeout`, `connection`, `malformed`, `no_choices`.
    pub fn name(&self) -> String {
        match self {
            Cause::Http(s) => format!("http_{s}"),
            Cause::Timeout => "timeout".into(),
            Cause::Connection => "connection".into(),
            Cause::Malformed => "malformed".into(),
            Cause::NoChoices => "no_choices".into(),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// What one [`Client::chat`](crate::Client::chat) call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    /// Answered from the cache: nothing was sent.
    pub cache_hit: bool,
    /// HTTP requests sent (1 + retries).
    pub requests: u32,
    /// The cause of each retry.
    pub retries: Vec<Cause>,
    /// Of the request that was answered.
    pub latency: Option<Duration>,
    /// Paid tokens (zero for a cache hit).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Cost in millionths of the price's currency.
    pub cost_micro: u64,
}

/// Latency buckets: bucket `b` holds latencies up to 10^(b/10) ms (ten per decade, each
/// about 26% wide), from 1 ms to 1,000 s.
const BUCKETS: u32 = 60;

fn bucket_of(d: Duration) -> u32 {
    let ms = d.as_secs_f64() * 1e3;
    if ms <= 1.0 {
        0
    } else {
        ((ms.log10() * 10.0).ceil() as u32).min(BUCKETS)
    }
}

fn bucket_bound_ms(b: u32) -> f64 {
    10f64.powf(f64::from(b) / 10.0)
}

impl CallStats {
    /// Add this call to `counters` (all under `llm.`): `calls`, `cache_hits`, `requests`,
    /// `answers`, `retries.<cause>`, `prompt_tokens`, `completion_tokens`, `cost_micro`
    /// and the latency histogram `latency_bucket.NN`. A failed call adds
    /// `failed.<cause>` through [`count_failure`].
    pub fn count(&self, c: &mut Counters) {
        c.add("llm.calls", 1);
        if self.cache_hit {
            c.add("llm.cache_hits", 1);
        }
        if self.requests > 0 {
            c.add("llm.requests", u64::from(self.requests));
        }
        for r in &self.retries {
            c.add(&format!("llm.retries.{}", r.name()), 1);
        }
        if let Some(l) = self.latency {
            c.add("llm.answers", 1);
            c.add(&format!("llm.latency_bucket.{:02}", bucket_of(l)), 1);
        }
        if self.prompt_tokens > 0 {
            c.add("llm.prompt_tokens", self.prompt_tokens);
        }
        if self.completion_tokens > 0 {
            c.add("llm.completion_tokens", self.completion_tokens);
        }
        if self.cost_micro > 0 {
            c.add("llm.cost_micro", self.cost_micro);
        }
    }
}

/// Count a failed call: its requests and retries, and `llm.failed.<cause>`.
pub fn count_failure(f: &crate::Failure, c: &mut Counters) {
    f.stats.count(c);
    c.add(&format!("llm.failed.{}", f.cause.name()), 1);
}

/// The summary of an LLM stage's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub calls: u64,
    pub cache_hits: u64,
    pub requests: u64,
    pub answers: u64,
    pub retries: Vec<(String, u64)>,
    pub failed: Vec<(String, u64)>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    /// p50, p90, p99 of answered requests, in milliseconds (a bucket's geometric middle).
    pub latency_ms: Option<(f64, f64, f64)>,
}

impl Summary {
    /// Read back from a manifest's counters; `None` when no LLM call was counted.
    pub fn from_counters(c: &Counters) -> Option<Summary> {
        let calls = c.get("llm.calls");
        if calls == 0 {
            return None;
        }
        let under = |prefix: &str| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = c
                .iter()
                .filter_map(|(k, n)| k.strip_prefix(prefix).map(|r| (r.to_string(), n)))
                .collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v
        };
        let mut hist = vec![0u64; BUCKETS as usize + 1];
        for (k, n) in under("llm.latency_bucket.") {
            if let Ok(b) = k.parse::<usize>()
                && b < hist.len()
            {
                hist[b] += n;
            }
        }
        let total: u64 = hist.iter().sum();
        let pct = |q: f64| -> f64 {
            let want = (q * total as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (b, n) in hist.iter().enumerate() {
                seen += n;
                if seen >= want {
                    let hi = bucket_bound_ms(b as u32);
                    let lo = if b == 0 {
                        hi / 2.0
                    } else {
                        bucket_bound_ms(b as u32 - 1)
                    };
                    return (hi * lo).sqrt();
                }
            }
            f64::NAN
        };
        Some(Summary {
            calls,
            cache_hits: c.get("llm.cache_hits"),
            requests: c.get("llm.requests"),
            answers: c.get("llm.answers"),
            retries: under("llm.retries."),
            failed: under("llm.failed."),
            prompt_tokens: c.get("llm.prompt_tokens"),
            completion_tokens: c.get("llm.completion_tokens"),
            cost: c.get("llm.cost_micro") as f64 / 1e6,
            latency_ms: (total > 0).then(|| (pct(0.5), pct(0.9), pct(0.99))),
        })
    }

    /// The summary as JSON, for a manifest's notes.
    pub fn to_json(&self) -> serde_json::Value {
        let map = |v: &[(String, u64)]| -> serde_json::Value {
            v.iter()
                .map(|(k, n)| (k.clone(), serde_json::Value::from(*n)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        serde_json::json!({
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "requests": self.requests,
            "answers": self.answers,
            "retries": map(&self.retries),
            "failed": map(&self.failed),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "latency_ms": self.latency_ms.map(|(a, b, c)| serde_json::json!({
                "p50": round1(a), "p90": round1(b), "p99": round1(c)
            })),
        })
    }

    /// Lines for the terminal at the end of a stage.
    pub fn lines(&self) -> Vec<String> {
        let list = |v: &[(String, u64)]| -> String {
            v.iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut first = format!(
            "llm: {} prompt samples: {} from the cache, {} answered by the server in {} requests",
            self.calls, self.cache_hits, self.answers, self.requests
        );
        let retried: u64 = self.retries.iter().map(|r| r.1).sum();
        if retried > 0 {
            first.push_str(&format!(" ({retried} retries: {})", list(&self.retries)));
        }
        let failed: u64 = self.failed.iter().map(|r| r.1).sum();
        first.push_str(&if failed > 0 {
            format!("; {failed} failed: {}", list(&self.failed))
        } else {
            "; none failed".to_string()
        });
        let mut second = format!(
            "llm: {} prompt + {} completion tokens paid",
            self.prompt_tokens, self.completion_tokens
        );
        if self.cost > 0.0 {
            second.push_str(&format!(", cost {:.4}", self.cost));
        }
        if let Some((p50, p90, p99)) = self.latency_ms {
            second.push_str(&format!(
                "; latency p50 {} p90 {} p99 {}",
                ms(p50),
                ms(p90),
                ms(p99)
            ));
        }
        vec![first, second]
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.1} s", x / 1000.0)
    } else {
        format!("{x:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_over_calls_and_read_back() {
        let mut c = Counters::default();
        for ms in [10u64, 12, 15, 20, 200] {
            CallStats {
                requests: 1,
                latency: Some(Duration::from_millis(ms)),
                prompt_tokens: 10,
                completion_tokens: 5,
                cost_micro: 7,
                ..Default::default()
            }
            .count(&mut c);
        }
        CallStats {
            cache_hit: true,
            ..Default::default()
        }
        .count(&mut c);
        CallStats {
            requests: 3,
            retries: vec![Cause::Http(429), Cause::Timeout, Cause::Http(429)],
            latency: Some(Duration::from_millis(11)),
            ..Default::default()
        }
        .count(&mut c);
        let s = Summary::from_counters(&c).unwrap();
        assert_eq!((s.calls, s.cache_hits, s.requests, s.answers), (7, 1, 8, 6));
        assert_eq!(
            s.retries,
            vec![("http_429".to_string(), 2), ("timeout".to_string(), 1)]
        );
        assert_eq!((s.prompt_tokens, s.completion_tokens), (50, 25));
        assert!((s.cost - 35e-6).abs() < 1e-12);
        let (p50, _, p99) = s.latency_ms.unwrap();
        assert!((10.0..16.0).contains(&p50), "{p50}");
        assert!((150.0..260.0).contains(&p99), "{p99}");
        assert!(
            s.lines()[0].contains("(3 retries: http_429 ×2, timeout ×1); none failed"),
            "{:?}",
            s.lines()
        );
    }

    #[test]
    fn bucket_bounds_hold_their_latencies() {
        for ms in [0.5, 1.0, 1.3, 9.9, 10.0, 57.0, 999.0, 12_345.0] {
            let b = bucket_of(Duration::from_secs_f64(ms / 1000.0));
            assert!(ms <= bucket_bound_ms(b) + 1e-9, "{ms} in {b}");
            if b > 0 {
                assert!(ms > bucket_bound_ms(b - 1), "{ms} in {b}");
            }
        }
    }
}
