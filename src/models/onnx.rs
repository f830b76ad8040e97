//! Which runtime runs the embedded models: onnxruntime when it is installed, the built-in Rust
//! runtimes (candle, tract) when it is not.
//!
//! onnxruntime is the fastest CPU runtime for these small networks (MiniLM, CenterFace,
//! mini-Xception: 1.5-3x tract's and candle's speed on the same files, see docs/benchmarks.md),
//! but it is a C++ library. It is loaded at run time (`ort`'s `load-dynamic`) from the shared
//! library that PyPI's `onnxruntime` wheel ships, installed and pinned by
//! `scripts/models/onnxruntime.sh`: nothing is linked or downloaded at build time, and a server
//! without the library still runs every model on the built-in runtimes.
//!
//! One process has one onnxruntime environment with one thread pool of two threads (the
//! sessions of every model share it), so a text job and a face job running side by side do not
//! start four threads on two cores.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

/// The folder under the model directory that holds onnxruntime's library.
pub const DIR_NAME: &str = "onnxruntime";
/// The library's file in [`DIR_NAME`].
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";
/// sha256 of [`LIBRARY_FILE`] (PyPI `onnxruntime` 1.31.1, `onnxruntime/capi/`, manylinux x86_64).
pub const LIBRARY_SHA256: &str = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";
/// Threads of the process's one onnxruntime thread pool.
pub const THREADS: usize = 2;

/// The runtime asked for (`HUME_ACTION_RUNTIME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeChoice {
    /// onnxruntime when its library is installed, else the built-in runtimes.
    #[default]
    Auto,
    /// onnxruntime; start-up fails when its library is not installed.
    Onnxruntime,
    /// candle and tract only, even when onnxruntime is installed.
    Builtin,
}

/// The runtime the models run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// onnxruntime (its environment is initialised).
    Onnxruntime,
    /// candle for MiniLM, tract for the ONNX files.
    Builtin,
}

/// Why onnxruntime cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The library is not installed where it is looked for.
    #[error("onnxruntime is not installed ({path}: {source}); install it with scripts/models/onnxruntime.sh, or set HUME_ACTION_RUNTIME=builtin")]
    Missing { path: PathBuf, source: std::io::Error },
    /// The library is not the pinned one.
    #[error("{path} has sha256 {actual}, expected {LIBRARY_SHA256}; reinstall it with scripts/models/onnxruntime.sh")]
    Checksum { path: PathBuf, actual: String },
    /// onnxruntime refused to start, to load a model or to run it.
    #[error("onnxruntime: {0}")]
    Ort(String),
}

impl Runtime {
    /// The runtime for `choice`, with the library looked for under `models_root` (the model
    /// directory, `data/models` by default). `Auto` falls back to the built-in runtimes when
    /// the library is absent, and fails only on a library that is there but wrong.
    pub fn select(choice: RuntimeChoice, models_root: &Path) -> Result<Self, RuntimeError> {
        match choice {
            RuntimeChoice::Builtin => Ok(Runtime::Builtin),
            RuntimeChoice::Onnxruntime => environment(models_root).map(|_| Runtime::Onnxruntime),
            RuntimeChoice::Auto => match environment(models_root) {
                Ok(_) => Ok(Runtime::Onnxruntime),
                Err(RuntimeError::Missing { .. }) => Ok(Runtime::Builtin),
                Err(e) => Err(e),
            },
        }
    }

    /// The name `/readyz` and the logs give it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Onnxruntime => "onnxruntime 1.31.1",
            Runtime::Builtin => "built-in (candle, tract)",
        }
    }
}

/// The process's one onnxruntime environment, or why it could not start.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process's onnxruntime environment, initialised by the first call. Every call checks that
/// `models_root` holds the pinned library (before it is ever loaded: a missing or wrong library
/// must not be dlopen'ed); a process loads it once, so later calls share the first one's copy,
/// which has the same bytes.
fn environment(models_root: &Path) -> Result<&'static Environment, RuntimeError> {
    let path = models_root.join(DIR_NAME).join(LIBRARY_FILE);
    let actual = match crate::models::sha256_of_file(&path) {
        Ok(actual) => actual,
        Err(source) => return Err(RuntimeError::Missing { path, source }),
    };
    if actual != LIBRARY_SHA256 {
        return Err(RuntimeError::Checksum { path, actual });
    }
    let result = ENVIRONMENT.get_or_init(|| {
        // The library first: the pool's options are made by it.
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        let pool = GlobalThreadPoolOptions::default()
            .with_intra_threads(THREADS)
            .and_then(|p| p.with_inter_threads(1))
            .and_then(|p| p.with_spin_control(false))
            .map_err(|e| e.to_string())?;
        builder
            .with_name("hume-action")
            .with_telemetry(false)
            .with_global_thread_pool(pool)
            .build()
            .map_err(|e| e.to_string())
    });
    result.as_ref().map_err(|e| RuntimeError::Ort(e.clone()))
}

