//! The OpenAPI document against the running server: schemathesis (from PyPI, pinned in
//! `tests/openapi/requirements.txt`, installed by `scripts/test.sh` into
//! `data/schemathesis-venv`; `HUME_ACTION_SCHEMATHESIS` may name another executable) reads
//! `GET /openapi.json`, sends requests generated from it (valid and invalid), and checks that no
//! answer is a 5xx and every answer conforms to the document: status code, content type,
//! headers and body schema.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::spawn_local_app;

/// Checked on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";
/// Requests per operation and phase: keeps the run well under two minutes on two cores.
/// `HUME_ACTION_SCHEMATHESIS_EXAMPLES` asks for more (a deeper run by hand).
const MAX_EXAMPLES: &str = "25";
/// A fixed seed: a failure found once is found again on the next run.
/// `HUME_ACTION_SCHEMATHESIS_SEED` picks another.
const SEED: &str = "20261128";
/// Checks beyond [`CHECKS`], for a run by hand: `HUME_ACTION_SCHEMATHESIS_CHECKS=all`.
fn checks() -> String {
    std::env::var("HUME_ACTION_SCHEMATHESIS_CHECKS").unwrap_or_else(|_| CHECKS.to_owned())
}

fn schemathesis() -> PathBuf {
    std::env::var_os("HUME_ACTION_SCHEMATHESIS")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/schemathesis-venv/bin/schemathesis"))
}

#[tokio::test]
async fn the_document_covers_every_route_with_its_auth_and_headers() {
    let app = spawn_local_app(|_| {}).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    if let Some(path) = std::env::var_os("HUME_ACTION_OPENAPI_DUMP") {
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    let mut operations: Vec<String> = paths
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| format!("{} {path}", m.to_uppercase())))
        .collect();
    operations.sort();
    assert_eq!(
        operations,
        [
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "GET /readyz",
            "GET /v0/batch/jobs",
            "GET /v0/batch/jobs/{id}",
            "GET /v0/batch/jobs/{id}/artifacts",
            "GET /v0/batch/jobs/{id}/predictions",
            "GET /v1/actions",
            "GET /v1/jobs/{id}/summary",
            "POST /v0/batch/jobs",
            "POST /v1/actions/hume-expression-measurement",
        ]
    );
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let start = &paths["/v1/actions/hume-expression-measurement"]["post"];
    let headers: Vec<&str> =
        start["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(headers, ["X-Hume-Api-Key", "Idempotency-Key"]);
    assert!(start["security"].as_array().unwrap().iter().any(|s| s.get("bearer").is_some()));
    let upload = &paths["/v0/batch/jobs"]["post"]["requestBody"]["content"];
    assert!(upload.get("application/json").is_some() && upload.get("multipart/form-data").is_some(), "{upload}");
    let list = &paths["/v0/batch/jobs"]["get"]["responses"]["200"];
    assert!(list["headers"].get("Link").is_some(), "{list}");
    let limited = &start["responses"]["429"];
    assert!(limited["headers"].get("Retry-After").is_some(), "{limited}");
    assert!(paths["/healthz"]["get"].get("security").is_none(), "/healthz needs no token");
    // Every status the manifest lists for its errors is one the action documents (exactly, or
    // by its class: `4XX` stands for Hume's own rejections and the server-wide 404/405/408).
    let manifest: Value = app.get("/v1/actions").await.json().await.unwrap();
    for error in manifest["errors"].as_array().unwrap() {
        let status = error["status"].as_u64().unwrap().to_string();
        let class = format!("{}XX", &status[..1]);
        let documented = start["responses"].get(&status).or_else(|| start["responses"].get(&class));
        assert!(documented.is_some(), "{} ({status}) is not documented", error["code"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let program = schemathesis();
    assert!(program.exists(), "{} is missing: run scripts/test.sh, which installs schemathesis", program.display());
    let app = spawn_local_app(|config| {
        config.token = Some("openapi-test-token".parse().unwrap());
        config.workers = Some(1);
        // Generated URLs must not reach this machine's services.
        config.allow_private_urls = false;
    })
    .await;
    let reports = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(&program)
        .args(["run", &format!("{}/openapi.json", app.address)])
        .args(["--checks", &checks()])
        .args(["--max-examples", &std::env::var("HUME_ACTION_SCHEMATHESIS_EXAMPLES").unwrap_or(MAX_EXAMPLES.into())])
        .args(["--seed", &std::env::var("HUME_ACTION_SCHEMATHESIS_SEED").unwrap_or(SEED.into())])
        .args(["--header", "Authorization: Bearer openapi-test-token"])
        .args(["--request-timeout", "30", "--workers", "2", "--suppress-health-check", "all"])
        .arg("--report-dir")
        .arg(reports.path())
        // Its example database and cache go there too, not into the work tree.
        .current_dir(reports.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis found problems:\n{stdout}\n{stderr}");
    // What it tried, for `--nocapture`.
    println!("{stdout}");
}
