//! The one retry policy every outbound call uses (Hume v0, URL downloads, callbacks).
//!
//! Exponential backoff with *full* jitter (each delay is uniform in `0..=min(cap, base * 2^n)`),
//! at most `max_attempts` attempts in all, and a server's `Retry-After` replacing the computed
//! delay (capped). The delays are a plain iterator, so they plug into `backon` directly: we use
//! `backon` rather than the unmaintained `backoff` crate (RUSTSEC-2025-0012).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay; doubles on every further retry.
    pub base_delay: Duration,
    /// No computed delay exceeds this.
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The policy with the given attempt count and production delays (0.5 s doubling, 30 s cap).
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }

    /// The delays before retry 1, 2, ...: `max_attempts - 1` of them, full jitter.
    pub fn delays(&self) -> FullJitter {
        FullJitter {
            base: self.base_delay,
            cap: self.max_delay,
            retry: 0,
            remaining: self.max_attempts.saturating_sub(1),
        }
    }

    /// The delay before the next attempt: the server's `Retry-After` (capped) when it gave one,
    /// else the computed one. `None` (no retries left) stays `None`.
    pub fn next_delay(&self, computed: Option<Duration>, retry_after: Option<Duration>) -> Option<Duration> {
        computed.map(|d| retry_after.map_or(d, |ra| ra.min(self.max_retry_after)))
    }
}

/// Iterator of full-jitter exponential delays; a `backon::Backoff` by blanket impl.
#[derive(Debug, Clone)]
pub struct FullJitter {
    base: Duration,
    cap: Duration,
    retry: u32,
    remaining: u32,
}

impl FullJitter {
    /// The ceiling of the `retry`-th delay (0-based): `min(cap, base * 2^retry)`.
    pub fn ceiling(base: Duration, cap: Duration, retry: u32) -> Duration {
        base.saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX)).min(cap)
    }
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let ceiling = Self::ceiling(self.base, self.cap, self.retry);
        self.retry += 1;
        let nanos = rand::random::<f64>() * ceiling.as_nanos() as f64;
        Some(Duration::from_nanos(nanos as u64))
    }
}

/// Statuses worth another attempt: timeouts, rate limits and passing server faults.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or as an HTTP date, relative to `now`.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn yields_one_delay_fewer_than_attempts_each_within_its_doubling_ceiling() {
        let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::new(5) };
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays.len(), 4);
        for (i, d) in delays.iter().enumerate() {
            assert!(*d <= FullJitter::ceiling(policy.base_delay, policy.max_delay, i as u32));
        }
    }

    #[test]
    fn jitter_is_full_not_additive() {
        let policy = RetryPolicy::new(2);
        let ceiling = FullJitter::ceiling(policy.base_delay, policy.max_delay, 0);
        let below_half = (0..200).filter_map(|_| policy.delays().next()).filter(|d| *d < ceiling / 2).count();
        assert!(below_half > 40, "full jitter puts about half the delays below ceiling/2, saw {below_half}/200");
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let (b, c) = (Duration::from_millis(500), Duration::from_secs(3));
        assert_eq!(FullJitter::ceiling(b, c, 0), Duration::from_millis(500));
        assert_eq!(FullJitter::ceiling(b, c, 2), Duration::from_secs(2));
        assert_eq!(FullJitter::ceiling(b, c, 3), Duration::from_secs(3));
        assert_eq!(FullJitter::ceiling(b, c, 40), Duration::from_secs(3));
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(12));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(12)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn retry_after_replaces_computed_delay_but_never_adds_attempts() {
        let policy = RetryPolicy::new(3);
        let ra = Some(Duration::from_secs(500));
        assert_eq!(policy.next_delay(Some(Duration::from_millis(1)), ra), Some(policy.max_retry_after));
        assert_eq!(policy.next_delay(None, ra), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