/// One ONNX model in an onnxruntime session. `Session::run` needs `&mut`, so runs take turns;
/// each run uses the shared thread pool's two threads.
pub struct OrtModel {
    session: Mutex<Session>,
}

/// A tensor given to [`OrtModel::run`]: its shape and values.
pub enum Input<'a> {
    F32(Vec<usize>, &'a [f32]),
    I64(Vec<usize>, &'a [i64]),
}

/// One output tensor, copied out of onnxruntime: its shape and values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Output {
    /// The value at `index` (one coordinate per dimension).
    pub fn at(&self, index: &[usize]) -> f32 {
        debug_assert_eq!(index.len(), self.shape.len());
        let offset = index.iter().zip(&self.shape).fold(0, |offset, (&i, &n)| offset * n + i);
        self.values[offset]
    }
}

impl OrtModel {
    /// A session over the model `bytes` (a verified file's content), fully optimised; the
    /// environment must have been selected ([`Runtime::select`] gave `Onnxruntime`).
    pub fn load(bytes: &[u8]) -> Result<Self, RuntimeError> {
        let ort = |e: ort::Error| RuntimeError::Ort(e.to_string());
        let recovered = |e: ort::Error<_>| RuntimeError::Ort(e.to_string());
        let environment = match ENVIRONMENT.get() {
            Some(Ok(environment)) => environment,
            _ => return Err(RuntimeError::Ort("onnxruntime was not selected (Runtime::select)".into())),
        };
        let session = Session::builder(environment)
            .map_err(ort)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(recovered)?
            .commit_from_memory(bytes)
            .map_err(ort)?;
        Ok(Self { session: Mutex::new(session) })
    }

    /// Runs the model on `inputs` (in the model's input order) and copies out every output.
    pub fn run(&self, inputs: &[Input<'_>]) -> Result<Vec<Output>, RuntimeError> {
        let ort = |e: ort::Error| RuntimeError::Ort(e.to_string());
        let values = inputs
            .iter()
            .map(|input| match input {
                Input::F32(shape, values) => TensorRef::from_array_view((shape.clone(), *values)).map(Into::into),
                Input::I64(shape, values) => TensorRef::from_array_view((shape.clone(), *values)).map(Into::into),
            })
            .collect::<Result<Vec<ort::session::SessionInputValue<'_>>, _>>()
            .map_err(ort)?;
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(values.as_slice()).map_err(ort)?;
        outputs
            .values()
            .map(|value| {
                let (shape, values) = value.try_extract_tensor::<f32>().map_err(ort)?;
                let shape = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
                Ok(Output { shape, values: values.to_vec() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models_root() -> PathBuf {
        std::env::var_os("HUME_ACTION_MODEL_DIR")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models"), PathBuf::from)
    }

    #[test]
    fn auto_takes_the_installed_library_and_falls_back_without_it() {
        let installed = models_root();
        assert_eq!(Runtime::select(RuntimeChoice::Auto, &installed).unwrap(), Runtime::Onnxruntime);
        assert_eq!(Runtime::select(RuntimeChoice::Builtin, &installed).unwrap(), Runtime::Builtin);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(Runtime::select(RuntimeChoice::Auto, empty.path()).unwrap(), Runtime::Builtin);
        let missing = Runtime::select(RuntimeChoice::Onnxruntime, empty.path()).unwrap_err();
        assert!(matches!(missing, RuntimeError::Missing { .. }), "{missing}");
        assert!(missing.to_string().contains("scripts/models/onnxruntime.sh"), "{missing}");
    }

    #[test]
    fn a_library_that_is_not_the_pinned_one_is_never_loaded() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(DIR_NAME)).unwrap();
        std::fs::write(root.path().join(DIR_NAME).join(LIBRARY_FILE), b"not onnxruntime").unwrap();
        for choice in [RuntimeChoice::Auto, RuntimeChoice::Onnxruntime] {
            let error = Runtime::select(choice, root.path()).unwrap_err();
            assert!(matches!(error, RuntimeError::Checksum { .. }), "{error}");
            assert!(error.to_string().contains("reinstall it with scripts/models/onnxruntime.sh"), "{error}");
        }
    }

    #[test]
    fn outputs_are_read_row_major() {
        let output = Output { shape: vec![2, 3], values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0] };
        assert_eq!((output.at(&[0, 2]), output.at(&[1, 0]), output.at(&[1, 2])), (2.0, 3.0, 5.0));
    }
}
