//! Building the application from its configuration, binding the port, and shutting down
//! gracefully (in-flight calls finish; background work stops at a safe point).
//!
//! At start the soft open-file limit is raised to the hard limit, and the connection cap is
//! fitted under it, leaving room for the database, downloads and media files.
//!
//! The job store is SQLite in the data directory (one server, which locks the directory), or
//! PostgreSQL when `HUME_ACTION_DATABASE_URL` is set (any number of replicas, no lock). A
//! PostgreSQL that cannot be reached is tried again for [`DATABASE_PATIENCE`], then start-up
//! fails naming it (host, port, database; never the password) and why.

use anyhow::{anyhow, bail, Context};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::analyzers::hume::{face::HumeFace, voice::HumeVoice};
use crate::analyzers::local_burst::LocalBurst;
use crate::analyzers::local_face::LocalFace;
use crate::analyzers::local_speech::LocalTranscriber;
use crate::analyzers::speakers::{LocalSpeakers, SpeakerFinder};
use crate::analyzers::{language::LanguageAnalyzer, Analyzer, Analyzers, Transcriber};
use crate::app::{App, AppState};
use crate::backend::{batch::BatchBackend, engine::EngineBackend, Backend, Components};
use crate::config::{BackendKind, Config};
use crate::engine::pipeline::DOWNLOADS_PER_JOB;
use crate::engine::worker::CLAIMS_PER_SLOT;
use crate::engine::{callback::Callbacks, pipeline::Engine, worker::WorkerPool};
use crate::fetch::{FetchConfig, Fetcher};
use crate::http::server::{ConnectionLimits, Linger};
use crate::idempotency::{Idempotency, IdempotencyStore, MemoryIdempotencyStore};
use crate::intake::Intake;
use crate::media::ffmpeg::{check_tools, Tools};
use crate::media::prepare::{MediaLimits, Preparer};
use crate::models::burst::{Yamnet, DIR_NAME as BURST_DIR_NAME, MODEL_FILE as BURST_MODEL_FILE};
use crate::models::face::{FaceModels, DIR_NAME as FACE_DIR_NAME};
use crate::models::language::{LanguageModel, MODEL_DIR_NAME};
use crate::models::onnx::Runtime;
use crate::models::speakers::Diarizer;
use crate::models::speech::SpeechModels;
use crate::sealed::Sealer;
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::summary::SummaryOptions;
use crate::upstream::client::UpstreamClient;
use crate::upstream::v0::HumeV0Client;
use crate::upstream::v1::HumeV1Client;
use crate::upstream::{RateLimiter, RetryPolicy, SharedLimits, SlidingWindowLimiter};

/// How long start-up keeps trying to reach PostgreSQL before it gives up.
pub const DATABASE_PATIENCE: Duration = Duration::from_secs(20);
/// Idempotency keys are remembered this long.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Connections served at once when `HUME_ACTION_MAX_CONNECTIONS` is unset.
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// File descriptors kept for everything but connections and downloads: the database, model
/// files, media work, logs.
const RESERVED_FILES: u64 = 256;

