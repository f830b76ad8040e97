//! Whether the negative expressions rise over the course of a source: "is this call escalating?".
//!
//! The method, for one model's segments of one file (or one speaker's):
//! 1. Each segment's *escalation score* is the share of its expression scores that the negative
//!    family holds: the sum of the family's scores over the sum of all its scores (0 when it has
//!    none). A share, unlike a raw score, reads the same on a model whose scores sum to one (the
//!    embedded language and face models) and on one that scores each expression alone (Hume).
//! 2. The source is cut by weight (duration, or characters for text) into a start (the first
//!    third, at least one segment), and an end (the last third, at least one segment).
//!    `score_start` and `score_end` are the weighted means of the escalation score there, and
//!    `change` is their difference.
//! 3. It is `detected` when `change` is at least [`EscalationSettings::min_rise`], `score_end`
//!    at least [`EscalationSettings::min_end`] and `score_start` at most
//!    [`EscalationSettings::max_start`]: the end is clearly more negative than the start, negative
//!    in itself, and the start was not negative already. A source that is angry throughout, or
//!    that calms down, is not escalating.
//! 4. The peak is the segment with the highest escalation score; the rise is dated at the first
//!    segment past the start whose score reaches halfway from `score_start` to `score_end`.
//!
//! Models are judged one by one; a file's verdict is its strongest model's (the largest
//! `change`, a detection first), and a job's is its strongest file's. The thresholds are
//! settings, and the method is evaluated on the labelled scripts in `assets/escalation/`
//! (`cargo run --release --example evaluate-escalation`).

use serde::Serialize;

use super::aggregate::{clock, round, round_secs};
use super::segments::{Segment, Unit};
use crate::job::models::Model;

/// The negative family, as v0 names them: the default of `HUME_ACTION_ESCALATION_EMOTIONS`.
pub const DEFAULT_EMOTIONS: [&str; 7] =
    ["Anger", "Annoyance", "Contempt", "Disappointment", "Distress", "Disgust", "Disapproval"];

/// The method's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationSettings {
    /// The negative family (names a model lacks are skipped for it).
    pub emotions: Vec<String>,
    /// The least rise from start to end that counts (`HUME_ACTION_ESCALATION_MIN_RISE`).
    pub min_rise: f64,
    /// The least escalation score at the end that counts (`HUME_ACTION_ESCALATION_MIN_END`).
    pub min_end: f64,
    /// The most escalation score at the start for a rise to count (`HUME_ACTION_ESCALATION_MAX_START`):
    /// a source that is negative from the start does not escalate, it stays negative.
    pub max_start: f64,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        Self { emotions: DEFAULT_EMOTIONS.map(str::to_owned).to_vec(), min_rise: 0.15, min_end: 0.25, max_start: 0.3 }
    }
}

impl EscalationSettings {
    /// A segment's escalation score: the family's share of its scores.
    pub fn score(&self, segment: &Segment<'_>) -> f64 {
        let (mut family, mut all) = (0.0, 0.0);
        for s in segment.scores {
            all += s.score.max(0.0);
            if self.emotions.contains(&s.name) {
                family += s.score.max(0.0);
            }
        }
        if all > 0.0 {
            family / all
        } else {
            0.0
        }
    }

    /// The family names a model's scores carry.
    fn carried(&self, segments: &[Segment<'_>]) -> Vec<String> {
        let names = segments.first().map(|s| s.scores).unwrap_or_default();
        self.emotions.iter().filter(|e| names.iter().any(|s| s.name == **e)).cloned().collect()
    }
}

/// Where the negative expressions peaked.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EscalationPeak {
    /// Seconds from the start of the file; `null` for text.
    pub time: Option<f64>,
    /// `time` as `m:ss`; `null` for text.
    pub at: Option<String>,
    /// The escalation score there.
    pub score: f64,
    /// What was said there, when known.
    pub text: Option<String>,
    /// The file.
    pub file: String,
}

/// The verdict on one source (or one speaker, or the job's strongest file).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Escalation {
    /// Whether the negative family rises over the course of the source.
    pub detected: bool,
    /// Mean escalation score over the first third.
    pub score_start: f64,
    /// Mean escalation score over the last third.
    pub score_end: f64,
    /// `score_end - score_start`.
    pub change: f64,
    pub peak: EscalationPeak,
    /// The negative family this model carries.
    pub emotions: Vec<String>,
    /// The model judged.
    #[schema(value_type = String)]
    #[serde(serialize_with = "model_name")]
    pub model: Model,
    /// When the rise begins (seconds; `null` for text or when nothing rises).
    pub rises_at: Option<f64>,
    /// How the voice at the end compares with its start (`super::voice`), when the voice was
    /// measured: evidence beside the verdict, which `detected` does not use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<super::voice::VoiceEvidence>,
    /// The family's two names that rose most, for the headline.
    #[serde(skip)]
    pub rising: Vec<String>,
    /// The expression that led the start, for the headline.
    #[serde(skip)]
    pub start_top: Option<String>,
    #[serde(skip)]
    pub unit: Unit,
}

fn model_name<S: serde::Serializer>(model: &Model, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(model.name())
}

impl Escalation {
    /// Whether this verdict is stronger evidence than `other`: a detection first, then the larger rise.
    pub fn stronger_than(&self, other: &Escalation) -> bool {
        (self.detected, self.change) > (other.detected, other.change)
    }
}

