//! Voice measures: what each utterance sounded like, measured from the signal, so that a caller
//! who starts shouting no longer reads the same as one who stays calm when the words are the
//! same.
//!
//! No trained speech-emotion model ships in any package this server can install, so Hume's
//! prosody scores stay Hume's (the `hume` backend). What can be measured honestly is the voice
//! itself, and that is all this module reports, under names that say so (`crate::predictions::VoiceMeasure`):
//! - pitch: the fundamental frequency (F0) of each 40 ms frame (10 ms hop) by the McLeod pitch
//!   method (`pitch-detection`), kept when the frame is clearly periodic (clarity >= 0.7), within
//!   60-500 Hz and within 30 dB of the utterance's loudest frame; the utterance's median, and its
//!   range as the 10th to 90th percentile in semitones;
//! - loudness: EBU R128 integrated (gated) loudness of the utterance and its highest momentary
//!   (400 ms) loudness, in LUFS (`ebur128`);
//! - speaking rate: words per minute from the transcript's word times;
//! - each of these against the same speaker's own first minute ([`BASELINE_SECS`]): pitch in
//!   semitones, loudness in dB and rate as a ratio, so a naturally loud or high voice does not
//!   read as a raised one.
//!
//! Utterances are the transcript's, cut as the language model cuts them at `utterance`
//! granularity (so a voice row and a language row of the same words share their time), and never
//! across a change of speaker: [`speaker_of`] is the one place that says who said a word
//! (`unknown` unless speakers are identified).

use std::collections::BTreeMap;

use ebur128::{EbuR128, Mode};
use pitch_detection::detector::mcleod::McLeodDetector;
use pitch_detection::detector::PitchDetector;

use crate::media::audio::Pcm;
use crate::models::segment::segment;
use crate::predictions::{TimeInterval, Transcript, VoiceMeasure, Word};

/// Samples per second of the PCM measured.
const SAMPLE_RATE: u32 = Pcm::RATE;

/// How much of each speaker's speech, from their first word, the changes are measured against.
pub const BASELINE_SECS: f64 = 60.0;
/// Samples per pitch frame (40 ms: two periods of the lowest pitch kept).
const FRAME: usize = 640;
/// Samples between pitch frames (10 ms).
const HOP: usize = 160;
/// The lowest and highest F0 kept, in Hz (speech; anything outside is an octave error or noise).
const PITCH_RANGE: (f64, f64) = (60.0, 500.0);
/// How periodic a frame must be for its pitch to count (McLeod's clarity, 0..1).
const CLARITY: f64 = 0.7;
/// How far below the utterance's loudest frame a frame may be and still be tracked, in dB.
const FRAME_FLOOR_DB: f64 = 30.0;
/// Frames with fewer voiced frames than this give no pitch (too little to be a median).
const MIN_VOICED_FRAMES: usize = 5;

/// Who said `word`: its speaker id when speakers were identified, else `unknown`.
pub fn speaker_of(word: &Word) -> &str {
    word.speaker.as_deref().unwrap_or("unknown")
}

/// One utterance of the transcript: its words, span and speaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub time: TimeInterval,
    pub speaker: String,
    pub text: String,
    pub words: u32,
}

/// The transcript's utterances (sentences of what was said, as the language model cuts them),
/// split where the speaker changes.
pub fn utterances(transcript: &Transcript) -> Vec<Utterance> {
    let (text, spans) = transcript.text_and_spans();
    let mut out = Vec::new();
    for piece in segment(&text, "utterance") {
        let words: Vec<(&Word, (usize, usize))> = transcript
            .words
            .iter()
            .zip(spans.iter().copied())
            .filter(|(_, (b, e))| *b < piece.end && *e > piece.begin)
            .collect();
        for run in words.chunk_by(|a, b| speaker_of(a.0) == speaker_of(b.0)) {
            let (first, last) = (run[0].0, run[run.len() - 1].0);
            let (begin, end) = (run[0].1 .0.max(piece.begin), run[run.len() - 1].1 .1.min(piece.end));
            out.push(Utterance {
                time: TimeInterval { begin: first.begin, end: last.end.max(first.begin) },
                speaker: speaker_of(first).to_owned(),
                text: text.chars().skip(begin).take(end - begin).collect(),
                words: run.len() as u32,
            });
        }
    }
    out
}

