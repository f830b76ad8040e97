//! Safe download of user-supplied URLs (media to analyse) and delivery of job callbacks.
//!
//! Workflow users hand this server arbitrary URLs, which it then fetches from inside its own
//! network. Unchecked, that is server-side request forgery (SSRF): a URL could read the cloud
//! metadata service (`169.254.169.254`), an admin port on `localhost` or an intranet host. So,
//! unless [`FetchConfig::allow_private`] (`HUME_ACTION_ALLOW_PRIVATE_URLS`) is set:
//!
//! - only `http` and `https` URLs are fetched;
//! - host names are resolved by a vetting resolver that drops non-public addresses, and reqwest
//!   connects only to the survivors: the address checked is the address used, which closes DNS
//!   rebinding (a name answering "public" to a check and "private" to the connection);
//! - IP-literal hosts, which reqwest never resolves, are checked directly, both before the request
//!   and on every redirect hop (at most [`MAX_REDIRECTS`]);
//! - proxies from the environment are ignored, as a proxy would resolve names itself, unvetted.
//!
//! Downloads are capped in size (while streaming, not after) and in time: each attempt has its
//! own timeout, one deadline covers all attempts of a URL (retry waits included), and a transfer
//! whose average rate over a window (10 s) falls below a minimum is cut, waiting for the first
//! byte included. Transient failures are retried under the shared [`RetryPolicy`]. Only a URL's
//! host and path are logged or named in errors: query strings may carry signed tokens.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{redirect, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use url::{Host, Url};

use crate::upstream::retry::{is_transient_status, parse_retry_after, RetryPolicy};

#[cfg(test)]
mod tests;

/// Default of `HUME_ACTION_MAX_DOWNLOAD_BYTES`: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Default cap on one whole download, headers and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default of `HUME_ACTION_DOWNLOAD_DEADLINE_SECS`: one URL's attempts, all together.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Default of `HUME_ACTION_MIN_DOWNLOAD_RATE`, in bytes per second.
pub const DEFAULT_MIN_RATE: u64 = 1024;
/// The window a transfer's rate is averaged over.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 10;
/// Largest buffer reserved up front on the strength of a `Content-Length` header.
const MAX_PREALLOC: u64 = 8 << 20;

/// How [`Fetcher`] downloads: address rules, caps and retries.
#[derive(Clone)]
pub struct FetchConfig {
    /// `HUME_ACTION_ALLOW_PRIVATE_URLS`: lifts the address checks (for intranet deployments).
    pub allow_private: bool,
    /// `HUME_ACTION_MAX_DOWNLOAD_BYTES`: largest body accepted.
    pub max_bytes: u64,
    /// Cap on one whole attempt (connect, headers and body); also bounds a callback POST.
    pub timeout: Duration,
    /// `HUME_ACTION_DOWNLOAD_DEADLINE_SECS`: cap on all attempts of one download together.
    pub deadline: Duration,
    /// `HUME_ACTION_MIN_DOWNLOAD_RATE`: bytes per second a download must average over each
    /// [`FetchConfig::rate_window`]; 0 turns the check off.
    pub min_rate: u64,
    /// The window of the rate check ([`RATE_WINDOW`]; shorter in tests).
    pub rate_window: Duration,
    /// Where [`Fetcher::get_to_file`] keeps downloads; the system's temporary directory if unset.
    pub temp_dir: Option<std::path::PathBuf>,
    /// Retries of transient failures (downloads only; callbacks get one attempt).
    pub retry: RetryPolicy,
    /// Test hook, `None` in production: look names up here instead of in the system resolver.
    /// Its answers are vetted like the system's, so on its own this exempts nothing.
    #[doc(hidden)]
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Test hook, empty in production: host names exempt from the address rules, so that a
    /// loopback test server can stand in for a public host.
    #[doc(hidden)]
    pub trusted_hosts: Vec<String>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            min_rate: DEFAULT_MIN_RATE,
            rate_window: RATE_WINDOW,
            temp_dir: None,
            retry: RetryPolicy::new(3),
            resolver: None,
            trusted_hosts: Vec::new(),
        }
    }
}

impl fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchConfig")
            .field("allow_private", &self.allow_private)
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("min_rate", &self.min_rate)
            .field("rate_window", &self.rate_window)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A completed download.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the body came from, after redirects.
    pub final_url: Url,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// A completed download kept in a temporary file, which is deleted when this is dropped.
