//! A safetensors file read one tensor at a time, straight into each tensor's storage, with the
//! file's sha256 computed on the same pass.
//!
//! Why: Whisper base ships as 145 MB of float16. Read whole, then parsed (a copy) and widened,
//! its file, the copy and the widened weights were all alive at once: the server's start-up
//! high-water stood about 150 MB above its idle RSS because of it (docs/benchmarks.md). Here each
//! tensor is read once into the storage it keeps ([`read`], for models that run float16 weights as
//! they are) or widened as it is read ([`read_f32`]), and the file is read once: what is loaded is
//! exactly what was hashed.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor, WithDType};
use half::{bf16, f16};
use sha2::{Digest, Sha256};

/// The header key that is no tensor.
const METADATA: &str = "__metadata__";
/// The largest header this reader accepts (safetensors' own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Why a safetensors file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file is missing or unreadable, or ended early.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not a safetensors file this reader understands.
    #[error("{0}")]
    Invalid(String),
    /// candle refused a tensor.
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// Where one tensor is in the file, and what it is.
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// Every tensor of the safetensors file at `path` as f32 on the CPU, and the file's sha256 in
/// hex. Float16, bfloat16 and float32 tensors are read; any other type is refused.
pub fn read_f32(path: &Path) -> Result<(HashMap<String, Tensor>, String), WeightsError> {
    read_as(path, Some(DType::F32))
}

/// Every tensor of the safetensors file at `path` in the float type it is stored in, on the CPU,
/// and the file's sha256 in hex.
pub fn read(path: &Path) -> Result<(HashMap<String, Tensor>, String), WeightsError> {
    read_as(path, None)
}

