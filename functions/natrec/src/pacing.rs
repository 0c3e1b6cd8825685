//! Time for the report step's reads: a clock that can be faked, a rate limiter and a backoff.
//!
//! `FilterLogEvents` is limited to 5 requests per second per account and region, shared with
//! every other reader in the account (CloudWatch Logs quotas; AWS Knowledge Center
//! "cloudwatch-logs-throttling": a `ThrottlingException` beyond it, and AWS recommends
//! distributing calls over time and exponential backoff with jitter). The report paces its
//! requests to a bounded share of that quota and backs off when throttled anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

/// Wall-clock time (milliseconds since the Unix epoch, the base of the Lambda deadline),
/// sleeping, and randomness for jitter. Tests use a simulated clock.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    async fn sleep(&self, d: Duration);
    /// A number in [0, 1).
    fn random(&self) -> f64;
}

/// The real clock: system time, `tokio::time::sleep`, a xorshift generator seeded from the time.
pub struct SystemClock {
    state: AtomicU64,
}

impl Default for SystemClock {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Self {
            state: AtomicU64::new(seed | 1),
        }
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn random(&self) -> f64 {
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// At most `per_second` requests per second: requests are spaced `1 / per_second` apart,
/// retries included (each is a request against the quota).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    interval_ms: i64,
    next_ms: Option<i64>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        Self {
            interval_ms: (1000.0 / per_second).ceil() as i64,
            next_ms: None,
        }
    }

    /// When the next request may start, at the earliest (not before `now_ms`).
    pub fn next_slot(&self, now_ms: i64) -> i64 {
        self.next_ms.map_or(now_ms, |n| n.max(now_ms))
    }

    /// Records a request started at `at_ms`.
    pub fn taken(&mut self, at_ms: i64) {
        self.next_ms = Some(at_ms + self.interval_ms);
    }
}

/// Exponential backoff with "equal jitter" (half the delay fixed, half random), from `base`
/// doubling up to `cap`, as AWS's "Exponential Backoff And Jitter" describes.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, failures: 0 }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait after one more failure; `random` in [0, 1).
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(16));
        let d = exp.min(self.cap);
        self.failures += 1;
        d / 2 + d.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_spaces_requests() {
        let mut l = RateLimiter::new(2.0);
        assert_eq!(l.next_slot(1000), 1000);
        l.taken(1000);
        assert_eq!(l.next_slot(1100), 1500);
        assert_eq!(l.next_slot(2000), 2000);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        assert_eq!(
            b.next_delay(0.999_999),
            Duration::from_millis(1000) - Duration::from_nanos(500)
        );
        assert_eq!(b.next_delay(0.0), Duration::from_millis(1000));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(2000));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(2000));
        assert_eq!(b.failures(), 5);
    }

    #[test]
    fn the_system_clock_draws_in_the_unit_interval() {
        let c = SystemClock::default();
        assert!((0..1000).map(|_| c.random()).all(|r| (0.0..1.0).contains(&r)));
    }
}
