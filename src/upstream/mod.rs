//! Talking to Hume: the retry policy, the per-key sliding-window limiter, and the v0 batch and v1
//! expression clients on one shared [`client::UpstreamClient`].
//!
//! Every backend that calls Hume goes through here, so retries, `Retry-After` and the rate limit
//! behave the same everywhere. Nothing here knows about workflow fields.

pub mod client;
pub mod limiter;
pub mod retry;
pub mod v0;
pub mod v1;
pub mod v1_types;

use crate::error_code::ErrorCode;
use std::time::Duration;

use axum::http::StatusCode;

pub use limiter::{LimiterKey, Permit, RateLimiter, RedisLimiter, Refused, SharedLimits, SlidingWindowLimiter};
pub use retry::RetryPolicy;

/// Why a call to Hume did not succeed, after retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Hume refused the request for good (a 4xx other than 408/429); never retried.
    #[error("Hume rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String, attempts: u32 },
    /// Transient failures until the attempts ran out.
    #[error("Hume did not answer successfully after {attempts} attempts (last: {message}). Retry the run later.")]
    Exhausted { status: Option<u16>, message: String, attempts: u32, retry_after: Option<Duration> },
    /// The rate-limit queue for this key is longer than `HUME_MAX_QUEUE_WAIT_SECS`.
    #[error("Too many calls are queued for the Hume rate limit; this one would wait about {}s. Retry after that.", .retry_after.as_secs().max(1))]
    QueueFull { retry_after: Duration, attempts: u32 },
    /// The fleet's shared rate limit (Redis) could not be reached, so nothing was sent.
    #[error("The shared rate limit (Redis) is unreachable, so nothing was sent to Hume. Retry after {}s.", .retry_after.as_secs().max(1))]
    LimiterUnavailable { retry_after: Duration, attempts: u32 },
}

impl UpstreamError {
    /// The status we answer with: Hume's own for a rejection, 429 for rate limits, else 502/504.
    pub fn status_for_caller(&self) -> StatusCode {
        match self {
            Self::Rejected { status, .. } => StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            Self::Exhausted { status: Some(429), .. } | Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::LimiterUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Exhausted { status: None, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Exhausted { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected { status: 401 | 403, .. } => ErrorCode::UpstreamUnauthorized,
            Self::Rejected { status: 404, .. } => ErrorCode::NotFound,
            Self::Rejected { .. } => ErrorCode::UpstreamRejected,
            Self::Exhausted { status: Some(429), .. } | Self::QueueFull { .. } => ErrorCode::RateLimited,
            Self::LimiterUnavailable { .. } => ErrorCode::RateLimiterUnavailable,
            Self::Exhausted { .. } => ErrorCode::UpstreamUnavailable,
        }
    }

    /// Hume's last HTTP status, when it answered at all.
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            Self::Exhausted { status, .. } => *status,
            Self::QueueFull { .. } | Self::LimiterUnavailable { .. } => None,
        }
    }

    /// Attempts made.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected { attempts, .. }
            | Self::Exhausted { attempts, .. }
            | Self::QueueFull { attempts, .. }
            | Self::LimiterUnavailable { attempts, .. } => *attempts,
        }
    }

    /// Whether running the workflow step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// How long the caller should wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::QueueFull { retry_after, .. } | Self::LimiterUnavailable { retry_after, .. } => Some(*retry_after),
            Self::Exhausted { retry_after, .. } => *retry_after,
            Self::Rejected { .. } => None,
        }
    }
}
