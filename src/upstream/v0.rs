//! Client of a Hume v0-compatible batch API (`/v0/batch/jobs`), used by the `hume-batch` backend.
//!
//! Every request goes through the key's rate limiter and the shared retry policy. A job-creating
//! POST whose fate is unknown (sent, then timed out or cut off, or answered 500/502/504) is never
//! blindly sent again: first the key's recent jobs are searched for one with the same request,
//! and that job is adopted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

pub use super::client::RawResponse;
use super::client::{AttemptError, UpstreamClient};
use super::UpstreamError;
use crate::config::Secret;

/// How far back, before our first send, an adoptable job's creation time may lie (clock skew).
const ADOPTION_SKEW_MS: i64 = 60_000;

/// The v0 batch client.
pub struct HumeV0Client {
    client: UpstreamClient,
    /// Job ids this client has handed out lately, never adopted for another request.
    handed_out: Mutex<VecDeque<String>>,
}

/// How many handed-out job ids are remembered.
const HANDED_OUT_MEMORY: usize = 10_000;

impl HumeV0Client {
    /// A client on the shared upstream client for the v0 API's base URL.
    pub fn new(client: UpstreamClient) -> Self {
        Self { client, handed_out: Mutex::default() }
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
            let result = self.client.send(api_key, Method::POST, "/v0/batch/jobs", |r| json_body(r, &body)).await;
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
        let result = match self.client.with_retries(attempt, &attempts).await {
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
        self.client.call(api_key, Method::GET, path, |r| r.query(query)).await
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
        let raw = self.client.send(api_key, Method::GET, "/v0/batch/jobs", |r| r.query(&query)).await?;
        let jobs: Vec<Value> = serde_json::from_slice(&raw.body).unwrap_or_default();
        Ok(jobs
            .iter()
            .find(|job| same_request(&job["request"], request))
            .and_then(|job| job["job_id"].as_str())
            .map(str::to_owned))
    }
}

fn json_body(request: RequestBuilder, body: &Bytes) -> RequestBuilder {
    request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone())
}

/// Now in Unix epoch milliseconds, as v0's `timestamp_ms` counts.
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
}
