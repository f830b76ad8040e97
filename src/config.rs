//! Every setting of the server, as a clap flag with an environment fallback.
//!
//! Nothing else reads the environment. Secrets are wrapped in [`Secret`] so that `Debug`,
//! `--help` and logs never show them, and [`Config::scrubber`] removes them from any text that
//! may echo one (`crate::secrets`).

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use clap::{Parser, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use crate::budget::Budgets;
use crate::secrets::Scrubber;

/// Where jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Embedded open models; needs no Hume account.
    Local,
    /// Hume's v1 Expression Measurement API (uploads converted media).
    Hume,
    /// Pass-through to a v0-compatible batch API at `HUME_BATCH_BASE_URL`.
    HumeBatch,
}

/// The server's configuration (`hume-action --help` lists it all).
#[derive(Debug, Clone, Parser)]
#[command(name = "hume-action", version, about = "Workflow action server for Hume Expression Measurement")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HUME_ACTION_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where jobs run: `local` (embedded models), `hume` (v1 API) or `hume-batch` (v0 pass-through).
    #[arg(long, env = "HUME_ACTION_BACKEND", value_enum, default_value = "local")]
    pub backend: BackendKind,

    /// Server-wide Hume API key; a per-request `X-Hume-Api-Key` header overrides it.
    #[arg(long, env = "HUME_API_KEY", hide_env_values = true)]
    pub hume_api_key: Option<Secret>,

    /// Base URL of the v0-compatible batch API used by the `hume-batch` backend.
    #[arg(long, env = "HUME_BATCH_BASE_URL", default_value = "https://api.hume.ai")]
    pub hume_batch_base_url: Url,

    /// Base URL of Hume's v1 API, used by the `hume` backend.
    #[arg(long, env = "HUME_API_BASE_URL", default_value = "https://api.cloud.hume.ai")]
    pub hume_api_base_url: Url,

    /// v1 requests allowed per API key in any sliding window (v1's quota is undocumented).
    #[arg(long, env = "HUME_V1_RATE_LIMIT_REQUESTS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub v1_rate_limit_requests: u32,

    /// Length of the v1 sliding window, in seconds (fractions allowed).
    #[arg(long, env = "HUME_V1_RATE_LIMIT_WINDOW_SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    pub v1_rate_limit_window_secs: f64,

    /// Upstream requests allowed per API key in any sliding window.
    #[arg(long, env = "HUME_RATE_LIMIT_REQUESTS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_requests: u32,

    /// Length of that sliding window, in seconds (fractions allowed).
    #[arg(long, env = "HUME_RATE_LIMIT_WINDOW_SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    pub rate_limit_window_secs: f64,

    /// A call that would queue longer than this for the rate limit is answered 429 with `Retry-After`.
    #[arg(long, env = "HUME_MAX_QUEUE_WAIT_SECS", default_value_t = 120.0, value_parser = parse_positive_secs)]
    pub max_queue_wait_secs: f64,

    /// Attempts in all (first try included) for every upstream request.
    #[arg(long, env = "HUME_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,

    /// Ceiling of the first retry delay in milliseconds; doubles per retry (full jitter).
    #[arg(long, env = "HUME_RETRY_BASE_MS", default_value_t = 500)]
    pub retry_base_ms: u64,

    /// Timeout of one upstream request, in seconds.
    #[arg(long, env = "HUME_UPSTREAM_TIMEOUT_SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    pub upstream_timeout_secs: f64,

    /// When set, every `/v1` and `/v0` route needs `Authorization: Bearer <token>`.
    #[arg(long, env = "HUME_ACTION_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// Directory for everything the server keeps on disk (jobs database, models).
    #[arg(long, env = "HUME_ACTION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory holding model files; defaults to `<data dir>/models`.
    #[arg(long, env = "HUME_ACTION_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// What runs the embedded models: `auto` (onnxruntime when `scripts/install-models.sh` installed
    /// it in the model directory, else the built-in candle and tract), `onnxruntime` (start-up
    /// fails without it) or `builtin`.
    #[arg(long, env = "HUME_ACTION_RUNTIME", value_enum, default_value = "auto")]
    pub runtime: crate::models::onnx::RuntimeChoice,

    /// Jobs run at once by the local engine; defaults to the number of cores.
    #[arg(long, env = "HUME_ACTION_WORKERS")]
    pub workers: Option<usize>,

    /// Where jobs, uploads, predictions and idempotency records live: unset keeps them in a
    /// SQLite file in the data directory (one server); `postgres://user:password@host/db` puts
    /// them in PostgreSQL, shared by any number of replicas (tried for 20 s at start-up; the
    /// `hume` backend then needs the same HUME_ACTION_SECRET_KEY on every replica).
    #[arg(long, env = "HUME_ACTION_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Connections each replica keeps to PostgreSQL.
    #[arg(long, env = "HUME_ACTION_DATABASE_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub database_pool_size: u32,

    /// How long a claim on a job (or on a callback's delivery) lasts unrenewed, in seconds; its
    /// worker renews it every third of that. With PostgreSQL, the jobs of a replica that died
    /// (or was cut off) are taken over by another replica once their lease expires.
    #[arg(long, env = "HUME_ACTION_LEASE_SECS", default_value_t = 30.0, value_parser = parse_lease_secs)]
    pub lease_secs: f64,

    /// `redis://host:port/` shares the upstream rate limits (v0 and v1, per API key) and 429
    /// pauses across replicas; unset keeps them in this process.
    #[arg(long, env = "HUME_ACTION_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Largest download accepted for one URL, in bytes.
    #[arg(long, env = "HUME_ACTION_MAX_DOWNLOAD_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_download_bytes: u64,

    /// Time cap for one attempt at downloading a URL, in seconds.
    #[arg(long, env = "HUME_ACTION_DOWNLOAD_TIMEOUT_SECS", default_value_t = 300.0, value_parser = parse_positive_secs)]
    pub download_timeout_secs: f64,

    /// Deadline for downloading one URL, all attempts and the waits between them together, in seconds.
    #[arg(long, env = "HUME_ACTION_DOWNLOAD_DEADLINE_SECS", default_value_t = 600.0, value_parser = parse_positive_secs)]
    pub download_deadline_secs: f64,

    /// Slowest download kept, in bytes per second averaged over 10 s (waiting for the answer
    /// included); a slower one is cut off with that source's error. 0 turns the check off.
    #[arg(long, env = "HUME_ACTION_MIN_DOWNLOAD_RATE", default_value_t = 1024)]
    pub min_download_rate: u64,

    /// Deadline of one run of a job, in seconds: sources not finished by then become errors
    /// of their own and the job ends with what was measured.
    #[arg(long, env = "HUME_ACTION_JOB_DEADLINE_SECS", default_value_t = 3600.0, value_parser = parse_positive_secs)]
    pub job_deadline_secs: f64,

    /// Allow URLs and callbacks that resolve to loopback, private or link-local addresses.
    #[arg(long, env = "HUME_ACTION_ALLOW_PRIVATE_URLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_private_urls: bool,

    /// When set, callbacks carry `X-Hume-Action-Signature: sha256=<HMAC-SHA256 of the body>`.
    #[arg(long, env = "HUME_ACTION_CALLBACK_SECRET", hide_env_values = true)]
    pub callback_secret: Option<Secret>,

    /// A predictions callback larger than this many bytes carries the job's summary and a
    /// `predictions_url` instead, under the webhook limits of the platforms that resume a workflow.
    #[arg(long, env = "HUME_ACTION_CALLBACK_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub callback_max_bytes: u64,

    /// The server's public address (`https://hume-action.example.com`), for the links it hands
    /// out: a summary's `view_url`, a callback's `predictions_url`. Unset: those are paths.
    #[arg(long, env = "HUME_ACTION_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Longest `wait` of `GET /v1/jobs/{id}/summary` and `wait_seconds` of the action, in
    /// seconds (a longer one is lowered to it); fits step limits such as Zapier's 30 s.
    #[arg(long, env = "HUME_ACTION_SUMMARY_MAX_WAIT_SECS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub summary_max_wait_secs: u64,

    /// The job summary's timeline window, in seconds; 0 chooses one from each file's length
    /// (about 40 windows).
    #[arg(long, env = "HUME_ACTION_SUMMARY_WINDOW_SECS", default_value_t = 0.0, value_parser = parse_window_secs)]
    pub summary_window_secs: f64,

    /// The negative expressions whose rise is an escalation, as v0 names them, comma-separated.
    #[arg(
        long,
        env = "HUME_ACTION_ESCALATION_EMOTIONS",
        value_delimiter = ',',
        default_value = "Anger,Annoyance,Contempt,Disappointment,Distress,Disgust,Disapproval"
    )]
    pub escalation_emotions: Vec<String>,

    /// The least rise of the negative expressions' share, from a source's first third to its
    /// last, that is an escalation (0 to 1).
    #[arg(long, env = "HUME_ACTION_ESCALATION_MIN_RISE", default_value_t = 0.15, value_parser = parse_share)]
    pub escalation_min_rise: f64,

    /// The least share of the negative expressions in a source's last third for an escalation (0 to 1).
    #[arg(long, env = "HUME_ACTION_ESCALATION_MIN_END", default_value_t = 0.25, value_parser = parse_share)]
    pub escalation_min_end: f64,

    /// The most share of the negative expressions in a source's first third for an escalation
    /// (0 to 1): a source negative from the start stays negative, it does not escalate.
    #[arg(long, env = "HUME_ACTION_ESCALATION_MAX_START", default_value_t = 0.3, value_parser = parse_share)]
    pub escalation_max_start: f64,

    /// 32-byte key (64 hex characters) that seals API keys stored with jobs; generated into
    /// `<data dir>/secret.key` (mode 0600) when unset.
    #[arg(long, env = "HUME_ACTION_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// The ffmpeg program that decodes media.
    #[arg(long, env = "HUME_ACTION_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe program that probes media.
    #[arg(long, env = "HUME_ACTION_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,

    /// Time cap for one ffmpeg or ffprobe run, in seconds.
    #[arg(long, env = "HUME_ACTION_FFMPEG_TIMEOUT_SECS", default_value_t = 300.0, value_parser = parse_positive_secs)]
    pub ffmpeg_timeout_secs: f64,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "HUME_ACTION_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest multipart upload to `POST /v0/batch/jobs`, in bytes.
    #[arg(long, env = "HUME_ACTION_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// A request's head must arrive within this many seconds (of the connection's start, or of
    /// its first byte on a kept-alive connection); a stalled connection is closed.
    #[arg(long, env = "HUME_ACTION_HEADER_TIMEOUT_SECS", default_value_t = 10.0, value_parser = parse_positive_secs)]
    pub header_timeout_secs: f64,

    /// A request's body must arrive within this many seconds of its head (else 408).
    #[arg(long, env = "HUME_ACTION_BODY_TIMEOUT_SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    pub body_timeout_secs: f64,

    /// An idle kept-alive connection is closed after this many seconds.
    #[arg(long, env = "HUME_ACTION_KEEPALIVE_SECS", default_value_t = 75.0, value_parser = parse_positive_secs)]
    pub keepalive_secs: f64,

    /// After an answer sent before the whole request body was read (413, 401, 408, ...), up to
    /// this many bytes of the rest are read and discarded before the connection closes, so that a
    /// client that sends its whole body before reading gets the answer (as nginx's lingering close).
    #[arg(long, env = "HUME_ACTION_LINGER_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub linger_bytes: u64,

    /// ...for at most this many seconds in all (nginx's `lingering_time`).
    #[arg(long, env = "HUME_ACTION_LINGER_SECS", default_value_t = 30.0, value_parser = parse_positive_secs)]
    pub linger_secs: f64,

    /// ...and closes once nothing has arrived for this many seconds (nginx's `lingering_timeout`).
    #[arg(long, env = "HUME_ACTION_LINGER_IDLE_SECS", default_value_t = 2.0, value_parser = parse_positive_secs)]
    pub linger_idle_secs: f64,

    /// Connections open at once; defaults to 4096, and is lowered to leave room under the open
    /// file limit (raised to its hard limit at start) for the database, downloads and media.
    #[arg(long, env = "HUME_ACTION_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Largest `text` item or text file (given, uploaded, downloaded or in an archive), in bytes.
    #[arg(long, env = "HUME_ACTION_MAX_TEXT_BYTES", default_value_t = Budgets::default().text_item_bytes)]
    pub max_text_bytes: u64,

    /// Text per job (items, text files and archive members together), in bytes.
    #[arg(long, env = "HUME_ACTION_MAX_JOB_TEXT_BYTES", default_value_t = Budgets::default().job_text_bytes)]
    pub max_job_text_bytes: u64,

    /// Segments the language model scores per job, at the requested granularity (text and speech).
    #[arg(long, env = "HUME_ACTION_MAX_JOB_SEGMENTS", default_value_t = Budgets::default().job_segments)]
    pub max_job_segments: u64,

    /// Sources per job: URLs, text items and uploaded files, each archive member counted.
    #[arg(long, env = "HUME_ACTION_MAX_JOB_SOURCES", default_value_t = Budgets::default().job_sources, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_job_sources: u64,

    /// Longest audio or video source, in seconds.
    #[arg(long, env = "HUME_ACTION_MAX_SOURCE_MEDIA_SECS", default_value_t = Budgets::default().source_media_secs)]
    pub max_source_media_secs: u64,

    /// Audio and video per job, in seconds.
    #[arg(long, env = "HUME_ACTION_MAX_JOB_MEDIA_SECS", default_value_t = Budgets::default().job_media_secs)]
    pub max_job_media_secs: u64,

    /// Video frames and images measured per job.
    #[arg(long, env = "HUME_ACTION_MAX_JOB_FRAMES", default_value_t = Budgets::default().job_frames)]
    pub max_job_frames: u64,

    /// Log as JSON lines instead of text (filter with `RUST_LOG`).
    #[arg(long, env = "HUME_ACTION_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
}