/// The voice measures of every utterance of `transcript` in `pcm` (16 kHz mono), in time order.
pub fn measure(pcm: &Pcm, transcript: &Transcript) -> Vec<VoiceMeasure> {
    let mut tracker = PitchTracker::new();
    let said = utterances(transcript);
    let mut rows = Vec::with_capacity(said.len());
    // Per speaker: when they first spoke, their baseline's pitch frames, samples and words.
    let mut baselines: BTreeMap<String, Baseline> = BTreeMap::new();
    for u in &said {
        let samples = slice(pcm, u.time);
        let f0 = tracker.track(samples);
        let baseline = baselines.entry(u.speaker.clone()).or_insert_with(|| Baseline::starting(u.time.begin));
        let in_baseline = u.time.begin < baseline.first + BASELINE_SECS;
        let duration = u.time.end - u.time.begin;
        if in_baseline {
            baseline.f0.extend_from_slice(&f0);
            baseline.loudness.add(samples);
            baseline.words += u.words;
            baseline.secs += duration;
        }
        let (pitch_hz, pitch_range_semitones) = pitch_of(&f0);
        let (loudness_lufs, loudness_peak_lufs) = loudness_of(samples);
        rows.push(VoiceMeasure {
            time: u.time,
            speaker: u.speaker.clone(),
            text: Some(u.text.clone()),
            words: u.words,
            pitch_hz: pitch_hz.map(|p| round(p, 1)),
            pitch_range_semitones: pitch_range_semitones.map(|r| round(r, 2)),
            loudness_lufs: loudness_lufs.map(|l| round(l, 2)),
            loudness_peak_lufs: loudness_peak_lufs.map(|l| round(l, 2)),
            words_per_minute: rate(u.words, duration).map(|r| round(r, 1)),
            in_baseline,
            pitch_change_semitones: None,
            loudness_change_db: None,
            rate_change_ratio: None,
        });
        // The unrounded values, for the changes below.
        baseline.rows.push((rows.len() - 1, pitch_hz, loudness_lufs, rate(u.words, duration)));
    }
    for baseline in baselines.values_mut() {
        let pitch = pitch_of(&baseline.f0).0;
        let loudness = baseline.loudness.integrated();
        let words_per_minute = rate(baseline.words, baseline.secs);
        for &(i, p, l, r) in &baseline.rows {
            let row = &mut rows[i];
            row.pitch_change_semitones = p.zip(pitch).map(|(p, b)| round(semitones(p, b), 2));
            row.loudness_change_db = l.zip(loudness).map(|(l, b)| round(l - b, 2));
            row.rate_change_ratio = r.zip(words_per_minute).map(|(r, b)| round(r / b, 3));
        }
    }
    rows
}

/// A speaker's first minute, and the rows to compare with it.
struct Baseline {
    first: f64,
    f0: Vec<f64>,
    loudness: Meter,
    words: u32,
    secs: f64,
    rows: Vec<Compared>,
}

/// A row to compare with its speaker's baseline: its index, pitch (Hz), loudness (LUFS) and rate
/// (words per minute), each when measured.
type Compared = (usize, Option<f64>, Option<f64>, Option<f64>);

impl Baseline {
    fn starting(first: f64) -> Self {
        Self { first, f0: Vec::new(), loudness: Meter::new(), words: 0, secs: 0.0, rows: Vec::new() }
    }
}

/// The samples of `pcm` in `time` (empty when outside).
fn slice(pcm: &Pcm, time: TimeInterval) -> &[i16] {
    let at = |t: f64| ((t.max(0.0) * SAMPLE_RATE as f64) as usize).min(pcm.samples.len());
    let (begin, end) = (at(time.begin), at(time.end));
    &pcm.samples[begin..end.max(begin)]
}

/// The pitch of each voiced frame, reusing one detector's buffers.
struct PitchTracker {
    detector: McLeodDetector<f64>,
    frame: Vec<f64>,
}

impl PitchTracker {
    fn new() -> Self {
        Self { detector: McLeodDetector::new(FRAME, FRAME / 2), frame: vec![0.0; FRAME] }
    }

