//! Tests of the address rules, and of downloads against loopback servers only.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use reqwest::header::HeaderName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    }
}

fn config(allow_private: bool) -> FetchConfig {
    FetchConfig { allow_private, retry: retry(3), timeout: Duration::from_secs(10), ..FetchConfig::default() }
}

fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config).unwrap()
}

/// Answers the given names with the given addresses (any port; the URL's port wins).
struct StaticDns(HashMap<&'static str, IpAddr>);

impl Resolve for StaticDns {
    fn resolve(&self, name: Name) -> Resolving {
        let answer = self.0.get(name.as_str()).map(|ip| SocketAddr::new(*ip, 0));
        Box::pin(async move { Ok(Box::new(std::iter::once(answer.ok_or("unknown test host")?)) as Addrs) })
    }
}

/// `public.test` is a trusted stand-in for a public host; `rebind.test` is an untrusted name
/// that resolves to loopback. Both point at 127.0.0.1; every other name fails to resolve.
fn test_dns_config() -> FetchConfig {
    let dns = StaticDns(HashMap::from([("public.test", ip("127.0.0.1")), ("rebind.test", ip("127.0.0.1"))]));
    FetchConfig { resolver: Some(Arc::new(dns)), trusted_hosts: vec!["public.test".into()], ..config(false) }
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn assert_forbidden(result: Result<impl fmt::Debug, FetchError>, want_host: &str) {
    match result {
        Err(e @ FetchError::ForbiddenAddress { .. }) => {
            let FetchError::ForbiddenAddress { host, .. } = &e else { unreachable!() };
            assert_eq!(host, want_host);
            assert!(e.to_string().contains("HUME_ACTION_ALLOW_PRIVATE_URLS=true"), "{e}");
            assert!(!e.is_transient());
        }
        other => panic!("expected ForbiddenAddress for {want_host}, got {other:?}"),
    }
}

/// A one-connection HTTP server on loopback for what wiremock cannot do (chunked streams,
/// stalls): reads the request head, then hands the socket to `serve`.
async fn raw_server<F, Fut>(serve: F) -> Url
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        if !read_head(&mut stream).await? {
            return Ok(());
        }
        serve(stream).await
    });
    url(&format!("http://{addr}/file"))
}

/// Reads a request head; false when the client went away first.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0; 1024];
        match stream.read(&mut buf).await? {
            0 => return Ok(false),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    Ok(true)
}

#[test]
fn forbidden_ipv4_ranges() {
    for s in [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
    ] {
        assert!(is_forbidden_ip(ip(s)), "{s} should be forbidden");
    }
}

#[test]
fn forbidden_ipv6_ranges() {
    for s in [
        "::",
        "::1",
        "fe80::1",
        "febf:ffff::1",
        "fec0::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff05::1:3",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "2001:0:4136:e378::1",
        "100::1",
        "64:ff9b:1::a00:1",
    ] {
        assert!(is_forbidden_ip(ip(s)), "{s} should be forbidden");
    }
}

#[test]
fn ipv6_forms_embedding_a_forbidden_ipv4_are_forbidden() {
    for v4 in ["127.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.1.1", "0.0.0.0", "100.64.1.1"] {
        let bits = u32::from(v4.parse::<Ipv4Addr>().unwrap()) as u128;
        let forms = [
            Ipv6Addr::from(bits),                            // IPv4-compatible ::a.b.c.d
            Ipv6Addr::from(0xffff_u128 << 32 | bits),        // IPv4-mapped ::ffff:a.b.c.d
            Ipv6Addr::from(0xffff_u128 << 48 | bits),        // IPv4-translated ::ffff:0:a.b.c.d
            Ipv6Addr::from(0x64_ff9b_u128 << 96 | bits),     // NAT64 64:ff9b::a.b.c.d
            Ipv6Addr::from(0x2002_u128 << 112 | bits << 80), // 6to4 2002:aabb:ccdd::
        ];
        for form in forms {
            assert!(is_forbidden_ip(form.into()), "{form} (embeds {v4}) should be forbidden");
        }
    }
    assert!(is_forbidden_ip(ip("::ffff:127.0.0.1")));
    assert!(is_forbidden_ip(ip("64:ff9b::169.254.169.254")));
    assert!(is_forbidden_ip(ip("2002:a9fe:a9fe::1")));
}