impl Config {
    /// The sliding rate-limit window.
    pub fn rate_limit_window(&self) -> Duration {
        Duration::from_secs_f64(self.rate_limit_window_secs)
    }

    /// The v1 sliding rate-limit window.
    pub fn v1_rate_limit_window(&self) -> Duration {
        Duration::from_secs_f64(self.v1_rate_limit_window_secs)
    }

    /// The longest a call may queue for the rate limit.
    pub fn max_queue_wait(&self) -> Duration {
        Duration::from_secs_f64(self.max_queue_wait_secs)
    }

    /// Where model files live.
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// How many jobs the local engine runs at once.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
    }

    /// The scrubber of the server's own secrets (the caller's key is added where it is known).
    pub fn scrubber(&self) -> Scrubber {
        let secrets = [&self.hume_api_key, &self.token, &self.callback_secret, &self.secret_key];
        let url_passwords: Vec<String> = [&self.database_url, &self.redis_url]
            .into_iter()
            .flatten()
            .filter_map(|url| url_password(url.expose()))
            .collect();
        Scrubber::new(secrets.into_iter().flatten().map(Secret::expose).chain(url_passwords.iter().map(String::as_str)))
    }

    /// How long a claim lasts unrenewed (`HUME_ACTION_LEASE_SECS`).
    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_secs)
    }

    /// The budgets every job is held to.
    pub fn budgets(&self) -> Budgets {
        Budgets {
            text_item_bytes: self.max_text_bytes,
            job_text_bytes: self.max_job_text_bytes,
            job_segments: self.max_job_segments,
            job_sources: self.max_job_sources,
            source_media_secs: self.max_source_media_secs,
            job_media_secs: self.max_job_media_secs,
            job_frames: self.max_job_frames,
        }
    }

    /// The configuration with no flags given (environment variables still apply), for tests and tools.
    pub fn defaults() -> Self {
        Self::parse_from(["hume-action"])
    }
}

