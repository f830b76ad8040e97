//! Building the application from its configuration, binding the port, and shutting down
//! gracefully (in-flight calls finish; background work stops at a safe point).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::action::idempotency::{Idempotency, IdempotencyStore, MemoryIdempotencyStore};
use crate::app::{App, AppState};
use crate::backend::{batch::BatchBackend, local::LocalBackend, Backend};
use crate::config::{BackendKind, Config};
use crate::fetch::{FetchConfig, Fetcher};
use crate::jobs::{callback::Callbacks, engine::Engine, store::SqliteStore, worker::WorkerPool};
use crate::models::language::{LanguageModel, MODEL_DIR_NAME};
use crate::upstream::v0::HumeV0Client;
use crate::upstream::{RateLimiter, RetryPolicy, SlidingWindowLimiter};

/// Idempotency keys are remembered this long.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("The `{0}` backend is not built yet; set HUME_ACTION_BACKEND to `local` (the default) or `hume-batch`.")]
    BackendNotBuilt(&'static str),
    #[error("Could not listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

/// The embedded engine: SQLite jobs, the language model, workers already running.
async fn local_backend(
    config: &Config,
    policy: RetryPolicy,
) -> Result<(Arc<dyn Backend>, Arc<dyn IdempotencyStore>), StartupError> {
    let lock = lock_data_dir(&config.data_dir)?;
    let store = Arc::new(SqliteStore::open(&config.data_dir).await.map_err(|e| StartupError::Other(e.to_string()))?);
    let model_dir = config.model_dir().join(MODEL_DIR_NAME);
    let language = tokio::task::spawn_blocking(move || LanguageModel::load(&model_dir))
        .await
        .map_err(|e| StartupError::Other(e.to_string()))?
        .map_err(|e| StartupError::Other(e.to_string()))?;
    let fetcher = Fetcher::new(FetchConfig {
        allow_private: config.allow_private_urls,
        max_bytes: config.max_download_bytes,
        timeout: Duration::from_secs_f64(config.download_timeout_secs),
        retry: policy.clone(),
        ..FetchConfig::default()
    })
    .map_err(|e| StartupError::Other(e.to_string()))?;
    let callbacks = Arc::new(Callbacks {
        fetcher: fetcher.clone(),
        secret: config.callback_secret.clone(),
        policy,
        store: store.clone(),
    });
    let engine = Arc::new(Engine { fetcher, language: Arc::new(language), store: store.clone() });
    let workers = WorkerPool::new(store.clone(), engine, callbacks);
    workers.start(config.workers()).await.map_err(|e| StartupError::Other(e.to_string()))?;
    Ok((Arc::new(LocalBackend::new(store.clone(), workers, lock)), store))
}

/// One server per data directory: a second one would re-run the first one's jobs as
/// "interrupted". The lock is released when the process ends, however it ends.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartupError> {
    let other = |e: std::io::Error| StartupError::Other(format!("cannot lock {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(other)?;
    let file = std::fs::File::create(dir.join("hume-action.lock")).map_err(other)?;
    file.try_lock().map_err(|_| {
        StartupError::Other(format!(
            "another hume-action is running on HUME_ACTION_DATA_DIR={}; stop it or give this one its own data directory",
            dir.display()
        ))
    })?;
    Ok(file)
}

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    app: AppState,
}

impl Application {
    /// Builds every part from `config` and binds its address (port 0 picks a free one).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(config.retry_base_ms),
            ..RetryPolicy::new(config.max_attempts)
        };
        let limiter: Arc<dyn RateLimiter> = Arc::new(SlidingWindowLimiter::new(
            config.rate_limit_requests,
            config.rate_limit_window(),
            config.max_queue_wait(),
        ));
        let (backend, idempotency_store): (Arc<dyn Backend>, Arc<dyn IdempotencyStore>) = match config.backend {
            BackendKind::HumeBatch => {
                let timeout = Duration::from_secs_f64(config.upstream_timeout_secs);
                let client = HumeV0Client::new(config.hume_batch_base_url.clone(), timeout, limiter, policy)
                    .map_err(|e| StartupError::Other(format!("HTTP client: {e}")))?;
                (Arc::new(BatchBackend::new(Arc::new(client))), Arc::new(MemoryIdempotencyStore::new(IDEMPOTENCY_TTL)))
            }
            BackendKind::Local => {
                let (backend, store) = local_backend(&config, policy).await?;
                (backend, store)
            }
            BackendKind::Hume => return Err(StartupError::BackendNotBuilt("hume")),
        };
        let idempotency = Arc::new(Idempotency::new(idempotency_store));
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartupError::Bind { addr: config.listen, source })?;
        let app = AppState(Arc::new(App { config, backend, idempotency }));
        Ok(Self { listener, app })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let router = crate::http::router(self.app.clone());
        tracing::info!(addr = %self.listener.local_addr()?, backend = ?self.app.config.backend, "hume-action listening");
        axum::serve(self.listener, router).with_graceful_shutdown(shutdown).await?;
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
