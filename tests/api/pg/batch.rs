//! The `hume-batch` backend with a database URL: replicas share their idempotency records, and a
//! key is claimed in PostgreSQL before its upstream job is created, so one key raced on two
//! replicas creates one upstream job; a claim whose call failed is released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hume_action::error::ApiError;
use hume_action::idempotency::{Idempotency, IdempotencyKey, Started};
use hume_action::store::PostgresStore;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use super::Postgres;
use crate::helpers::{spawn_batch_app, status_and_json};

#[tokio::test]
async fn one_key_raced_on_two_batch_replicas_creates_one_upstream_job() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let a = spawn_batch_app(|c| c.database_url = Some(url.parse().unwrap())).await;
    let upstream = a.upstream.uri();
    let b = spawn_batch_app(|c| {
        c.database_url = Some(url.parse().unwrap());
        c.hume_batch_base_url = upstream.parse().unwrap();
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_id": "upstream-once"}))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&a.upstream)
        .await;
    let body = json!({"urls": "https://a.test/x", "models_face": "Yes"});
    let calls = (0..12).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.client
            .post(format!("{}/v1/actions/hume-expression-measurement", app.address))
            .header("Idempotency-Key", "batch-run-1")
            .json(&body)
            .send()
    });
    for response in futures::future::join_all(calls).await {
        assert_eq!(status_and_json(response.unwrap()).await, (200, json!({"job_id": "upstream-once"})));
    }
    let creates = a.upstream.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(creates, 1, "one upstream job for one key across replicas");
    let other: Value = b
        .client
        .post(format!("{}/v1/actions/hume-expression-measurement", b.address))
        .header("Idempotency-Key", "batch-run-1")
        .json(&json!({"urls": "https://a.test/other"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["error"]["code"], "idempotency_key_reused", "{other}");
}

#[tokio::test]
async fn a_claim_whose_start_failed_is_released_for_the_next_call() {
    let pg = Postgres::start().await;
    let store = PostgresStore::connect(&pg.url(), 4, Duration::from_secs(30), Duration::from_secs(10)).await.unwrap();
    let replicas: Vec<Arc<Idempotency>> =
        (0..2).map(|_| Arc::new(Idempotency::claiming_first(Arc::new(store.as_new_replica())))).collect();
    let key = IdempotencyKey::try_from("k").unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let failed = replicas[0]
        .run("s", Some(&key), &json!({}), |_| async {
            Err::<Started, _>(ApiError::Unavailable("upstream down".into()))
        })
        .await;
    assert!(failed.is_err());
    let counted = starts.clone();
    let id = replicas[1]
        .run("s", Some(&key), &json!({}), move |_| async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(Started::unrecorded("second".into()))
        })
        .await
        .unwrap();
    assert_eq!((id.as_str(), starts.load(Ordering::SeqCst)), ("second", 1), "the failed call's claim was released");
    let replay = replicas[0]
        .run("s", Some(&key), &json!({}), |_| async { Ok(Started::unrecorded("third".into())) })
        .await
        .unwrap();
    assert_eq!(replay, "second", "the other replica finds the recorded job");
}
