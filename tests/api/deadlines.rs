//! Time is bounded: a download has one deadline over all its attempts, a job has a deadline,
//! and a job full of slow URLs does not hold up other jobs.

use serde_json::json;

use crate::helpers::{outcome, spawn_local_app};
use crate::slow_host::{Answer, SlowHost};

#[tokio::test]
async fn slow_drip_urls_are_cut_at_the_download_deadline_while_another_job_completes() {
    let host = SlowHost::start(Answer::Drip).await;
    let app = spawn_local_app(|config| {
        config.workers = Some(1); // one measuring slot: the slow job must not take it
        config.download_deadline_secs = 6.0;
        config.min_download_rate = 0; // the deadline, not the rate, cuts these
    })
    .await;
    let urls: Vec<String> = (0..6).map(|i| host.url(&format!("/drip-{i}.txt"))).collect();
    let slow = app
        .start_v0(
            &json!({"urls": urls, "text": ["The text item is measured all the same."], "models": {"language": {}}}),
        )
        .await;
    host.wait_for_requests(6).await; // every URL is downloading at once

    let quick = app.start_v0(&json!({"text": ["I love how fast this was."], "models": {"language": {}}})).await;
    let done = app.wait_for_job(&quick, &["COMPLETED", "FAILED"]).await;
    assert_eq!(outcome(&done), (Some("COMPLETED"), Some(1), Some(0)), "{done}");
    let meanwhile = app.get(&format!("/v0/batch/jobs/{slow}")).await.json::<serde_json::Value>().await.unwrap();
    assert_eq!(meanwhile["state"]["status"], "IN_PROGRESS", "the other job did not wait for the slow one");

    let ended = app.wait_for_job(&slow, &["COMPLETED", "FAILED"]).await;
    assert_eq!(outcome(&ended), (Some("COMPLETED"), Some(1), Some(6)), "{ended}");
    let state = &ended["state"];
    let took = state["ended_timestamp_ms"].as_i64().unwrap() - state["started_timestamp_ms"].as_i64().unwrap();
    assert!(took < 11_000, "six slow URLs took about one deadline, not six: {took} ms");
    let predictions = app.predictions(&slow).await;
    for (i, source) in predictions.as_array().unwrap().iter().take(6).enumerate() {
        let message = source["results"]["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("/drip-{i}.txt")), "{message}");
        assert!(message.contains("download deadline of 6 s"), "{message}");
        assert!(message.contains("HUME_ACTION_DOWNLOAD_DEADLINE_SECS"), "{message}");
    }
}

#[tokio::test]
async fn sources_unfinished_at_the_job_deadline_become_errors_and_the_job_ends() {
    let host = SlowHost::start(Answer::Drip).await;
    let app = spawn_local_app(|config| {
        config.job_deadline_secs = 3.0;
        config.min_download_rate = 0;
    })
    .await;
    let body = json!({"urls": [host.url("/forever.txt")], "text": ["Finished in time."], "models": {"language": {}}});
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(outcome(&job), (Some("COMPLETED"), Some(1), Some(1)), "{job}");
    let predictions = app.predictions(&id).await;
    let error = &predictions[0]["results"]["errors"][0];
    assert_eq!(error["file"], "forever.txt");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("not finished within the job deadline of 3 s"), "{message}");
    assert!(message.contains("HUME_ACTION_JOB_DEADLINE_SECS"), "{message}");
    assert_eq!(predictions[1]["results"]["errors"], json!([]));
}
