//! Rate limits: a requests bucket and a tokens bucket, and pauses a server asks for.
//!
//! governor's GCRA limiter was the first choice, but a tokens-per-minute limit has to take
//! an estimate before the request and settle the difference to the server's count after
//! it, and to stop everyone until a server's reset time; neither fits its API, so this is
//! a plain token bucket (a few lines) with those two operations.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::wire::ServerHints;

/// A token bucket: `rate` per second, holding at most `capacity`, starting full. The level
/// may go below zero (a request larger than the capacity, or a settlement of more tokens
/// than estimated); it is then refilled before anything else goes.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: f64, burst_seconds: f64, now: Instant) -> Bucket {
        let rate = per_minute / 60.0;
        let capacity = (rate * burst_seconds).max(1.0);
        Bucket {
            rate,
            capacity,
            level: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.capacity);
        self.at = now;
    }

    /// How long until `amount` (at most the capacity) is there; zero when it is.
    fn wait_for(&self, amount: f64) -> Duration {
        let need = amount.min(self.capacity) - self.level;
        if need <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(need / self.rate)
        }
    }

    fn set_rate(&mut self, per_minute: f64, burst_seconds: f64) {
        self.rate = per_minute / 60.0;
        self.capacity = (self.rate * burst_seconds).max(1.0);
        self.level = self.level.min(self.capacity);
    }
}

#[derive(Debug)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    /// Nothing starts before this (a 429's `Retry-After`, a server's reset time).
    paused_until: Option<Instant>,
}

/// Requests-per-minute and tokens-per-minute limits shared by every request of a client.
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<State>,
    burst_seconds: f64,
    /// The configured requests per minute; a server's lower limit replaces it.
    configured_rpm: Option<f64>,
    configured_tpm: Option<f64>,
}

impl Limiter {
    pub fn new(rpm: Option<f64>, tpm: Option<f64>, burst_seconds: f64) -> Limiter {
        let now = Instant::now();
        Limiter {
            state: Mutex::new(State {
                requests: rpm.map(|r| Bucket::new(r, burst_seconds, now)),
                tokens: tpm.map(|t| Bucket::new(t, burst_seconds, now)),
                paused_until: None,
            }),
            burst_seconds,
            configured_rpm: rpm,
            configured_tpm: tpm,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until one request of about `tokens` tokens may start, and take them.
    pub async fn acquire(&self, tokens: f64) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(t) if t > now => t - now,
                    _ => {
                        s.paused_until = None;
                        if let Some(b) = s.requests.as_mut() {
                            b.refill(now);
                        }
                        if let Some(b) = s.tokens.as_mut() {
                            b.refill(now);
                        }
                        let w = s
                            .requests
                            .as_ref()
                            .map_or(Duration::ZERO, |b| b.wait_for(1.0))
                            .max(
                                s.tokens
                                    .as_ref()
                                    .map_or(Duration::ZERO, |b| b.wait_for(tokens)),
                            );
                        if w.is_zero() {
                            if let Some(b) = s.requests.as_mut() {
                                b.level -= 1.0;
                            }
                            if let Some(b) = s.tokens.as_mut() {
                                b.level -= tokens;
                            }
                            return;
                        }
                        w
                    }
                }
            };
            // Re-check after the wait: others may have taken what refilled.
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Settle a request's token estimate against what the server counted.
    pub fn settle(&self, estimated: f64, actual: f64) {
        let mut s = self.lock();
        if let Some(b) = s.tokens.as_mut() {
            b.level = (b.level + estimated - actual).min(b.capacity);
        }
    }

    /// Stop every request from starting for `d`.
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut s = self.lock();
        if s.paused_until.is_none_or(|t| t < until) {
            s.paused_until = Some(until);
        }
    }

    /// Follow a server's rate-limit headers: pause until its reset when it has nothing
    /// left, and use its limit while it is lower than ours.
    pub fn observe(&self, h: &ServerHints) {
        if h.remaining_requests.is_some_and(|r| r < 1.0) {
            self.pause_for(h.reset_requests.unwrap_or(Duration::from_secs(1)));
        }
        if h.remaining_tokens.is_some_and(|r| r < 1.0) {
            self.pause_for(h.reset_tokens.unwrap_or(Duration::from_secs(1)));
        }
        let mut guard = self.lock();
        let s = &mut *guard;
        let now = Instant::now();
        for (limit, bucket, configured) in [
            (h.limit_requests, &mut s.requests, self.configured_rpm),
            (h.limit_tokens, &mut s.tokens, self.configured_tpm),
        ] {
            let Some(limit) = limit.filter(|l| *l >= 1.0) else {
                continue;
            };
            let target = configured.map_or(limit, |c| c.min(limit));
            match bucket {
                Some(b) if (b.rate * 60.0 - target).abs() > 1e-9 => {
                    b.refill(now);
                    b.set_rate(target, self.burst_seconds);
                }
                Some(_) => {}
                None => *bucket = Some(Bucket::new(target, self.burst_seconds, now)),
            }
        }
    }

    /// The requests-per-minute rate in force, if any (a server may have lowered it).
    #[cfg(test)]
    pub fn requests_per_minute(&self) -> Option<f64> {
        self.lock().requests.as_ref().map(|b| b.rate * 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_hold_with_the_burst() {
        // 600 per minute = 10 per second; burst 1 second = 10.
        let l = Limiter::new(Some(600.0), None, 1.0);
        let t0 = tokio::time::Instant::now();
        let mut starts = Vec::new();
        for _ in 0..40 {
            l.acquire(0.0).await;
            starts.push(t0.elapsed().as_secs_f64());
        }
        // The first 10 at once, then one per 100 ms.
        assert!(starts[9] < 0.01, "{starts:?}");
        let last = starts[39];
        assert!((2.9..3.2).contains(&last), "{last}");
        // No window holds more than rate × T + burst.
        for i in 0..starts.len() {
            for j in i..starts.len() {
                let t = starts[j] - starts[i];
                assert!((j - i + 1) as f64 <= 10.0 * t + 10.0 + 1e-6);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_settled_and_pauses_hold_everyone() {
        let l = Limiter::new(None, Some(6000.0), 1.0); // 100 per second, bucket 100
        l.acquire(80.0).await;
        l.settle(80.0, 20.0); // used only 20: 80 left
        let t0 = tokio::time::Instant::now();
        l.acquire(80.0).await;
        assert!(t0.elapsed() < Duration::from_millis(5));
        // Bucket at 0 now; 50 more take half a second.
        l.acquire(50.0).await;
        let waited = t0.elapsed().as_secs_f64();
        assert!((0.45..0.6).contains(&waited), "{waited}");
        l.pause_for(Duration::from_secs(5));
        let t1 = tokio::time::Instant::now();
        l.acquire(1.0).await;
        assert!(t1.elapsed() >= Duration::from_secs(5));
    }

    #[test]
    fn a_lower_server_limit_replaces_ours() {
        let l = Limiter::new(Some(600.0), None, 1.0);
        l.observe(&ServerHints {
            limit_requests: Some(60.0),
            ..Default::default()
        });
        assert_eq!(l.requests_per_minute(), Some(60.0));
        l.observe(&ServerHints {
            limit_requests: Some(6000.0),
            ..Default::default()
        });
        assert_eq!(l.requests_per_minute(), Some(600.0), "back to ours");
        let none = Limiter::new(None, None, 1.0);
        none.observe(&ServerHints {
            limit_requests: Some(120.0),
            ..Default::default()
        });
        assert_eq!(none.requests_per_minute(), Some(120.0));
    }
}
