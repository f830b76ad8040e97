//! Bounded by design: secrets scrubbed from what upstream says.

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{captured_logs, spawn_batch_app, status_and_json};

#[tokio::test]
async fn a_transformed_key_is_scrubbed_from_an_upstream_message() {
    const KEY: &str = "hk-Caller/Key+Secret=quxwaldofred";
    let app = spawn_batch_app(|_| {}).await;
    let percent = "hk-Caller%2FKey%2BSecret%3Dquxwaldofred";
    let base64 = base64::engine::general_purpose::STANDARD.encode(KEY);
    let transforms = [KEY.to_uppercase(), percent.to_owned(), percent.to_lowercase(), base64, KEY[..10].to_owned()];
    let echoed = transforms.join(" | ");
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"message": format!("bad credentials: {echoed}")})),
        )
        .mount(&app.upstream)
        .await;
    let response = app
        .client
        .post(format!("{}/v0/batch/jobs", app.address))
        .header("X-Hume-Api-Key", KEY)
        .json(&json!({"urls": ["https://a.test/x.mp3"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("upstream_rejected")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Hume rejected the request (400): bad credentials: [redacted]"), "{message}");
    let logs = captured_logs();
    for transform in &transforms {
        for window in transform.as_bytes().windows(8).map(|w| std::str::from_utf8(w).unwrap()) {
            assert!(!body.to_string().contains(window), "{window} of {transform} reached the caller: {message}");
            assert!(!logs.contains(window), "{window} of {transform} reached the log");
        }
    }
}
