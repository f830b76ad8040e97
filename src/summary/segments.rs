//! Every model's predictions for one file as one list of scored segments on one axis, so the
//! aggregates, the timeline and the escalation read every model the same way.
//!
//! The axis is seconds from the start of the file for media (a face prediction is a point in
//! time) and characters for text, where a segment has a position but no time. A segment's
//! weight is its duration in seconds (characters for text; a face frame weighs one sampled
//! frame), so a long sentence counts for more than a short one.

use crate::job::models::Model;
use crate::predictions::{InferencePrediction, ModelOutput, Score};

/// What a model's axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Seconds from the start of the media.
    Seconds,
    /// Characters from the start of the text.
    Characters,
}

/// One scored stretch of a file.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    pub begin: f64,
    pub end: f64,
    pub weight: f64,
    /// What was said in it, when known.
    pub text: Option<&'a str>,
    /// The group it came in: `unknown`, a speaker or a tracked face.
    pub group: &'a str,
    pub scores: &'a [Score],
}

impl Segment<'_> {
    /// The middle of the segment on its axis: where a timeline window places it.
    pub fn middle(&self) -> f64 {
        (self.begin + self.end) / 2.0
    }
}

/// The shortest weight a media segment is given, so a zero-length one still counts.
const MIN_WEIGHT: f64 = 0.01;

/// One model's segments of one file, in order along the axis, and that axis.
pub struct ModelSegments<'a> {
    pub model: Model,
    pub unit: Unit,
    pub segments: Vec<Segment<'a>>,
}

/// The models that ran on `prediction`, each with its segments, in v0's model order.
pub fn of_file(prediction: &InferencePrediction) -> Vec<ModelSegments<'_>> {
    let models = &prediction.models;
    let mut out = Vec::new();
    if let Some(face) = &models.face {
        out.push(ModelSegments {
            model: Model::Face,
            unit: Unit::Seconds,
            segments: grouped(face, |p| Segment {
                begin: p.time,
                end: p.time,
                weight: 1.0,
                text: None,
                group: "",
                scores: &p.emotions,
            }),
        });
    }
    if let Some(burst) = &models.burst {
        out.push(ModelSegments {
            model: Model::Burst,
            unit: Unit::Seconds,
            segments: grouped(burst, |p| timed(p.time.begin, p.time.end, None, &p.emotions)),
        });
    }
    if let Some(prosody) = &models.prosody {
        out.push(ModelSegments {
            model: Model::Prosody,
            unit: Unit::Seconds,
            segments: grouped(prosody, |p| timed(p.time.begin, p.time.end, p.text.as_deref(), &p.emotions)),
        });
    }
    if let Some(language) = &models.language {
        let timed_text = language.grouped_predictions.iter().flat_map(|g| &g.predictions).any(|p| p.time.is_some());
        out.push(ModelSegments {
            model: Model::Language,
            unit: if timed_text { Unit::Seconds } else { Unit::Characters },
            segments: grouped(language, |p| match (p.time, timed_text) {
                (Some(time), true) => timed(time.begin, time.end, Some(&p.text), &p.emotions),
                _ => {
                    let (begin, end) = (p.position.begin as f64, p.position.end as f64);
                    Segment {
                        begin,
                        end,
                        weight: (end - begin).max(1.0),
                        text: Some(&p.text),
                        group: "",
                        scores: &p.emotions,
                    }
                }
            }),
        });
    }
    out
}

fn timed<'a>(begin: f64, end: f64, text: Option<&'a str>, scores: &'a [Score]) -> Segment<'a> {
    Segment { begin, end: end.max(begin), weight: (end - begin).max(MIN_WEIGHT), text, group: "", scores }
}

/// Every prediction of every group as a segment, labelled with its group, sorted along the axis.
fn grouped<'a, P>(output: &'a ModelOutput<P>, segment: impl Fn(&'a P) -> Segment<'a>) -> Vec<Segment<'a>> {
    let mut segments: Vec<Segment<'a>> = output
        .grouped_predictions
        .iter()
        .flat_map(|group| group.predictions.iter().map(|p| Segment { group: &group.id, ..segment(p) }))
        .collect();
    segments.sort_by(|a, b| a.begin.total_cmp(&b.begin).then(a.end.total_cmp(&b.end)));
    segments
}

/// The ids of the groups that name someone (not `unknown`), in order of first appearance.
pub fn named_groups<'a>(segments: &[Segment<'a>]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    for s in segments {
        if s.group != "unknown" && !ids.contains(&s.group) {
            ids.push(s.group);
        }
    }
    ids
}
