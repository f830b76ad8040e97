//! What every call to Hume shares: the per-key rate limit, the retry policy with `Retry-After`,
//! and error messages scrubbed of every secret (`crate::secrets`) before they are logged, kept
//! or answered. The v0 and v1 clients are thin layers on this.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use url::Url;

use super::limiter::{LimiterKey, RateLimiter, Refused};
use super::retry::{is_transient_status, parse_retry_after, RetryPolicy};
use super::UpstreamError;
use crate::config::Secret;
use crate::secrets::Scrubber;

/// A successful answer, passed on unchanged.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// One failed attempt.
#[derive(Debug)]
pub enum AttemptError {
    Transport {
        message: String,
        maybe_delivered: bool,
    },
    Status {
        status: StatusCode,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The rate limiter did not let the request leave.
    Limited(Refused),
}

impl AttemptError {
    /// Worth another attempt.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => is_transient_status(*status),
            Self::Limited(_) => false,
        }
    }

    /// Hume may have acted on the request even though we saw no success.
    pub fn maybe_delivered(&self) -> bool {
        match self {
            Self::Transport { maybe_delivered, .. } => *maybe_delivered,
            Self::Status { status, .. } => matches!(status.as_u16(), 500 | 502 | 504),
            Self::Limited(_) => false,
        }
    }

    /// The server's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The caller-facing error after `attempts` attempts.
    pub fn into_upstream(self, attempts: u32) -> UpstreamError {
        match self {
            Self::Limited(Refused::QueueFull { retry_after }) => UpstreamError::QueueFull { retry_after, attempts },
            Self::Limited(Refused::Unavailable { retry_after }) => {
                UpstreamError::LimiterUnavailable { retry_after, attempts }
            }
            Self::Status { status, message, retry_after } if is_transient_status(status) => {
                UpstreamError::Exhausted { status: Some(status.as_u16()), message, attempts, retry_after }
            }
            Self::Status { status, message, .. } => {
                UpstreamError::Rejected { status: status.as_u16(), message, attempts }
            }
            Self::Transport { message, .. } => {
                UpstreamError::Exhausted { status: None, message, attempts, retry_after: None }
            }
        }
    }
}

/// An HTTP client for one Hume API: its base URL, its rate limiter, the retry policy, and the
/// scrubber every upstream message passes before it is kept, logged or answered.
pub struct UpstreamClient {
    http: reqwest::Client,
    base_url: Url,
    limiter: Arc<dyn RateLimiter>,
    policy: RetryPolicy,
    scrubber: Arc<Scrubber>,
}

impl UpstreamClient {
    /// A client for the API at `base_url` (for example `https://api.hume.ai`).
    pub fn new(
        base_url: Url,
        timeout: Duration,
        limiter: Arc<dyn RateLimiter>,
        policy: RetryPolicy,
        scrubber: Arc<Scrubber>,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("hume-action/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, base_url, limiter, policy, scrubber })
    }

    /// One request with retries; `attach` adds the query and body to each attempt's request.
    pub async fn call(
        &self,
        api_key: &Secret,
        method: Method,
        path: &str,
        attach: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<RawResponse, UpstreamError> {
        let attempts = AtomicU32::new(0);
        let attempt = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            self.send(api_key, method.clone(), path, &attach).await
        };
        self.with_retries(attempt, &attempts).await
    }

    /// Runs `attempt` under the retry policy; `attempts` counts the tries made.
    pub async fn with_retries<T, F, Fut>(&self, mut attempt: F, attempts: &AtomicU32) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        let mut n = 0;
        let attempt = move || {
            n += 1;
            crate::telemetry::metrics::attempt(n, attempt())
        };
        attempt
            .retry(self.policy.delays())
            .sleep(tokio::time::sleep)
            .when(AttemptError::is_transient)
            .adjust(|e, delay| self.policy.next_delay(delay, e.retry_after()))
            .notify(|e, delay| tracing::warn!(error = ?e, ?delay, "upstream attempt failed; retrying"))
            .await
            .map_err(|e| e.into_upstream(attempts.load(Ordering::SeqCst)))
    }