/// The verdict on `segments` (one model's, of `file`, in order); `None` without any segment.
pub fn judge(
    settings: &EscalationSettings,
    model: Model,
    unit: Unit,
    file: &str,
    segments: &[Segment<'_>],
) -> Option<Escalation> {
    segments.first()?;
    let scores: Vec<f64> = segments.iter().map(|s| settings.score(s)).collect();
    let total: f64 = segments.iter().map(|s| s.weight).sum();
    // Each segment's place: the weight before its middle, as a share of the whole.
    let mut before = 0.0;
    let places: Vec<f64> = segments
        .iter()
        .map(|s| {
            let place = (before + s.weight / 2.0) / total;
            before += s.weight;
            place
        })
        .collect();
    let last = segments.len() - 1;
    let in_start = |i: usize| i == 0 || places[i] <= 1.0 / 3.0;
    let in_end = |i: usize| i == last || places[i] >= 2.0 / 3.0;
    let mean = |keep: &dyn Fn(usize) -> bool| {
        let (sum, weight) = (0..segments.len())
            .filter(|i| keep(*i))
            .fold((0.0, 0.0), |(s, w), i| (s + scores[i] * segments[i].weight, w + segments[i].weight));
        sum / weight.max(f64::MIN_POSITIVE)
    };
    let (score_start, score_end) = (mean(&in_start), mean(&in_end));
    let change = score_end - score_start;
    let detected = segments.len() > 1
        && change >= settings.min_rise
        && score_end >= settings.min_end
        && score_start <= settings.max_start;
    let peak_index = (0..segments.len()).max_by(|a, b| scores[*a].total_cmp(&scores[*b]).then(b.cmp(a))).unwrap_or(0);
    let peak_segment = &segments[peak_index];
    let halfway = score_start + change / 2.0;
    let rise_index = (1..segments.len()).find(|i| !in_start(*i) && scores[*i] >= halfway);
    let time = |s: &Segment| (unit == Unit::Seconds).then_some(s.begin);
    let family = settings.carried(segments);
    let rising = rising_names(&family, segments, &in_start, &in_end);
    let start_means =
        super::aggregate::means(segments.iter().enumerate().filter(|(i, _)| in_start(*i)).map(|(_, s)| s));
    Some(Escalation {
        detected,
        score_start: round(score_start),
        score_end: round(score_end),
        change: round(change),
        peak: EscalationPeak {
            time: time(peak_segment).map(round_secs),
            at: time(peak_segment).map(clock),
            score: round(scores[peak_index]),
            text: peak_segment.text.map(str::to_owned),
            file: file.to_owned(),
        },
        emotions: family,
        model,
        rises_at: rise_index.filter(|_| change > 0.0).and_then(|i| time(&segments[i])).map(round_secs),
        voice: None,
        rising,
        start_top: super::aggregate::top(&start_means.scores(), 1).first().map(|s| s.name.clone()),
        unit,
    })
}

/// The family's names that rose from start to end, most first (at most two).
fn rising_names(
    family: &[String],
    segments: &[Segment<'_>],
    in_start: &dyn Fn(usize) -> bool,
    in_end: &dyn Fn(usize) -> bool,
) -> Vec<String> {
    let mean_of = |name: &str, keep: &dyn Fn(usize) -> bool| {
        let (sum, weight) =
            segments.iter().enumerate().filter(|(i, _)| keep(*i)).fold((0.0, 0.0), |(s, w), (_, seg)| {
                let score = seg.scores.iter().find(|x| x.name == name).map_or(0.0, |x| x.score);
                (s + score * seg.weight, w + seg.weight)
            });
        sum / weight.max(f64::MIN_POSITIVE)
    };
    let mut rises: Vec<(f64, &String)> = family
        .iter()
        .map(|name| (mean_of(name, in_end) - mean_of(name, in_start), name))
        .filter(|(r, _)| *r > 0.0)
        .collect();
    rises.sort_by(|a, b| b.0.total_cmp(&a.0));
    rises.into_iter().take(2).map(|(_, name)| name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictions::Score;

    fn scores(anger: f64) -> Vec<Score> {
        vec![Score::new("Anger", anger), Score::new("Calmness", 1.0 - anger)]
    }

    fn segments(levels: &[Vec<Score>]) -> Vec<Segment<'_>> {
        levels
            .iter()
            .enumerate()
            .map(|(i, s)| Segment {
                begin: i as f64 * 10.0,
                end: i as f64 * 10.0 + 10.0,
                weight: 10.0,
                text: None,
                group: "unknown",
                scores: s,
            })
            .collect()
    }

    fn verdict(levels: &[f64]) -> Escalation {
        let levels: Vec<Vec<Score>> = levels.iter().map(|a| scores(*a)).collect();
        judge(&EscalationSettings::default(), Model::Language, Unit::Seconds, "call.mp3", &segments(&levels)).unwrap()
    }

    #[test]
    fn a_rise_to_a_negative_end_is_detected_and_dated() {
        let v = verdict(&[0.05, 0.1, 0.05, 0.5, 0.8, 0.7]);
        assert!(v.detected, "{v:?}");
        assert_eq!((v.score_start, v.score_end), (0.075, 0.75));
        assert_eq!((v.peak.time, v.peak.at.as_deref()), (Some(40.0), Some("0:40")));
        assert_eq!(v.rises_at, Some(30.0));
        assert_eq!(v.rising, ["Anger"]);
        assert_eq!(v.start_top.as_deref(), Some("Calmness"));
    }

    #[test]
    fn calm_throughout_angry_throughout_and_calming_down_are_not() {
        for levels in [[0.05; 6], [0.8; 6], [0.8, 0.7, 0.5, 0.2, 0.1, 0.05]] {
            assert!(!verdict(&levels).detected, "{levels:?}");
        }
        // A rise that ends low is not an escalation either.
        assert!(!verdict(&[0.0, 0.0, 0.05, 0.1, 0.15, 0.2]).detected);
        assert!(judge(&EscalationSettings::default(), Model::Face, Unit::Seconds, "x", &[]).is_none());
    }
}
