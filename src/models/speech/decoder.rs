//! Whisper's text decoder with a key/value cache on self-attention as well as cross-attention.
//!
//! candle's `whisper::model::TextDecoder` caches only the cross-attention keys and values, so
//! every greedy step runs the whole prefix through all layers again: a 100-token window costs
//! about 5,000 token passes instead of 100, which made Whisper base slower than real time on two
//! cores. This decoder is the same network (OpenAI's `TextDecoder`, loaded from the same weight
//! names as candle's) with each layer keeping the keys and values of the tokens it has seen, so a
//! step feeds only the new token. Decoding results are the same; only the cost changes.
//!
//! [`Decoder::cross_attention`] runs a whole token sequence at once and keeps the cross-attention
//! scores of chosen heads, which word timing ([`super::whisper`]) aligns to the audio.

use candle_core::{DType, IndexOp, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, Module, VarBuilder};
use candle_transformers::models::whisper::Config;

use crate::models::half::HalfLinear;

/// One multi-head attention with its cached keys and values.
struct Attention {
    query: HalfLinear,
    key: HalfLinear,
    value: HalfLinear,
    out: HalfLinear,
    n_head: usize,
    /// Self-attention: the `(keys, values)` seen so far, `(1, tokens, state)`; cross-attention:
    /// the audio's keys and values as [`Attention::attend`] takes them.
    cache: Option<(Tensor, Tensor)>,
    /// When set, cross-attention keeps its scores (`q · kᵀ` before the softmax, `(1, heads,
    /// tokens, frames)`) of the last call here.
    scores: Option<Option<Tensor>>,
}

impl Attention {
    fn load(n_state: usize, n_head: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            query: HalfLinear::load(n_state, n_state, true, vb.pp("q_proj"))?,
            key: HalfLinear::load(n_state, n_state, false, vb.pp("k_proj"))?,
            value: HalfLinear::load(n_state, n_state, true, vb.pp("v_proj"))?,
            out: HalfLinear::load(n_state, n_state, true, vb.pp("out_proj"))?,
            n_head,
            cache: None,
            scores: None,
        })
    }

    /// Self-attention of the new tokens `x` over every token seen so far (themselves included).
    fn attend_self(&mut self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (k, v) = (self.key.forward(x)?, self.value.forward(x)?);
        let (k, v) = match self.cache.take() {
            Some((past_k, past_v)) => (Tensor::cat(&[&past_k, &k], 1)?, Tensor::cat(&[&past_v, &v], 1)?),
            None => (k, v),
        };
        let (keys, values) = (self.keys(&k)?, self.heads(&v)?.contiguous()?);
        self.cache = Some((k, v));
        self.attend(x, &keys, &values, mask)
    }

    /// Cross-attention of `x` over the audio features, whose keys and values are computed once
    /// per window and kept in the layout [`Attention::attend`] takes.
    fn attend_audio(&mut self, x: &Tensor, audio: &Tensor) -> Result<Tensor> {
        if self.cache.is_none() {
            let keys = self.keys(&self.key.forward(audio)?)?;
            let values = self.heads(&self.value.forward(audio)?)?.contiguous()?;
            self.cache = Some((keys, values));
        }
        let (keys, values) = self.cache.clone().expect("just filled");
        let keep = self.scores.is_some();
        let (out, scores) = self.attend_scores(x, &keys, &values, None, keep)?;
        if keep {
            self.scores = Some(scores);
        }
        Ok(out)
    }

    /// `(batch, tokens, state)` as `(batch, heads, tokens, state / heads)`.
    fn heads(&self, t: &Tensor) -> Result<Tensor> {
        let (b, n, s) = t.dims3()?;
        t.reshape((b, n, self.n_head, s / self.n_head))?.transpose(1, 2)
    }

    /// Keys scaled and laid out for `q · kᵀ`: `(batch, heads, state / heads, tokens)`.
    fn keys(&self, k: &Tensor) -> Result<Tensor> {
        let (_, _, n_state) = k.dims3()?;
        (self.heads(k)?.transpose(2, 3)? * self.scale(n_state))?.contiguous()
    }

    fn scale(&self, n_state: usize) -> f64 {
        ((n_state / self.n_head) as f64).powf(-0.25)
    }

    /// Attention of `x` over `keys` (from [`Attention::keys`]) and `values` (in heads).
    fn attend(&self, x: &Tensor, keys: &Tensor, values: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.attend_scores(x, keys, values, mask, false)?.0)
    }

    /// [`Attention::attend`], also returning the scores before the softmax when `keep`.
    fn attend_scores(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
        keep: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (_, _, n_state) = x.dims3()?;
        let q = (self.heads(&self.query.forward(x)?)? * self.scale(n_state))?;
        let mut w = q.contiguous()?.matmul(keys)?;
        if let Some(mask) = mask {
            w = w.broadcast_add(mask)?;
        }
        let scores = keep.then(|| w.clone());
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        Ok((self.out.forward(&w.matmul(values)?.transpose(1, 2)?.flatten_from(2)?)?, scores))
    }
}

