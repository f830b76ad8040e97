//! YAMNet's log-mel front end, as `features.py` of `tensorflow/models` (research/audioset/yamnet)
//! computes it with the parameters YAMNet was trained on (`params.py`): 16 kHz mono in [-1, 1];
//! a 25 ms periodic Hann window (400 samples) every 10 ms, zero-padded to a 512-point FFT whose
//! magnitude (not power) is weighted by 64 triangular mel bands from 125 to 7500 Hz
//! (`tf.signal.linear_to_mel_weight_matrix`: HTK mel `1127 ln(1 + f/700)`, triangles in the mel
//! domain, the DC bin left out), then `ln(mel + 0.001)`; patches of 96 frames (0.96 s) every 48
//! frames (0.48 s). The waveform is first zero-padded as `pad_waveform` does, so a clip shorter
//! than one patch still gives one and the tail gets a patch of its own.
//!
//! Frames are computed patch by patch (each patch reuses the previous one's second half), so an
//! hour of audio never holds its whole spectrogram (360,000 frames) in memory.
//! `assets/burst/features_reference.py` computes the same patches with TensorFlow's own ops (as
//! `features.py` calls them); `tests::matches_the_tensorflow_reference` checks this front end
//! against its output, `assets/burst/reference_patches.f32`.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Samples per second.
pub const SAMPLE_RATE: usize = 16_000;
/// Samples per STFT frame (25 ms).
pub const WINDOW: usize = 400;
/// Samples between frame starts (10 ms).
pub const HOP: usize = 160;
/// FFT size: the window rounded up to a power of two.
pub const FFT: usize = 512;
/// Spectrogram bins (FFT / 2 + 1).
const BINS: usize = FFT / 2 + 1;
/// Mel bands per frame.
pub const MEL_BANDS: usize = 64;
const MEL_MIN_HZ: f64 = 125.0;
const MEL_MAX_HZ: f64 = 7500.0;
const LOG_OFFSET: f32 = 0.001;
/// Frames per patch (0.96 s).
pub const PATCH_FRAMES: usize = 96;
/// Frames between patch starts (0.48 s).
pub const PATCH_HOP_FRAMES: usize = 48;
/// Seconds between patch starts.
pub const PATCH_HOP_SECS: f64 = (PATCH_HOP_FRAMES * HOP) as f64 / SAMPLE_RATE as f64;
/// Seconds of waveform one patch covers (0.96 s of hops plus the last window's tail: 0.975 s).
pub const PATCH_SECS: f64 = ((PATCH_FRAMES - 1) * HOP + WINDOW) as f64 / SAMPLE_RATE as f64;

/// One patch: [`PATCH_FRAMES`] frames of [`MEL_BANDS`] log-mel values, frame-major.
pub type Patch = Vec<[f32; MEL_BANDS]>;

/// The front end: window, mel weights and FFT plan, made once and shared.
pub struct LogMel {
    window: [f32; WINDOW],
    /// For each mel band, the first spectrogram bin it covers and its weights from there.
    mel: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn Fft<f32>>,
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    /// The front end with YAMNet's parameters.
    pub fn new() -> Self {
        let mut window = [0f32; WINDOW];
        for (n, w) in window.iter_mut().enumerate() {
            // tf.signal.hann_window(400, periodic=True)
            *w = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / WINDOW as f64).cos()) as f32;
        }
        Self { window, mel: mel_weights(), fft: FftPlanner::new().plan_fft_forward(FFT) }
    }

    /// The log-mel frame starting at sample `start` of `samples` (16-bit PCM; samples past the
    /// end are zeros, as after `pad_waveform`).
    pub fn frame(&self, samples: &[i16], start: usize, scratch: &mut Scratch) -> [f32; MEL_BANDS] {
        let spectrum = &mut scratch.spectrum;
        spectrum.fill(Complex32::new(0.0, 0.0));
        for (n, (x, w)) in spectrum.iter_mut().zip(&self.window).enumerate() {
            let s = samples.get(start + n).copied().unwrap_or(0);
            x.re = f32::from(s) / 32768.0 * w;
        }
        self.fft.process_with_scratch(spectrum, &mut scratch.fft);
        let magnitude: Vec<f32> = spectrum[..BINS].iter().map(|c| c.norm()).collect();
        let mut out = [0f32; MEL_BANDS];
        for (o, (first, weights)) in out.iter_mut().zip(&self.mel) {
            let energy: f32 = weights.iter().zip(&magnitude[*first..]).map(|(w, m)| w * m).sum();
            *o = (energy + LOG_OFFSET).ln();
        }
        out
    }

    /// Buffers for [`Self::frame`].
    pub fn scratch(&self) -> Scratch {
        Scratch {
            spectrum: vec![Complex32::new(0.0, 0.0); FFT],
            fft: vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()],
        }
    }

    /// The patches of `samples` in order, computed lazily (patch `k` starts at `k` ×
    /// [`PATCH_HOP_SECS`]).
    pub fn patches<'a>(&'a self, samples: &'a [i16]) -> Patches<'a> {
        Patches {
            front: self,
            samples,
            count: patch_count(samples.len()),
            next: 0,
            previous: None,
            scratch: self.scratch(),
        }
    }
}

/// Reusable FFT buffers.
pub struct Scratch {
    spectrum: Vec<Complex32>,
    fft: Vec<Complex32>,
}

