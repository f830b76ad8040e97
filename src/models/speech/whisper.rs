//! Whisper speech recognition on the CPU: candle's `whisper` network, run by this module's own
//! encoder and decoder (float16 weights kept as stored, a cached decoder, see [`super::encoder`]
//! and [`super::decoder`]), and the decoding rules candle's model leaves to its caller.
//!
//! Decoding is OpenAI's greedy path (temperature 0, no beam search, no temperature fallback) with
//! timestamp tokens: the prompt is `<|startoftranscript|>` (+ language and `<|transcribe|>` for
//! a multilingual model), blank and special tokens are suppressed as the model's CTranslate2
//! config lists, and OpenAI's `ApplyTimestampRules` force timestamps to pair up, never go back,
//! start within the first second, and win whenever their total probability beats any single text
//! token. A window is decoded once; when the last segment is left open the next window starts at
//! the last closed timestamp (OpenAI's seek), so audio longer than 30 s is covered without gaps.
//!
//! Word times are measured as OpenAI's `word_timestamps=True` measures them: after a window is
//! decoded, the decoder reads the chosen text once more and the cross-attention of the model's
//! alignment heads is aligned to the audio by dynamic time warping ([`super::align`]). Words
//! are split at spaces (and standalone punctuation, later merged into its word) as OpenAI's
//! tokenizer does. A word's confidence is the mean probability of its tokens when decoded.

use std::collections::HashMap;

use candle_core::{DType, Device, IndexOp, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as m, Config};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::align::{self, Timed};
use super::decoder::Decoder;
use super::encoder::Encoder;
use super::mel::{self, LogMel};
use super::SpeechError;

/// Seconds per timestamp token step.
const TIME_PRECISION: f64 = 0.02;
/// The first timestamp may be at most this many steps in (1 s, as OpenAI).
const MAX_INITIAL_TIMESTAMP: u32 = 50;
/// A window is skipped as silence when `<|nospeech|>` is this likely and the text is unsure.
const NO_SPEECH_THRESHOLD: f64 = 0.6;
const LOGPROB_THRESHOLD: f64 = -1.0;

/// What the converter writes beside the weights: candle's [`Config`] plus decoding tables.
#[derive(Debug, Clone, Deserialize)]
struct Extra {
    #[serde(default)]
    suppress_ids_begin: Vec<u32>,
    #[serde(default)]
    lang_ids: Vec<u32>,
    /// `(layer, head)` of the decoder's cross-attention heads that follow the audio (OpenAI's
    /// `_ALIGNMENT_HEADS`, which the CTranslate2 conversion copies into the config).
    #[serde(default)]
    alignment_heads: Vec<(usize, usize)>,
}

/// One decoded stretch of speech, with times in seconds on the caller's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub words: Vec<TimedWord>,
}

/// A word with its measured time (seconds on the caller's timeline) and the mean probability of
/// its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f64,
}

/// The loaded Whisper model with its tokenizer and the token ids decoding needs.
pub struct Whisper {
    encoder: Encoder,
    decoder: Decoder,
    config: Config,
    tokenizer: Tokenizer,
    log_mel: LogMel,
    /// Additive mask: `-inf` for tokens never emitted.
    suppress: Vec<f32>,
    suppress_begin: Vec<u32>,
    lang_ids: Vec<u32>,
    sot: u32,
    eot: u32,
    transcribe: u32,
    no_speech: Option<u32>,
    timestamp_begin: u32,
    no_timestamps: u32,
    multilingual: bool,
    alignment_heads: Vec<(usize, usize)>,
}