    /// One attempt: wait for the rate limit, send, read the whole answer, give the slot back.
    pub async fn send(
        &self,
        api_key: &Secret,
        method: Method,
        path: &str,
        attach: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<RawResponse, AttemptError> {
        let key = LimiterKey::of(&api_key.hash());
        let waiting = crate::telemetry::metrics::LimiterWait::start(path);
        let permit = self.limiter.acquire(&key).await;
        waiting.done(permit.is_ok());
        let permit = permit.map_err(AttemptError::Limited)?;
        let url = self
            .base_url
            .join(path)
            .map_err(|e| AttemptError::Transport { message: e.to_string(), maybe_delivered: false })?;
        let request = attach(self.http.request(method, url).header("X-Hume-Api-Key", api_key.expose()));
        let sent = std::time::Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        drop(permit);
        crate::telemetry::metrics::upstream_request(path, outcome.as_ref().ok().map(|o| o.0.as_u16()), sent.elapsed());
        let (status, headers, body) = outcome.map_err(|e| AttemptError::Transport {
            maybe_delivered: !e.is_connect(),
            message: describe_transport_error(&e),
        })?;
        if status.is_success() {
            let content_type =
                headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            return Ok(RawResponse { content_type, body });
        }
        let retry_after = parse_retry_after(&headers, SystemTime::now());
        if status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(wait) = retry_after {
                self.limiter.pause(&key, wait.min(self.policy.max_retry_after));
            }
        }
        let message = upstream_message(&body, &self.scrubber, api_key.expose());
        Err(AttemptError::Status { status, message, retry_after })
    }
}

/// The upstream's own error message, for the person reading the run log, with v1's `code` and
/// `request_id` when it gave them (quote the request id to Hume's support), scrubbed of the
/// server's secrets and of `api_key` in every form (`crate::secrets`).
pub fn upstream_message(body: &[u8], scrubber: &Scrubber, api_key: &str) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let message = ["message", "error", "detail"]
                .iter()
                .find_map(|k| match v.get(k) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .or_else(|| v.pointer("/fault/faultstring").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| v.to_string());
            let code = v.get("code").and_then(Value::as_str).map(|c| format!("{c}: "));
            let request_id = v.get("request_id").and_then(Value::as_str).map(|id| format!(" (request_id {id})"));
            format!("{}{message}{}", code.unwrap_or_default(), request_id.unwrap_or_default())
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    // Cut first, so no part of a secret is left by the cut; then scrub.
    let text: String = text.chars().take(500).collect();
    let text = scrubber.scrub_with(&text, &[api_key]);
    if text.trim().is_empty() {
        "no message".into()
    } else {
        text
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "connection failed while the request was in flight".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_extracted_and_never_carry_a_key() {
        let server = Scrubber::new(["sk-server-key-0001"]);
        let message = |body: &[u8]| upstream_message(body, &server, "sk-caller-key-0002");
        assert_eq!(message(br#"{"message":"job not found"}"#), "job not found");
        assert_eq!(message(br#"{"fault":{"faultstring":"Invalid ApiKey"}}"#), "Invalid ApiKey");
        assert_eq!(message(b"bad key SK-CALLER-KEY-0002 given"), "bad key [redacted] given");
        assert_eq!(message(br#"{"message":"server key sk-server-key-0001"}"#), "server key [redacted]");
        // A key that straddles the 500-character cut leaves no prefix behind.
        let long = format!("{}sk-caller-key-0002", "x".repeat(490));
        assert!(!message(long.as_bytes()).contains("sk-calle"));
    }

    #[test]
    fn v1_error_bodies_keep_their_code_and_request_id() {
        let body = br#"{"type":"error","code":"config_invalid","message":"unknown field `x`","request_id":"req_1"}"#;
        let none = Scrubber::default();
        assert_eq!(upstream_message(body, &none, "sk-key"), "config_invalid: unknown field `x` (request_id req_1)");
        assert_eq!(upstream_message(br#"{"message":"Unauthorized"}"#, &none, "sk-key"), "Unauthorized");
    }
}