/// One decoder layer: self-attention, cross-attention over the audio, then the MLP.
struct Block {
    attn: Attention,
    attn_ln: LayerNorm,
    cross_attn: Attention,
    cross_attn_ln: LayerNorm,
    fc1: HalfLinear,
    fc2: HalfLinear,
    mlp_ln: LayerNorm,
}

impl Block {
    fn load(n_state: usize, n_head: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attn: Attention::load(n_state, n_head, vb.pp("self_attn"))?,
            attn_ln: layer_norm(n_state, 1e-5, vb.pp("self_attn_layer_norm"))?,
            cross_attn: Attention::load(n_state, n_head, vb.pp("encoder_attn"))?,
            cross_attn_ln: layer_norm(n_state, 1e-5, vb.pp("encoder_attn_layer_norm"))?,
            fc1: HalfLinear::load(n_state, 4 * n_state, true, vb.pp("fc1"))?,
            fc2: HalfLinear::load(4 * n_state, n_state, true, vb.pp("fc2"))?,
            mlp_ln: layer_norm(n_state, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&mut self, x: &Tensor, audio: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self.attn.attend_self(&self.attn_ln.forward(x)?, mask)?)?;
        let x = (&x + self.cross_attn.attend_audio(&self.cross_attn_ln.forward(&x)?, audio)?)?;
        let mlp = self.fc2.forward(&self.fc1.forward(&self.mlp_ln.forward(&x)?)?.gelu()?)?;
        x + mlp
    }
}

/// The text decoder; [`Decoder::reset`] starts a new window.
pub struct Decoder {
    /// `(vocab, state)`: looked up for the tokens fed, and (tied) the output projection.
    token_embedding: HalfLinear,
    positional_embedding: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    /// Tokens fed since the last reset (the position of the next one).
    seen: usize,
}

impl Decoder {
    /// Loads the decoder from `model.decoder` weights, named as in candle's Whisper.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let n_state = config.d_model;
        let blocks = (0..config.decoder_layers)
            .map(|i| Block::load(n_state, config.decoder_attention_heads, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: HalfLinear::load(n_state, config.vocab_size, false, vb.pp("embed_tokens"))?,
            positional_embedding: vb.get((config.max_target_positions, n_state), "embed_positions.weight")?,
            blocks,
            ln: layer_norm(n_state, 1e-5, vb.pp("layer_norm"))?,
            seen: 0,
        })
    }

    /// Forgets the tokens and the audio of the last window.
    pub fn reset(&mut self) {
        self.seen = 0;
        for block in &mut self.blocks {
            block.attn.cache = None;
            block.cross_attn.cache = None;
        }
    }

    /// Feeds the next `tokens` (after those fed since [`Decoder::reset`]) against `audio`, the
    /// encoder's output for this window, and returns the logits after each: `(tokens, vocab)`.
    pub fn feed(&mut self, tokens: &[u32], audio: &Tensor) -> Result<Tensor> {
        let hidden = self.hidden(tokens, audio)?;
        self.token_embedding.forward(&hidden)
    }

    /// The final hidden state after each of `tokens`, `(tokens, state)`, before the vocabulary.
    fn hidden(&mut self, tokens: &[u32], audio: &Tensor) -> Result<Tensor> {
        let device = audio.device();
        let n = tokens.len();
        let input = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let positions = self.positional_embedding.narrow(0, self.seen, n)?;
        let embedded = self.token_embedding.weight().index_select(&input.squeeze(0)?, 0)?.to_dtype(DType::F32)?;
        let mut x = embedded.unsqueeze(0)?.broadcast_add(&positions)?;
        let mask = (n > 1).then(|| causal_mask(n, self.seen, device)).transpose()?;
        for block in &mut self.blocks {
            x = block.forward(&x, audio, mask.as_ref())?;
        }
        self.seen += n;
        self.ln.forward(&x)?.squeeze(0)
    }
}

