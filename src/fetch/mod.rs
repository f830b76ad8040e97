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
//! Downloads are capped in size (while streaming, not after) and in time, and transient failures
//! are retried under the shared [`RetryPolicy`]. Only a URL's host and path are logged: query
//! strings may carry signed tokens.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{redirect, StatusCode};
use url::{Host, Url};

use crate::upstream::retry::{is_transient_status, parse_retry_after, RetryPolicy};

#[cfg(test)]
mod tests;

/// Default of `HUME_ACTION_MAX_DOWNLOAD_BYTES`: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Default cap on one whole download, headers and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
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
        Ok(Self { client, guard, resolver, max_bytes: config.max_bytes, timeout: config.timeout, retry: config.retry })
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

    /// Downloads `url`, following redirects and retrying transient failures.
    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        self.check_url(url)?;
        tracing::info!(host = url.host_str(), path = url.path(), "downloading");
        let fetched = (|| self.get_once(url))
            .retry(self.retry.delays())
            .when(FetchError::is_transient)
            .adjust(|e, d| self.retry.next_delay(d, e.retry_after()))
            .notify(|e, d| tracing::warn!(host = url.host_str(), path = url.path(), error = %e, "download failed; retrying in {d:?}"))
            .await?;
        tracing::info!(
            host = fetched.final_url.host_str(),
            path = fetched.final_url.path(),
            bytes = fetched.bytes.len(),
            "downloaded"
        );
        Ok(fetched)
    }

    async fn get_once(&self, url: &Url) -> Result<Fetched, FetchError> {
        let limit = self.max_bytes;
        let attempt = async {
            let mut response = self.client.get(url.clone()).send().await.map_err(FetchError::from_reqwest)?;
            if !response.status().is_success() {
                let retry_after = parse_retry_after(response.headers(), SystemTime::now());
                return Err(FetchError::Status { status: response.status().as_u16(), retry_after });
            }
            let declared = response.content_length().unwrap_or(0);
            if declared > limit {
                return Err(FetchError::TooLarge { limit });
            }
            let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut body = BytesMut::with_capacity(declared.min(MAX_PREALLOC) as usize);
            while let Some(chunk) = response.chunk().await.map_err(FetchError::from_reqwest)? {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(FetchError::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched { final_url: response.url().clone(), content_type, bytes: body.freeze() })
        };
        tokio::time::timeout(self.timeout, attempt).await.map_err(|_| FetchError::Timeout { limit: self.timeout })?
    }

    /// POST a JSON body with extra headers under the same address rules (used for job callbacks), one attempt; returns the status.
    pub async fn post_json(&self, url: &Url, body: Bytes, headers: HeaderMap) -> Result<StatusCode, FetchError> {
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