impl Whisper {
    /// Builds the model from `config.json`, `tokenizer.json` and the tensors of
    /// `model.safetensors` (float16 as converted, and kept so by the linear layers: see
    /// [`crate::models::half`]; [`crate::models::weights`] reads them without holding the file).
    pub fn load(
        config_json: &str,
        tokenizer_json: &[u8],
        tensors: HashMap<String, Tensor>,
    ) -> Result<Self, SpeechError> {
        let invalid = |e: String| SpeechError::InvalidModel(e);
        let config: Config = serde_json::from_str(config_json).map_err(|e| invalid(format!("config.json: {e}")))?;
        let extra: Extra = serde_json::from_str(config_json).map_err(|e| invalid(format!("config.json: {e}")))?;
        let tokenizer = Tokenizer::from_bytes(tokenizer_json).map_err(|e| invalid(format!("tokenizer.json: {e}")))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        // candle's network, in layers that keep float16 weights; the decoder also caches
        // self-attention.
        let encoder = Encoder::load(vb.pp("model.encoder"), &config)?;
        let decoder = Decoder::load(vb.pp("model.decoder"), &config)?;
        drop(vb);

        let id = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| invalid(format!("tokenizer has no {token} token")))
        };
        let no_timestamps = id(m::NO_TIMESTAMPS_TOKEN)?;
        let no_speech = m::NO_SPEECH_TOKENS.iter().find_map(|t| tokenizer.token_to_id(t));
        let mut suppress = vec![0f32; config.vocab_size];
        for &t in config.suppress_tokens.iter().chain([&no_timestamps]) {
            if let Some(s) = suppress.get_mut(t as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        Ok(Self {
            log_mel: LogMel::new(config.num_mel_bins),
            sot: id(m::SOT_TOKEN)?,
            eot: id(m::EOT_TOKEN)?,
            transcribe: id(m::TRANSCRIBE_TOKEN)?,

            no_speech,
            timestamp_begin: no_timestamps + 1,
            no_timestamps,
            // Without a table, OpenAI uses every head of the upper half of the decoder.
            alignment_heads: if extra.alignment_heads.is_empty() {
                (config.decoder_layers / 2..config.decoder_layers)
                    .flat_map(|l| (0..config.decoder_attention_heads).map(move |h| (l, h)))
                    .collect()
            } else {
                extra.alignment_heads
            },
            multilingual: !extra.lang_ids.is_empty() && config.vocab_size >= 51865,
            suppress,
            suppress_begin: extra.suppress_ids_begin,
            lang_ids: extra.lang_ids,
            encoder,
            decoder,
            config,
            tokenizer,
        })
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// The token of a language code (`en`, `fr`, …), or `None` when the model does not know it.
    pub fn language_token(&self, code: &str) -> Option<u32> {
        let id = self.tokenizer.token_to_id(&format!("<|{}|>", code.to_ascii_lowercase()))?;
        self.lang_ids.contains(&id).then_some(id)
    }

    /// The language code of a language token.
    pub fn language_code(&self, token: u32) -> String {
        self.tokenizer
            .id_to_token(token)
            .map(|t| t.trim_start_matches("<|").trim_end_matches("|>").to_owned())
            .unwrap_or_default()
    }

    /// Log-mel features of up to 30 s of audio, as the encoder wants them: (1, mels, 3000).
    fn mel(&self, samples: &[f32]) -> Result<Tensor, SpeechError> {
        let features = self.log_mel.features(samples);
        Ok(Tensor::from_vec(features, (1, self.config.num_mel_bins, mel::FRAMES), &Device::Cpu)?)
    }

    /// The most likely language token for a window's encoded `features`.
    fn detect_language(&mut self, features: &Tensor) -> Result<u32, SpeechError> {
        self.decoder.reset();
        let logits: Vec<f32> = self.decoder.feed(&[self.sot], features)?.i(0)?.to_vec1()?;
        self.lang_ids
            .iter()
            .copied()
            .max_by(|&a, &b| logits[a as usize].total_cmp(&logits[b as usize]))
            .ok_or_else(|| SpeechError::InvalidModel("the model lists no languages".into()))
    }

    /// Transcribes `samples` (16 kHz mono in -1..1, any length) in consecutive windows of at most
    /// 30 s; segment times are seconds from the start of `samples`. A multilingual
    /// model with no `language` detects it on the first window (whose features it reuses) and
    /// sets it.
    pub fn transcribe(&mut self, samples: &[f32], language: &mut Option<u32>) -> Result<Vec<Segment>, SpeechError> {
        let mut segments = Vec::new();
        let mut seek = 0;
        let mut last_speech = 0.0;
        while seek == 0 || samples.len().saturating_sub(seek) >= m::SAMPLE_RATE {
            let end = (seek + m::N_SAMPLES).min(samples.len());
            let window = &samples[seek..end];
            let window_secs = window.len() as f64 / m::SAMPLE_RATE as f64;
            let start_secs = seek as f64 / m::SAMPLE_RATE as f64;
            let mut advance = window.len();
            let features = self.encoder.forward(&self.mel(window)?)?;
            if self.multilingual && language.is_none() {
                *language = Some(self.detect_language(&features)?);
            }
            let language = *language;
            if let Some(decoded) = self.decode_window(&features, language)? {
                let (mut found, open) = split_segments(&decoded, self.timestamp_begin);
                match open {
                    // OpenAI's seek: an unfinished last segment is decoded again, from its start, in
                    // the next window (only when that makes progress and audio remains after it).
                    Some((at, _)) if at >= 1.0 && samples.len() - seek >= (at as usize + 1) * m::SAMPLE_RATE => {
                        advance = (at * m::SAMPLE_RATE as f64) as usize;
                    }
                    Some((at, text)) if !text.is_empty() => found.push((at, window_secs.max(at), text)),
                    _ => {}
                }
                found.retain(|(_, _, tokens)| tokens.iter().any(|&(t, _)| t < self.eot));
                let (timed, median) = self.align(&features, language, &found, window.len())?;
                for ((start, stop, _), mut words) in found.into_iter().zip(timed) {
                    let stop = stop.min(window_secs);
                    last_speech = align::fit_segment(&mut words, start.min(stop), stop, last_speech, median);
                    align::snap_to_sound(&mut words, window);
                    let words: Vec<TimedWord> = words
                        .into_iter()
                        .filter_map(|w| {
                            let text = w.text.trim().to_owned();
                            let end = (start_secs + w.end).min(start_secs + window_secs);
                            (!text.is_empty()).then(|| TimedWord {
                                text,
                                start: (start_secs + w.start).min(end),
                                end,
                                confidence: w.confidence,
                            })
                        })
                        .collect();
                    if !words.is_empty() {
                        let end = start_secs + stop;
                        segments.push(Segment { start: (start_secs + start).min(end), end, words });
                    }
                }
            }
            seek += advance.max(1);
            last_speech -= advance.max(1) as f64 / m::SAMPLE_RATE as f64;
        }
        Ok(segments)
    }

    /// Greedy decoding of one window: the sampled tokens (after the prompt) with their
    /// probabilities, or `None` when the model says the window holds no speech.
    fn decode_window(
        &mut self,
        features: &Tensor,
        language: Option<u32>,
    ) -> Result<Option<Vec<(u32, f32)>>, SpeechError> {
        let features = features.clone();
        self.decoder.reset();
        let prompt = self.prompt(language);
        let max_len = self.config.max_target_positions / 2;
        let mut sampled: Vec<(u32, f32)> = Vec::new();
        let mut sum_logprob = 0f64;
        let mut no_speech_prob = 0f64;
        let mut fed = prompt.len();
        let mut last = self.decoder.feed(&prompt, &features)?;
        for step in 0..max_len {
            if step == 0 {
                if let Some(ns) = self.no_speech {
                    // <|nospeech|> is read after <|startoftranscript|>, as OpenAI does.
                    let probs: Vec<f32> = candle_nn::ops::softmax(&last.i(0)?, D::Minus1)?.to_vec1()?;
                    no_speech_prob = f64::from(probs[ns as usize]);
                }
            }
            let rows = last.dim(0)?;
            let mut logits: Vec<f32> = last.i(rows - 1)?.to_vec1()?;
            for (l, s) in logits.iter_mut().zip(&self.suppress) {
                *l += s;
            }
            if sampled.is_empty() {
                for &t in &self.suppress_begin {
                    logits[t as usize] = f32::NEG_INFINITY;
                }
            }
            self.apply_timestamp_rules(&mut logits, &sampled);
            let logprobs = log_softmax(&logits);
            let (next, lp) = logprobs
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, lp)| (i as u32, lp))
                .unwrap_or((self.eot, 0.0));
            if next == self.eot {
                break;
            }
            sum_logprob += f64::from(lp);
            sampled.push((next, lp.exp()));
            fed += 1;
            if fed >= self.config.max_target_positions {
                break;
            }
            last = self.decoder.feed(&[next], &features)?;
        }
        let avg_logprob = sum_logprob / (sampled.len() + 1) as f64;
        if no_speech_prob > NO_SPEECH_THRESHOLD && avg_logprob < LOGPROB_THRESHOLD {
            return Ok(None);
        }
        Ok(Some(sampled))
    }

    /// OpenAI's `ApplyTimestampRules` on one step's logits, given the tokens sampled so far.
    fn apply_timestamp_rules(&self, logits: &mut [f32], sampled: &[(u32, f32)]) {
        let tb = self.timestamp_begin as usize;
        let is_ts = |t: u32| t >= self.timestamp_begin;
        let last_ts = sampled.last().is_some_and(|&(t, _)| is_ts(t));
        let penultimate_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2].0);
        if last_ts {
            if penultimate_ts {
                // A pair just closed: text (or the end) must follow.
                logits[tb..].fill(f32::NEG_INFINITY);
            } else {
                // An open segment's end: another timestamp or the end, never text.
                logits[..self.eot as usize].fill(f32::NEG_INFINITY);
            }
        }
        if let Some(&(last, _)) = sampled.iter().rev().find(|&&(t, _)| is_ts(t)) {
            // Timestamps never go back; after a closed segment they must move forward.
            let floor = if last_ts && !penultimate_ts { last } else { last + 1 };
            let floor = (floor as usize).min(logits.len());
            logits[tb..floor].fill(f32::NEG_INFINITY);
        }
        if sampled.is_empty() {
            logits[..tb].fill(f32::NEG_INFINITY);
            let last_allowed = tb + MAX_INITIAL_TIMESTAMP as usize;
            if last_allowed + 1 < logits.len() {
                logits[last_allowed + 1..].fill(f32::NEG_INFINITY);
            }
        }
        let logprobs = log_softmax(logits);
        let ts_logprob = log_sum_exp(&logprobs[tb..]);
        let max_text = logprobs[..tb].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if ts_logprob > max_text {
            logits[..tb].fill(f32::NEG_INFINITY);
        }
    }

    /// The decoding prompt: `<|startoftranscript|>`, then language and task when multilingual.
    fn prompt(&self, language: Option<u32>) -> Vec<u32> {
        let mut prompt = vec![self.sot];
        if self.multilingual {
            prompt.push(language.unwrap_or_else(|| self.lang_ids[0]));
            prompt.push(self.transcribe);
        }
        prompt
    }

    /// Measures the words of a window's `segments` against its audio (`features`, from `samples`
    /// samples): OpenAI's `find_alignment` (see [`align`]). Returns each segment's words (times in
    /// seconds from the window start, confidence the mean decoding probability of their tokens)
    /// and the window's median word duration.
    fn align(
        &mut self,
        features: &Tensor,
        language: Option<u32>,
        segments: &[Span],
        samples: usize,
    ) -> Result<(Vec<Vec<Timed>>, f64), SpeechError> {
        let texts: Vec<Vec<(u32, f32)>> =
            segments.iter().map(|(_, _, t)| t.iter().copied().filter(|&(t, _)| t < self.eot).collect()).collect();
        let text: Vec<(u32, f32)> = texts.iter().flatten().copied().collect();
        let mut per_segment: Vec<Vec<Timed>> = vec![Vec::new(); segments.len()];
        if text.is_empty() {
            return Ok((per_segment, 0.0));
        }
        let mut tokens = self.prompt(language);
        let prompt = tokens.len();
        tokens.push(self.no_timestamps);
        tokens.extend(text.iter().map(|&(t, _)| t));
        tokens.push(self.eot);
        let scores = self.decoder.cross_attention(&tokens, features, &self.alignment_heads)?;
        let frames = samples / (m::HOP_LENGTH * 2);
        let matrix = align::alignment_matrix(&scores, tokens.len(), features.dim(1)?, frames);
        // Rows from `<|notimestamps|>` (which predicts the first text token) to the last text token.
        let starts = align::token_starts(&matrix[prompt..tokens.len() - 1]);
        let ids: Vec<u32> = text.iter().map(|&(t, _)| t).collect();
        let (words, median) = align::time_words(self.split_words(&ids), &starts);
        // Each word goes to the segment holding its first token.
        let mut ends = Vec::with_capacity(texts.len());
        let mut total = 0;
        for t in &texts {
            total += t.len();
            ends.push(total);
        }
        for mut word in words {
            let n = word.tokens.len().max(1) as f64;
            word.confidence = text[word.tokens.clone()].iter().map(|&(_, p)| f64::from(p)).sum::<f64>() / n;
            let segment = ends.iter().position(|&e| word.tokens.start < e).unwrap_or(ends.len() - 1);
            per_segment[segment].push(word);
        }
        Ok((per_segment, median))
    }

    /// Text tokens split into words as OpenAI's `split_tokens_on_spaces`: tokens are first joined
    /// into pieces that decode to whole characters; a piece starting with a space, or made only of
    /// punctuation, starts a new word. Returns each word's text (leading space kept) and tokens.
    fn split_words(&self, ids: &[u32]) -> Vec<(String, std::ops::Range<usize>)> {
        const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        let mut words: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        let mut from = 0;
        for to in 1..=ids.len() {
            let piece = self.tokenizer.decode(&ids[from..to], false).unwrap_or_default();
            if piece.contains('\u{FFFD}') && to < ids.len() {
                continue;
            }
            let new_word = piece.starts_with(' ') || PUNCTUATION.contains(piece.trim()) || words.is_empty();
            match words.last_mut() {
                Some((text, range)) if !new_word => {
                    text.push_str(&piece);
                    range.end = to;
                }
                _ => words.push((piece, from..to)),
            }
            from = to;
        }
        words
    }
}