#[derive(Debug)]
pub struct FetchedFile {
    /// Where the body came from, after redirects.
    pub final_url: Url,
    pub content_type: Option<String>,
    /// The body's file.
    pub path: tempfile::TempPath,
    /// The body's length in bytes.
    pub len: u64,
}

impl FetchedFile {
    /// The body, read into memory.
    pub async fn read(&self) -> std::io::Result<Bytes> {
        tokio::fs::read(&self.path).await.map(Bytes::from)
    }
}

/// Why a download or callback failed; the message is meant for a workflow run log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error(
        "refused to fetch a `{scheme}:` URL: only http and https URLs can be downloaded; give a web link to the file"
    )]
    UnsupportedScheme { scheme: String },
    #[error("refused to connect to `{host}`{}: it is not a public internet address (loopback, private, link-local, cloud metadata or reserved), which this server blocks to protect its own network; use a publicly reachable URL, or set HUME_ACTION_ALLOW_PRIVATE_URLS=true if intranet hosts are intended", resolved_to(.host, .ip))]
    ForbiddenAddress { host: String, ip: Option<IpAddr> },
    #[error("the download is larger than the {} limit; use a smaller file or raise HUME_ACTION_MAX_DOWNLOAD_BYTES", human_bytes(*.limit))]
    TooLarge { limit: u64 },
    #[error("the server answered HTTP {status}{}", status_hint(*.status))]
    Status { status: u16, retry_after: Option<Duration> },
    #[error("the download did not finish within {}s; use a faster host or a smaller file", .limit.as_secs_f64())]
    Timeout { limit: Duration },
    #[error("{url} did not finish downloading within the download deadline of {} s for all attempts together (HUME_ACTION_DOWNLOAD_DEADLINE_SECS); use a faster host or a smaller file", .limit.as_secs_f64())]
    Deadline { url: String, limit: Duration },
    #[error("{url} was cut off: it sent {rate:.1} bytes/s on average over {} s, below the minimum of {min_rate} bytes/s (HUME_ACTION_MIN_DOWNLOAD_RATE); use a faster host", .window.as_secs_f64())]
    TooSlow { url: String, rate: f64, min_rate: u64, window: Duration },
    #[error("could not keep the download: {0}")]
    Storage(String),
    #[error("could not download: {0}; check the host name and that the server is reachable")]
    Transport(String),
    #[error("the URL redirected more than {MAX_REDIRECTS} times (a redirect loop?); use the final URL directly")]
    TooManyRedirects,
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
}

fn resolved_to(host: &str, ip: &Option<IpAddr>) -> String {
    match ip {
        Some(ip) if ip.to_string() != host.trim_matches(['[', ']']) => format!(" (address {ip})"),
        _ => String::new(),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n}-byte")
    }
}

fn status_hint(status: u16) -> String {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
    let hint = match StatusCode::from_u16(status).is_ok_and(is_transient_status) {
        true => "the server is failing or busy; try again later",
        false => "check that the URL is right, publicly readable and, for signed links, not expired",
    };
    format!("{}; {hint}", reason.map(|r| format!(" ({r})")).unwrap_or_default())
}

impl FetchError {
    /// Worth another attempt: connection failures, timeouts and transient statuses (408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => StatusCode::from_u16(*status).is_ok_and(is_transient_status),
            Self::Timeout { .. } | Self::Transport(_) => true,
            _ => false,
        }
    }

    /// The server's `Retry-After`, if it sent one with an error status.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Our own refusals come back from the resolver and redirect policy wrapped in reqwest's
    /// error: unwrap them; otherwise describe the failure without the URL (it may carry tokens).
    fn from_reqwest(err: reqwest::Error) -> Self {
        let mut source = err.source();
        while let Some(s) = source {
            if let Some(ours) = s.downcast_ref::<FetchError>() {
                return ours.clone();
            }
            source = s.source();
        }
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        Self::Transport(message)
    }
}

/// A URL as errors name it: scheme, host, port and path, never the query (signed tokens).
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// Cuts a transfer whose average rate over a window falls below the minimum. The first window
/// starts with the request, so a server that never answers is cut too.
struct RateMeter<'a> {
    url: &'a Url,
    min_rate: u64,
    window: Duration,
    window_ends: Instant,
    bytes: u64,
}