#[test]
fn public_addresses_are_allowed() {
    for s in [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "11.0.0.1",
        "100.128.0.1",
        "172.32.0.1",
        "169.255.0.1",
        "192.0.3.1",
        "198.20.0.1",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert!(!is_forbidden_ip(ip(s)), "{s} should be allowed");
    }
}

#[test]
fn check_url_refuses_other_schemes() {
    let f = fetcher(config(true));
    for (u, scheme) in
        [("ftp://example.com/a.mp3", "ftp"), ("file:///etc/passwd", "file"), ("data:text/plain,hi", "data")]
    {
        match f.check_url(&url(u)) {
            Err(e @ FetchError::UnsupportedScheme { .. }) => {
                assert!(e.to_string().contains(&format!("`{scheme}:`")), "{e}");
                assert!(!e.is_transient());
            }
            other => panic!("{u}: {other:?}"),
        }
    }
}

#[test]
fn check_url_refuses_non_public_literals_and_local_names() {
    let strict = fetcher(config(false));
    let open = fetcher(config(true));
    for (u, host) in [
        ("http://127.0.0.1/x", "127.0.0.1"),
        ("http://2130706433/x", "127.0.0.1"),
        ("http://0x7f.1/x", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.5:8080/", "10.0.0.5"),
        ("http://[::1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
        ("https://[fd00::1]/", "fd00::1"),
        ("http://localhost:3000/", "localhost"),
        ("http://LocalHost./", "localhost."),
        ("http://admin.localhost/", "admin.localhost"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal"),
    ] {
        assert_forbidden(strict.check_url(&url(u)), host);
        assert!(open.check_url(&url(u)).is_ok(), "{u} with private URLs allowed");
    }
    for u in ["https://example.com/a.mp4?sig=x", "http://8.8.8.8/", "https://[2606:4700::1111]/"] {
        assert!(strict.check_url(&url(u)).is_ok(), "{u}");
    }
}

#[test]
fn vetting_keeps_only_public_addresses() {
    let guard = Guard { allow_private: false, trusted_hosts: vec![] };
    let addr = |s: &str| SocketAddr::new(ip(s), 443);
    let mixed = [addr("127.0.0.1"), addr("8.8.8.8"), addr("::1"), addr("2606:4700::1111")];
    assert_eq!(guard.vet("mixed.test", mixed).unwrap(), [addr("8.8.8.8"), addr("2606:4700::1111")]);
    let err = guard.vet("evil.test", [addr("10.0.0.1"), addr("169.254.169.254")]).unwrap_err();
    assert!(
        matches!(&err, FetchError::ForbiddenAddress { host, ip: Some(a) } if host == "evil.test" && *a == ip("10.0.0.1"))
    );
    assert!(err.to_string().contains("`evil.test` (address 10.0.0.1)"), "{err}");
    assert!(matches!(guard.vet("empty.test", []), Err(FetchError::Transport(_))));
}

#[test]
fn messages_name_the_fix_and_transience_is_classified() {
    let too_large = FetchError::TooLarge { limit: DEFAULT_MAX_BYTES };
    assert!(too_large
        .to_string()
        .contains("256 MiB limit; use a smaller file or raise HUME_ACTION_MAX_DOWNLOAD_BYTES"));
    assert!(!too_large.is_transient());
    let status = |status| FetchError::Status { status, retry_after: None };
    assert!(status(404).to_string().contains("HTTP 404 (Not Found); check that the URL is right"));
    assert!(status(503).to_string().contains("HTTP 503 (Service Unavailable); the server is failing or busy"));
    for s in [408, 429, 500, 502, 503, 504] {
        assert!(status(s).is_transient(), "{s}");
    }
    for s in [400, 401, 403, 404, 410, 501] {
        assert!(!status(s).is_transient(), "{s}");
    }
    assert!(FetchError::Timeout { limit: DEFAULT_TIMEOUT }.is_transient());
    assert!(FetchError::Transport("connection refused".into()).is_transient());
    assert!(!FetchError::TooManyRedirects.is_transient());
}

#[tokio::test]
async fn loopback_urls_are_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let port = server.address().port();
    let f = fetcher(config(false));
    for (u, host) in [
        (format!("http://127.0.0.1:{port}/x"), "127.0.0.1"),
        (format!("http://localhost:{port}/x"), "localhost"),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), "::ffff:127.0.0.1"),
    ] {
        assert_forbidden(f.get(&url(&u)).await, host);
        assert_forbidden(f.post_json(&url(&u), Bytes::from_static(b"{}"), HeaderMap::new()).await, host);
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let f = fetcher(test_dns_config());
    let target = url(&format!("http://rebind.test:{}/x", server.address().port()));
    assert!(f.check_url(&target).is_ok(), "names pass the pre-flight check; the resolver vets them");
    match f.get(&target).await {
        Err(FetchError::ForbiddenAddress { host, ip: addr }) => {
            assert_eq!((host.as_str(), addr), ("rebind.test", Some(ip("127.0.0.1"))));
        }
        other => panic!("{other:?}"),
    }
    assert_forbidden(f.post_json(&target, Bytes::new(), HeaderMap::new()).await, "rebind.test");
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn redirects_are_followed_and_every_hop_is_rechecked() {
    let server = MockServer::start().await;
    let port = server.address().port();
    let redirect = |from: &str, to: String| {
        Mock::given(path(from.to_owned())).respond_with(ResponseTemplate::new(302).insert_header("location", to))
    };
    redirect("/hop", "/ok".into()).mount(&server).await;
    redirect("/literal", format!("http://127.0.0.1:{port}/secret")).mount(&server).await;
    redirect("/mapped", format!("http://[::ffff:127.0.0.1]:{port}/secret")).mount(&server).await;
    redirect("/local", format!("http://localhost:{port}/secret")).mount(&server).await;
    redirect("/rebind", format!("http://rebind.test:{port}/secret")).mount(&server).await;
    redirect("/metadata", "http://169.254.169.254/latest/meta-data/".into()).mount(&server).await;
    redirect("/ftp", "ftp://public.test/file".into()).mount(&server).await;
    redirect("/loop", "/loop".into()).mount(&server).await;
    Mock::given(path("/ok")).respond_with(ResponseTemplate::new(200).set_body_string("fine")).mount(&server).await;
    Mock::given(path("/secret")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let f = fetcher(test_dns_config());
    let at = |p: &str| url(&format!("http://public.test:{port}{p}"));

    let fetched = f.get(&at("/hop")).await.unwrap();
    assert_eq!((fetched.final_url, &fetched.bytes[..]), (at("/ok"), &b"fine"[..]));

    assert_forbidden(f.get(&at("/literal")).await, "127.0.0.1");
    assert_forbidden(f.get(&at("/mapped")).await, "::ffff:127.0.0.1");
    assert_forbidden(f.get(&at("/local")).await, "localhost");
    assert_forbidden(f.get(&at("/rebind")).await, "rebind.test");
    assert_forbidden(f.get(&at("/metadata")).await, "169.254.169.254");
    assert!(matches!(f.get(&at("/ftp")).await, Err(FetchError::UnsupportedScheme { scheme }) if scheme == "ftp"));
    assert!(matches!(f.get(&at("/loop")).await, Err(FetchError::TooManyRedirects)));
    let loops = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/loop").count();
    assert_eq!(loops, MAX_REDIRECTS + 1, "the loop is followed {MAX_REDIRECTS} times, never retried");
}

#[tokio::test]
async fn loopback_works_when_private_urls_are_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/clip.mp3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"ID3data".to_vec(), "audio/mpeg"))
        .expect(1)
        .mount(&server)
        .await;
    let u = url(&format!("{}/clip.mp3?sig=abc", server.uri()));
    let fetched = fetcher(config(true)).get(&u).await.unwrap();
    assert_eq!(fetched.final_url, u);
    assert_eq!(fetched.content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(&fetched.bytes[..], b"ID3data");
}

#[tokio::test]
async fn declared_oversize_body_is_refused_without_retry() {
    let server = MockServer::start().await;
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0; 5000]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/fits"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![7; 4096]))
        .mount(&server)
        .await;
    let f = fetcher(FetchConfig { max_bytes: 4096, ..config(true) });
    assert!(matches!(f.get(&url(&format!("{}/big", server.uri()))).await, Err(FetchError::TooLarge { limit: 4096 })));
    assert_eq!(f.get(&url(&format!("{}/fits", server.uri()))).await.unwrap().bytes.len(), 4096);
}

