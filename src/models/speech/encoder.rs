//! Whisper's audio encoder (OpenAI's `AudioEncoder`, loaded from candle's weight names), with its
//! linear layers kept as float16 ([`HalfLinear`]) and its attention taken one head at a time.
//!
//! Why not candle's `AudioEncoder`: it needs its weights widened to f32 (80 MB for Whisper base,
//! against 40 MB kept), and it builds all eight heads' 1500 × 1500 attention at once: 72 MB for the
//! scores plus as much for their softmax, in every layer, which set the high-water of a
//! transcription job. Taken head by head the same products need 9 MB. Its GELU and softmax
//! called `tanhf` and `expf` one value at a time on one core (a third of the encoder's time); they
//! run here on [`hume_kernels::activation`]. The network and its results
//! are candle's (a test compares them on the installed model); the scale that candle applies to
//! queries and keys on every call is folded into the query's weights at load.

use candle_core::{Result, Tensor};
use candle_nn::{layer_norm, Conv1d, Conv1dConfig, LayerNorm, Module, VarBuilder};
use candle_transformers::models::whisper::Config;

use crate::models::half::HalfLinear;

/// One encoder layer: self-attention over the frames, then the MLP.
struct Layer {
    query: HalfLinear,
    key: HalfLinear,
    value: HalfLinear,
    out: HalfLinear,
    attn_ln: LayerNorm,
    fc1: HalfLinear,
    fc2: HalfLinear,
    mlp_ln: LayerNorm,
    n_head: usize,
}

impl Layer {
    fn load(n_state: usize, n_head: usize, vb: VarBuilder) -> Result<Self> {
        let attention = vb.pp("self_attn");
        // OpenAI scales q and k by (state / heads)^-0.25 each. Both factors are folded into q's
        // weight and bias: 1/8 for Whisper's 64-wide heads, a power of two, so the float16
        // weights stay exact and q · kᵀ is the same.
        let scale = ((n_state / n_head) as f64).powf(-0.5);
        let q = attention.pp("q_proj");
        let query =
            HalfLinear::new((q.get((n_state, n_state), "weight")? * scale)?, Some((q.get(n_state, "bias")? * scale)?))?;
        Ok(Self {
            query,
            key: HalfLinear::load(n_state, n_state, false, attention.pp("k_proj"))?,
            value: HalfLinear::load(n_state, n_state, true, attention.pp("v_proj"))?,
            out: HalfLinear::load(n_state, n_state, true, attention.pp("out_proj"))?,
            attn_ln: layer_norm(n_state, 1e-5, vb.pp("self_attn_layer_norm"))?,
            fc1: HalfLinear::load(n_state, 4 * n_state, true, vb.pp("fc1"))?,
            fc2: HalfLinear::load(4 * n_state, n_state, true, vb.pp("fc2"))?,
            mlp_ln: layer_norm(n_state, 1e-5, vb.pp("final_layer_norm"))?,
            n_head,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attention(&self.attn_ln.forward(x)?)?)?;
        let mlp = self.fc2.forward(&gelu(self.fc1.forward(&self.mlp_ln.forward(&x)?)?)?)?;
        x + mlp
    }

    /// Self-attention of `x` `(1, frames, state)`, one head at a time.
    fn attention(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, n_state) = x.dims3()?;
        let width = n_state / self.n_head;
        let (q, k, v) = (self.query.forward(x)?, self.key.forward(x)?, self.value.forward(x)?);
        let heads = (0..self.n_head)
            .map(|h| {
                let head = |t: &Tensor| t.narrow(2, h * width, width)?.contiguous();
                let scores = head(&q)?.matmul(&head(&k)?.t()?)?;
                softmax_last_dim(scores)?.matmul(&head(&v)?)
            })
            .collect::<Result<Vec<_>>>()?;
        self.out.forward(&Tensor::cat(&heads, 2)?)
    }
}

/// The encoder: two convolutions, sinusoidal positions, the layers and a final norm.
pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    layers: Vec<Layer>,
    ln_post: LayerNorm,
}