/// A segment in seconds from its window's start, with its text tokens.
type Span = (f64, f64, Vec<(u32, f32)>);

/// Splits sampled tokens at timestamp tokens into closed segments `(start, end, text tokens)`
/// (seconds from the window start), and the segment left open at the end, if any: its start and
/// its text so far (a timestamp followed by nothing, or text with no closing timestamp).
/// A segment still open at a window's end: its start (seconds) and its sampled tokens so far.
type OpenSegment = (f64, Vec<(u32, f32)>);

fn split_segments(sampled: &[(u32, f32)], timestamp_begin: u32) -> (Vec<Span>, Option<OpenSegment>) {
    let time = |t: u32| f64::from(t - timestamp_begin) * TIME_PRECISION;
    let mut segments = Vec::new();
    let mut start: Option<f64> = None;
    let mut text: Vec<(u32, f32)> = Vec::new();
    for &(t, p) in sampled {
        if t >= timestamp_begin {
            match start {
                Some(s) if !text.is_empty() => {
                    segments.push((s, time(t).max(s), std::mem::take(&mut text)));
                    start = None;
                }
                // A first timestamp, or two in a row: this one starts the next segment.
                _ => start = Some(time(t)),
            }
        } else {
            text.push((t, p));
        }
    }
    let open = match start {
        Some(s) => Some((s, text)),
        None if !text.is_empty() => Some((segments.last().map_or(0.0, |seg: &Span| seg.1), text)),
        None => None,
    };
    (segments, open)
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&l| l - lse).collect()
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_timestamps() {
        let tb = 1000;
        let s = |t: u32| (t, 1.0f32);
        // <|0.00|> a b <|1.00|> <|1.00|> c <|2.00|>: two closed segments, nothing open.
        let (segs, open) = split_segments(&[s(tb), s(1), s(2), s(tb + 50), s(tb + 50), s(3), s(tb + 100)], tb);
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[1].0, segs[1].1), (1.0, 2.0));
        assert_eq!(open, None);
        // <|0.00|> a <|1.00|> <|1.20|> b (cut off): the open segment starts at 1.2 s.
        let (segs, open) = split_segments(&[s(tb), s(1), s(tb + 50), s(tb + 60), s(2)], tb);
        assert_eq!(segs.len(), 1);
        assert_eq!(open, Some((1.2, vec![s(2)])));
    }
}