impl<'a> RateMeter<'a> {
    fn new(url: &'a Url, min_rate: u64, window: Duration) -> Self {
        Self { url, min_rate, window, window_ends: Instant::now() + window, bytes: 0 }
    }

    /// Awaits `step` (sending the request, reading a chunk), checking the rate at the end of
    /// every window meanwhile.
    async fn watch<F: Future>(&mut self, step: F) -> Result<F::Output, FetchError> {
        if self.min_rate == 0 {
            return Ok(step.await);
        }
        tokio::pin!(step);
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(self.window_ends) => {
                    let rate = self.bytes as f64 / self.window.as_secs_f64();
                    if rate < self.min_rate as f64 {
                        return Err(FetchError::TooSlow {
                            url: shown(self.url),
                            rate,
                            min_rate: self.min_rate,
                            window: self.window,
                        });
                    }
                    self.bytes = 0;
                    self.window_ends += self.window;
                }
                output = &mut step => return Ok(output),
            }
        }
    }

    fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }
}

/// Where a download's body goes: memory or a temporary file. A fresh one for every attempt.
trait Sink: Sized {
    fn reserve(&mut self, _declared: u64) {}
    async fn put(&mut self, chunk: &[u8]) -> Result<(), FetchError>;
}

impl Sink for BytesMut {
    fn reserve(&mut self, declared: u64) {
        BytesMut::reserve(self, declared.min(MAX_PREALLOC) as usize);
    }

    async fn put(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.extend_from_slice(chunk);
        Ok(())
    }
}

/// A temporary file being written.
struct FileSink {
    file: tokio::fs::File,
    path: tempfile::TempPath,
    len: u64,
}

impl FileSink {
    fn create(dir: Option<&std::path::Path>) -> Result<Self, FetchError> {
        let storage = |e: std::io::Error| FetchError::Storage(format!("no temporary file: {e}"));
        let mut builder = tempfile::Builder::new();
        builder.prefix("download-");
        let file = match dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        };
        let (file, path) = file.map_err(storage)?.into_parts();
        Ok(Self { file: tokio::fs::File::from_std(file), path, len: 0 })
    }
}

impl Sink for FileSink {
    async fn put(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).await.map_err(|e| FetchError::Storage(format!("writing the temporary file: {e}")))
    }
}

/// Is `ip` outside the public internet (so forbidden unless private URLs are allowed)?
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => embedded_v4(v6).is_some_and(forbidden_v4) || in_blocks(v6, V6_BLOCKS),
    }
}

const V4_BLOCKS: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network", with the unspecified 0.0.0.0
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // carrier-grade NAT
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, with cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, with broadcast 255.255.255.255
];

const V6_BLOCKS: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),    // Teredo (embeds IPv4 obfuscated)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),     // unique-local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),    // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),    // deprecated site-local
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),     // multicast
];

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    V4_BLOCKS.iter().any(|&(net, len)| (ip ^ u32::from_be_bytes(net)) >> (32 - len) == 0)
}

fn in_blocks(ip: Ipv6Addr, blocks: &[(Ipv6Addr, u8)]) -> bool {
    blocks.iter().any(|&(net, len)| (u128::from(ip) ^ u128::from(net)) >> (128 - len) == 0)
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach IPv4 hosts. `::` and
/// `::1` are IPv4-compatible forms of `0.0.0.0` and `0.0.0.1`, so they are caught as `0/8`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    const LOW_32: &[(Ipv6Addr, u8)] = &[
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96),         // IPv4-compatible
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),    // IPv4-mapped
        (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96),    // IPv4-translated (SIIT)
        (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // NAT64
    ];
    let bits = u128::from(ip);
    if in_blocks(ip, LOW_32) {
        Some(Ipv4Addr::from(bits as u32))
    } else if in_blocks(ip, &[(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16)]) {
        Some(Ipv4Addr::from((bits >> 80) as u32)) // 6to4: 2002:AABB:CCDD::/48
    } else {
        None
    }
}

/// The address rules, shared by the pre-flight check, the redirect policy and the resolver.
#[derive(Debug)]
struct Guard {
    allow_private: bool,
    trusted_hosts: Vec<String>,
}

