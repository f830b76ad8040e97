//! The voice in a file's summary: its voice measures (`crate::predictions::VoiceMeasure`: pitch,
//! loudness, speaking rate per utterance) over the file's timeline windows, and the end against
//! the start as evidence beside an escalation verdict.
//!
//! The evidence compares the changes each utterance carries against its own speaker's first
//! minute, so two speakers of different voices compare fairly: the start is the first third of
//! the file's speech by duration (at least one utterance), the end the last third (at least
//! one), as `super::escalation` cuts a file. It never decides `escalation.detected`: how much
//! louder or higher a voice must get to mean an escalating call has not been evaluated, so it
//! is reported as what it is, and the headline mentions it only past the plain thresholds
//! below (a clearly audible step, not a tuned cut-off).

use serde::Serialize;

use super::aggregate::round_secs;
use crate::predictions::VoiceMeasure;

/// Louder by at least this many dB, the headline says "louder".
pub const LOUDER_DB: f64 = 3.0;
/// Higher by at least this many semitones, the headline says "higher".
pub const HIGHER_SEMITONES: f64 = 2.0;
/// Faster by at least this ratio, the headline says "faster".
pub const FASTER_RATIO: f64 = 1.15;

/// A file's voice measures, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VoiceSummary {
    /// Utterances measured.
    pub utterances: usize,
    /// The speakers measured (`unknown` when speakers are not identified).
    pub speakers: Vec<String>,
    /// The measures per timeline window (the file's window), duration-weighted means of the
    /// utterances whose middle falls in it; windows without speech are left out.
    pub timeline: Vec<VoiceWindow>,
    /// The timeline's window in seconds.
    pub window_secs: f64,
    /// The end against the start; `null` with fewer than two utterances.
    pub start_vs_end: Option<VoiceEvidence>,
    /// What these numbers are.
    pub note: String,
}

/// The voice in one timeline window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VoiceWindow {
    pub begin: f64,
    pub end: f64,
    pub utterances: usize,
    pub pitch_hz: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub words_per_minute: Option<f64>,
    /// Against each speaker's first minute.
    pub pitch_change_semitones: Option<f64>,
    pub loudness_change_db: Option<f64>,
    pub rate_change_ratio: Option<f64>,
}

/// How the voice at the end of a file compares with its start (each utterance against its own
/// speaker's first minute): evidence reported beside a verdict, never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VoiceEvidence {
    /// How much louder the end is than the start, in dB (negative: quieter).
    pub louder_db: Option<f64>,
    /// How much higher the pitch is at the end, in semitones (negative: lower).
    pub higher_semitones: Option<f64>,
    /// The end's speaking rate over the start's (1.2: 20% faster).
    pub faster_ratio: Option<f64>,
}

impl VoiceEvidence {
    /// The headline's words for what rose past the thresholds ("louder and higher"), and the
    /// figures, or `None` when nothing did.
    pub fn rose(&self) -> Option<(String, String)> {
        let mut words = Vec::new();
        let mut figures = Vec::new();
        if let Some(db) = self.louder_db.filter(|d| *d >= LOUDER_DB) {
            words.push("louder");
            figures.push(format!("+{db:.1} dB"));
        }
        if let Some(st) = self.higher_semitones.filter(|s| *s >= HIGHER_SEMITONES) {
            words.push("higher");
            figures.push(format!("+{st:.1} semitones"));
        }
        if let Some(r) = self.faster_ratio.filter(|r| *r >= FASTER_RATIO) {
            words.push("faster");
            figures.push(format!("{r:.2}x the rate"));
        }
        let words = match words.as_slice() {
            [] => return None,
            [one] => (*one).to_owned(),
            [first @ .., last] => format!("{} and {last}", first.join(", ")),
        };
        Some((words, figures.join(", ")))
    }
}

/// The summary of a file's voice measures over windows of `window` seconds.
pub fn summarise(rows: &[VoiceMeasure], window: f64) -> VoiceSummary {
    let mut speakers: Vec<String> = Vec::new();
    for r in rows {
        if !speakers.contains(&r.speaker) {
            speakers.push(r.speaker.clone());
        }
    }
    let mut timeline = Vec::new();
    let window = window.max(f64::MIN_POSITIVE);
    let middle = |r: &VoiceMeasure| (r.time.begin + r.time.end) / 2.0;
    let mut i = 0;
    let mut sorted: Vec<&VoiceMeasure> = rows.iter().collect();
    sorted.sort_by(|a, b| middle(a).total_cmp(&middle(b)));
    while i < sorted.len() {
        let k = (middle(sorted[i]) / window).floor();
        let members: Vec<&VoiceMeasure> =
            sorted[i..].iter().copied().take_while(|r| (middle(r) / window).floor() == k).collect();
        i += members.len();
        let mean = |f: fn(&VoiceMeasure) -> Option<f64>, places: i32| weighted(&members, f).map(|v| round(v, places));
        timeline.push(VoiceWindow {
            begin: round_secs(k * window),
            end: round_secs((k + 1.0) * window),
            utterances: members.len(),
            pitch_hz: mean(|r| r.pitch_hz, 1),
            loudness_lufs: mean(|r| r.loudness_lufs, 2),
            words_per_minute: mean(|r| r.words_per_minute, 1),
            pitch_change_semitones: mean(|r| r.pitch_change_semitones, 2),
            loudness_change_db: mean(|r| r.loudness_change_db, 2),
            rate_change_ratio: mean(|r| r.rate_change_ratio, 3),
        });
    }
    VoiceSummary {
        utterances: rows.len(),
        speakers,
        timeline,
        window_secs: window,
        start_vs_end: evidence(&sorted),
        note: "Measurements of the voice (pitch, EBU R128 loudness, words per minute), not emotions and not Hume's prosody; changes are against each speaker's first minute.".to_owned(),
    }
}

