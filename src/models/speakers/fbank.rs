//! Kaldi's log mel filterbank, as `torchaudio.compliance.kaldi.fbank` computes it with the
//! settings CAM++ was trained on: 16 kHz, 25 ms frames every 10 ms (`snip_edges`: only whole
//! frames), dither 0, DC offset removed per frame, pre-emphasis 0.97, Povey window, a 512-point
//! FFT's power spectrum, 80 triangular mel bins from 20 Hz to Nyquist, natural log floored at
//! f32's epsilon. `assets/speakers/compare_torch.py` checks it against torchaudio.
//!
//! The speaker model takes these frames minus their mean over the window it embeds; that
//! subtraction is left to the caller ([`super::campplus`]) because one region's frames are shared
//! by many overlapping windows.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Samples per frame (25 ms at 16 kHz).
pub const FRAME_LEN: usize = 400;
/// Samples between frame starts (10 ms).
pub const FRAME_SHIFT: usize = 160;
/// Mel bins per frame.
pub const MEL_BINS: usize = 80;
/// FFT size (the frame padded to the next power of two).
const FFT: usize = 512;
const PREEMPHASIS: f32 = 0.97;
const LOW_FREQ: f32 = 20.0;
const SAMPLE_RATE: f32 = 16_000.0;

/// A reusable filterbank: window, mel weights and FFT plan made once.
pub struct Fbank {
    window: Vec<f32>,
    /// For each mel bin, the first FFT bin it covers and its weights from there.
    mel: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn Fft<f32>>,
}

impl Default for Fbank {
    fn default() -> Self {
        Self::new()
    }
}

impl Fbank {
    /// The filterbank with CAM++'s settings.
    pub fn new() -> Self {
        // torch.hann_window(400, periodic=False) ** 0.85
        let window = (0..FRAME_LEN)
            .map(|n| {
                let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / (FRAME_LEN - 1) as f64).cos();
                hann.powf(0.85) as f32
            })
            .collect();
        Self { window, mel: mel_banks(), fft: FftPlanner::new().plan_fft_forward(FFT) }
    }

    /// Number of whole frames in `samples` samples.
    pub fn frames(samples: usize) -> usize {
        if samples < FRAME_LEN {
            0
        } else {
            1 + (samples - FRAME_LEN) / FRAME_SHIFT
        }
    }

    /// Log mel energies of every whole frame of `samples` (any scale; CAM++ removes the mean, so
    /// the scale only moves the floor), row-major `[frames][MEL_BINS]`.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let frames = Self::frames(samples.len());
        let mut out = Vec::with_capacity(frames * MEL_BINS);
        let mut frame = [0f32; FRAME_LEN];
        let mut spectrum = vec![Complex32::new(0.0, 0.0); FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = [0f32; FFT / 2 + 1];
        for f in 0..frames {
            frame.copy_from_slice(&samples[f * FRAME_SHIFT..f * FRAME_SHIFT + FRAME_LEN]);
            let mean = frame.iter().map(|&x| f64::from(x)).sum::<f64>() / FRAME_LEN as f64;
            for x in &mut frame {
                *x -= mean as f32;
            }
            // Pre-emphasis with the first sample replicated (torchaudio pads with `replicate`).
            for i in (1..FRAME_LEN).rev() {
                frame[i] -= PREEMPHASIS * frame[i - 1];
            }
            frame[0] -= PREEMPHASIS * frame[0];
            for (i, c) in spectrum.iter_mut().enumerate() {
                *c = Complex32::new(if i < FRAME_LEN { frame[i] * self.window[i] } else { 0.0 }, 0.0);
            }
            self.fft.process_with_scratch(&mut spectrum, &mut scratch);
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (first, weights) in &self.mel {
                let energy: f32 = weights.iter().zip(&power[*first..]).map(|(w, p)| w * p).sum();
                out.push(energy.max(f32::EPSILON).ln());
            }
        }
        out
    }
}

fn mel_scale(f: f32) -> f32 {
    1127.0 * (1.0 + f / 700.0).ln()
}

/// torchaudio's `get_mel_banks` (no VTLN): triangles evenly spaced on the mel scale over the
/// FFT bins below Nyquist (the Nyquist bin has weight 0), stored sparsely.
fn mel_banks() -> Vec<(usize, Vec<f32>)> {
    let bin_width = SAMPLE_RATE / FFT as f32;
    let (low, high) = (mel_scale(LOW_FREQ), mel_scale(SAMPLE_RATE / 2.0));
    let delta = (high - low) / (MEL_BINS + 1) as f32;
    (0..MEL_BINS)
        .map(|b| {
            let left = low + b as f32 * delta;
            let center = low + (b + 1) as f32 * delta;
            let right = low + (b + 2) as f32 * delta;
            let weights: Vec<f32> = (0..FFT / 2)
                .map(|k| {
                    let mel = mel_scale(bin_width * k as f32);
                    let up = (mel - left) / (center - left);
                    let down = (right - mel) / (right - center);
                    up.min(down).max(0.0)
                })
                .collect();
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(first);
            (first, weights[first..=last].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_snip_edges() {
        assert_eq!(Fbank::frames(399), 0);
        assert_eq!(Fbank::frames(400), 1);
        assert_eq!(Fbank::frames(24_000), 148);
    }

    #[test]
    fn a_tone_peaks_in_the_mel_bin_of_its_frequency() {
        let tone: Vec<f32> =
            (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1_000.0 * i as f32 / 16_000.0).sin()).collect();
        let feats = Fbank::new().compute(&tone);
        let frame = &feats[50 * MEL_BINS..51 * MEL_BINS];
        let peak = (0..MEL_BINS).max_by(|&a, &b| frame[a].total_cmp(&frame[b])).unwrap();
        // 1 kHz is mel 1000; bins are 34.7 mel apart from mel(20) = 31.8: bin 27's centre (1002) is closest.
        assert!((26..=28).contains(&peak), "peak in bin {peak}");
        let silence = Fbank::new().compute(&[0.0; 1_000]);
        assert!(silence.iter().all(|&v| v == f32::EPSILON.ln()));
    }
}
