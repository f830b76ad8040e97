//! Connections are bounded: stalled heads are cut at the header timeout, idle keep-alive
//! connections at the keep-alive timeout, slow bodies at the body timeout, and the number of
//! connections is capped, while `/healthz` and new jobs keep answering.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_batch_app, spawn_local_app, TestApp};

/// A raw connection that sent part of a request head and then stopped.
async fn stalled(app: &TestApp) -> (TcpStream, Instant) {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: stalled\r\n").await.unwrap();
    (stream, Instant::now())
}

/// Reads until the peer closes the connection (bounded); returns what arrived and when it closed.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection within {within:?}");
    (received, Instant::now())
}

/// Reads one small response (headers and a body shorter than one read) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("\"status\":\"ok\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_thousand_stalled_connections_are_closed_at_the_header_timeout_while_the_server_answers() {
    let header_timeout = Duration::from_secs(3);
    let app = spawn_local_app(|config| config.header_timeout_secs = header_timeout.as_secs_f64()).await;
    let mut connections = Vec::with_capacity(1000);
    for _ in 0..1000 {
        connections.push(stalled(&app).await);
    }

    let asked = Instant::now();
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let job = app.client.post(format!("{}/v0/batch/jobs", app.address));
    let job = job.json(&json!({"text": ["Still here."], "models": {"language": {}}})).send().await.unwrap();
    assert_eq!(job.status(), 200);
    let answered = asked.elapsed();
    assert!(answered < Duration::from_secs(2), "/healthz and a new job took {answered:?}");

    for (stream, opened) in &mut connections {
        let (received, closed) = read_to_close(stream, header_timeout + Duration::from_secs(10)).await;
        assert!(received.is_empty(), "no answer to half a head: {}", String::from_utf8_lossy(&received));
        let open_for = closed - *opened;
        assert!(open_for < header_timeout + Duration::from_millis(1500), "closed after {open_for:?}");
    }
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_batch_app(|config| {
        config.max_connections = Some(10);
        config.header_timeout_secs = 1.0;
    })
    .await;
    let mut connections = Vec::new();
    for _ in 0..10 {
        connections.push(stalled(&app).await);
    }
    let asked = Instant::now();
    assert_eq!(app.get("/healthz").await.status(), 200);
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(500), "the 11th connection waited for a stalled one to go: {waited:?}");
    for (stream, _) in &mut connections {
        read_to_close(stream, Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_lives_until_the_keepalive_timeout() {
    let app = spawn_batch_app(|config| {
        config.header_timeout_secs = 1.0;
        config.keepalive_secs = 3.0;
    })
    .await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: kept\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout, shorter than the keep-alive timeout: still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(request).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let (_, closed) = read_to_close(&mut stream, Duration::from_secs(10)).await;
    let idle = closed - idle_from;
    assert!(idle >= Duration::from_millis(2500) && idle < Duration::from_millis(4500), "closed after {idle:?} idle");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed() {
    let app = spawn_batch_app(|config| config.body_timeout_secs = 1.0).await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = "POST /v1/actions/hume-expression-measurement HTTP/1.1\r\nHost: slow\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"urls\": ";
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let (received, closed) = read_to_close(&mut stream, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"code\":\"request_timeout\"") && answer.contains("HUME_ACTION_BODY_TIMEOUT_SECS"),
        "{answer}"
    );
    let took = closed - sent;
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
}
