//! Voice activity detection with Silero VAD (v6, MIT), run by tract.
//!
//! Whisper transcribes silence and noise into invented text ("Thank you.", music notes), and
//! every encoder pass costs a full 30 s window whatever it holds, so the transcriber runs Whisper
//! only where this model hears speech. The model is the package's `silero_vad_16k_sequence.onnx`:
//! the streaming model unrolled over a block of 32 ms frames (each frame with the previous 64
//! samples as context), its LSTM state carried between blocks; the `If`-based variants do not
//! load in tract. Regions follow Silero's own `get_speech_timestamps` rules (enter at 0.5, leave
//! after 100 ms below 0.35, drop blips under 250 ms), then are padded so Whisper hears word edges.

use std::io::Cursor;
use std::ops::Range;
use std::sync::Arc;

use tract_onnx::prelude::*;

/// Samples per Silero frame at 16 kHz (32 ms).
pub const FRAME: usize = 512;
/// Samples of the previous frame prepended to each frame as context.
const CONTEXT: usize = 64;
/// Frames per model call (about 4 s); the last block is zero-padded and its padding ignored.
const BLOCK: usize = 128;
/// LSTM state size.
const STATE: usize = 128;

/// Probability at or above which a frame starts speech.
const THRESHOLD: f32 = 0.5;
/// Probability below which a frame counts towards leaving speech.
const NEG_THRESHOLD: f32 = THRESHOLD - 0.15;
/// Speech shorter than this is dropped (samples; 250 ms).
const MIN_SPEECH: usize = 4_000;
/// Silence must last this long to end a region (samples; 100 ms).
const MIN_SILENCE: usize = 1_600;
/// Padding added to both sides of a region, so word onsets and tails are not clipped (200 ms).
const PAD: usize = 3_200;

type Plan = Arc<TypedRunnableModel>;

/// The loaded Silero VAD model; cheap to share, and safe to run from several threads.
pub struct Vad {
    plan: Plan,
}

impl Vad {
    /// Builds the model from the bytes of `silero_vad_16k_sequence.onnx` (already sha256-checked).
    pub fn from_bytes(onnx: &[u8]) -> TractResult<Self> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(onnx))?
            .with_input_fact(0, f32::fact([BLOCK, CONTEXT + FRAME]).into())?
            .with_input_fact(1, f32::fact([1, 1, STATE]).into())?
            .with_input_fact(2, f32::fact([1, 1, STATE]).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(Self { plan })
    }

    /// Speech probability of every 32 ms frame of 16 kHz `samples`; the last partial frame is
    /// zero-padded.
    pub fn probabilities(&self, samples: &[i16]) -> TractResult<Vec<f32>> {
        let frames = samples.len().div_ceil(FRAME);
        let mut probs = Vec::with_capacity(frames);
        let mut h = tract_ndarray::Array3::<f32>::zeros((1, 1, STATE)).into_tensor();
        let mut c = h.clone();
        let mut context = [0f32; CONTEXT];
        let mut first = 0;
        while first < frames {
            let count = BLOCK.min(frames - first);
            let mut input = vec![0f32; BLOCK * (CONTEXT + FRAME)];
            for f in 0..count {
                let row = &mut input[f * (CONTEXT + FRAME)..(f + 1) * (CONTEXT + FRAME)];
                row[..CONTEXT].copy_from_slice(&context);
                let start = (first + f) * FRAME;
                let end = (start + FRAME).min(samples.len());
                for (x, &s) in row[CONTEXT..CONTEXT + end - start].iter_mut().zip(&samples[start..end]) {
                    *x = f32::from(s) / 32768.0;
                }
                context.copy_from_slice(&row[FRAME..]);
            }
            let input = tract_ndarray::Array2::from_shape_vec((BLOCK, CONTEXT + FRAME), input)?.into_tensor();
            let out = self.plan.run(tvec!(input.into(), h.clone().into(), c.clone().into()))?;
            let speech = out[0].to_plain_array_view::<f32>()?;
            probs.extend(speech.iter().take(count));
            if count == BLOCK {
                // Padding frames would disturb the state, but only the last block has any.
                h = out[1].clone().into_tensor();
                c = out[2].clone().into_tensor();
            }
            first += count;
        }
        Ok(probs)
    }

    /// Sample ranges of `samples` that hold speech, padded, merged when they touch, in order.
    pub fn speech_regions(&self, samples: &[i16]) -> TractResult<Vec<Range<usize>>> {
        Ok(regions(&self.probabilities(samples)?, samples.len()))
    }
}

/// Silero's `get_speech_timestamps` state machine (without its max-duration split: the
/// transcriber windows long regions itself) over per-frame probabilities, then padding.
pub fn regions(probs: &[f32], len: usize) -> Vec<Range<usize>> {
    regions_padded(probs, len, PAD)
}

/// [`regions`] with `pad` samples added to both sides instead of the transcriber's 200 ms (the
/// speaker model wants speech only: Silero's own default pad is 30 ms).
pub fn regions_padded(probs: &[f32], len: usize, pad: usize) -> Vec<Range<usize>> {
    let mut raw = Vec::new();
    let mut start = None;
    let mut silence_from = None;
    for (i, &p) in probs.iter().enumerate() {
        let t = i * FRAME;
        if p >= THRESHOLD {
            silence_from = None;
            if start.is_none() {
                start = Some(t);
            }
        } else if p < NEG_THRESHOLD {
            if let Some(s) = start {
                let from = *silence_from.get_or_insert(t);
                if t + FRAME - from >= MIN_SILENCE {
                    if from - s >= MIN_SPEECH {
                        raw.push(s..from);
                    }
                    start = None;
                    silence_from = None;
                }
            }
        }
    }
    if let Some(s) = start {
        if len.saturating_sub(s) >= MIN_SPEECH {
            raw.push(s..len);
        }
    }
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in raw {
        let padded = r.start.saturating_sub(pad)..(r.end + pad).min(len);
        match merged.last_mut() {
            Some(last) if padded.start <= last.end => last.end = last.end.max(padded.end),
            _ => merged.push(padded),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_follow_silero_rules() {
        // 1 s speech, 0.5 s silence, a 64 ms blip, 1 s silence, 2 s speech to the end.
        let mut probs = vec![0.9; 31];
        probs.extend(vec![0.1; 16]);
        probs.extend(vec![0.9; 2]);
        probs.extend(vec![0.1; 31]);
        probs.extend(vec![0.9; 62]);
        let len = probs.len() * FRAME;
        let r = regions(&probs, len);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0], 0..31 * FRAME + PAD);
        assert_eq!(r[1], (80 * FRAME - PAD)..len);
        assert!(regions(&[0.1; 100], 100 * FRAME).is_empty());
    }
}
