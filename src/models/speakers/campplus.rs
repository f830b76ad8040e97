//! CAM++ (Wang et al., "CAM++: A Fast and Efficient Network for Speaker Verification Using
//! Context-Aware Masking", Interspeech 2023), ported from 3D-Speaker's
//! `speakerlab/models/campplus/DTDNN.py` and `layers.py` to candle, in inference mode (batch
//! norms use their running statistics).
//!
//! The graph, for 80-dim fbank frames `(B, T, 80)` minus their mean:
//! - FCM head: a 2D front end over (frequency, time): conv 3x3 (1 -> 32), two stages of two
//!   residual blocks (the first of each halving frequency), a conv halving frequency again, then
//!   frequency and channels flattened to 320 channels over time;
//! - a TDNN (conv 5, stride 2: time halved) to 128 channels;
//! - three CAM dense blocks (12, 24, 16 layers; growth 32; dilation 1, 2, 2), each layer a
//!   bottleneck then a context-aware masked conv: its output is scaled by a sigmoid mask made
//!   from the utterance mean plus the mean of the 100-frame segment each frame is in; each block
//!   followed by a transit layer halving the channels;
//! - batch norm + ReLU, statistics pooling (mean and unbiased standard deviation over time),
//!   a dense layer to 192 with an affine-free batch norm: the embedding.
//!
//! The weights are the state dict of `campplus_cn_en_common.pt` read directly by candle's
//! pickle reader (names as in the PyTorch module).

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// Size of the embedding.
pub const EMBEDDING: usize = 192;
const BN_EPS: f64 = 1e-5;
/// Frames per context segment of the masks (`seg_len` in 3D-Speaker).
const SEG_LEN: usize = 100;

/// A batch norm in eval mode, folded into a per-channel scale and shift, applied on dim 1.
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    fn load(vb: VarBuilder, channels: usize, affine: bool) -> Result<Self> {
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let inv = (var + BN_EPS)?.sqrt()?.recip()?;
        let (scale, shift) = if affine {
            let w = vb.get(channels, "weight")?;
            let b = vb.get(channels, "bias")?;
            let scale = (w * &inv)?;
            let shift = (b - (&mean * &scale)?)?;
            (scale, shift)
        } else {
            let shift = (mean.neg()? * &inv)?;
            (inv, shift)
        };
        Ok(Self { scale, shift })
    }

    /// `x` of shape `(B, C, ...)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut shape = vec![1, self.scale.dim(0)?];
        shape.extend(std::iter::repeat_n(1, x.rank() - 2));
        x.broadcast_mul(&self.scale.reshape(shape.as_slice())?)?.broadcast_add(&self.shift.reshape(shape.as_slice())?)
    }
}

/// A 1D convolution (no groups); kernel size 1 runs as a matrix product.
struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
    stride: usize,
    dilation: usize,
}

impl Conv1d {
    #[allow(clippy::too_many_arguments)]
    fn load(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        let weight = if kernel == 1 { weight.squeeze(2)? } else { weight };
        let bias = if bias { Some(vb.get(c_out, "bias")?) } else { None };
        Ok(Self { weight, bias, padding, stride, dilation })
    }

    fn pointwise(vb: VarBuilder, c_in: usize, c_out: usize, bias: bool) -> Result<Self> {
        Self::load(vb, c_in, c_out, 1, 1, 0, 1, bias)
    }

    /// `x`: `(B, C_in, T)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.weight.rank() == 2 {
            self.weight.broadcast_matmul(x)?
        } else {
            x.conv1d(&self.weight, self.padding, self.stride, self.dilation, 1)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?),
            None => Ok(y),
        }
    }
}

/// A 3x3 2D convolution (no bias), padding 1, with a stride of 1 or 2 along frequency only
/// (dim 2): PyTorch's `stride=(2, 1)`, computed at stride 1 and then subsampled, which gives the
/// same rows.
struct Conv2d {
    weight: Tensor,
    kernel: usize,
    freq_stride: usize,
}

impl Conv2d {
    fn load(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize, freq_stride: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((c_out, c_in, kernel, kernel), "weight")?, kernel, freq_stride })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.kernel == 1 { subsample_freq(x, self.freq_stride)? } else { x.clone() };
        let y = x.conv2d(&self.weight, self.kernel / 2, 1, 1, 1)?;
        if self.kernel == 1 {
            Ok(y)
        } else {
            subsample_freq(&y, self.freq_stride)
        }
    }
}

/// Every `stride`th row of dim 2, from the first.
fn subsample_freq(x: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let rows = x.dim(2)?;
    let idx: Vec<u32> = (0..rows as u32).step_by(stride).collect();
    x.index_select(&Tensor::new(idx, x.device())?, 2)
}