impl Encoder {
    /// Loads the encoder from `model.encoder` weights, named as in candle's Whisper.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let n_state = config.d_model;
        let conv = |inputs: usize, stride: usize, name: &str| -> Result<Conv1d> {
            let vb = vb.pp(name);
            let weight = vb.get((n_state, inputs, 3), "weight")?;
            let bias = vb.get(n_state, "bias")?;
            let config = Conv1dConfig { padding: 1, stride, groups: 1, dilation: 1, cudnn_fwd_algo: None };
            Ok(Conv1d::new(weight, Some(bias), config))
        };
        let layers = (0..config.encoder_layers)
            .map(|i| Layer::load(n_state, config.encoder_attention_heads, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv1: conv(config.num_mel_bins, 1, "conv1")?,
            conv2: conv(n_state, 2, "conv2")?,
            positions: sinusoids(config.max_source_positions, n_state)?,
            layers,
            ln_post: layer_norm(n_state, 1e-5, vb.pp("layer_norm"))?,
        })
    }

    /// The audio features of a `(1, mels, frames)` log-mel window: `(1, frames / 2, state)`.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = gelu(self.conv1.forward(mel)?)?;
        let x = gelu(self.conv2.forward(&x)?)?.transpose(1, 2)?;
        let (_, frames, _) = x.dims3()?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, frames)?)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        self.ln_post.forward(&x)
    }
}

/// candle's `gelu` (the tanh form), on both cores with a vectorised exponential
/// ([`hume_kernels::activation`]).
fn gelu(x: Tensor) -> Result<Tensor> {
    let mut values: Vec<f32> = x.flatten_all()?.to_vec1()?;
    hume_kernels::activation::gelu(&mut values);
    Tensor::from_vec(values, x.dims(), x.device())
}

/// candle's `softmax_last_dim`, with a vectorised exponential.
fn softmax_last_dim(x: Tensor) -> Result<Tensor> {
    let cols = x.dims().last().copied().unwrap_or(1);
    let mut values: Vec<f32> = x.flatten_all()?.to_vec1()?;
    hume_kernels::activation::softmax_rows(&mut values, cols);
    Tensor::from_vec(values, x.dims(), x.device())
}

/// OpenAI's sinusoidal positions `(length, channels)`, as candle computes them.
fn sinusoids(length: usize, channels: usize) -> Result<Tensor> {
    let increment = 10000f32.ln() / (channels / 2 - 1) as f32;
    let mut values = vec![0f32; length * channels];
    for (t, row) in values.chunks_mut(channels).enumerate() {
        for i in 0..channels / 2 {
            let angle = t as f32 * (i as f32 * -increment).exp();
            row[i] = angle.sin();
            row[channels / 2 + i] = angle.cos();
        }
    }
    Tensor::from_vec(values, (length, channels), &candle_core::Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_transformers::models::whisper::model::Whisper;

    /// The encoder gives candle's encoder's features on the installed Whisper base.
    #[test]
    fn features_match_candles_encoder() {
        let (config, vb) = super::super::installed_whisper_base();
        let ours = Encoder::load(vb.pp("model.encoder"), &config).unwrap();
        let mut theirs = Whisper::load(&vb, config.clone()).unwrap();
        // A fixed input in the range of real log-mel features (about -1 to 1.5).
        let values: Vec<f32> =
            (0..config.num_mel_bins * 3000).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.4) * 1.2).collect();
        let mel = Tensor::from_vec(values, (1, config.num_mel_bins, 3000), &Device::Cpu).unwrap();
        let expected = theirs.encoder.forward(&mel, true).unwrap();
        let got = ours.forward(&mel).unwrap();
        assert_eq!(got.dims(), expected.dims());
        let scale = expected.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let diff = (got - expected).unwrap().abs().unwrap().flatten_all().unwrap();
        let (worst, mean) =
            (diff.max(0).unwrap().to_scalar::<f32>().unwrap(), diff.mean(0).unwrap().to_scalar::<f32>().unwrap());
        // Summed in another order (head by head) with another exponential: the same to about
        // one part in ten thousand of the largest feature.
        assert!(
            worst <= 1e-3 * scale && mean < 1e-4,
            "features differ by {worst} at most, {mean} on average (largest {scale})"
        );
    }
}
