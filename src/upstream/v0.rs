//! Client of a Hume v0-compatible batch API (`/v0/batch/jobs`), used by the `hume-batch` backend.
//!
//! Every request goes through the key's rate limiter and the shared retry policy. A job-creating
//! POST whose fate is unknown (sent, then timed out or cut off, or answered 500/502/504) is never
//! blindly sent again: first the key's recent jobs are searched for one with the same request,
//! and that job is adopted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::Retryable;
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::limiter::{LimiterKey, RateLimiter};
use super::retry::{is_transient_status, parse_retry_after, RetryPolicy};
use super::UpstreamError;
use crate::config::Secret;

/// How far back, before our first send, an adoptable job's creation time may lie (clock skew).
const ADOPTION_SKEW_MS: i64 = 60_000;

/// A successful answer, passed on unchanged.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The v0 batch client.
pub struct HumeV0Client {
    http: reqwest::Client,
    base_url: Url,
    limiter: Arc<dyn RateLimiter>,
    policy: RetryPolicy,
    /// Job ids this client has handed out lately, never adopted for another request.
    handed_out: Mutex<VecDeque<String>>,
}

/// How many handed-out job ids are remembered.
const HANDED_OUT_MEMORY: usize = 10_000;

/// One failed attempt.
#[derive(Debug)]
enum AttemptError {
    Transport { message: String, maybe_delivered: bool },
    Status { status: StatusCode, message: String, retry_after: Option<Duration> },
    QueueFull { retry_after: Duration },
}