/// The durable engine (`local` and `hume`): SQLite jobs, media preparation, the analyzers the
/// backend routes each model to, and workers already running.
async fn engine_backend(
    config: &Config,
    policy: RetryPolicy,
    shared_limits: Option<&Arc<SharedLimits>>,
) -> anyhow::Result<(Arc<dyn Backend>, Arc<dyn IdempotencyStore>)> {
    let (store, idempotency, lock, downloads): (Arc<dyn Store>, Arc<dyn IdempotencyStore>, _, _) =
        match &config.database_url {
            Some(url) => {
                if config.backend == BackendKind::Hume && config.secret_key.is_none() {
                    bail!(
                    "HUME_ACTION_DATABASE_URL with the hume backend needs HUME_ACTION_SECRET_KEY, the same on every \
                     replica: each replica must unseal the API keys stored with the jobs the others accepted"
                );
                }
                let store = Arc::new(postgres_store(config, url.expose()).await?);
                let downloads = replica_downloads_dir(&config.data_dir, store.replica())?;
                (store.clone(), store, None, downloads)
            }
            None => {
                let lock = lock_data_dir(&config.data_dir)?;
                let store = Arc::new(SqliteStore::open(&config.data_dir).await?.with_lease(config.lease()));
                // After the data directory's lock: only the server that owns it empties its downloads.
                (store.clone(), store, Some(lock), downloads_dir(&config.data_dir)?)
            }
        };
    let sealer =
        Arc::new(Sealer::load(config.secret_key.as_ref(), &config.data_dir).context("HUME_ACTION_SECRET_KEY")?);
    let tools = Tools { ffmpeg: config.ffmpeg.clone(), ffprobe: config.ffprobe.clone() };
    let media = Arc::new(Preparer::new(
        tools.clone(),
        MediaLimits {
            ffmpeg_timeout: Duration::from_secs_f64(config.ffmpeg_timeout_secs),
            // An archive with more files than a whole job may have sources is not expanded.
            max_archive_members: usize::try_from(config.max_job_sources).unwrap_or(usize::MAX),
            ..MediaLimits::default()
        },
    ));
    let mut components = Components::new();
    match (check_tools(&tools).await, config.backend) {
        (Ok(version), _) => {
            tracing::info!(%version, "ffmpeg found");
            components.insert("ffmpeg", version);
        }
        (Err(e), BackendKind::Hume) => return Err(e.into()),
        (Err(e), _) => {
            tracing::warn!(error = %e, "audio, video and images cannot be measured until ffmpeg is installed");
            components.insert("ffmpeg", format!("missing: {e}"));
        }
    }
    let runtime = Runtime::select(config.runtime, &config.model_dir()).context("HUME_ACTION_RUNTIME")?;
    tracing::info!(runtime = runtime.name(), "the embedded models' runtime");
    components.insert("runtime", runtime.name().into());
    let model_dir = config.model_dir().join(MODEL_DIR_NAME);
    let language = tokio::task::spawn_blocking(move || LanguageModel::load_on(&model_dir, runtime))
        .await?
        .map_err(|e| anyhow!("{e}"))
        .context("the language model")?;
    components.insert("language_model", "loaded".into());
    let language: Arc<dyn Analyzer> = Arc::new(LanguageAnalyzer::new(Arc::new(language)));
    let model_root = config.model_dir();
    let transcriber = match tokio::task::spawn_blocking(move || SpeechModels::load(&model_root)).await {
        Ok(Ok(models)) => {
            components.insert("speech_models", format!("loaded ({})", models.variant().dir_name()));
            Some(Arc::new(LocalTranscriber::new(Arc::new(models))) as Arc<dyn Transcriber>)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "speech is not transcribed: the speech models are not loaded; run scripts/install-models.sh");
            components.insert("speech_models", format!("not loaded: {e}"));
            None
        }
        Err(e) => return Err(e).context("loading the speech models"),
    };
    let speakers = speaker_finder(config, &mut components).await?;
    let (analyzers, key_sealer) = match config.backend {
        BackendKind::Hume => {
            let limiter =
                rate_limiter(config, shared_limits, "v1", config.v1_rate_limit_requests, config.v1_rate_limit_window());
            let timeout = Duration::from_secs_f64(config.upstream_timeout_secs);
            let scrubber = Arc::new(config.scrubber());
            let client =
                UpstreamClient::new(config.hume_api_base_url.clone(), timeout, limiter, policy.clone(), scrubber)
                    .map_err(|e| anyhow!("{e}"))
                    .context("HTTP client")?;
            let client = Arc::new(HumeV1Client::new(client));
            let face = Arc::new(HumeFace::new(client.clone()));
            let voice = Arc::new(HumeVoice::new(client));
            (Analyzers::hume(language, face, voice), Some(sealer.clone()))
        }
        _ => {
            let face = local_face(config, runtime, &mut components).await?;
            (Analyzers::local(language, face).with_local_burst(local_burst(config, &mut components).await?), None)
        }
    };
    let fetcher = fetcher(config, &policy, Some(downloads))?;
    let summary = Arc::new(SummaryOptions::from_config(config));
    let callbacks = Arc::new(Callbacks {
        fetcher: fetcher.clone(),
        secret: config.callback_secret.clone(),
        policy,
        store: store.clone(),
        summary: summary.clone(),
        max_predictions_bytes: config.callback_max_bytes,
    });
    let job_deadline = Duration::from_secs_f64(config.job_deadline_secs);
    let budgets = config.budgets();
    let scrubber = Arc::new(config.scrubber());
    let engine = Arc::new(Engine {
        fetcher,
        media,
        analyzers,
        transcriber,
        speakers,
        store: store.clone(),
        sealer,
        job_deadline,
        budgets,
        scrubber,
    });
    let workers = WorkerPool::new(store.clone(), engine, callbacks);
    workers.start(config.workers()).await.context("starting the workers")?;
    Ok((Arc::new(EngineBackend::new(store, workers, lock, key_sealer, components, summary)), idempotency))
}