/// The password in a database or Redis URL (`postgres://user:password@host/db`, or
/// `?password=`), decoded. The whole URL is not a secret: its first characters (`postgres`,
/// `redis://`) would redact every mention of PostgreSQL or Redis.
fn url_password(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let in_query = url.query_pairs().find(|(k, _)| k == "password").map(|(_, v)| v.into_owned());
    in_authority_password(&url).or(in_query).filter(|p| !p.is_empty())
}

/// The URL's password, percent-decoded.
fn in_authority_password(url: &Url) -> Option<String> {
    let raw = url.password()?.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (raw[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn parse_lease_secs(s: &str) -> Result<f64, String> {
    match parse_positive_secs(s)? {
        v if v >= 0.3 => Ok(v),
        _ => Err(format!("a lease must last at least 0.3 s, got `{s}`")),
    }
}

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got `{s}`")),
    }
}

fn parse_window_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v == 0.0 || (v.is_finite() && v >= 0.1) => Ok(v),
        _ => Err(format!("expected 0 (chosen per file) or at least 0.1 seconds, got `{s}`")),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number from 0 to 1, got `{s}`")),
    }
}

/// A secret string (API key, token): cheap to clone, redacted in `Debug`.
#[derive(Clone)]
pub struct Secret(Arc<SecretString>);

