//! Whisper's log-mel features, computed as candle's `whisper::audio::pcm_to_mel` computes them
//! (whisper.cpp's framing: frames every 10 ms from the first sample, no centre padding; the
//! spectrogram's maximum taken over the zero-padded clip), with rustfft and filters that skip
//! their zero bins.
//!
//! Why not candle's own: its FFT is a recursive radix-2 that falls back to a quadratic DFT on
//! 400's odd factor, and its threads rebuild the whole padded spectrogram each; it took a tenth of
//! a 30 s window's time (about 0.3 s of 3 s) before the encoder even started. Here a window takes
//! milliseconds, and the values are candle's to float rounding (a test holds them within 1e-3 of candle's,
//! on features that span about -1.5 to 1.5).

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Samples per FFT frame (25 ms at 16 kHz).
const N_FFT: usize = 400;
/// Samples between frames (10 ms).
const HOP: usize = 160;
/// Frames the encoder takes (30 s).
pub const FRAMES: usize = 3000;
/// Frames of padding candle's spectrogram rounds the clip up to and then adds.
const PAD_FRAMES: usize = 1500;
/// The floor of a mel band's power before its log (candle's and OpenAI's).
const FLOOR: f32 = 1e-10;

/// The log-mel front end of one Whisper model (its band count).
pub struct LogMel {
    fft: Arc<dyn Fft<f32>>,
    hann: Vec<f32>,
    /// Each band's first non-zero bin and its weights from there.
    bands: Vec<(usize, Vec<f32>)>,
}

impl LogMel {
    /// The front end for `n_mels` bands (80 for Whisper base).
    pub fn new(n_mels: usize) -> Self {
        let bins = 1 + N_FFT / 2;
        let filters = mel_filters(n_mels, N_FFT, 16_000);
        let bands = filters
            .chunks(bins)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        // candle's periodic Hann window, computed in f32 as candle does.
        let two_pi = std::f32::consts::PI + std::f32::consts::PI;
        let hann = (0..N_FFT).map(|i| 0.5 * (1.0 - (two_pi * i as f32 / N_FFT as f32).cos())).collect();
        Self { fft: FftPlanner::new().plan_fft_forward(N_FFT), hann, bands }
    }

    /// The features of up to 30 s of `samples` (16 kHz, -1..1), `(bands, 3000)` row-major.
    pub fn features(&self, samples: &[f32]) -> Vec<f32> {
        let n_mels = self.bands.len();
        let frames_in_clip = samples.len() / HOP;
        let padded = frames_in_clip.div_ceil(PAD_FRAMES).max(1) * PAD_FRAMES + PAD_FRAMES;
        let computed = (samples.len() / HOP + 1).min(padded);
        let kept = computed.min(FRAMES);
        let mut log = vec![FLOOR.log10(); n_mels * FRAMES];
        // The padding's frames are silence, so the maximum is at least the floor's log.
        let mut max = FLOOR.log10();
        let mut buffer = vec![Complex32::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f32; 1 + N_FFT / 2];
        for frame in 0..computed {
            let offset = frame * HOP;
            let take = N_FFT.min(samples.len() - offset);
            for (j, slot) in buffer.iter_mut().enumerate() {
                let value = if j < take { self.hann[j] * samples[offset + j] } else { 0.0 };
                *slot = Complex32::new(value, 0.0);
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (j, p) in power.iter_mut().enumerate() {
                *p = buffer[j].norm_sqr();
                if j > 0 && j < N_FFT / 2 {
                    *p += buffer[N_FFT - j].norm_sqr();
                }
            }
            for (band, (first, weights)) in self.bands.iter().enumerate() {
                let sum: f32 = weights.iter().zip(&power[*first..]).map(|(w, p)| w * p).sum();
                let value = sum.max(FLOOR).log10();
                max = max.max(value);
                if frame < kept {
                    log[band * FRAMES + frame] = value;
                }
            }
        }
        let floor = max - 8.0;
        for value in &mut log {
            *value = value.max(floor) / 4.0 + 1.0;
        }
        log
    }
}

/// The mel filterbank Whisper was trained with: librosa's `filters.mel(sr, n_fft, n_mels)`
/// (Slaney mel scale, Slaney area normalisation, 0 Hz to Nyquist), row-major `(n_mels, 1 + n_fft / 2)`.
pub fn mel_filters(n_mels: usize, n_fft: usize, sample_rate: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ {
            MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / log_step
        } else {
            f / F_SP
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= MIN_LOG_MEL {
            MIN_LOG_HZ * (log_step * (m - MIN_LOG_MEL)).exp()
        } else {
            m * F_SP
        }
    };
    let bins = 1 + n_fft / 2;
    let nyquist = sample_rate as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| nyquist * i as f64 / (bins - 1) as f64).collect();
    let max_mel = hz_to_mel(nyquist);
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0f32; n_mels * bins];
    for i in 0..n_mels {
        let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            weights[i * bins + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_transformers::models::whisper::{audio, Config};

    #[test]
    fn mel_filters_match_librosa_slaney() {
        // Values from librosa 0.10 `filters.mel(sr=16000, n_fft=400, n_mels=80)` (as in OpenAI's
        // mel_filters.npz): row 0 peaks at bin 1, row 79 covers the top bins.
        let f = mel_filters(80, 400, 16_000);
        assert_eq!(f.len(), 80 * 201);
        assert!((f[1] - 0.024_862_593).abs() < 1e-6, "{}", f[1]);
        assert_eq!(f[0], 0.0);
        let row79: f32 = f[79 * 201..].iter().sum();
        assert!(row79 > 0.0);
    }

    /// The features are candle's `pcm_to_mel` (narrowed to 3000 frames, as the encoder takes
    /// them) to float rounding: for a full window, a short one, and one with a loud stretch.
    #[test]
    fn features_match_candles_pcm_to_mel() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "num_mel_bins": 80, "max_source_positions": 1500, "d_model": 512,
            "encoder_attention_heads": 8, "encoder_layers": 6, "vocab_size": 51865,
            "max_target_positions": 448, "decoder_attention_heads": 8, "decoder_layers": 6,
            "suppress_tokens": []
        }))
        .unwrap();
        let filters = mel_filters(80, N_FFT, 16_000);
        let front = LogMel::new(80);
        let tone = |i: usize| (i as f32 * 0.07).sin() * 0.3 + ((i * 7919) % 13) as f32 / 130.0 - 0.05;
        for len in [480_000usize, 70_001, 16_000] {
            let samples: Vec<f32> =
                (0..len).map(|i| if (4000..9000).contains(&i) { tone(i) * 3.0 } else { tone(i) }).collect();
            let theirs = audio::pcm_to_mel(&config, &samples, &filters);
            let frames = theirs.len() / 80;
            let ours = front.features(&samples);
            let mut worst = 0f32;
            for band in 0..80 {
                for frame in 0..FRAMES {
                    worst = worst.max((ours[band * FRAMES + frame] - theirs[band * frames + frame]).abs());
                }
            }
            // candle's recursive f32 FFT and rustfft round differently in the quietest bins.
            assert!(worst < 1e-3, "{len} samples: differs from candle's by {worst}");
        }
    }
}