/// The embedded face runner when the face models' files are installed and pinned, else `None`
/// (the route says how to install them). The models (about 40 MB of RSS, see docs/benchmarks.md)
/// load on the first file measured for faces ([`crate::analyzers::lazy`]): the action's default
/// leaves face off.
async fn local_face(
    config: &Config,
    runtime: Runtime,
    components: &mut Components,
) -> anyhow::Result<Option<Arc<dyn Analyzer>>> {
    let dir = config.model_dir().join(FACE_DIR_NAME);
    let check = {
        let dir = dir.clone();
        move || FaceModels::check(&dir)
    };
    match check_model_files(components, "face_models", "CenterFace + mini-Xception", check).await? {
        Ok(()) => Ok(Some(Arc::new(LocalFace::on_first_use(dir, runtime)) as Arc<dyn Analyzer>)),
        Err(e) => {
            tracing::warn!(error = %e, "the local face models are not loaded; run scripts/install-models.sh");
            Ok(None)
        }
    }
}

/// The embedded speaker finder when the speaker model's files are installed and pinned, else
/// why not, for each file's error. The model (about 55 MB of RSS, see docs/benchmarks.md) loads
/// on the first file that asks for speakers ([`crate::analyzers::lazy`]).
async fn speaker_finder(
    config: &Config,
    components: &mut Components,
) -> anyhow::Result<Result<Arc<dyn SpeakerFinder>, String>> {
    let root = config.model_dir();
    let check = {
        let root = root.clone();
        move || Diarizer::check(&root)
    };
    match check_model_files(components, "speaker_model", "CAM++", check).await? {
        Ok(()) => Ok(Ok(Arc::new(LocalSpeakers::on_first_use(root)) as Arc<dyn SpeakerFinder>)),
        Err(e) => {
            tracing::warn!(error = %e, "identify_speakers cannot run: the speaker model is not loaded");
            Ok(Err(e.to_string()))
        }
    }
}

/// The embedded burst runner when its files are installed and pinned, else why not, for the
/// route's error. The model (about 62 MB of RSS, see docs/benchmarks.md) loads on the first file
/// measured for bursts ([`crate::analyzers::lazy`]).
async fn local_burst(
    config: &Config,
    components: &mut Components,
) -> anyhow::Result<Result<Arc<dyn Analyzer>, &'static str>> {
    let dir = config.model_dir().join(BURST_DIR_NAME);
    if !dir.join(BURST_MODEL_FILE).exists() {
        components.insert("burst_model", format!("not installed (no {})", dir.join(BURST_MODEL_FILE).display()));
        return Ok(Err("is not installed"));
    }
    let check = {
        let dir = dir.clone();
        move || Yamnet::check(&dir)
    };
    match check_model_files(components, "burst_model", "YAMNet", check).await? {
        Ok(()) => Ok(Ok(Arc::new(LocalBurst::on_first_use(dir)) as Arc<dyn Analyzer>)),
        Err(e) => {
            tracing::warn!(error = %e, "vocal bursts cannot be found: the burst model is not loaded");
            Ok(Err("did not load (the server's log says why)"))
        }
    }
}

/// Checks the files of a model loaded on first use (`what`), off the runtime, and records the
/// outcome as `/readyz`'s `component`: `installed (<what>, loaded on first use)` or `not loaded:
/// <why>`.
async fn check_model_files<E: std::fmt::Display + Send + 'static>(
    components: &mut Components,
    component: &'static str,
    what: &str,
    check: impl FnOnce() -> Result<(), E> + Send + 'static,
) -> anyhow::Result<Result<(), E>> {
    let checked = tokio::task::spawn_blocking(check).await.with_context(|| format!("checking {component}"))?;
    let state = match &checked {
        Ok(()) => format!("installed ({what}, loaded on first use)"),
        Err(e) => format!("not loaded: {e}"),
    };
    components.insert(component, state);
    Ok(checked)
}