#[tokio::test]
async fn streamed_body_is_cut_off_at_the_cap() {
    // Chunked, so there is no Content-Length to refuse up front; the stream never ends by itself.
    let u = raw_server(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await?;
        loop {
            s.write_all(&[b"400\r\n".as_slice(), &[b'a'; 0x400], b"\r\n"].concat()).await?;
        }
    })
    .await;
    let f = fetcher(FetchConfig { max_bytes: 4096, retry: retry(1), ..config(true) });
    assert!(matches!(f.get(&u).await, Err(FetchError::TooLarge { limit: 4096 })));
}

#[tokio::test]
async fn whole_download_is_time_capped() {
    // Headers and a first part of the body arrive promptly; the rest never does.
    let u = raw_server(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await?;
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let limit = Duration::from_millis(300);
    let f = fetcher(FetchConfig { timeout: limit, retry: retry(1), ..config(true) });
    let started = Instant::now();
    let err = f.get(&u).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { limit: l } if l == limit), "{err:?}");
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn transient_status_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(503)).up_to_n_times(2).expect(2).mount(&server).await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let fetched = fetcher(config(true)).get(&url(&format!("{}/x", server.uri()))).await.unwrap();
    assert_eq!(&fetched.bytes[..], b"ok");
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(502)).expect(3).mount(&server).await;
    let err = fetcher(config(true)).get(&url(&format!("{}/x", server.uri()))).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 502, .. }), "{err:?}");
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(404)).expect(1).mount(&server).await;
    let err = fetcher(config(true)).get(&url(&format!("{}/x", server.uri()))).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }), "{err:?}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    let busy = ResponseTemplate::new(429).insert_header("retry-after", "1");
    Mock::given(path("/x")).respond_with(busy).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(200)).expect(1).mount(&server).await;
    let started = Instant::now();
    fetcher(config(true)).get(&url(&format!("{}/x", server.uri()))).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 replaces the ~1 ms backoff, waited {waited:?}");
}