struct ResBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl ResBlock {
    fn load(vb: VarBuilder, planes: usize, stride: usize) -> Result<Self> {
        let shortcut = if stride != 1 {
            Some((
                Conv2d::load(vb.pp("shortcut.0"), planes, planes, 1, stride)?,
                BatchNorm::load(vb.pp("shortcut.1"), planes, true)?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: Conv2d::load(vb.pp("conv1"), planes, planes, 3, stride)?,
            bn1: BatchNorm::load(vb.pp("bn1"), planes, true)?,
            conv2: Conv2d::load(vb.pp("conv2"), planes, planes, 3, 1)?,
            bn2: BatchNorm::load(vb.pp("bn2"), planes, true)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let out = self.bn2.forward(&self.conv2.forward(&out)?)?;
        let short = match &self.shortcut {
            Some((conv, bn)) => bn.forward(&conv.forward(x)?)?,
            None => x.clone(),
        };
        (out + short)?.relu()
    }
}

/// The FCM head: `(B, 80, T)` to `(B, 320, T)`.
struct Fcm {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<ResBlock>,
    conv2: Conv2d,
    bn2: BatchNorm,
}

impl Fcm {
    const CHANNELS: usize = 32;

    fn load(vb: VarBuilder) -> Result<Self> {
        let c = Self::CHANNELS;
        let mut blocks = Vec::new();
        for layer in ["layer1", "layer2"] {
            blocks.push(ResBlock::load(vb.pp(format!("{layer}.0")), c, 2)?);
            blocks.push(ResBlock::load(vb.pp(format!("{layer}.1")), c, 1)?);
        }
        Ok(Self {
            conv1: Conv2d::load(vb.pp("conv1"), 1, c, 3, 1)?,
            bn1: BatchNorm::load(vb.pp("bn1"), c, true)?,
            blocks,
            conv2: Conv2d::load(vb.pp("conv2"), c, c, 3, 2)?,
            bn2: BatchNorm::load(vb.pp("bn2"), c, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.bn1.forward(&self.conv1.forward(&x.unsqueeze(1)?)?)?.relu()?;
        for block in &self.blocks {
            out = block.forward(&out)?;
        }
        let out = self.bn2.forward(&self.conv2.forward(&out)?)?.relu()?;
        let (b, c, f, t) = out.dims4()?;
        out.reshape((b, c * f, t))
    }
}

/// Batch norm then ReLU (3D-Speaker's `batchnorm-relu` nonlinearity).
struct BnRelu(BatchNorm);

impl BnRelu {
    fn load(vb: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Self(BatchNorm::load(vb.pp("batchnorm"), channels, true)?))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)?.relu()
    }
}

/// One layer of a CAM dense block: bottleneck, then the context-aware masked convolution.
struct CamDenseLayer {
    nonlinear1: BnRelu,
    linear1: Conv1d,
    nonlinear2: BnRelu,
    local: Conv1d,
    mask1: Conv1d,
    mask2: Conv1d,
}

impl CamDenseLayer {
    const BN_CHANNELS: usize = 128;
    const GROWTH: usize = 32;

    fn load(vb: VarBuilder, c_in: usize, dilation: usize) -> Result<Self> {
        let (bn, out) = (Self::BN_CHANNELS, Self::GROWTH);
        let cam = vb.pp("cam_layer");
        Ok(Self {
            nonlinear1: BnRelu::load(vb.pp("nonlinear1"), c_in)?,
            linear1: Conv1d::pointwise(vb.pp("linear1"), c_in, bn, false)?,
            nonlinear2: BnRelu::load(vb.pp("nonlinear2"), bn)?,
            local: Conv1d::load(cam.pp("linear_local"), bn, out, 3, 1, dilation, dilation, false)?,
            mask1: Conv1d::pointwise(cam.pp("linear1"), bn, bn / 2, true)?,
            mask2: Conv1d::pointwise(cam.pp("linear2"), bn / 2, out, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.nonlinear2.forward(&self.linear1.forward(&self.nonlinear1.forward(x)?)?)?;
        let y = self.local.forward(&x)?;
        let context = x.mean_keepdim(D::Minus1)?.broadcast_add(&segment_means(&x)?)?;
        let mask = candle_nn::ops::sigmoid(&self.mask2.forward(&self.mask1.forward(&context)?.relu()?)?)?;
        y * mask
    }
}

/// Each frame replaced by the mean of its 100-frame segment (PyTorch's `avg_pool1d(kernel 100,
/// stride 100, ceil_mode=True)` expanded back: the last, shorter segment is averaged over the
/// frames it has).
fn segment_means(x: &Tensor) -> Result<Tensor> {
    let t = x.dim(D::Minus1)?;
    let mut parts = Vec::with_capacity(t.div_ceil(SEG_LEN));
    let mut start = 0;
    while start < t {
        let len = SEG_LEN.min(t - start);
        let seg = x.narrow(D::Minus1, start, len)?.mean_keepdim(D::Minus1)?;
        parts.push(seg.broadcast_as((x.dim(0)?, x.dim(1)?, len))?);
        start += len;
    }
    Tensor::cat(&parts, D::Minus1)
}

struct Transit {
    nonlinear: BnRelu,
    linear: Conv1d,
}

/// The loaded CAM++ network.
pub struct CamPlusPlus {
    head: Fcm,
    tdnn: (Conv1d, BnRelu),
    blocks: Vec<(Vec<CamDenseLayer>, Transit)>,
    out_nonlinear: BnRelu,
    dense: (Conv1d, BatchNorm),
    device: Device,
}

impl CamPlusPlus {
    /// Builds the network from its state dict (`vb` at the root of `campplus_cn_en_common.pt`).
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let x = vb.pp("xvector");
        let mut channels = 128;
        let tdnn = (
            Conv1d::load(x.pp("tdnn.linear"), 320, channels, 5, 2, 2, 1, false)?,
            BnRelu::load(x.pp("tdnn.nonlinear"), channels)?,
        );
        let mut blocks = Vec::new();
        for (i, (layers, dilation)) in [(12, 1), (24, 2), (16, 2)].into_iter().enumerate() {
            let block = x.pp(format!("block{}", i + 1));
            let layers = (0..layers)
                .map(|l| {
                    CamDenseLayer::load(
                        block.pp(format!("tdnnd{}", l + 1)),
                        channels + l * CamDenseLayer::GROWTH,
                        dilation,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            channels += layers.len() * CamDenseLayer::GROWTH;
            let t = x.pp(format!("transit{}", i + 1));
            let transit = Transit {
                nonlinear: BnRelu::load(t.pp("nonlinear"), channels)?,
                linear: Conv1d::pointwise(t.pp("linear"), channels, channels / 2, false)?,
            };
            channels /= 2;
            blocks.push((layers, transit));
        }
        Ok(Self {
            head: Fcm::load(vb.pp("head"))?,
            tdnn,
            blocks,
            out_nonlinear: BnRelu::load(x.pp("out_nonlinear"), channels)?,
            dense: (
                Conv1d::pointwise(x.pp("dense.linear"), channels * 2, EMBEDDING, false)?,
                BatchNorm::load(x.pp("dense.nonlinear.batchnorm"), EMBEDDING, false)?,
            ),
            device: vb.device().clone(),
        })
    }

    /// Embeddings `(B, 192)` of mean-normalised fbank windows `(B, T, 80)`, T >= 2 frames.
    pub fn forward(&self, feats: &Tensor) -> Result<Tensor> {
        self.forward_traced(feats, &mut |_, _| {})
    }

    /// [`Self::forward`], handing each stage's output to `trace` (for comparisons with the
    /// reference implementation: `head`, `tdnn`, `block1.tdnnd1`, `transit1`, ..., `stats`).
    pub fn forward_traced(&self, feats: &Tensor, trace: &mut dyn FnMut(&str, &Tensor)) -> Result<Tensor> {
        let x = self.head.forward(&feats.permute((0, 2, 1))?.contiguous()?)?;
        trace("head", &x);
        let mut x = self.tdnn.1.forward(&self.tdnn.0.forward(&x)?)?;
        trace("tdnn", &x);
        for (b, (layers, transit)) in self.blocks.iter().enumerate() {
            for (l, layer) in layers.iter().enumerate() {
                let y = layer.forward(&x)?;
                if l == 0 {
                    trace(&format!("block{}.tdnnd1", b + 1), &y);
                }
                x = Tensor::cat(&[&x, &y], 1)?;
            }
            x = transit.linear.forward(&transit.nonlinear.forward(&x)?)?;
            trace(&format!("transit{}", b + 1), &x);
        }
        let x = self.out_nonlinear.forward(&x)?;
        // Statistics pooling: mean and unbiased standard deviation over time.
        let t = x.dim(D::Minus1)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let var = (x.broadcast_sub(&mean)?.sqr()?.sum_keepdim(D::Minus1)? / (t.max(2) - 1) as f64)?;
        let stats = Tensor::cat(&[&mean, &var.sqrt()?], 1)?;
        trace("stats", &stats);
        let emb = self.dense.1.forward(&self.dense.0.forward(&stats)?)?;
        emb.squeeze(D::Minus1)
    }

    /// The embedding of one window of log mel frames (row-major `[frames][80]`), its mean over
    /// the window removed here.
    pub fn embed_frames(&self, frames: &[f32], count: usize) -> Result<Vec<f32>> {
        Ok(self.embed_batch(&[frames], count)?.pop().unwrap_or_default())
    }

    /// Embeddings of several windows of `count` frames each.
    pub fn embed_batch(&self, windows: &[&[f32]], count: usize) -> Result<Vec<Vec<f32>>> {
        let dims = super::fbank::MEL_BINS;
        let mut flat = Vec::with_capacity(windows.len() * count * dims);
        for w in windows {
            let mut mean = vec![0f64; dims];
            for frame in w.chunks_exact(dims) {
                for (m, &v) in mean.iter_mut().zip(frame) {
                    *m += f64::from(v);
                }
            }
            for frame in w.chunks_exact(dims) {
                flat.extend(frame.iter().zip(&mean).map(|(&v, &m)| v - (m / count as f64) as f32));
            }
        }
        let feats = Tensor::from_vec(flat, (windows.len(), count, dims), &self.device)?;
        self.forward(&feats)?.to_dtype(DType::F32)?.to_vec2()
    }
}

impl Module for CamPlusPlus {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        CamPlusPlus::forward(self, xs)
    }
}