impl Decoder {
    /// Runs `tokens` from the start (teacher forcing, as after [`Decoder::reset`]) against `audio`
    /// and returns the cross-attention scores (`q · kᵀ`, before the softmax) of each `(layer,
    /// head)` in `heads`, each `tokens × frames` row-major, as OpenAI's `find_alignment` reads
    /// them. Leaves the decoder reset.
    pub fn cross_attention(
        &mut self,
        tokens: &[u32],
        audio: &Tensor,
        heads: &[(usize, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        self.reset();
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.cross_attn.scores = heads.iter().any(|&(l, _)| l == i).then_some(None);
        }
        let run = self.hidden(tokens, audio);
        let mut out = Vec::with_capacity(heads.len());
        if run.is_ok() {
            for &(layer, head) in heads {
                let scores = self.blocks.get(layer).and_then(|b| b.cross_attn.scores.clone().flatten());
                let scores = scores.ok_or_else(|| candle_core::Error::Msg(format!("no decoder layer {layer}")))?;
                out.push(scores.i((0, head))?.flatten_all()?.to_vec1()?);
            }
        }
        for block in &mut self.blocks {
            block.cross_attn.scores = None;
        }
        self.reset();
        run.map(|_| out)
    }
}

/// Additive mask letting new token `i` see the `past` tokens and new tokens `0..=i`.
fn causal_mask(n: usize, past: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> =
        (0..n).flat_map(|i| (0..past + n).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(mask, (n, past + n), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_mask_hides_only_later_tokens() {
        let mask: Vec<Vec<f32>> = causal_mask(2, 1, &candle_core::Device::Cpu).unwrap().to_vec2().unwrap();
        assert_eq!(mask[0], vec![0.0, 0.0, f32::NEG_INFINITY]);
        assert_eq!(mask[1], vec![0.0, 0.0, 0.0]);
    }

    /// The cached decoder gives candle's logits (which re-run the whole prefix) at every step, on
    /// the installed Whisper base.
    #[test]
    fn cached_steps_match_candles_full_prefix_decoder() {
        use candle_core::{Device, IndexOp};
        use candle_transformers::models::whisper::model::Whisper;

        let (config, vb) = super::super::installed_whisper_base();
        let mut reference = Whisper::load(&vb, config.clone()).unwrap();
        let mut cached = Decoder::load(vb.pp("model.decoder"), &config).unwrap();
        let audio = Tensor::randn(0f32, 1.0, (1, 1500, config.d_model), &Device::Cpu).unwrap();

        let tokens = [50257u32, 50363, 383, 3303, 13];
        let mut last = cached.feed(&tokens[..2], &audio).unwrap().i(1).unwrap();
        for n in 2..=tokens.len() {
            let input = Tensor::new(&tokens[..n], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let ys = reference.decoder.forward(&input, &audio, n == 2).unwrap();
            let expected = reference.decoder.final_linear(&ys.i((.., n - 1..n)).unwrap()).unwrap();
            let expected = expected.flatten_all().unwrap();
            let diff = (&last - &expected).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-3, "step {n}: logits differ by {diff}");
            if n < tokens.len() {
                last = cached.feed(&tokens[n..=n], &audio).unwrap().i(0).unwrap();
            }
        }
        cached.reset();
        let again = cached.feed(&tokens[..1], &audio).unwrap().i(0).unwrap();
        let input = Tensor::new(&tokens[..1], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let ys = reference.decoder.forward(&input, &audio, false).unwrap();
        let expected = reference.decoder.final_linear(&ys).unwrap().flatten_all().unwrap();
        let diff = (&again - &expected).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-3, "after reset: logits differ by {diff}");
    }
}