impl Guard {
    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::UnsupportedScheme { scheme: url.scheme().to_owned() });
        }
        let forbidden = |ip: IpAddr| FetchError::ForbiddenAddress { host: ip.to_string(), ip: Some(ip) };
        match url.host() {
            None => Err(FetchError::InvalidUrl("the URL has no host".into())),
            Some(_) if self.allow_private => Ok(()),
            Some(Host::Domain(name)) => self.check_name(name),
            Some(Host::Ipv4(ip)) if forbidden_v4(ip) => Err(forbidden(ip.into())),
            Some(Host::Ipv6(ip)) if is_forbidden_ip(ip.into()) => Err(forbidden(ip.into())),
            Some(_) => Ok(()),
        }
    }

    fn trusts(&self, host: &str) -> bool {
        self.allow_private || self.trusted_hosts.iter().any(|t| t.eq_ignore_ascii_case(host))
    }

    /// Names refused whatever they resolve to.
    fn check_name(&self, host: &str) -> Result<(), FetchError> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let local = name == "localhost" || name.ends_with(".localhost") || name == "metadata.google.internal";
        match local && !self.trusts(host) {
            true => Err(FetchError::ForbiddenAddress { host: host.to_owned(), ip: None }),
            false => Ok(()),
        }
    }

    /// Keeps the public addresses among `host`'s; refuses if none is left.
    fn vet(&self, host: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, FetchError> {
        let (mut kept, mut refused) = (Vec::new(), None);
        for addr in addrs {
            match self.trusts(host) || !is_forbidden_ip(addr.ip()) {
                true => kept.push(addr),
                false => refused = refused.or(Some(addr.ip())),
            }
        }
        match (kept.is_empty(), refused) {
            (false, _) => Ok(kept),
            (true, Some(ip)) => Err(FetchError::ForbiddenAddress { host: host.to_owned(), ip: Some(ip) }),
            (true, None) => Err(FetchError::Transport(format!("`{host}` has no addresses"))),
        }
    }
}

/// Resolves names (with the system resolver unless a test injected one) and vets the answers.
struct VettingResolver {
    guard: Arc<Guard>,
    inner: Option<Arc<dyn Resolve>>,
}

