//! Embedded open models, one folder per modality. They know nothing of jobs or HTTP.

pub mod burst;
pub mod face;
pub mod half;
pub mod language;
pub mod onnx;
pub mod segment;
pub mod speakers;
pub mod speech;
pub mod weights;

use std::path::Path;

use sha2::{Digest, Sha256};

/// The sha256 of the file at `path` in hex, read in small pieces: checking a pinned model file
/// (at start-up, for a model loaded on first use) holds none of it in memory.
pub fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