/// The tensors, each widened to `dtype` when one is given.
fn read_as(path: &Path, dtype: Option<DType>) -> Result<(HashMap<String, Tensor>, String), WeightsError> {
    let mut reader = Hashed { file: std::io::BufReader::new(std::fs::File::open(path)?), hasher: Sha256::new() };
    let mut len = [0u8; 8];
    reader.read(&mut len)?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER {
        return Err(WeightsError::Invalid(format!("a header of {header_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read(&mut header)?;
    let entries = entries(&header)?;
    let mut tensors = HashMap::with_capacity(entries.len());
    let mut at = 0u64;
    for entry in entries {
        if entry.begin < at {
            return Err(WeightsError::Invalid(format!("tensor {} overlaps the one before it", entry.name)));
        }
        reader.read(&mut vec![0u8; to_usize(entry.begin - at)?])?; // a gap, hashed like the rest
        let tensor = match entry.dtype.as_str() {
            "F16" => reader.tensor::<f16>(&entry)?,
            "BF16" => reader.tensor::<bf16>(&entry)?,
            "F32" => reader.tensor::<f32>(&entry)?,
            other => return Err(WeightsError::Invalid(format!("tensor {} is {other}, not a float", entry.name))),
        };
        at = entry.end;
        let tensor = match dtype {
            Some(dtype) => tensor.to_dtype(dtype)?,
            None => tensor,
        };
        tensors.insert(entry.name, tensor);
    }
    // Anything after the last tensor is part of the file too.
    let mut rest = Vec::new();
    reader.file.read_to_end(&mut rest)?;
    reader.hasher.update(&rest);
    Ok((tensors, hex::encode(reader.hasher.finalize())))
}

/// The file, and the sha256 of what was read of it so far.
struct Hashed {
    file: std::io::BufReader<std::fs::File>,
    hasher: Sha256,
}

impl Hashed {
    /// Fills `buf` from the file, hashing it.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact(buf)?;
        self.hasher.update(&*buf);
        Ok(())
    }

    /// The next tensor, read straight into its storage (the file's little-endian bytes are the
    /// values' own on the little-endian hosts this server builds for), so only this tensor is held
    /// in its stored type before it is widened.
    fn tensor<T: WithDType + bytemuck::Pod>(&mut self, entry: &Entry) -> Result<Tensor, WeightsError> {
        let bytes = to_usize(entry.end - entry.begin)?;
        let count = entry.shape.iter().product::<usize>();
        if count * std::mem::size_of::<T>() != bytes {
            return Err(WeightsError::Invalid(format!("tensor {} has the wrong size for its shape", entry.name)));
        }
        let mut values = vec![T::zeroed(); count];
        self.read(bytemuck::cast_slice_mut(&mut values))?;
        Ok(Tensor::from_vec(values, entry.shape.as_slice(), &Device::Cpu)?)
    }
}

#[cfg(target_endian = "big")]
compile_error!("models::weights reads safetensors' little-endian values as they lie");

/// A length from the file as a `usize`.
fn to_usize(n: u64) -> Result<usize, WeightsError> {
    usize::try_from(n).map_err(|_| WeightsError::Invalid(format!("a length of {n} bytes")))
}

/// The header's tensors in file order.
fn entries(header: &[u8]) -> Result<Vec<Entry>, WeightsError> {
    let invalid = |why: String| WeightsError::Invalid(why);
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| invalid(format!("header: {e}")))?;
    let mut entries = Vec::with_capacity(map.len());
    for (name, info) in map.into_iter().filter(|(name, _)| name != METADATA) {
        let field = |key: &str| info.get(key).ok_or_else(|| invalid(format!("tensor {name} has no {key}")));
        let dtype = field("dtype")?.as_str().unwrap_or_default().to_owned();
        let numbers = |key: &str| -> Result<Vec<u64>, WeightsError> {
            let values = field(key)?.as_array().ok_or_else(|| invalid(format!("tensor {name}: {key}")))?;
            values.iter().map(|v| v.as_u64().ok_or_else(|| invalid(format!("tensor {name}: {key}")))).collect()
        };
        let shape = numbers("shape")?.into_iter().map(|d| d as usize).collect();
        let [begin, end] = numbers("data_offsets")?[..] else {
            return Err(invalid(format!("tensor {name}: data_offsets")));
        };
        if end < begin {
            return Err(invalid(format!("tensor {name} ends before it begins")));
        }
        entries.push(Entry { name, dtype, shape, begin, end });
    }
    entries.sort_by_key(|e| e.begin);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of `tensors` written by candle (the format's own writer).
    fn written(tensors: &[(&str, Tensor)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let map: HashMap<String, Tensor> = tensors.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_what_candle_reads_widened_and_hashes_the_whole_file() {
        let a = Tensor::new(&[[0.5f32, -1.25, 3.0], [1e-3, 2.0, -0.0]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[7.5f32, 65504.0], &Device::Cpu).unwrap();
        let (_dir, path) = written(&[("a", a.to_dtype(DType::F16).unwrap()), ("b", b.to_dtype(DType::BF16).unwrap())]);
        let (tensors, sha) = read_f32(&path).unwrap();
        assert_eq!(sha, crate::models::sha256_of_file(&path).unwrap());
        let candle = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        for name in ["a", "b"] {
            let ours = &tensors[name];
            assert_eq!(ours.dtype(), DType::F32);
            let theirs = candle[name].to_dtype(DType::F32).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - &theirs).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
        let (stored, stored_sha) = read(&path).unwrap();
        assert_eq!(stored_sha, sha);
        assert_eq!((stored["a"].dtype(), stored["b"].dtype()), (DType::F16, DType::BF16));
        assert_eq!(
            stored["a"].to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap(),
            tensors["a"].to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn a_truncated_file_or_an_integer_tensor_is_refused() {
        let (_dir, path) = written(&[("a", Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap())]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(matches!(read_f32(&path), Err(WeightsError::Io(_))));
        let (_dir, path) = written(&[("ids", Tensor::new(&[1i64, 2], &Device::Cpu).unwrap())]);
        let error = read_f32(&path).unwrap_err().to_string();
        assert!(error.contains("ids") && error.contains("I64"), "{error}");
    }
}