/// The PostgreSQL store of `HUME_ACTION_DATABASE_URL`, reached within [`DATABASE_PATIENCE`].
async fn postgres_store(config: &Config, url: &str) -> anyhow::Result<PostgresStore> {
    // The message is scrubbed of the URL's password before it goes anywhere.
    PostgresStore::connect(url, config.database_pool_size, config.lease(), DATABASE_PATIENCE)
        .await
        .map_err(|e| anyhow!(config.scrubber().scrub(&e.to_string())))
}

/// `<data dir>/downloads/<replica>`, for a replica on PostgreSQL: replicas may share a data
/// directory, so each downloads into its own folder, locked while it runs; folders whose lock
/// is free belong to replicas that are gone, and are removed.
fn replica_downloads_dir(data_dir: &std::path::Path, replica: &str) -> anyhow::Result<std::path::PathBuf> {
    let root = data_dir.join("downloads");
    let context = || format!("cannot prepare {}", root.display());
    std::fs::create_dir_all(&root).with_context(context)?;
    for entry in std::fs::read_dir(&root).with_context(context)?.flatten() {
        let path = entry.path();
        let gone = std::fs::File::open(path.join(".lock")).is_ok_and(|lock| lock.try_lock().is_ok());
        if gone {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    let dir = root.join(replica);
    std::fs::create_dir_all(&dir).with_context(context)?;
    let lock = std::fs::File::create(dir.join(".lock")).with_context(context)?;
    lock.try_lock().map_err(|e| anyhow!("{e}")).with_context(context)?;
    // Held (leaked) for the process's lifetime: the lock ends with the process, however it ends.
    std::mem::forget(lock);
    Ok(dir)
}

/// The link to the Redis that holds the fleet's rate limits, when `HUME_ACTION_REDIS_URL` is
/// set. A Redis that does not answer at start does not stop the server: it says so, reports it
/// on `/readyz`, and upstream calls wait for Redis (fail closed) until it answers.
async fn shared_limits(config: &Config) -> anyhow::Result<Option<Arc<SharedLimits>>> {
    let Some(url) = &config.redis_url else { return Ok(None) };
    let shared = SharedLimits::new(url).map_err(|e| anyhow!(e))?;
    match shared.check().await {
        Ok(()) => tracing::info!(redis = %shared.address(), "sharing the rate limits in Redis"),
        Err(e) => tracing::error!(
            error = %e,
            "HUME_ACTION_REDIS_URL: cannot reach Redis; no upstream request is sent until it answers"
        ),
    }
    Ok(Some(shared))
}

/// The rate limiter of one API's budget (`namespace`: v0 or v1): shared in Redis when
/// configured, else this process's own.
fn rate_limiter(
    config: &Config,
    shared: Option<&Arc<SharedLimits>>,
    namespace: &'static str,
    limit: u32,
    window: Duration,
) -> Arc<dyn RateLimiter> {
    match shared {
        Some(shared) => {
            // A slot counts until its request's response, at most two timeouts (the request's and
            // its body's) and a margin.
            let hold = Duration::from_secs_f64(config.upstream_timeout_secs * 2.0 + 10.0);
            shared.limiter(namespace, limit, window, hold, config.max_queue_wait())
        }
        None => Arc::new(SlidingWindowLimiter::new(limit, window, config.max_queue_wait())),
    }
}

/// `<data dir>/downloads`, emptied: downloads a killed process left behind go now.
fn downloads_dir(data_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = data_dir.join("downloads");
    let context = || format!("cannot prepare {}", dir.display());
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).with_context(context),
        _ => {}
    }
    std::fs::create_dir_all(&dir).with_context(context)?;
    Ok(dir)
}

/// Downloads, callbacks and the intake's callback check, under the configured address rules.
/// `downloads`: where downloads wait to be measured (the engine's; the intake downloads nothing).
fn fetcher(config: &Config, policy: &RetryPolicy, downloads: Option<std::path::PathBuf>) -> anyhow::Result<Fetcher> {
    Fetcher::new(FetchConfig {
        allow_private: config.allow_private_urls,
        max_bytes: config.max_download_bytes,
        timeout: Duration::from_secs_f64(config.download_timeout_secs),
        deadline: Duration::from_secs_f64(config.download_deadline_secs),
        min_rate: config.min_download_rate,
        temp_dir: downloads,
        retry: policy.clone(),
        ..FetchConfig::default()
    })
    .map_err(|e| anyhow!("{e}"))
    .context("the downloader")
}