impl Secret {
    /// The secret's value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The secret's [`KeyHash`].
    pub fn hash(&self) -> KeyHash {
        KeyHash(hex::encode(Sha256::digest(self.expose().as_bytes())))
    }
}

/// The one hash of an API key that the server keeps or compares (SHA-256, hex): the key itself
/// is never stored. A job's owner, the rate limiter's budget and the idempotency scope are all
/// read off it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    /// All 256 bits, as stored with jobs (`sha256:<hex>` owners).
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The first 128 bits, where a name must stay short (Redis keys, log fields).
    pub fn short(&self) -> &str {
        &self.0[..32]
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(Arc::new(SecretString::from(value.to_owned())))
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self::from(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_password_is_scrubbed_and_the_rest_of_its_url_is_not() {
        let mut config = Config::defaults();
        config.database_url = Some("postgres://hume:s3cr%2Ft-pa55@db.internal:5432/jobs".parse().unwrap());
        let scrubbed = config.scrubber().scrub("postgresql at db.internal:5432/jobs refused s3cr/t-pa55");
        assert_eq!(scrubbed, "postgresql at db.internal:5432/jobs refused [redacted]");
        assert_eq!(url_password("postgres://u@h/db?password=qu3ry-pass").as_deref(), Some("qu3ry-pass"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        config.redis_url = Some("redis://:r3dis-pa55@cache:6379/".parse().unwrap());
        assert_eq!(config.scrubber().scrub("redis://cache:6379 said r3dis-pa55"), "redis://cache:6379 said [redacted]");
    }
}
