//! Lever's rate limit: a token bucket per API key (lever-api.md §2).

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        RateLimiter {
            rate_per_sec: rate_per_sec.max(0.0),
            // A bucket that can never hold one token would reject everything.
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key`, or says how long until one is there. A rejected request takes
    /// nothing, so a client that keeps retrying is not starved by its own retries.
    pub fn try_acquire(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = (self.rate_per_sec, self.burst);
        let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        // The epsilon keeps float rounding from rejecting a request that arrives exactly on time.
        if bucket.tokens >= 1.0 - 1e-9 {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            Ok(())
        } else if rate > 0.0 {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        } else {
            Err(Duration::from_secs(3600))
        }
    }

    /// A removed key starts again with a full bucket if it is ever added back.
    pub fn forget(&mut self, key: &str) {
        self.buckets.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut limiter = RateLimiter::new(10.0, 20);
        let t0 = Instant::now();
        assert!((0..20).all(|_| limiter.try_acquire("k", t0).is_ok()));
        let wait = limiter.try_acquire("k", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(limiter.try_acquire("other", t0).is_ok());
        assert!(
            limiter
                .try_acquire("k", t0 + Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            limiter
                .try_acquire("k", t0 + Duration::from_millis(150))
                .is_err()
        );
    }
}