/// The end against the start of `rows` (in time order); `None` with fewer than two.
fn evidence(rows: &[&VoiceMeasure]) -> Option<VoiceEvidence> {
    if rows.len() < 2 {
        return None;
    }
    let weight = |r: &VoiceMeasure| (r.time.end - r.time.begin).max(0.01);
    let total: f64 = rows.iter().map(|r| weight(r)).sum();
    let mut before = 0.0;
    let places: Vec<f64> = rows
        .iter()
        .map(|r| {
            let place = (before + weight(r) / 2.0) / total;
            before += weight(r);
            place
        })
        .collect();
    let last = rows.len() - 1;
    let start: Vec<&VoiceMeasure> =
        rows.iter().enumerate().filter(|(i, _)| *i == 0 || places[*i] <= 1.0 / 3.0).map(|(_, r)| *r).collect();
    let end: Vec<&VoiceMeasure> =
        rows.iter().enumerate().filter(|(i, _)| *i == last || places[*i] >= 2.0 / 3.0).map(|(_, r)| *r).collect();
    let change = |f: fn(&VoiceMeasure) -> Option<f64>| Some(weighted(&end, f)? - weighted(&start, f)?);
    let ratio = weighted(&end, |r| r.rate_change_ratio)
        .zip(weighted(&start, |r| r.rate_change_ratio))
        .filter(|(_, s)| *s > 0.0)
        .map(|(e, s)| round(e / s, 3));
    Some(VoiceEvidence {
        louder_db: change(|r| r.loudness_change_db).map(|v| round(v, 2)),
        higher_semitones: change(|r| r.pitch_change_semitones).map(|v| round(v, 2)),
        faster_ratio: ratio,
    })
}

/// The duration-weighted mean of `f` over the rows that have it.
fn weighted(rows: &[&VoiceMeasure], f: fn(&VoiceMeasure) -> Option<f64>) -> Option<f64> {
    let (sum, weight) = rows
        .iter()
        .filter_map(|r| Some((f(r)?, (r.time.end - r.time.begin).max(0.01))))
        .fold((0.0, 0.0), |(s, w), (v, weight)| (s + v * weight, w + weight));
    (weight > 0.0).then(|| sum / weight)
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictions::TimeInterval;

    fn row(begin: f64, loudness_change_db: f64, pitch_change_semitones: f64, rate: f64) -> VoiceMeasure {
        VoiceMeasure {
            time: TimeInterval { begin, end: begin + 4.0 },
            speaker: "unknown".into(),
            text: None,
            words: 10,
            pitch_hz: Some(150.0 * 2f64.powf(pitch_change_semitones / 12.0)),
            pitch_range_semitones: Some(3.0),
            loudness_lufs: Some(-30.0 + loudness_change_db),
            loudness_peak_lufs: None,
            words_per_minute: Some(150.0 * rate),
            in_baseline: begin < 60.0,
            pitch_change_semitones: Some(pitch_change_semitones),
            loudness_change_db: Some(loudness_change_db),
            rate_change_ratio: Some(rate),
        }
    }

    #[test]
    fn a_voice_that_rises_reads_louder_and_higher_at_the_end() {
        let rows = [row(0.0, -2.0, -1.0, 1.0), row(10.0, 0.0, 0.0, 1.0), row(20.0, 5.0, 3.0, 1.0)];
        let s = summarise(&rows, 10.0);
        assert_eq!((s.utterances, s.speakers.as_slice(), s.timeline.len()), (3, &["unknown".to_owned()][..], 3));
        assert_eq!(s.timeline[2].begin, 20.0);
        assert_eq!(s.timeline[2].loudness_lufs, Some(-25.0));
        let e = s.start_vs_end.unwrap();
        assert_eq!((e.louder_db, e.higher_semitones, e.faster_ratio), (Some(7.0), Some(4.0), Some(1.0)));
        let (words, figures) = e.rose().unwrap();
        assert_eq!((words.as_str(), figures.as_str()), ("louder and higher", "+7.0 dB, +4.0 semitones"));
    }

    #[test]
    fn a_steady_voice_rose_nowhere_and_one_utterance_is_no_evidence() {
        let rows = [row(0.0, 0.0, 0.0, 1.0), row(10.0, 1.0, 0.5, 1.05), row(20.0, 0.5, 0.2, 1.0)];
        assert_eq!(summarise(&rows, 10.0).start_vs_end.unwrap().rose(), None);
        assert_eq!(summarise(&rows[..1], 10.0).start_vs_end, None);
    }
}