/// One server per data directory: a second one would re-run the first one's jobs as
/// "interrupted". The lock is released when the process ends, however it ends.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let context = || format!("cannot lock {}", dir.display());
    std::fs::create_dir_all(dir).with_context(context)?;
    let file = std::fs::File::create(dir.join("hume-action.lock")).with_context(context)?;
    if file.try_lock().is_err() {
        bail!(
            "another hume-action is running on HUME_ACTION_DATA_DIR={}; stop it or give this one its own data directory",
            dir.display()
        );
    }
    Ok(file)
}

/// Raises the soft open-file limit to the hard one, and fits the connection cap under it.
fn connection_limits(config: &Config) -> ConnectionLimits {
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not raise the open file limit");
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
    });
    let downloads = (config.workers() * CLAIMS_PER_SLOT * DOWNLOADS_PER_JOB) as u64;
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES + downloads)).unwrap_or(usize::MAX).max(16);
    let wanted = config.max_connections.map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize);
    if wanted > room {
        tracing::warn!(
            wanted,
            allowed = room,
            open_file_limit = files,
            "fewer connections than HUME_ACTION_MAX_CONNECTIONS fit under the open file limit; raise the hard limit (ulimit -Hn) for more"
        );
    }
    ConnectionLimits {
        header_timeout: Duration::from_secs_f64(config.header_timeout_secs),
        body_timeout: Duration::from_secs_f64(config.body_timeout_secs),
        keepalive: Duration::from_secs_f64(config.keepalive_secs),
        max_connections: wanted.min(room),
        linger: Linger {
            bytes: config.linger_bytes,
            time: Duration::from_secs_f64(config.linger_secs),
            idle: Duration::from_secs_f64(config.linger_idle_secs),
        },
    }
}

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    app: AppState,
    limits: ConnectionLimits,
}

impl Application {
    /// Builds every part from `config` and binds its address (port 0 picks a free one).
    /// Every failure says what could not start and why (`{:#}` prints the whole chain).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::telemetry::metrics::install();
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(config.retry_base_ms),
            ..RetryPolicy::new(config.max_attempts)
        };
        let intake = Intake::new(config.budgets(), fetcher(&config, &policy, None)?);
        let shared_limits = shared_limits(&config).await?;
        let (backend, idempotency): (Arc<dyn Backend>, Idempotency) = match config.backend {
            BackendKind::HumeBatch => {
                let limiter = rate_limiter(
                    &config,
                    shared_limits.as_ref(),
                    "v0",
                    config.rate_limit_requests,
                    config.rate_limit_window(),
                );
                let timeout = Duration::from_secs_f64(config.upstream_timeout_secs);
                let scrubber = Arc::new(config.scrubber());
                let client =
                    UpstreamClient::new(config.hume_batch_base_url.clone(), timeout, limiter, policy, scrubber)
                        .map_err(|e| anyhow!("{e}"))
                        .context("HTTP client")?;
                let client = HumeV0Client::new(client);
                // With a database, replicas share their idempotency records, each key claimed
                // before its upstream job is created: one job per key across replicas.
                let idempotency = match &config.database_url {
                    Some(url) => Idempotency::claiming_first(Arc::new(postgres_store(&config, url.expose()).await?)),
                    None => Idempotency::new(Arc::new(MemoryIdempotencyStore::new(IDEMPOTENCY_TTL))),
                };
                (
                    Arc::new(BatchBackend::new(Arc::new(client), Arc::new(SummaryOptions::from_config(&config))))
                        as Arc<dyn Backend>,
                    idempotency,
                )
            }
            BackendKind::Local | BackendKind::Hume => {
                let (backend, store) = engine_backend(&config, policy, shared_limits.as_ref()).await?;
                (backend, Idempotency::new(store))
            }
        };
        let idempotency = Arc::new(idempotency);
        let limits = connection_limits(&config);
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("Could not listen on {}", config.listen))?;
        let app = AppState(Arc::new(App { config, backend, idempotency, intake, shared_limits }));
        Ok(Self { listener, app, limits })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let router = crate::http::router(self.app.clone());
        tracing::info!(
            addr = %self.listener.local_addr()?,
            backend = ?self.app.config.backend,
            max_connections = self.limits.max_connections,
            "hume-action listening"
        );
        crate::http::server::serve(self.listener, router, self.limits, shutdown).await?;
        self.app.backend.shutdown().await;
        tracing::info!("hume-action stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutdown signal received; finishing in-flight calls");
}