    /// The F0 in Hz of every frame of `samples` that is voiced, loud enough and in range.
    fn track(&mut self, samples: &[i16]) -> Vec<f64> {
        if samples.len() < FRAME {
            return Vec::new();
        }
        let starts: Vec<usize> = (0..=samples.len() - FRAME).step_by(HOP).collect();
        let power = |start: usize| -> f64 {
            samples[start..start + FRAME].iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum()
        };
        let powers: Vec<f64> = starts.iter().map(|&s| power(s)).collect();
        let loudest = powers.iter().copied().fold(0.0, f64::max);
        // Frames quieter than this are breath, noise or silence between words.
        let floor = (loudest * 10f64.powf(-FRAME_FLOOR_DB / 10.0)).max(FRAME as f64 * 1e-7);
        let mut f0 = Vec::new();
        for (&start, &p) in starts.iter().zip(&powers) {
            if p < floor {
                continue;
            }
            for (x, &s) in self.frame.iter_mut().zip(&samples[start..start + FRAME]) {
                *x = f64::from(s) / 32768.0;
            }
            if let Some(pitch) = self.detector.get_pitch(&self.frame, SAMPLE_RATE as usize, floor, CLARITY) {
                if (PITCH_RANGE.0..=PITCH_RANGE.1).contains(&pitch.frequency) {
                    f0.push(pitch.frequency);
                }
            }
        }
        f0
    }
}

/// The median F0 and its 10th-90th percentile range in semitones; `None` with too few frames.
fn pitch_of(f0: &[f64]) -> (Option<f64>, Option<f64>) {
    if f0.len() < MIN_VOICED_FRAMES {
        return (None, None);
    }
    let mut sorted = f0.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (Some(at(0.5)), Some(semitones(at(0.9), at(0.1))))
}

/// `hz` above `reference` in semitones.
fn semitones(hz: f64, reference: f64) -> f64 {
    12.0 * (hz / reference).log2()
}

/// Words per minute; `None` for a span too short to time.
fn rate(words: u32, secs: f64) -> Option<f64> {
    (secs >= 0.2 && words > 0).then(|| f64::from(words) * 60.0 / secs)
}

/// An utterance's integrated loudness and its highest momentary loudness.
fn loudness_of(samples: &[i16]) -> (Option<f64>, Option<f64>) {
    let mut meter = Meter::new();
    let mut peak = None::<f64>;
    // 100 ms at a time, reading the last 400 ms once there are 400 ms.
    for (i, chunk) in samples.chunks(SAMPLE_RATE as usize / 10).enumerate() {
        meter.add(chunk);
        if i >= 3 {
            if let Some(m) = meter.momentary() {
                peak = Some(peak.map_or(m, |p| p.max(m)));
            }
        }
    }
    (meter.integrated(), peak)
}

/// An EBU R128 meter over 16 kHz mono.
struct Meter(Option<EbuR128>);

impl Meter {
    fn new() -> Self {
        Self(EbuR128::new(1, SAMPLE_RATE, Mode::I | Mode::M).ok())
    }

    fn add(&mut self, samples: &[i16]) {
        if let Some(m) = &mut self.0 {
            let _ = m.add_frames_i16(samples);
        }
    }

    /// Gated integrated loudness; `None` when nothing passed the gate (silence, under 400 ms).
    fn integrated(&self) -> Option<f64> {
        self.0.as_ref().and_then(|m| m.loudness_global().ok()).filter(|l| l.is_finite())
    }

