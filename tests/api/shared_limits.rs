//! The rate limit shared by replicas through a real Redis (`HUME_ACTION_REDIS_URL`), judged at
//! a strict fake upstream that counts arrivals in every sliding window.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hume_action::config::{BackendKind, Config};
use hume_action::upstream::{LimiterKey, RateLimiter, SharedLimits};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{spawn_with, status_and_json, test_config, TestApp};
use crate::redis_server::RedisServer;

/// A strict upstream: answers 429 (as Hume does) to any request that makes more than `limit`
/// arrivals in one sliding `window`, and counts those violations.
#[derive(Clone)]
struct StrictUpstream {
    limit: usize,
    window: Duration,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    violations: Arc<Mutex<usize>>,
}

impl StrictUpstream {
    fn new(limit: usize, window: Duration) -> Self {
        Self { limit, window, arrivals: Arc::default(), violations: Arc::default() }
    }

    fn arrivals(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    fn violations(&self) -> usize {
        *self.violations.lock().unwrap()
    }
}

impl Respond for StrictUpstream {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(now);
        let in_window = arrivals.iter().filter(|t| now.duration_since(**t) < self.window).count();
        if in_window > self.limit {
            *self.violations.lock().unwrap() += 1;
            return ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "rate limit exceeded"}));
        }
        ResponseTemplate::new(200).set_body_json(json!({"job_id": format!("job-{}", arrivals.len())}))
    }
}

/// `n` replicas of the `hume-batch` backend on one Redis and one strict upstream.
async fn replicas(n: usize, redis: &RedisServer, upstream: &MockServer, tweak: impl Fn(&mut Config)) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for _ in 0..n {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(BackendKind::HumeBatch, upstream, data_dir.path());
        config.redis_url = Some(redis.url().parse().unwrap());
        tweak(&mut config);
        apps.push(spawn_with(config, MockServer::start().await, data_dir).await);
    }
    apps
}

fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < *t + window).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn three_replicas_keep_one_window_and_each_serves_its_callers_in_order() {
    let redis = RedisServer::start();
    let (limit, window, hold) = (4, Duration::from_millis(800), Duration::from_millis(30));
    let key = LimiterKey::of(&hume_action::config::Secret::from("shared-key").hash());
    let grants = Arc::new(Mutex::new(Vec::<(usize, usize, Instant, Instant)>::new()));
    let mut tasks = Vec::new();
    let mut fleet = Vec::new();
    for replica in 0..3 {
        let shared = SharedLimits::new(&redis.url().parse().unwrap()).unwrap();
        let limiter = shared.limiter("v0", limit, window, Duration::from_secs(10), Duration::from_secs(600));
        fleet.push(shared);
        for call in 0..8 {
            let mut acquire = Box::pin({
                let (limiter, key) = (limiter.clone(), key.clone());
                async move { limiter.acquire(&key).await }
            });
            // The first poll puts the call in its replica's queue, so calls queue in this order.
            assert!(futures::poll!(&mut acquire).is_pending());
            let grants = grants.clone();
            tasks.push(tokio::spawn(async move {
                let permit = acquire.await.expect("granted");
                let granted = Instant::now();
                tokio::time::sleep(hold).await; // the request's time at the upstream
                let answered = Instant::now();
                drop(permit);
                grants.lock().unwrap().push((replica, call, granted, answered));
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let grants = grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 24);
    let mut by_grant = grants.clone();
    by_grant.sort_by_key(|g| g.2);
    for replica in 0..3 {
        let order: Vec<usize> = by_grant.iter().filter(|g| g.0 == replica).map(|g| g.1).collect();
        assert_eq!(order, (0..8).collect::<Vec<_>>(), "replica {replica} serves its callers FIFO");
    }
    // Arrival at the upstream is anywhere between grant and answer: judge both ends.
    let sent: Vec<Instant> = grants.iter().map(|g| g.2).collect();
    let answered: Vec<Instant> = grants.iter().map(|g| g.3).collect();
    assert!(most_in_any_window(&sent, window) <= limit as usize, "by send time");
    assert!(most_in_any_window(&answered, window) <= limit as usize, "by answer time");
    // No replica starves: each one's first grant comes within the first four windows' grants.
    for replica in 0..3 {
        let first = by_grant.iter().position(|g| g.0 == replica).unwrap();
        assert!(first < 4 * limit as usize, "replica {replica} got its first slot only as grant {first}");
    }
}

#[tokio::test]
async fn a_burst_of_action_calls_spread_over_three_replicas_never_breaks_the_limit() {
    let redis = RedisServer::start();
    let upstream = MockServer::start().await;
    let strict = StrictUpstream::new(6, Duration::from_secs(2));
    Mock::given(method("POST")).respond_with(strict.clone()).mount(&upstream).await;
    let apps = replicas(3, &redis, &upstream, |c| {
        c.rate_limit_requests = 6;
        c.rate_limit_window_secs = 2.0;
    })
    .await;
    let bodies: Vec<_> = (0..24).map(|i| json!({"urls": format!("https://a.test/{i}.mp3")})).collect();
    let calls = bodies.iter().enumerate().map(|(i, body)| apps[i % 3].start(body));
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(strict.violations(), 0, "no window at the upstream held more than the limit");
    assert_eq!(strict.arrivals(), 24, "one upstream request per call, none retried");
}

#[tokio::test]
async fn redis_killed_and_restarted_empty_mid_burst_breaks_no_window() {
    let mut redis = RedisServer::start();
    let upstream = MockServer::start().await;
    let strict = StrictUpstream::new(5, Duration::from_secs(2));
    Mock::given(method("POST")).respond_with(strict.clone()).mount(&upstream).await;
    let apps = replicas(2, &redis, &upstream, |c| {
        c.rate_limit_requests = 5;
        c.rate_limit_window_secs = 2.0;
    })
    .await;
    let apps = Arc::new(apps);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let apps = apps.clone();
            tokio::spawn(async move {
                apps[i % 2].start(&json!({"urls": format!("https://a.test/{i}.mp3")})).await.status()
            })
        })
        .collect();
    // Kill Redis once the first window's requests are through, while the rest queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    while strict.arrivals() < 5 {
        assert!(Instant::now() < deadline, "the first window's requests never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.stop();
    let (status, body) = wait_until_not_ready(&apps[0]).await;
    assert_eq!(status, 503);
    assert!(body["error"]["message"].as_str().unwrap().contains("Redis at 127.0.0.1"), "{body}");
    redis.restart();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(strict.violations(), 0, "no window held more than the limit, across the lost counts");
    assert_eq!(strict.arrivals(), 20);
    assert_eq!(apps[0].get("/readyz").await.status(), 200, "ready again");
}

#[tokio::test]
async fn a_429_seen_by_one_replica_pauses_the_key_on_every_replica() {
    let redis = RedisServer::start();
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .up_to_n_times(1)
        .mount(&upstream)
        .await;
    let strict = StrictUpstream::new(100, Duration::from_secs(60));
    Mock::given(method("POST")).respond_with(strict.clone()).mount(&upstream).await;
    let apps = Arc::new(replicas(2, &redis, &upstream, |c| c.retry_base_ms = 1).await);
    let first = {
        let apps = apps.clone();
        tokio::spawn(async move { apps[0].start(&json!({"urls": "https://a.test/1.mp3"})).await.status() })
    };
    // The first replica got the 429: its pause is in Redis.
    let pause = format!(
        "hume-action:limit:v0:{}:pause",
        LimiterKey::of(&hume_action::config::Secret::from("test-key").hash()).as_str()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis.exists(&pause) != Some(true) {
        assert!(Instant::now() < deadline, "the 429's pause never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let paused_at = Instant::now();
    // The other replica's call waits for that pause too.
    assert_eq!(apps[1].start(&json!({"urls": "https://a.test/2.mp3"})).await.status(), 200);
    assert_eq!(first.await.unwrap(), 200);
    let arrivals = strict.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2, "both calls got through once the pause ended");
    for arrival in arrivals {
        assert!(arrival.duration_since(paused_at) >= Duration::from_millis(1500), "held back by the pause");
    }
}

/// Polls `/readyz` (bounded) until it answers 503.
async fn wait_until_not_ready(app: &TestApp) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = status_and_json(app.get("/readyz").await).await;
        if status == 503 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_redis_nothing_is_sent_and_the_call_is_a_503_with_retry_after_until_redis_answers() {
    let mut redis = RedisServer::start();
    redis.stop();
    let upstream = MockServer::start().await;
    let strict = StrictUpstream::new(5, Duration::from_secs(2));
    Mock::given(method("POST")).respond_with(strict.clone()).mount(&upstream).await;
    // The replica starts while Redis is down: it says so and is not ready.
    let apps = replicas(1, &redis, &upstream, |c| c.max_queue_wait_secs = 2.0).await;
    let (status, body) = status_and_json(apps[0].get("/readyz").await).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Redis"), "{body}");
    let response = apps[0].start(&json!({"urls": "https://a.test/x.mp3"})).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("rate_limiter_unavailable")), "{body}");
    assert_eq!(strict.arrivals(), 0, "nothing went upstream without the shared count");
    let logs = crate::helpers::captured_logs();
    assert!(logs.contains("HUME_ACTION_REDIS_URL: cannot reach Redis"), "the start-up says which");
    // Redis returns: so does the replica.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while apps[0].get("/readyz").await.status() != 200 {
        assert!(Instant::now() < deadline, "ready once Redis answers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(apps[0].start(&json!({"urls": "https://a.test/x.mp3"})).await.status(), 200);
    assert_eq!(strict.arrivals(), 1);
}
