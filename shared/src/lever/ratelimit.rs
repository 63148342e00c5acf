//! A token bucket per Lever key, mirroring Lever's own (10 requests/s, bursts of 20), so a warm
//! instance paces itself instead of collecting 429s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A bucket two tokens smaller than Lever's: our clock starts when the first request leaves,
    /// Lever's when it arrives; if a later request travels faster than the first by more than the
    /// headroom (200 ms at 10/s) it arrives before Lever's refill (a 429). The sustained rate is
    /// unchanged.
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        RateLimiter {
            rate: rate_per_sec.max(0.01),
            burst: f64::from(burst.max(3) - 2),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `key` and answers how long to wait before using it. Tokens may go negative:
    /// each caller waits its turn, so concurrent callers are paced in order instead of racing.
    pub fn reserve(&self, key: &str) -> Duration {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// After a 429 Lever's bucket is emptier than ours (another instance shares the key): stop bursting.
    pub fn penalize(&self, key: &str) {
        if let Some(b) = self.buckets.lock().unwrap().get_mut(key) {
            b.tokens = b.tokens.min(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_paces_at_the_rate() {
        let l = RateLimiter::new(10.0, 20);
        for _ in 0..18 {
            assert_eq!(l.reserve("k"), Duration::ZERO);
        }
        let waits: Vec<f64> = (0..10).map(|_| l.reserve("k").as_secs_f64()).collect();
        for (i, w) in waits.iter().enumerate() {
            let expected = (i + 1) as f64 * 0.1;
            assert!(
                (w - expected).abs() < 0.01,
                "call {} waits {w}, expected about {expected}",
                19 + i
            );
        }
        assert_eq!(
            l.reserve("other key"),
            Duration::ZERO,
            "keys have their own buckets"
        );
    }

    #[test]
    fn a_429_ends_the_burst() {
        let l = RateLimiter::new(10.0, 20);
        l.reserve("k");
        l.penalize("k");
        assert!(l.reserve("k") > Duration::from_millis(90));
    }
}
