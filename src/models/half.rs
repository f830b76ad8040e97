//! A linear layer whose weights stay float16 in memory, as the model file stores them.
//!
//! Why: Whisper base is 74 M parameters stored as float16. Widened to f32 once at load, as candle's
//! `Linear` needs, it held 290 MB for the life of the server; kept as float16 it holds 145 MB, with
//! the same values (widening a float16 is exact, so every product is the one the f32 weights gave).
//!
//! Two ways through, by the number of input rows:
//! - a few rows (a decoding step feeds one token, a prompt three): `hume_kernels::float16`
//!   (`crates/kernels`) reads each float16 weight once and dots it with every row. A step is
//!   bound by reading the weights from memory, so reading half the bytes is also the faster way.
//! - many rows (the encoder's 1,500 frames): the weight matrix is widened into a scratch tensor
//!   for this call and multiplied by candle's matrix multiply, whose blocking beats any dot
//!   product at that size. The widening costs about a millisecond per million weights.

use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use candle_nn::VarBuilder;
use half::f16;

/// Up to this many input rows take the dot-product path.
const FEW_ROWS: usize = 8;

/// `y = x · Wᵀ + b` with `W` `(outputs, inputs)` float16 and `x`, `b`, `y` f32.
#[derive(Clone)]
pub struct HalfLinear {
    /// `(outputs, inputs)`, float16, contiguous.
    weight: Tensor,
    bias: Option<Tensor>,
}

impl HalfLinear {
    /// Loads `weight` (and `bias` when `with_bias`) under `vb`, keeping the weight's float16. A
    /// weight stored in another float type is narrowed to float16 (Whisper's are stored so).
    pub fn load(inputs: usize, outputs: usize, with_bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints_dtype((outputs, inputs), "weight", Default::default(), DType::F16)?;
        let bias =
            with_bias.then(|| vb.get_with_hints_dtype(outputs, "bias", Default::default(), DType::F32)).transpose()?;
        Self::new(weight, bias)
    }

    /// A layer of the float16 `weight` `(outputs, inputs)` and an f32 `bias`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let weight = weight.to_dtype(DType::F16)?.contiguous()?;
        weight.dims2()?;
        Ok(Self { weight, bias })
    }

    /// The weight, `(outputs, inputs)` float16.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `x · Wᵀ + b` over the last dimension of `x` (f32, any leading dimensions).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (outputs, inputs) = self.weight.dims2()?;
        let dims = x.dims().to_vec();
        let rows = x.elem_count() / inputs.max(1);
        let mut out_dims = dims.clone();
        *out_dims.last_mut().ok_or_else(|| candle_core::Error::Msg("a scalar input".into()))? = outputs;
        let y = if rows <= FEW_ROWS {
            let values: Vec<f32> = x.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            let y =
                with_weights(&self.weight, |w| hume_kernels::float16::rows_times_transposed(w, &values, rows, inputs))?;
            Tensor::from_vec(y, out_dims, x.device())?
        } else {
            let w = self.weight.to_dtype(DType::F32)?;
            let w = match dims.len() {
                4 => w.broadcast_left((dims[0], dims[1]))?.t()?,
                3 => w.broadcast_left(dims[0])?.t()?,
                _ => w.t()?,
            };
            x.matmul(&w)?
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// Runs `f` on the weight's float16 values.
fn with_weights<T>(weight: &Tensor, f: impl FnOnce(&[f16]) -> T) -> Result<T> {
    let (storage, layout) = weight.storage_and_layout();
    let Storage::Cpu(CpuStorage::F16(values)) = &*storage else {
        candle_core::bail!("HalfLinear holds a float16 weight on the CPU");
    };
    let start = layout.start_offset();
    Ok(f(&values[start..start + layout.shape().elem_count()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Both paths give what candle's f32 `Linear` gives on the widened weights, for sizes that
    /// are and are not multiples of the vector width.
    #[test]
    fn both_paths_match_candles_linear_on_the_widened_weights() {
        use candle_nn::Module;
        for (inputs, outputs) in [(512, 130), (37, 9), (2048, 512)] {
            let weight =
                Tensor::randn(0f32, 0.05, (outputs, inputs), &Device::Cpu).unwrap().to_dtype(DType::F16).unwrap();
            let bias = Tensor::randn(0f32, 1.0, outputs, &Device::Cpu).unwrap();
            let ours = HalfLinear::new(weight.clone(), Some(bias.clone())).unwrap();
            let theirs = candle_nn::Linear::new(weight.to_dtype(DType::F32).unwrap(), Some(bias));
            for rows in [1, 3, FEW_ROWS, FEW_ROWS + 1, 40] {
                let x = Tensor::randn(0f32, 1.0, (1, rows, inputs), &Device::Cpu).unwrap();
                let diff = (ours.forward(&x).unwrap() - theirs.forward(&x).unwrap()).unwrap();
                let diff = diff.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                assert!(diff < 1e-4, "{inputs}x{outputs}, {rows} rows: differs by {diff}");
            }
        }
    }
}
