//! Averages, peaks and timelines over scored segments.
//!
//! Every average weighs a segment by its weight (its duration, or its length in characters for
//! text), so a long stretch counts for more than a short one. Names keep the order the model
//! gave them in; ties in a ranking keep that order too.

use std::collections::BTreeMap;

use serde::Serialize;

use super::segments::{Segment, Unit};
use crate::predictions::Score;

/// A weighted sum of scores per name, in the models' order of names.
#[derive(Debug, Clone, Default)]
pub struct Means {
    names: Vec<String>,
    sums: Vec<f64>,
    weights: Vec<f64>,
}

impl Means {
    /// Adds one list of scores with `weight`.
    pub fn add(&mut self, scores: &[Score], weight: f64) {
        for score in scores {
            let i = match self.names.iter().position(|n| *n == score.name) {
                Some(i) => i,
                None => {
                    self.names.push(score.name.clone());
                    self.sums.push(0.0);
                    self.weights.push(0.0);
                    self.names.len() - 1
                }
            };
            self.sums[i] += score.score * weight;
            self.weights[i] += weight;
        }
    }

    /// Adds another set of means, each name's mean counted with `weight`.
    pub fn add_means(&mut self, other: &Means, weight: f64) {
        self.add(&other.scores(), weight);
    }

    /// Each name's mean, in order.
    pub fn scores(&self) -> Vec<Score> {
        self.names
            .iter()
            .zip(self.sums.iter().zip(&self.weights))
            .map(|(name, (sum, weight))| {
                Score::new(name.clone(), round(if *weight > 0.0 { sum / weight } else { 0.0 }))
            })
            .collect()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The means of `segments`' scores.
pub fn means<'a>(segments: impl IntoIterator<Item = &'a Segment<'a>>) -> Means {
    let mut means = Means::default();
    for s in segments {
        means.add(s.scores, s.weight);
    }
    means
}

/// The `n` highest scores, highest first (ties in the list's order).
pub fn top(scores: &[Score], n: usize) -> Vec<Score> {
    let mut sorted: Vec<Score> = scores.to_vec();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    sorted.truncate(n);
    sorted
}

/// `{name: score}` of every score, for a builder to map `scores.Anger`.
pub fn by_name(scores: &[Score]) -> BTreeMap<String, f64> {
    scores.iter().map(|s| (s.name.clone(), s.score)).collect()
}

/// A score to four decimals: enough for a person or a threshold, and a smaller answer.
pub fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The highest score of one expression in a file, and where it was.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Peak {
    pub name: String,
    pub score: f64,
    /// Seconds from the start of the file; `null` for text.
    pub time: Option<f64>,
    /// `time` as `m:ss`; `null` for text.
    pub at: Option<String>,
    /// What was said there, when known.
    pub text: Option<String>,
}

/// For each of `names`, the segment where it scores highest.
pub fn peaks(segments: &[Segment<'_>], names: &[Score], unit: Unit) -> Vec<Peak> {
    names
        .iter()
        .filter_map(|name| {
            let (segment, score) = segments
                .iter()
                .filter_map(|s| s.scores.iter().find(|x| x.name == name.name).map(|x| (s, x.score)))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            let time = (unit == Unit::Seconds).then_some(segment.begin);
            Some(Peak {
                name: name.name.clone(),
                score: round(score),
                time: time.map(round_secs),
                at: time.map(clock),
                text: segment.text.map(str::to_owned),
            })
        })
        .collect()
}

/// Seconds to hundredths.
pub fn round_secs(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Seconds as `m:ss` (`h:mm:ss` from an hour on), as a person reads a time in a recording.
pub fn clock(secs: f64) -> String {
    let total = secs.max(0.0).floor() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Window sizes a timeline may use, in seconds: round numbers a person reads easily.
const WINDOW_SIZES: [f64; 14] =
    [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0];

/// Windows a chosen timeline aims to stay within.
pub const TARGET_WINDOWS: f64 = 40.0;

/// Windows a timeline may have at the most, whatever size is asked for.
pub const MAX_WINDOWS: usize = 2_000;

/// The window size for a file of `length` seconds: the smallest round size that keeps the
/// timeline within [`TARGET_WINDOWS`] windows.
pub fn window_for(length: f64) -> f64 {
    WINDOW_SIZES
        .into_iter()
        .find(|size| length / size <= TARGET_WINDOWS)
        .unwrap_or(WINDOW_SIZES[WINDOW_SIZES.len() - 1])
}

/// One timeline window: its bounds, and each segment in it with the weight of its part there.
pub type WindowOf<'s, 'a> = (f64, f64, Vec<(&'s Segment<'a>, f64)>);

/// Groups `segments` into windows: fixed windows of `size` seconds for media, each segment
/// counted in every window it overlaps with the weight of the overlap (a point, such as a face in
/// a frame, in the window it falls in); and for text runs of consecutive segments (at most
/// [`TARGET_WINDOWS`] runs), since characters are no clock. Empty windows are left out.
pub fn windows<'s, 'a>(segments: &'s [Segment<'a>], unit: Unit, size: f64) -> Vec<WindowOf<'s, 'a>> {
    match unit {
        Unit::Characters => {
            let per = (segments.len() as f64 / TARGET_WINDOWS).ceil().max(1.0) as usize;
            segments
                .chunks(per)
                .map(|run| (run[0].begin, run[run.len() - 1].end, run.iter().map(|s| (s, s.weight)).collect()))
                .collect()
        }
        Unit::Seconds => {
            let mut by_index: BTreeMap<u64, Vec<(&Segment, f64)>> = BTreeMap::new();
            for s in segments {
                let first = (s.begin.max(0.0) / size).floor() as u64;
                if s.end <= s.begin {
                    by_index.entry(first).or_default().push((s, s.weight));
                    continue;
                }
                let last = ((s.end / size).ceil() as u64).saturating_sub(1).max(first);
                for index in first..=last {
                    let (begin, end) = (index as f64 * size, (index + 1) as f64 * size);
                    let overlap = s.end.min(end) - s.begin.max(begin);
                    if overlap > 0.0 {
                        by_index.entry(index).or_default().push((s, overlap));
                    }
                }
            }
            by_index.into_iter().map(|(i, members)| (i as f64 * size, (i + 1) as f64 * size, members)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg<'a>(begin: f64, end: f64, scores: &'a [Score]) -> Segment<'a> {
        Segment { begin, end, weight: end - begin, text: None, group: "unknown", scores }
    }

    #[test]
    fn means_weigh_each_segment_by_its_length() {
        let (a, b) =
            ([Score::new("Anger", 1.0), Score::new("Joy", 0.0)], [Score::new("Anger", 0.0), Score::new("Joy", 1.0)]);
        let segments = [seg(0.0, 3.0, &a), seg(3.0, 4.0, &b)];
        let means = means(&segments).scores();
        assert_eq!(means, vec![Score::new("Anger", 0.75), Score::new("Joy", 0.25)]);
        assert_eq!(top(&means, 1), vec![Score::new("Anger", 0.75)]);
        assert_eq!(by_name(&means)["Joy"], 0.25);
    }

    #[test]
    fn clocks_read_as_in_a_player() {
        assert_eq!((clock(0.4), clock(72.9), clock(3725.0)), ("0:00".into(), "1:12".into(), "1:02:05".into()));
    }

    #[test]
    fn window_sizes_fit_the_length() {
        assert_eq!((window_for(9.0), window_for(60.0), window_for(3600.0)), (1.0, 2.0, 120.0));
        let s = [Score::new("Joy", 1.0)];
        let segments = [seg(0.0, 1.0, &s), seg(1.0, 2.0, &s), seg(12.0, 13.0, &s), seg(28.0, 34.0, &s)];
        let w = windows(&segments, Unit::Seconds, 10.0);
        let bounds: Vec<(f64, f64, usize)> = w.iter().map(|(b, e, m)| (*b, *e, m.len())).collect();
        assert_eq!(bounds, [(0.0, 10.0, 2), (10.0, 20.0, 1), (20.0, 30.0, 1), (30.0, 40.0, 1)]);
        assert_eq!((w[2].2[0].1, w[3].2[0].1), (2.0, 4.0), "a segment across windows counts its overlap in each");
        let text = windows(&segments, Unit::Characters, 10.0);
        assert_eq!(text.len(), 4, "few text segments: one window each");
    }

    #[test]
    fn peaks_name_where_each_expression_is_highest() {
        let (a, b) = ([Score::new("Anger", 0.2)], [Score::new("Anger", 0.9)]);
        let mut segments = [seg(0.0, 1.0, &a), seg(61.0, 62.0, &b)];
        segments[1].text = Some("I want a refund");
        let p = peaks(&segments, &[Score::new("Anger", 0.5)], Unit::Seconds);
        assert_eq!(p[0].at.as_deref(), Some("1:01"));
        assert_eq!((p[0].score, p[0].text.as_deref()), (0.9, Some("I want a refund")));
    }
}
