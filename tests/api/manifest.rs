//! `action-manifest.json` and the server's behaviour agree.

use hume_action::error::ErrorCode;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_batch_app, status_and_json};

fn manifest() -> Value {
    serde_json::from_str(include_str!("../../action-manifest.json")).unwrap()
}

#[tokio::test]
async fn served_manifest_is_the_file() {
    let app = spawn_batch_app(|_| {}).await;
    let (status, served) = status_and_json(app.get("/v1/actions").await).await;
    assert_eq!((status, served), (200, manifest()));
}

#[tokio::test]
async fn every_option_is_accepted_and_defaults_are_what_the_manifest_says() {
    let app = spawn_batch_app(|_| {}).await;
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    Mock::given(method("POST"))
        .respond_with(move |r: &wiremock::Request| {
            sink.lock().unwrap().push(serde_json::from_slice(&r.body).unwrap());
            ResponseTemplate::new(200).set_body_json(json!({"job_id": "j"}))
        })
        .mount(&app.upstream)
        .await;
    let m = manifest();
    let start = m["actions"].as_array().unwrap().iter().find(|a| a["method"] == "POST").unwrap();
    assert_eq!(start["path"], "/v1/actions/hume-expression-measurement");
    let fields = start["fields"].as_array().unwrap();
    let urls = fields.iter().find(|f| f["key"] == "urls").unwrap();
    assert_eq!((urls["required"].as_bool(), urls["max_items"].as_u64()), (Some(true), Some(100)));

    // Defaults: an empty call gets exactly the models whose default is Yes.
    let (status, _) = status_and_json(app.start(&json!({"urls": "https://a.test/x"})).await).await;
    assert_eq!(status, 200);
    let defaults_on: Vec<String> = fields
        .iter()
        .filter(|f| f["type"] == "options")
        .inspect(|f| assert_eq!(f["default"], f["options"][0], "default is the first option: {f}"))
        .filter(|f| f["default"] == "Yes")
        .map(|f| f["key"].as_str().unwrap().trim_start_matches("models_").to_owned())
        .collect();
    let sent =
        received.lock().unwrap().last().unwrap()["models"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(sent, defaults_on);

    // Every listed option of every toggle is accepted, with the prosody toggle as a backstop.
    for field in fields.iter().filter(|f| f["type"] == "options") {
        for option in field["options"].as_array().unwrap() {
            let body =
                json!({"urls": "https://a.test/x", "models_face": "Yes", field["key"].as_str().unwrap(): option});
            assert_eq!(app.start(&body).await.status(), 200, "{body}");
        }
    }
    // The sample request, filled in as a builder would, works.
    let mut sample = start["sample_request"].clone();
    sample["urls"] = json!("https://a.test/sample.mp3");
    for key in ["models_face", "models_prosody", "models_language"] {
        sample[key] = json!("Yes");
    }
    let (status, answer) = status_and_json(app.start(&sample).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer.as_object().unwrap().keys().collect::<Vec<_>>(),
        start["sample_output"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn input_error_codes_answer_with_the_listed_status() {
    let app = spawn_batch_app(|_| {}).await;
    let m = manifest();
    let listed = |code: &str| {
        m["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["code"] == code)
            .unwrap_or_else(|| panic!("{code} not in manifest"))
            .clone()
    };
    for (body, code) in [
        (json!({}), "missing_urls"),
        (json!({"urls": 1}), "invalid_urls"),
        (json!({"urls": "ftp://x"}), "invalid_url"),
        (json!({"urls": "{{a}}"}), "unfilled_template"),
        (json!({"urls": "https://a.test/x", "models_face": "x"}), "invalid_toggle"),
        (json!({"urls": "https://a.test/x", "models_prosody": false}), "no_model_selected"),
        (json!(1), "invalid_body"),
    ] {
        let (status, answer) = status_and_json(app.start(&body).await).await;
        let entry = listed(code);
        assert_eq!(answer["error"]["code"], code);
        assert_eq!(u64::from(status), entry["status"].as_u64().unwrap(), "{code}");
        assert_eq!(answer["error"]["retryable"], entry["retryable"], "{code}");
    }
}

#[test]
fn the_manifest_lists_every_error_code_with_its_status_and_retryable_flag() {
    let m = manifest();
    let listed: Vec<(String, u64, bool)> = m["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["code"].as_str().unwrap().to_owned(), e["status"].as_u64().unwrap(), e["retryable"].as_bool().unwrap())
        })
        .collect();
    let served: Vec<(String, u64, bool)> =
        ErrorCode::ALL.iter().map(|c| (c.as_str().to_owned(), u64::from(c.status().as_u16()), c.retryable())).collect();
    let missing: Vec<_> = served.iter().filter(|c| !listed.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "codes the server answers with, missing from action-manifest.json or listed otherwise: {missing:?}"
    );
    let unknown: Vec<_> = listed.iter().filter(|c| !served.contains(c)).collect();
    assert!(unknown.is_empty(), "codes in action-manifest.json the server does not have: {unknown:?}");
}