#[tokio::test]
async fn connection_failure_is_transient_and_keeps_the_query_out_of_the_message() {
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port(); // closed on drop
    let err = fetcher(config(true)).get(&url(&format!("http://127.0.0.1:{port}/x?sig=SECRET"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[tokio::test]
async fn post_json_sends_body_and_headers_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/done"))
        .and(header("content-type", "application/json"))
        .and(header("x-signature", "abc"))
        .and(body_string(r#"{"job_id":"j1","status":"completed"}"#))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/flaky")).respond_with(ResponseTemplate::new(503)).expect(1).mount(&server).await;
    let f = fetcher(config(true));
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-signature"), HeaderValue::from_static("abc"));
    let body = Bytes::from_static(br#"{"job_id":"j1","status":"completed"}"#);
    let done = f.post_json(&url(&format!("{}/done", server.uri())), body.clone(), headers.clone()).await;
    assert_eq!(done.unwrap(), StatusCode::ACCEPTED);
    let flaky = f.post_json(&url(&format!("{}/flaky", server.uri())), body, headers).await;
    assert_eq!(flaky.unwrap(), StatusCode::SERVICE_UNAVAILABLE, "one attempt; the caller decides");
}

/// A loopback server that answers every connection with headers, then drips one byte per
/// `every` (at most 200 bytes); counts the connections.
async fn drip_server(every: Duration) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if !read_head(&mut stream).await? {
                    return Ok(());
                }
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").await?;
                for _ in 0..200 {
                    stream.write_all(b"x").await?;
                    tokio::time::sleep(every).await;
                }
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (url(&format!("http://{addr}/drip.bin?sig=SECRET")), connections)
}

#[tokio::test]
async fn a_download_below_the_minimum_rate_is_cut_and_not_retried() {
    let (u, connections) = drip_server(Duration::from_millis(100)).await;
    let window = Duration::from_millis(500);
    let f = fetcher(FetchConfig { min_rate: 100, rate_window: window, ..config(true) });
    let started = Instant::now();
    let err = f.get(&u).await.unwrap_err();
    let FetchError::TooSlow { rate, min_rate: 100, .. } = &err else { panic!("{err:?}") };
    assert!(*rate < 100.0, "about 10 bytes/s, got {rate}");
    assert!(started.elapsed() < Duration::from_secs(3), "cut after one window: {:?}", started.elapsed());
    let message = err.to_string();
    assert!(message.contains("/drip.bin") && message.contains("HUME_ACTION_MIN_DOWNLOAD_RATE"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "a cut is final");
}

#[tokio::test]
async fn a_server_that_never_answers_is_cut_by_the_rate_check() {
    let u = raw_server(|_s| async move {
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let f = fetcher(FetchConfig { min_rate: 1, rate_window: Duration::from_millis(300), ..config(true) });
    assert!(matches!(f.get(&u).await, Err(FetchError::TooSlow { .. })));
}

#[tokio::test]
async fn one_deadline_covers_every_attempt() {
    // Each attempt times out after 400 ms and is retried; the deadline ends them all at 1 s.
    let (u, connections) = drip_server(Duration::from_secs(1)).await;
    let deadline = Duration::from_secs(1);
    let f = fetcher(FetchConfig {
        timeout: Duration::from_millis(400),
        deadline,
        min_rate: 0,
        retry: retry(20),
        ..config(true)
    });
    let started = Instant::now();
    let err = f.get(&u).await.unwrap_err();
    assert!(matches!(&err, FetchError::Deadline { limit, .. } if *limit == deadline), "{err:?}");
    assert!(err.to_string().contains("HUME_ACTION_DOWNLOAD_DEADLINE_SECS"), "{err}");
    assert!(!err.is_transient());
    let took = started.elapsed();
    assert!(took >= deadline && took < Duration::from_secs(3), "{took:?}");
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 2, "it was retried within the deadline");
}

#[tokio::test]
async fn a_download_to_a_file_is_deleted_with_it() {
    let server = MockServer::start().await;
    Mock::given(path("/f.txt"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("hello file", "text/plain"))
        .mount(&server)
        .await;
    let fetched = fetcher(config(true)).get_to_file(&url(&format!("{}/f.txt", server.uri()))).await.unwrap();
    assert_eq!((fetched.len, fetched.content_type.as_deref()), (10, Some("text/plain")));
    assert_eq!(&fetched.read().await.unwrap()[..], b"hello file");
    let kept = fetched.path.to_path_buf();
    assert!(kept.exists());
    drop(fetched);
    assert!(!kept.exists());
}

#[tokio::test]
async fn vetting_a_url_at_intake_resolves_names_like_a_download_would() {
    let vetting = fetcher(test_dns_config());
    assert_forbidden(vetting.vet(&url("http://rebind.test/hook")).await, "rebind.test");
    assert_forbidden(vetting.vet(&url("http://127.0.0.1:9/hook")).await, "127.0.0.1");
    assert_forbidden(vetting.vet(&url("http://localhost/hook")).await, "localhost");
    assert!(vetting.vet(&url("http://public.test/hook")).await.is_ok());
    assert!(matches!(vetting.vet(&url("http://nowhere.test/hook")).await, Err(FetchError::Transport(_))));
    assert!(matches!(vetting.vet(&url("ftp://public.test/x")).await, Err(FetchError::UnsupportedScheme { .. })));
    let open = fetcher(FetchConfig { resolver: test_dns_config().resolver, ..config(true) });
    assert!(open.vet(&url("http://rebind.test/hook")).await.is_ok());
}
