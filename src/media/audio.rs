//! Decoded audio as the analyzers and the upstream API want it, and silence-aware chunking.
//!
//! Everything is 16 kHz mono signed 16-bit: the rate speech models expect, and small enough to keep a
//! whole recording in memory (about 115 MB per hour).

use std::ops::Range;

/// 16 kHz mono signed 16-bit samples, as decoded by ffmpeg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pcm {
    /// The samples in time order.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Samples per second.
    pub const RATE: u32 = 16_000;

    /// Peak level at or below which a recording counts as silent (about -60 dBFS), so dithering or a
    /// tiny DC offset in a "silent" file still counts as silence.
    pub const SILENCE_PEAK: i16 = 32;

    /// The length in seconds, so callers can report and bill by duration.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(Self::RATE)
    }

    /// A complete WAV file (44-byte PCM header, s16le mono 16 kHz) of the samples in `range`, for
    /// uploading one chunk; a range past the end is clipped.
    pub fn to_wav(&self, range: Range<usize>) -> Vec<u8> {
        let end = range.end.min(self.samples.len());
        let start = range.start.min(end);
        let samples = &self.samples[start..end];
        let data_len = (samples.len() * 2) as u32;
        let mut wav = Vec::with_capacity(44 + samples.len() * 2);
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data_len).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
        wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
        wav.extend_from_slice(&1u16.to_le_bytes()); // mono
        wav.extend_from_slice(&Self::RATE.to_le_bytes());
        wav.extend_from_slice(&(Self::RATE * 2).to_le_bytes()); // byte rate
        wav.extend_from_slice(&2u16.to_le_bytes()); // block align
        wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            wav.extend_from_slice(&s.to_le_bytes());
        }
        wav
    }

    /// True when no sample exceeds [`Pcm::SILENCE_PEAK`] (or there are none): such a file has nothing
    /// to analyse, and the caller decides whether that is an error.
    pub fn is_silent(&self) -> bool {
        self.samples.iter().all(|s| s.unsigned_abs() <= Self::SILENCE_PEAK as u16)
    }
}

/// Samples in one 20 ms analysis frame at 16 kHz.
const FRAME: usize = 320;
/// Step between candidate frames (10 ms), so a cut lands within 5 ms of the quietest spot.
const HOP: usize = 160;

/// Silence-aware chunking for uploads: ranges that cover every sample exactly once, in order, each
/// at most `max_samples` long. Each cut is placed in the middle of the quietest 20 ms frame within the
/// last `search_samples` before the limit, so words are not split; when that window is shorter than a
/// frame the cut is hard, at the limit. Empty input gives no ranges.
pub fn chunk_ranges(samples: &[i16], max_samples: usize, search_samples: usize) -> Vec<Range<usize>> {
    let max = max_samples.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    while samples.len() - start > max {
        let limit = start + max;
        let window_start = limit.saturating_sub(search_samples).max(start + 1);
        let cut = quietest_cut(samples, window_start, limit).unwrap_or(limit);
        ranges.push(start..cut);
        start = cut;
    }
    if start < samples.len() {
        ranges.push(start..samples.len());
    }
    ranges
}

/// The middle of the lowest-energy 20 ms frame lying inside `lo..hi`, or `None` when none fits.
/// Ties go to the latest frame, keeping chunks as long as possible.
fn quietest_cut(samples: &[i16], lo: usize, hi: usize) -> Option<usize> {
    if hi < lo + FRAME {
        return None;
    }
    let energy = |from: usize| samples[from..from + FRAME].iter().map(|&s| i64::from(s) * i64::from(s)).sum::<i64>();
    let mut best: Option<(i64, usize)> = None;
    let mut from = hi - FRAME;
    loop {
        let e = energy(from);
        if best.is_none_or(|(b, _)| e < b) {
            best = Some((e, from));
        }
        if from < lo + HOP {
            break;
        }
        from -= HOP;
    }
    best.map(|(_, from)| from + FRAME / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16).collect()
    }

    #[test]
    fn chunks_cut_in_the_silent_gap_and_cover_every_sample_once() {
        // 3 s of tone, 0.2 s of silence at 3.0-3.2 s, 3 s of tone; limit 4 s, search the last 2 s.
        let mut samples = tone(48_000);
        samples.resize(samples.len() + 3_200, 0);
        samples.extend(tone(48_000));
        let ranges = chunk_ranges(&samples, 64_000, 32_000);
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        let cut = ranges[0].end;
        assert!((48_000..=51_200).contains(&cut), "cut at {cut}");
        let mut next = 0;
        for r in &ranges {
            assert_eq!(r.start, next);
            assert!(r.len() <= 64_000 && !r.is_empty());
            next = r.end;
        }
        assert_eq!(next, samples.len());
    }

    #[test]
    fn hard_cut_without_search_window_and_edge_cases() {
        let samples = tone(10_000);
        assert_eq!(chunk_ranges(&samples, 4_000, 0), vec![0..4_000, 4_000..8_000, 8_000..10_000]);
        assert_eq!(chunk_ranges(&samples, 20_000, 1_000), vec![0..10_000]);
        assert!(chunk_ranges(&[], 100, 10).is_empty());
        let tiny = chunk_ranges(&samples[..5], 0, 0);
        assert_eq!(tiny.len(), 5);
        // Every range within the limit even with a search window larger than the limit.
        let ranges = chunk_ranges(&samples, 1_000, 5_000);
        assert!(ranges.iter().all(|r| !r.is_empty() && r.len() <= 1_000));
        assert_eq!(ranges.last().unwrap().end, 10_000);
    }

    #[test]
    fn wav_header_and_silence() {
        let pcm = Pcm { samples: vec![1, -1, 300, 4] };
        let wav = pcm.to_wav(1..3);
        assert_eq!(wav.len(), 44 + 4);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(wav[4..8].try_into().unwrap()), 40);
        assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()), 4);
        assert_eq!(&wav[44..], &[0xFF, 0xFF, 0x2C, 0x01]);
        assert_eq!(pcm.to_wav(2..99).len(), 44 + 4);
        assert!(!pcm.is_silent());
        assert!(Pcm { samples: vec![0, 3, -32] }.is_silent());
        assert!((Pcm { samples: vec![0; 8_000] }.duration_secs() - 0.5).abs() < 1e-9);
    }
}