impl AttemptError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => is_transient_status(*status),
            Self::QueueFull { .. } => false,
        }
    }

    /// Hume may have acted on the request even though we saw no success.
    fn maybe_delivered(&self) -> bool {
        match self {
            Self::Transport { maybe_delivered, .. } => *maybe_delivered,
            Self::Status { status, .. } => matches!(status.as_u16(), 500 | 502 | 504),
            Self::QueueFull { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn into_upstream(self, attempts: u32) -> UpstreamError {
        match self {
            Self::QueueFull { retry_after } => UpstreamError::QueueFull { retry_after, attempts },
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

impl HumeV0Client {
    /// A client for the API at `base_url` (for example `https://api.hume.ai`).
    pub fn new(
        base_url: Url,
        timeout: Duration,
        limiter: Arc<dyn RateLimiter>,
        policy: RetryPolicy,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("hume-action/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, base_url, limiter, policy, handed_out: Mutex::default() })
    }

    /// `POST /v0/batch/jobs`: starts a job and returns Hume's job id.
    pub async fn create_job(&self, api_key: &Secret, request: &Value) -> Result<String, UpstreamError> {
        let body = Bytes::from(serde_json::to_vec(request).expect("JSON value serialises"));
        let first_sent_ms = now_ms();
        let uncertain = Mutex::new(false);
        let attempts = AtomicU32::new(0);
        let attempt = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            if *uncertain.lock().unwrap() {
                if let Some(job_id) = self.find_same_job(api_key, request, first_sent_ms).await? {
                    tracing::info!(%job_id, "adopted the job an uncertain earlier attempt created");
                    return Ok(job_id);
                }
            }
            let result = self.send(api_key, Method::POST, "/v0/batch/jobs", &[], Some(body.clone())).await;
            if result.as_ref().is_err_and(AttemptError::maybe_delivered) {
                *uncertain.lock().unwrap() = true;
            }
            let raw = result?;
            job_id_of(&raw.body).ok_or_else(|| AttemptError::Status {
                status: StatusCode::BAD_GATEWAY,
                message: "the answer to POST /v0/batch/jobs had no job_id".into(),
                retry_after: None,
            })
        };
        let result = match self.with_retries(attempt, &attempts).await {
            // The last attempt's fate is unknown too: look once more before reporting failure.
            Err(e) if *uncertain.lock().unwrap() => match self.find_same_job(api_key, request, first_sent_ms).await {
                Ok(Some(job_id)) => Ok(job_id),
                _ => Err(e),
            },
            other => other,
        };
        if let Ok(job_id) = &result {
            let mut handed_out = self.handed_out.lock().unwrap();
            handed_out.push_back(job_id.clone());
            if handed_out.len() > HANDED_OUT_MEMORY {
                handed_out.pop_front();
            }
        }
        result
    }

    /// `GET` a v0 path (job details, predictions, artifacts, job list), body passed on unchanged.
    pub async fn get(
        &self,
        api_key: &Secret,
        path: &str,
        query: &[(String, String)],
    ) -> Result<RawResponse, UpstreamError> {
        let attempts = AtomicU32::new(0);
        let attempt = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            self.send(api_key, Method::GET, path, query, None).await
        };
        self.with_retries(attempt, &attempts).await
    }

    async fn with_retries<T, F, Fut>(&self, attempt: F, attempts: &AtomicU32) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        attempt
            .retry(self.policy.delays())
            .sleep(tokio::time::sleep)
            .when(AttemptError::is_transient)
            .adjust(|e, delay| self.policy.next_delay(delay, e.retry_after()))
            .notify(|e, delay| tracing::warn!(error = ?e, ?delay, "upstream attempt failed; retrying"))
            .await
            .map_err(|e| e.into_upstream(attempts.load(Ordering::SeqCst)))
    }

    /// Looks among the key's jobs created since our first send for one with our request.
    async fn find_same_job(
        &self,
        api_key: &Secret,
        request: &Value,
        since_ms: i64,
    ) -> Result<Option<String>, AttemptError> {
        let query = [
            ("limit".to_owned(), "100".to_owned()),
            ("when".to_owned(), "created_after".to_owned()),
            ("timestamp_ms".to_owned(), (since_ms - ADOPTION_SKEW_MS).to_string()),
        ];
        let raw = self.send(api_key, Method::GET, "/v0/batch/jobs", &query, None).await?;
        let jobs: Vec<Value> = serde_json::from_slice(&raw.body).unwrap_or_default();
        Ok(jobs
            .iter()
            .find(|job| same_request(&job["request"], request))
            .and_then(|job| job["job_id"].as_str())
            .map(str::to_owned))
    }

    /// One attempt: wait for the rate limit, send, read the whole answer, give the slot back.
    async fn send(
        &self,
        api_key: &Secret,
        method: Method,
        path: &str,
        query: &[(String, String)],
        json_body: Option<Bytes>,
    ) -> Result<RawResponse, AttemptError> {
        let key = LimiterKey::for_api_key(api_key.expose());
        let permit =
            self.limiter.acquire(&key).await.map_err(|q| AttemptError::QueueFull { retry_after: q.retry_after })?;
        let url = self
            .base_url
            .join(path)
            .map_err(|e| AttemptError::Transport { message: e.to_string(), maybe_delivered: false })?;
        let mut request = self.http.request(method, url).header("X-Hume-Api-Key", api_key.expose()).query(query);
        if let Some(body) = json_body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        drop(permit);
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
        let message = upstream_message(&body, api_key.expose());
        Err(AttemptError::Status { status, message, retry_after })
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn job_id_of(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("job_id")?.as_str().map(str::to_owned)
}

/// Whether a listed job's echoed request is the one we sent: same URLs, texts, callback and
/// model set (the echo fills in model defaults, so only the model names are compared).
fn same_request(echoed: &Value, sent: &Value) -> bool {
    let list = |v: &Value, k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let models = |v: &Value| -> Vec<String> {
        let mut names: Vec<String> = v
            .get("models")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter(|(_, cfg)| !cfg.is_null()).map(|(name, _)| name.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    let callback = |v: &Value| v.get("callback_url").and_then(Value::as_str).map(str::to_owned);
    list(echoed, "urls") == list(sent, "urls")
        && list(echoed, "text") == list(sent, "text")
        && callback(echoed) == callback(sent)
        && (sent.get("models").is_none() || models(echoed) == models(sent))
}

/// The upstream's own error message, for the person reading the run log; the key never shows.
fn upstream_message(body: &[u8], api_key: &str) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => ["message", "error", "detail"]
            .iter()
            .find_map(|k| match v.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .or_else(|| v.pointer("/fault/faultstring").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = if api_key.is_empty() { text } else { text.replace(api_key, "[redacted]") };
    let text: String = text.chars().take(500).collect();
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
    use serde_json::json;

    #[test]
    fn a_listed_job_matches_when_urls_models_and_callback_agree() {
        let sent = json!({"urls": ["https://a/x.mp3"], "models": {"prosody": {}, "face": {}}});
        let echoed = json!({"urls": ["https://a/x.mp3"], "text": [], "callback_url": null,
            "models": {"face": {"fps_pred": 3}, "prosody": {"granularity": "utterance"}, "language": null}});
        assert!(same_request(&echoed, &sent));
        let other_models = json!({"urls": ["https://a/x.mp3"], "models": {"prosody": {}}});
        assert!(!same_request(&echoed, &other_models));
        let other_urls = json!({"urls": ["https://a/y.mp3"], "models": {"prosody": {}, "face": {}}});
        assert!(!same_request(&echoed, &other_urls));
    }

    #[test]
    fn upstream_messages_are_extracted_and_never_carry_the_key() {
        assert_eq!(upstream_message(br#"{"message":"job not found"}"#, "k"), "job not found");
        assert_eq!(upstream_message(br#"{"fault":{"faultstring":"Invalid ApiKey"}}"#, "k"), "Invalid ApiKey");
        assert_eq!(upstream_message(b"bad key sk-123 given", "sk-123"), "bad key [redacted] given");
    }
}