    fn momentary(&self) -> Option<f64> {
        self.0.as_ref().and_then(|m| m.loudness_momentary().ok()).filter(|l| l.is_finite())
    }
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tone of `hz` at `amplitude` (0..1 of full scale) with its first two harmonics, as a
    /// voice has, lasting `secs`.
    fn tone(hz: f64, amplitude: f64, secs: f64) -> Vec<i16> {
        let n = (secs * SAMPLE_RATE as f64) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / SAMPLE_RATE as f64;
                let phase = 2.0 * std::f64::consts::PI * hz * t;
                let v = phase.sin() * 0.6 + (2.0 * phase).sin() * 0.3 + (3.0 * phase).sin() * 0.1;
                (v * amplitude * 32767.0) as i16
            })
            .collect()
    }

    fn word(text: &str, begin: f64, end: f64) -> Word {
        Word { text: text.into(), begin, end, confidence: 0.9, speaker: None, speaker_confidence: None }
    }

    /// One sentence per second of `tones`, four words each, with 0.5 s of silence after each.
    fn spoken(tones: &[(f64, f64)]) -> (Pcm, Transcript) {
        let (mut samples, mut words) = (Vec::new(), Vec::new());
        for (i, &(hz, amplitude)) in tones.iter().enumerate() {
            let at = samples.len() as f64 / SAMPLE_RATE as f64;
            samples.extend(tone(hz, amplitude, 2.0));
            samples.extend(vec![0; SAMPLE_RATE as usize / 2]);
            for w in 0..4 {
                let b = at + w as f64 * 0.5;
                let text = if w == 3 { format!("word{i}.") } else { format!("word{i}") };
                words.push(word(&text, b, b + 0.45));
            }
        }
        (Pcm { samples }, Transcript { language: "en".into(), confidence: 0.9, words })
    }

    #[test]
    fn pitch_loudness_and_rate_are_measured_per_utterance() {
        let (pcm, transcript) = spoken(&[(120.0, 0.1), (240.0, 0.4)]);
        let rows = measure(&pcm, &transcript);
        assert_eq!(rows.len(), 2, "{rows:?}");
        let (low, high) = (&rows[0], &rows[1]);
        assert!((low.pitch_hz.unwrap() - 120.0).abs() < 2.0, "{low:?}");
        assert!((high.pitch_hz.unwrap() - 240.0).abs() < 4.0, "{high:?}");
        assert!(low.pitch_range_semitones.unwrap() < 0.5, "a steady tone barely moves: {low:?}");
        // Four times the amplitude is 12 dB louder.
        let louder = high.loudness_lufs.unwrap() - low.loudness_lufs.unwrap();
        assert!((louder - 12.0).abs() < 1.5, "{louder}");
        assert!(high.loudness_peak_lufs.unwrap() >= high.loudness_lufs.unwrap() - 0.5);
        // Four words from 0.0 to 1.95 s.
        assert!((low.words_per_minute.unwrap() - 4.0 * 60.0 / 1.95).abs() < 0.5, "{low:?}");
        assert_eq!(
            (low.speaker.as_str(), low.text.as_deref(), low.words),
            ("unknown", Some("word0 word0 word0 word0."), 4)
        );
    }

    #[test]
    fn changes_are_against_the_speaker_s_first_minute() {
        // Three calm sentences, then (after a minute) one an octave higher and 12 dB louder.
        let (mut pcm, mut transcript) = spoken(&[(150.0, 0.1), (150.0, 0.1), (150.0, 0.1)]);
        let gap = 65.0 - pcm.duration_secs();
        pcm.samples.extend(vec![0; (gap * SAMPLE_RATE as f64) as usize]);
        let (late_pcm, late) = spoken(&[(300.0, 0.4)]);
        pcm.samples.extend(late_pcm.samples);
        transcript.words.extend(late.words.into_iter().map(|w| word(&w.text, w.begin + 65.0, w.end + 65.0)));
        let rows = measure(&pcm, &transcript);
        assert_eq!(rows.iter().map(|r| r.in_baseline).collect::<Vec<_>>(), [true, true, true, false]);
        let calm = &rows[0];
        assert!(calm.pitch_change_semitones.unwrap().abs() < 0.2 && calm.loudness_change_db.unwrap().abs() < 0.5);
        assert!((calm.rate_change_ratio.unwrap() - 1.0).abs() < 0.01, "{calm:?}");
        let raised = &rows[3];
        assert!((raised.pitch_change_semitones.unwrap() - 12.0).abs() < 0.5, "{raised:?}");
        assert!((raised.loudness_change_db.unwrap() - 12.0).abs() < 1.5, "{raised:?}");
    }

    #[test]
    fn silence_and_a_lone_short_word_measure_nothing_rather_than_zero() {
        let pcm = Pcm { samples: vec![0; SAMPLE_RATE as usize] };
        let transcript = Transcript { language: "en".into(), confidence: 0.5, words: vec![word("Hm.", 0.2, 0.3)] };
        let rows = measure(&pcm, &transcript);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (row.pitch_hz, row.loudness_lufs, row.loudness_peak_lufs, row.words_per_minute),
            (None, None, None, None)
        );
        assert_eq!((row.pitch_change_semitones, row.loudness_change_db), (None, None));
        assert!(measure(&pcm, &Transcript::default()).is_empty());
    }
}
