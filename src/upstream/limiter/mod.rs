//! Per-API-key rate limits over a *sliding* window, by queueing rather than failing.
//!
//! Two implementations behind one [`RateLimiter`] trait: [`local`] counts in this process (the
//! single server, the default), [`shared`] counts in Redis for every replica of a fleet
//! (`HUME_ACTION_REDIS_URL`). Both take a slot when a request leaves and give it back one
//! window after its response came back, so that no window at Hume, counted by arrival, ever
//! holds more than the limit.

pub mod local;
pub mod shared;

use std::time::Duration;

use crate::config::KeyHash;

pub use local::SlidingWindowLimiter;
pub use shared::{RedisLimiter, SharedLimits};

/// Which budget a request counts against: a hash of the API key, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimiterKey(String);

impl LimiterKey {
    /// The budget of the API key with this hash.
    pub fn of(key: &KeyHash) -> Self {
        Self(key.short().to_owned())
    }

    /// A short, log-safe identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a request may not leave.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Refused {
    /// The queue would make this call wait longer than allowed.
    #[error("rate-limit queue full; estimated wait {retry_after:?}")]
    QueueFull {
        /// The estimated wait, a fair `Retry-After`.
        retry_after: Duration,
    },
    /// The shared count (Redis) could not be reached for as long as a call may queue: sending
    /// without it could break the fleet's limit, so nothing is sent.
    #[error("the shared rate limit (Redis) is unreachable")]
    Unavailable {
        /// When to try again.
        retry_after: Duration,
    },
}

/// Admission to send one upstream request. Drop it when the response has come back.
#[must_use = "a permit counts from when it is dropped"]
pub struct Permit {
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl Permit {
    /// A permit that runs `release` when dropped.
    pub fn new(release: impl FnOnce() + Send + 'static) -> Self {
        Self { release: Some(Box::new(release)) }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// A rate limiter keyed by API key.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Waits (FIFO) until a request may leave, or refuses if the wait would be too long.
    async fn acquire(&self, key: &LimiterKey) -> Result<Permit, Refused>;
    /// Holds every request of `key` back for `duration` (upstream said 429 with `Retry-After`).
    fn pause(&self, key: &LimiterKey, duration: Duration);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn key_is_a_hash_not_the_secret() {
        let k = LimiterKey::of(&Secret::from("super-secret-key").hash());
        assert!(!k.as_str().contains("secret"));
        assert_eq!(k, LimiterKey::of(&Secret::from("super-secret-key").hash()));
    }
}