impl fmt::Debug for VettingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VettingResolver").field("guard", &self.guard).finish_non_exhaustive()
    }
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (guard, host) = (self.guard.clone(), name.as_str().to_owned());
        let lookup = match &self.inner {
            Some(inner) => inner.resolve(name),
            None => {
                let host = host.clone();
                Box::pin(async move { Ok(Box::new(tokio::net::lookup_host((host, 0)).await?) as Addrs) })
            }
        };
        Box::pin(async move {
            guard.check_name(&host)?;
            let addrs = guard.vet(&host, lookup.await?)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Downloads URLs and posts callbacks under the address rules; cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    resolver: Arc<VettingResolver>,
    max_bytes: u64,
    timeout: Duration,
    deadline: Duration,
    min_rate: u64,
    rate_window: Duration,
    temp_dir: Option<std::path::PathBuf>,
    retry: RetryPolicy,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let guard = Arc::new(Guard { allow_private: config.allow_private, trusted_hosts: config.trusted_hosts });
        let resolver = Arc::new(VettingResolver { guard: guard.clone(), inner: config.resolver });
        let hops = guard.clone();
        let policy = redirect::Policy::custom(move |attempt| {
            // `previous` starts with the original URL, so it holds one entry per redirect so far.
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(FetchError::TooManyRedirects);
            }
            let next = attempt.url();
            tracing::debug!(host = next.host_str(), path = next.path(), "following redirect");
            match hops.check_url(next) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("hume-action/", env!("CARGO_PKG_VERSION")))
            .redirect(policy)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .dns_resolver(resolver.clone());
        if !config.allow_private {
            builder = builder.no_proxy();
        }
        let client =
            builder.build().map_err(|e| FetchError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            guard,
            resolver,
            max_bytes: config.max_bytes,
            timeout: config.timeout,
            deadline: config.deadline,
            min_rate: config.min_rate,
            rate_window: config.rate_window,
            temp_dir: config.temp_dir,
            retry: config.retry,
        })
    }

    /// Scheme and literal-address checks, cheap enough to run before accepting a job. Host names
    /// pass here unless they are local by name; their addresses are vetted when connecting.
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        self.guard.check_url(url)
    }

    /// Every address rule on `url` without fetching it, for checks at intake (a job's
    /// `callback_url`): [`Fetcher::check_url`], then, unless private URLs are allowed, the host
    /// name resolved by the same vetting resolver downloads connect through. A name that does not
    /// resolve is refused too: a callback to it could never be delivered.
    pub async fn vet(&self, url: &Url) -> Result<(), FetchError> {
        self.check_url(url)?;
        let Some(Host::Domain(host)) = url.host() else { return Ok(()) };
        if self.guard.trusts(host) {
            return Ok(());
        }
        let name: Name =
            host.parse().map_err(|_| FetchError::InvalidUrl(format!("`{host}` is not a valid host name")))?;
        match self.resolver.resolve(name).await {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.downcast::<FetchError>() {
                Ok(ours) => *ours,
                Err(other) => FetchError::Transport(format!("`{host}` could not be resolved ({other})")),
            }),
        }
    }

    /// Downloads `url` into memory, following redirects and retrying transient failures.
    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        let (final_url, content_type, body) = self.download(url, || Ok(BytesMut::new())).await?;
        Ok(Fetched { final_url, content_type, bytes: body.freeze() })
    }

    /// Downloads `url` into a temporary file, like [`Fetcher::get`].
    pub async fn get_to_file(&self, url: &Url) -> Result<FetchedFile, FetchError> {
        let (final_url, content_type, mut body) =
            self.download(url, || FileSink::create(self.temp_dir.as_deref())).await?;
        body.file.flush().await.map_err(|e| FetchError::Storage(format!("writing the temporary file: {e}")))?;
        Ok(FetchedFile { final_url, content_type, path: body.path, len: body.len })
    }

    /// Every attempt at `url`, under the deadline; each attempt writes into a fresh sink.
    async fn download<S: Sink>(
        &self,
        url: &Url,
        sink: impl Fn() -> Result<S, FetchError>,
    ) -> Result<(Url, Option<String>, S), FetchError> {
        self.check_url(url)?;
        tracing::info!(host = url.host_str(), path = url.path(), "downloading");
        let attempts = (|| async { self.get_once(url, sink()?).await })
            .retry(self.retry.delays())
            .when(FetchError::is_transient)
            .adjust(|e, d| self.retry.next_delay(d, e.retry_after()))
            .notify(|e, d| tracing::warn!(host = url.host_str(), path = url.path(), error = %e, "download failed; retrying in {d:?}"));
        let fetched = tokio::time::timeout(self.deadline, attempts)
            .await
            .map_err(|_| FetchError::Deadline { url: shown(url), limit: self.deadline })??;
        tracing::info!(host = fetched.0.host_str(), path = fetched.0.path(), "downloaded");
        Ok(fetched)
    }

    async fn get_once<S: Sink>(&self, url: &Url, mut sink: S) -> Result<(Url, Option<String>, S), FetchError> {
        let limit = self.max_bytes;
        let mut meter = RateMeter::new(url, self.min_rate, self.rate_window);
        let attempt = async {
            let send = self.client.get(url.clone()).send();
            let mut response = meter.watch(send).await?.map_err(FetchError::from_reqwest)?;
            if !response.status().is_success() {
                let retry_after = parse_retry_after(response.headers(), SystemTime::now());
                return Err(FetchError::Status { status: response.status().as_u16(), retry_after });
            }
            let declared = response.content_length().unwrap_or(0);
            if declared > limit {
                return Err(FetchError::TooLarge { limit });
            }
            let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            sink.reserve(declared);
            let mut received = 0u64;
            while let Some(chunk) = meter.watch(response.chunk()).await?.map_err(FetchError::from_reqwest)? {
                received += chunk.len() as u64;
                if received > limit {
                    return Err(FetchError::TooLarge { limit });
                }
                meter.add(chunk.len());
                sink.put(&chunk).await?;
            }
            Ok((response.url().clone(), content_type, sink))
        };
        tokio::time::timeout(self.timeout, attempt).await.map_err(|_| FetchError::Timeout { limit: self.timeout })?
    }

    /// POST a JSON body with extra headers under the same address rules (used for job callbacks), one attempt; returns the status.
    pub async fn post_json(
        &self,
        url: &Url,
        body: impl Into<reqwest::Body>,
        headers: HeaderMap,
    ) -> Result<StatusCode, FetchError> {
        self.check_url(url)?;
        tracing::info!(host = url.host_str(), path = url.path(), "posting callback");
        let request = self.client.post(url.clone()).header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let send = request.headers(headers).body(body).send();
        let response = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| FetchError::Timeout { limit: self.timeout })?
            .map_err(FetchError::from_reqwest)?;
        Ok(response.status())
    }
}
