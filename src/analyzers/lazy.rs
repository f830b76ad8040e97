//! Models loaded on first use, once per process, and shared by every worker.
//!
//! Why: the speaker model (CAM++, about 55 MB resident) and the burst model (YAMNet, about
//! 62 MB) serve only the jobs that ask for speakers or bursts. Loaded at start-up, they kept
//! about 117 MB resident on every server whether or not such a job ever came (see
//! docs/benchmarks.md). Start-up now only checks their files, so `/readyz` and a missing file
//! are reported as before, and the first job that needs one of them loads it.
//!
//! How: the load runs on a blocking thread inside a [`std::sync::OnceLock`], so jobs that arrive
//! while it runs wait for that one load instead of starting their own, and a job cancelled
//! meanwhile (its deadline, a shutdown) does not abandon a half-done load for the next job to
//! repeat. The outcome is kept, model or failure: the files are pinned by sha256 and checked at
//! start-up, so a load that failed once would fail again, and trying on every job would spend
//! seconds of CPU to say the same thing. A load that panics is a failure like any other.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The loader of a [`LazyModel`]: blocking, run once.
type Loader<T> = Box<dyn FnOnce() -> Result<T, String> + Send>;

/// A model loaded on its first use, once per process; cheap to share behind an `Arc`.
pub struct LazyModel<T> {
    /// What the logs call the model.
    name: &'static str,
    /// The outcome of the one load: the model, or why it did not load (for the server's log).
    cell: Arc<OnceLock<Result<Arc<T>, String>>>,
    /// The loader, taken by the one load that runs it.
    load: Arc<std::sync::Mutex<Option<Loader<T>>>>,
}

impl<T: Send + Sync + 'static> LazyModel<T> {
    /// A model that `load` loads when it is first needed. `load` blocks (it reads and prepares
    /// the weights); it runs on a blocking thread, at most once.
    pub fn new<E: std::fmt::Display>(name: &'static str, load: impl FnOnce() -> Result<T, E> + Send + 'static) -> Self {
        let load: Loader<T> = Box::new(move || load().map_err(|e| e.to_string()));
        Self { name, cell: Arc::new(OnceLock::new()), load: Arc::new(std::sync::Mutex::new(Some(load))) }
    }

    /// A model loaded already (tests, evaluations, or a caller that wants it loaded now).
    pub fn loaded(name: &'static str, model: Arc<T>) -> Self {
        Self { name, cell: Arc::new(OnceLock::from(Ok(model))), load: Arc::new(std::sync::Mutex::new(None)) }
    }

    /// Whether the one load has ended, either way.
    pub fn load_ended(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The model, loading it first if no one has; `Err` is why it did not load, as logged (it may
    /// name server paths: log it, do not show it to a caller).
    pub async fn get(&self) -> Result<Arc<T>, String> {
        if let Some(outcome) = self.cell.get() {
            return outcome.clone();
        }
        let (name, cell, load) = (self.name, self.cell.clone(), self.load.clone());
        tokio::task::spawn_blocking(move || cell.get_or_init(|| load_once(name, &load)).clone())
            .await
            .unwrap_or_else(|e| Err(format!("its loading task ended: {e}")))
    }
}

/// Runs the loader (the first and only caller of `get_or_init` gets here), timing and logging
/// the outcome; a panic becomes the failure's message.
fn load_once<T>(name: &'static str, load: &std::sync::Mutex<Option<Loader<T>>>) -> Result<Arc<T>, String> {
    let loader = load.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(loader) = loader else { return Err("its loader already ran".into()) };
    let started = Instant::now();
    let outcome = match catch_unwind(AssertUnwindSafe(loader)) {
        Ok(result) => result.map(Arc::new),
        Err(panic) => Err(format!("its loader panicked: {}", panic_message(panic.as_ref()))),
    };
    let secs = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => tracing::info!(model = name, secs, "model loaded on first use"),
        Err(error) => {
            tracing::error!(model = name, secs, %error, "model did not load on first use; its jobs get a per-source error until the server restarts")
        }
    }
    outcome
}

/// What a panic said, when it said it in words.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "(no message)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_uses_load_once_and_share_one_model() {
        let loads = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let counted = loads.clone();
        let model = Arc::new(LazyModel::new("test", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok::<_, String>(42u32)
        }));
        let users: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn({
                    let model = model.clone();
                    async move { model.get().await }
                })
            })
            .collect();
        // The load is under way and held: no user can have its model yet.
        tokio::task::spawn_blocking(move || started_rx.recv()).await.unwrap().unwrap();
        assert!(!model.load_ended());
        assert!(users.iter().all(|u| !u.is_finished()), "a user got a model before it loaded");
        release_tx.send(()).unwrap();
        let mut got = Vec::new();
        for user in users {
            got.push(user.await.unwrap().unwrap());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "loaded once");
        assert!(got.iter().all(|m| Arc::ptr_eq(m, &got[0]) && **m == 42), "one shared model");
        assert!(Arc::ptr_eq(&model.get().await.unwrap(), &got[0]), "later uses get the same model");
        assert!(model.load_ended());
    }

    #[tokio::test]
    async fn a_failed_or_panicking_load_is_one_kept_error_never_a_panic() {
        let loads = Arc::new(AtomicUsize::new(0));
        let counted = loads.clone();
        let failing = LazyModel::<u32>::new("failing", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Err("the file is corrupt")
        });
        assert_eq!(failing.get().await.unwrap_err(), "the file is corrupt");
        assert_eq!(failing.get().await.unwrap_err(), "the file is corrupt");
        assert_eq!(loads.load(Ordering::SeqCst), 1, "a failure is kept, not retried on every job");

        let panicking = LazyModel::<u32>::new("panicking", || -> Result<u32, String> { panic!("out of bounds") });
        let error = panicking.get().await.unwrap_err();
        assert!(error.contains("panicked") && error.contains("out of bounds"), "{error}");
        assert!(panicking.get().await.is_err());

        let ready = LazyModel::loaded("ready", Arc::new(7u32));
        assert!(ready.load_ended());
        assert_eq!(*ready.get().await.unwrap(), 7);
    }
}
