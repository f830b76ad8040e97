//! Telling `callback_url` that a job ended: `POST {job_id, status, predictions}` (v0's body), or
//! `POST {job_id, status, summary}` (the action's default), always under 1 MB, for a webhook that
//! resumes a paused workflow. A predictions body over `HUME_ACTION_CALLBACK_MAX_BYTES` (5 MB, the
//! smallest limit of the platforms that resume workflows) carries the summary instead, with
//! `predictions_url` and `predictions_omitted` saying so.
//!
//! Delivery obeys the same address rules as downloads, retries transient failures with the
//! shared backoff, and, when `HUME_ACTION_CALLBACK_SECRET` is set, signs the body:
//! `X-Hume-Action-Signature: sha256=<hex HMAC-SHA256 of the exact body>`.
//!
//! A delivery is claimed in the store (by the replica that finished the job, or by a sweep) and
//! its claim renewed while it runs ([`super::lease`]); a delivery whose claim is lost stops, so
//! two replicas never deliver one job's end at the same time. Delivery is at least once: a
//! replica that dies mid-delivery leaves the callback pending, and another sends it again.

use std::sync::Arc;

use backon::Retryable;
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH};
use serde_json::json;
use sha2::Sha256;
use url::Url;

use crate::config::Secret;
use crate::fetch::{FetchError, Fetcher};
use crate::job::status::CallbackState;
use crate::job::CallbackBody;
use crate::store::{predictions_json, JobRecord, Store, StoreError};
use crate::summary::{self, Summary, SummaryOptions};
use crate::upstream::retry::{is_transient_status, RetryPolicy};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "x-hume-action-signature";

/// Sends job-end callbacks.
pub struct Callbacks {
    pub fetcher: Fetcher,
    pub secret: Option<Secret>,
    pub policy: RetryPolicy,
    pub store: Arc<dyn Store>,
    /// How a summary callback's summary is made.
    pub summary: Arc<SummaryOptions>,
    /// `HUME_ACTION_CALLBACK_MAX_BYTES`: a predictions body over it sends the summary instead.
    pub max_predictions_bytes: u64,
}

/// A callback's body: v0's, streamed from the store, or one made in memory (a summary).
enum Payload {
    Predictions,
    Made(Bytes),
}

/// `{job_id, status, summary}` (plus `message` on failure, and `extra`'s fields).
fn summary_body(job: &JobRecord, summary: &Summary, extra: serde_json::Map<String, serde_json::Value>) -> Bytes {
    let mut body = json!({"job_id": job.id, "status": job.state.status(), "summary": summary});
    if let crate::job::state::JobState::Failed { message, .. } = &job.state {
        body["message"] = json!(message);
    }
    body.as_object_mut().expect("an object").extend(extra);
    Bytes::from(body.to_string())
}

/// The body a callback carries: v0's `{job_id, status, predictions}`, plus `message` on failure,
/// as a stream: the predictions are read from the store one source at a time.
pub fn callback_body(
    store: Arc<dyn Store>,
    job: &JobRecord,
) -> impl futures::Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let mut head = json!({"job_id": job.id, "status": job.state.status()});
    if let crate::job::state::JobState::Failed { message, .. } = &job.state {
        head["message"] = json!(message);
    }
    let head = head.to_string();
    let head = format!("{},\"predictions\":", &head[..head.len() - 1]);
    futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(predictions_json(store, job.id.clone()))
        .chain(futures::stream::once(async { Ok(Bytes::from_static(b"}")) }))
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Callbacks {
    /// Delivers the callback of an ended job (whose delivery this replica claimed) and records
    /// whether it arrived; stops at once if the claim is lost.
    pub async fn deliver(&self, job: &JobRecord) {
        let store = self.store.clone();
        let lost = super::lease::hold(store.lease(), "callback", || store.renew_callback(&job.id));
        tokio::select! {
            _ = self.deliver_claimed(job) => {}
            _ = lost => tracing::warn!(job_id = %job.id, "the callback's delivery was taken over by another replica"),
        }
    }

    /// The job's summary, small enough for any webhook.
    async fn summary(&self, job: &JobRecord) -> Result<Summary, StoreError> {
        let settings = self.summary.settings(None);
        let summary =
            summary::of_stored_job(self.store.as_ref(), job, &settings, self.summary.view_url(job.id.as_str())).await?;
        Ok(summary.within(summary::MAX_CALLBACK_SUMMARY_BYTES))
    }

    /// What to send, with its length and signature: a first pass over v0's body gives them (and
    /// tells whether it is over the size a webhook takes); each attempt then streams it again.
    async fn payload(&self, job: &JobRecord) -> Result<(Payload, u64, Option<String>), StoreError> {
        let mac = || {
            self.secret
                .as_ref()
                .map(|s| Hmac::<Sha256>::new_from_slice(s.expose().as_bytes()).expect("HMAC takes any key length"))
        };
        let sign =
            |mac: Option<Hmac<Sha256>>| mac.map(|m| format!("sha256={}", hex::encode(m.finalize().into_bytes())));
        let made = |bytes: Bytes| {
            let signature = sign(mac().map(|mut m| {
                m.update(&bytes);
                m
            }));
            (bytes.len() as u64, signature, Payload::Made(bytes))
        };
        if job.callback_body == CallbackBody::Summary {
            let (length, signature, payload) = made(summary_body(job, &self.summary(job).await?, Default::default()));
            return Ok((payload, length, signature));
        }
        let (mut length, mut mac) = (0u64, mac());
        let mut body = std::pin::pin!(callback_body(self.store.clone(), job));
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            length += chunk.len() as u64;
            if length > self.max_predictions_bytes {
                let path = format!("/v0/batch/jobs/{}/predictions", job.id);
                let extra = json!({
                    "predictions_url": self.summary.link(&path),
                    "predictions_omitted": format!(
                        "The predictions are over {} bytes (HUME_ACTION_CALLBACK_MAX_BYTES), more than webhooks take, so this callback carries the job's summary; read the predictions at predictions_url.",
                        self.max_predictions_bytes
                    ),
                });
                let extra = extra.as_object().cloned().unwrap_or_default();
                let (length, signature, payload) = made(summary_body(job, &self.summary(job).await?, extra));
                return Ok((payload, length, signature));
            }
            if let Some(mac) = &mut mac {
                mac.update(&chunk);
            }
        }
        Ok((Payload::Predictions, length, sign(mac)))
    }

    async fn deliver_claimed(&self, job: &JobRecord) {
        let Some(url) = job.callback_url.as_deref().and_then(|u| Url::parse(u).ok()) else { return };
        let (payload, length, signature) = match self.payload(job).await {
            Ok(made) => made,
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "cannot read the callback's body from the store; it stays pending");
                return;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(signature) = signature {
            headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).expect("hex is a valid header"));
        }
        let attempt = || async {
            let body = match &payload {
                Payload::Predictions => reqwest::Body::wrap_stream(callback_body(self.store.clone(), job)),
                Payload::Made(bytes) => reqwest::Body::from(bytes.clone()),
            };
            match self.fetcher.post_json(&url, body, headers.clone()).await {
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
        crate::telemetry::metrics::callback(outcome.is_ok());
        let state = match &outcome {
            Ok(()) => CallbackState::Delivered,
            Err(e) => {
                tracing::warn!(job_id = %job.id, host = url.host_str(), error = %e, "callback not delivered");
                CallbackState::Failed
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
