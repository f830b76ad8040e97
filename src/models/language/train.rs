//! Fitting the linear heads (used by `src/bin/train-language-head.rs`).
//!
//! L2-regularised logistic (one-vs-rest) or softmax regression on the embeddings, by
//! Nesterov-accelerated full-batch gradient descent. The problem is convex and small
//! (384 features, about a thousand sentences), so no ML framework is needed: candle
//! tensors do the matrix products.

use super::{sigmoid, softmax, LinearHead};
use candle_core::{Device, Result, Tensor, D};

/// How logits become scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Independent probabilities (one-vs-rest logistic regression).
    Sigmoid,
    /// One distribution over the labels (softmax regression).
    Softmax,
}

impl Link {
    pub fn apply(self, logits: &[f32]) -> Vec<f32> {
        match self {
            Link::Sigmoid => logits.iter().copied().map(sigmoid).collect(),
            Link::Softmax => softmax(logits),
        }
    }
}

/// Fits one output per label to minimise the mean cross-entropy plus `l2/2 · |W|²`
/// (biases are not penalised). `y` holds 0/1 targets (one-hot rows for [`Link::Softmax`]).
pub fn fit(
    x: &[Vec<f32>],
    y: &[Vec<f32>],
    labels: &[&str],
    link: Link,
    l2: f32,
    iterations: usize,
) -> Result<LinearHead> {
    let (n, d, k) = (x.len(), x[0].len(), labels.len());
    let dev = &Device::Cpu;
    // A constant feature carries the bias.
    let xs = Tensor::from_iter(x.iter().flat_map(|r| r.iter().copied().chain([1.0])), dev)?.reshape((n, d + 1))?;
    let ys = Tensor::from_iter(y.iter().flatten().copied(), dev)?.reshape((n, k))?;
    let xt = xs.t()?.contiguous()?;
    let penalty = Tensor::from_iter((0..=d).map(|i| if i < d { l2 } else { 0.0 }), dev)?.reshape((d + 1, 1))?;
    // Step 1/L, L bounding the Hessian: curvature of the link × largest squared row norm.
    let max_norm2 = x.iter().map(|r| 1.0 + r.iter().map(|v| v * v).sum::<f32>()).fold(0.0, f32::max);
    let curvature = match link {
        Link::Sigmoid => 0.25,
        Link::Softmax => 0.5,
    };
    let step = 1.0 / (curvature * max_norm2 + l2) as f64;
    let mut w = Tensor::zeros((d + 1, k), candle_core::DType::F32, dev)?;
    let mut previous = w.clone();
    for t in 0..iterations {
        let look_ahead = (&w + ((&w - &previous)? * (t as f64 / (t as f64 + 3.0)))?)?;
        let z = xs.matmul(&look_ahead)?;
        let p = match link {
            Link::Sigmoid => candle_nn::ops::sigmoid(&z)?,
            Link::Softmax => candle_nn::ops::softmax(&z, D::Minus1)?,
        };
        let grad = ((xt.matmul(&(p - &ys)?)? / n as f64)? + look_ahead.broadcast_mul(&penalty)?)?;
        previous = w;
        w = (look_ahead - (grad * step)?)?;
    }
    let rows = w.t()?.to_vec2::<f32>()?;
    Ok(LinearHead {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        biases: rows.iter().map(|r| r[d]).collect(),
        weights: rows
            .into_iter()
            .map(|mut r| {
                r.truncate(d);
                r
            })
            .collect(),
    })
}

/// Mean cross-entropy of `head` on (`x`, `y`): the model-selection criterion.
pub fn cross_entropy(head: &LinearHead, link: Link, x: &[Vec<f32>], y: &[Vec<f32>]) -> f32 {
    let eps = 1e-7;
    let total: f32 = x
        .iter()
        .zip(y)
        .map(|(x, y)| {
            let p = link.apply(&head.logits(x));
            p.iter()
                .zip(y)
                .map(|(p, y)| match link {
                    Link::Sigmoid => -(y * (p + eps).ln() + (1.0 - y) * (1.0 - p + eps).ln()),
                    Link::Softmax => -y * (p + eps).ln(),
                })
                .sum::<f32>()
        })
        .sum();
    total / x.len() as f32
}