/// How many patches YAMNet makes of `samples` samples once `pad_waveform` has padded them: one
/// for anything up to 0.975 s, then one more per started 0.48 s.
pub fn patch_count(samples: usize) -> usize {
    let min = (PATCH_FRAMES - 1) * HOP + WINDOW; // 15,600
    let hop = PATCH_HOP_FRAMES * HOP; // 7,680
    1 + samples.saturating_sub(min).div_ceil(hop)
}

/// The patches of one waveform, in order; see [`LogMel::patches`].
pub struct Patches<'a> {
    front: &'a LogMel,
    samples: &'a [i16],
    count: usize,
    next: usize,
    previous: Option<Patch>,
    scratch: Scratch,
}

impl Patches<'_> {
    /// Number of patches in all.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Iterator for Patches<'_> {
    type Item = Patch;

    fn next(&mut self) -> Option<Patch> {
        if self.next >= self.count {
            return None;
        }
        let first_frame = self.next * PATCH_HOP_FRAMES;
        let mut patch: Patch = match self.previous.take() {
            Some(previous) => previous[PATCH_HOP_FRAMES..].to_vec(),
            None => Vec::with_capacity(PATCH_FRAMES),
        };
        while patch.len() < PATCH_FRAMES {
            let frame = first_frame + patch.len();
            patch.push(self.front.frame(self.samples, frame * HOP, &mut self.scratch));
        }
        self.next += 1;
        self.previous = Some(patch.clone());
        Some(patch)
    }
}

/// `tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125, 7500)`, as each band's first
/// non-zero bin and its weights from there.
fn mel_weights() -> Vec<(usize, Vec<f32>)> {
    let mel = |hz: f64| 1127.0 * (1.0 + hz / 700.0).ln();
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let (low, high) = (mel(MEL_MIN_HZ), mel(MEL_MAX_HZ));
    let edges: Vec<f64> = (0..MEL_BANDS + 2).map(|i| low + (high - low) * i as f64 / (MEL_BANDS + 1) as f64).collect();
    (0..MEL_BANDS)
        .map(|band| {
            let (lower, center, upper) = (edges[band], edges[band + 1], edges[band + 2]);
            let weights: Vec<f32> = (0..BINS)
                .map(|bin| {
                    if bin == 0 {
                        return 0.0; // the DC bin is left out
                    }
                    let m = mel(nyquist * bin as f64 / (BINS - 1) as f64);
                    let rising = (m - lower) / (center - lower);
                    let falling = (upper - m) / (upper - center);
                    rising.min(falling).max(0.0) as f32
                })
                .collect();
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            (first, weights[first..=last].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test signal of `assets/burst/features_reference.py`, sample for sample: a sawtooth,
    /// then noise from a 32-bit LCG plus a lower sawtooth (integer arithmetic only).
    fn test_signal() -> Vec<i16> {
        let n = 19_200i64;
        let mut state: i64 = 12_345;
        (0..n)
            .map(|i| {
                state = (state * 1_103_515_245 + 12_345).rem_euclid(1 << 31);
                let noise = (state >> 16) % 4001 - 2000;
                let v = if i < n / 2 {
                    ((i * 330 * 65_536 / 16_000) % 65_536 - 32_768).div_euclid(4)
                } else {
                    ((i * 220 * 65_536 / 16_000) % 65_536 - 32_768).div_euclid(8) + noise
                };
                v as i16
            })
            .collect()
    }

    #[test]
    fn matches_the_tensorflow_reference() {
        let bytes = include_bytes!("../../../assets/burst/reference_patches.f32");
        let reference: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let samples = test_signal();
        let ours: Vec<f32> = LogMel::new().patches(&samples).flatten().flatten().collect();
        assert_eq!(ours.len(), reference.len());
        let max = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        // Measured: 1.05e-5 (float32 FFTs in different orders; log values span about -7..4).
        eprintln!("max difference from TensorFlow's features: {max}");
        assert!(max < 1e-4, "max difference from TensorFlow's features: {max}");
    }

    #[test]
    fn patch_counts_follow_pad_waveform() {
        assert_eq!(patch_count(0), 1);
        assert_eq!(patch_count(15_600), 1);
        assert_eq!(patch_count(15_601), 2);
        assert_eq!(patch_count(15_600 + 7_680), 2);
        assert_eq!(patch_count(16_000 * 60), 124);
    }

    #[test]
    fn every_band_covers_some_bins_and_weights_peak_near_one() {
        for (first, weights) in mel_weights() {
            assert!(first >= 1 && !weights.is_empty());
            let peak = weights.iter().copied().fold(0f32, f32::max);
            assert!(peak > 0.3 && peak <= 1.0, "{peak}");
        }
    }

    #[test]
    fn silence_is_the_log_offset_and_patches_share_frames() {
        let front = LogMel::new();
        let silence = vec![0i16; 16_000 * 2];
        let patches: Vec<Patch> = front.patches(&silence).collect();
        assert_eq!(patches.len(), patch_count(silence.len()));
        assert!(patches.iter().flatten().flatten().all(|&v| (v - LOG_OFFSET.ln()).abs() < 1e-6));
        let tone: Vec<i16> = (0..16_000 * 3)
            .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin() * 8_000.0) as i16)
            .collect();
        let patches: Vec<Patch> = front.patches(&tone).collect();
        assert_eq!(patches[0][PATCH_HOP_FRAMES..], patches[1][..PATCH_HOP_FRAMES]);
    }
}
