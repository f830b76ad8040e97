//! Telling `callback_url` that a job ended: `POST {job_id, status, predictions}`.
//!
//! Delivery obeys the same address rules as downloads, retries transient failures with the
//! shared backoff, and, when `HUME_ACTION_CALLBACK_SECRET` is set, signs the body:
//! `X-Hume-Action-Signature: sha256=<hex HMAC-SHA256 of the exact body>`.

use std::sync::Arc;

use backon::Retryable;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sha2::Sha256;
use url::Url;

use crate::config::Secret;
use crate::fetch::{FetchError, Fetcher};
use crate::store::{JobRecord, Store};
use crate::upstream::retry::{is_transient_status, RetryPolicy};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "x-hume-action-signature";

/// Sends job-end callbacks.
pub struct Callbacks {
    pub fetcher: Fetcher,
    pub secret: Option<Secret>,
    pub policy: RetryPolicy,
    pub store: Arc<dyn Store>,
}

/// The body a callback carries: v0's `{job_id, status, predictions}`, plus `message` on failure.
pub fn callback_body(job: &JobRecord, predictions: &Value) -> Value {
    let mut body = json!({"job_id": job.id, "status": job.state.status(), "predictions": predictions});
    if let crate::job::state::JobState::Failed { message, .. } = &job.state {
        body["message"] = json!(message);
    }
    body
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Callbacks {
    /// Delivers the callback of an ended job and records whether it arrived.
    pub async fn deliver(&self, job: &JobRecord, predictions: &Value) {
        let Some(url) = job.callback_url.as_deref().and_then(|u| Url::parse(u).ok()) else { return };
        let body = Bytes::from(callback_body(job, predictions).to_string());
        let mut headers = HeaderMap::new();
        if let Some(secret) = &self.secret {
            headers.insert(
                SIGNATURE_HEADER,
                HeaderValue::from_str(&signature(secret.expose(), &body)).expect("hex is a valid header"),
            );
        }
        let attempt = || async {
            match self.fetcher.post_json(&url, body.clone(), headers.clone()).await {
                Ok(status) if status.is_success() => Ok(()),
                Ok(status) => Err(FetchError::Status { status: status.as_u16(), retry_after: None }),
                Err(e) => Err(e),
            }
        };
        let outcome = attempt
            .retry(self.policy.delays())
            .sleep(tokio::time::sleep)
            .when(|e: &FetchError| match e {
                FetchError::Status { status, .. } => {
                    is_transient_status(reqwest::StatusCode::from_u16(*status).unwrap_or_default())
                }
                other => other.is_transient(),
            })
            .await;
        let state = match &outcome {
            Ok(()) => "DELIVERED",
            Err(e) => {
                tracing::warn!(job_id = %job.id, host = url.host_str(), error = %e, "callback not delivered");
                "FAILED"
            }
        };
        if let Err(e) = self.store.set_callback_state(&job.id, state).await {
            tracing::error!(job_id = %job.id, error = %e, "could not record the callback's fate");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
