//! The per-key sliding-window limit, seen at the fake upstream.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::helpers::{spawn_batch_app, status_and_json, wait_for_upstream_requests};

/// Answers instantly and records when each request arrived.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(json!({"job_id": "j"}))
    }
}

fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < *t + window).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn a_burst_never_puts_more_than_the_limit_in_any_window_and_every_call_succeeds() {
    let window = Duration::from_secs(2);
    let app = spawn_batch_app(|c| {
        c.rate_limit_requests = 10;
        c.rate_limit_window_secs = 2.0;
    })
    .await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST")).respond_with(arrivals.clone()).mount(&app.upstream).await;
    let bodies: Vec<_> = (0..25).map(|i| json!({"urls": format!("https://a.test/{i}.mp3")})).collect();
    let calls = bodies.iter().map(|b| app.start(b));
    let started = Instant::now();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.status(), 200);
    }
    let times = arrivals.0.lock().unwrap().clone();
    assert_eq!(times.len(), 25);
    assert!(most_in_any_window(&times, window) <= 10, "more than 10 requests in one 2 s window");
    let first_ten_by = times.iter().filter(|t| t.duration_since(started) < window).count();
    assert_eq!(first_ten_by, 10, "the first 10 go out at once, the rest wait for the window");
}

#[tokio::test]
async fn a_call_that_would_queue_too_long_is_a_429_with_retry_after() {
    let app = spawn_batch_app(|c| {
        c.rate_limit_requests = 2;
        c.rate_limit_window_secs = 60.0;
        c.max_queue_wait_secs = 5.0;
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "j"})))
        .expect(2)
        .mount(&app.upstream)
        .await;
    for _ in 0..2 {
        assert_eq!(app.start(&json!({"urls": "https://a.test/x"})).await.status(), 200);
    }
    let response = app.start(&json!({"urls": "https://a.test/y"})).await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=61).contains(&retry_after), "about a window: {retry_after}");
    let (status, body) = status_and_json(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), body["error"]["retryable"].as_bool()),
        (429, Some("rate_limited"), Some(true))
    );
}

#[tokio::test]
async fn an_upstream_429_pauses_the_key_until_retry_after() {
    let app = spawn_batch_app(|c| c.retry_base_ms = 1).await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST")).respond_with(arrivals.clone()).mount(&app.upstream).await;
    let (one, two) = (json!({"urls": "https://a.test/1"}), json!({"urls": "https://a.test/2"}));
    let first = app.start(&one);
    let second = async {
        wait_for_upstream_requests(&app, 1).await; // the 429 has been answered
        let paused_at = Instant::now();
        (app.start(&two).await, paused_at)
    };
    let (first, (second, paused_at)) = tokio::join!(first, second);
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let times = arrivals.0.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    assert!(
        times.iter().all(|t| t.duration_since(paused_at) >= Duration::from_millis(900)),
        "both held back by the pause"
    );
}
