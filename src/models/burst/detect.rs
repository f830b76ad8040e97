//! Which of YAMNet's classes are vocal bursts, and how patch scores become stretches of bursts.
//!
//! The classes ([`BURST_CLASSES`]) are AudioSet's non-speech sounds a person makes with the voice
//! or the breath and that say something about how they are: its "Human voice" branch without
//! speech, whispering, singing and the crowd classes (shout, yell, scream, laughter of every kind,
//! crying, whimper, wail, sigh, groan, grunt, humming) and the "Respiratory sounds" branch
//! (breathing, wheeze, snoring, gasp, pant, snort, cough, throat clearing, sneeze, sniff). That
//! covers most of Hume's burst vocabulary (Laugh, Giggle, Chuckle, Snicker, Sob, Cry, Whimper,
//! Wail, Moan, Sigh, Groan, Grunt, Gasp, Pant, Snort, Scream, Shout, Hmm/Mmm). Left out:
//! "Children shouting" (a crowd), "Whistling" (a tune; AudioSet's examples are mostly melodies),
//! and digestive sounds (chewing, burping, hiccup), which carry no expression.
//!
//! A patch (0.96 s, every 0.48 s) holds a burst when any of these classes scores at least
//! [`THRESHOLD`]; overlapping or touching burst patches merge into one stretch, whose scores are
//! each class's highest over the stretch. The threshold was chosen on real acted bursts and on
//! speech without bursts (`cargo run --release --bin evaluate-burst`, numbers in
//! `assets/burst/EVALUATION.md`).

use super::features::{PATCH_HOP_SECS, PATCH_SECS};

/// The vocal-burst classes: YAMNet's output index and AudioSet's display name (checked against
/// the installed class map when the model loads).
pub const BURST_CLASSES: [(usize, &str); 29] = [
    (6, "Shout"),
    (7, "Bellow"),
    (8, "Whoop"),
    (9, "Yell"),
    (11, "Screaming"),
    (13, "Laughter"),
    (14, "Baby laughter"),
    (15, "Giggle"),
    (16, "Snicker"),
    (17, "Belly laugh"),
    (18, "Chuckle, chortle"),
    (19, "Crying, sobbing"),
    (20, "Baby cry, infant cry"),
    (21, "Whimper"),
    (22, "Wail, moan"),
    (23, "Sigh"),
    (32, "Humming"),
    (33, "Groan"),
    (34, "Grunt"),
    (36, "Breathing"),
    (37, "Wheeze"),
    (38, "Snoring"),
    (39, "Gasp"),
    (40, "Pant"),
    (41, "Snort"),
    (42, "Cough"),
    (43, "Throat clearing"),
    (44, "Sneeze"),
    (45, "Sniff"),
];

/// The lowest burst-class probability that makes a patch a burst.
pub const THRESHOLD: f32 = 0.2;

/// One stretch of bursts.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// Start, in seconds.
    pub begin: f64,
    /// End, in seconds (the last patch's end, at most the audio's end).
    pub end: f64,
    /// Each of [`BURST_CLASSES`] (same order) with its highest probability in the stretch.
    pub scores: Vec<f32>,
}

impl Burst {
    /// The best-scoring class's name and probability.
    pub fn top(&self) -> (&'static str, f32) {
        let (i, score) =
            self.scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, s)| (i, *s)).unwrap_or((0, 0.0));
        (BURST_CLASSES[i].1, score)
    }
}

/// The stretches of bursts in per-patch class probabilities `scores` (521 per patch, patch `k`
/// starting at `k` × 0.48 s) of audio `duration` seconds long.
pub fn stretches(scores: &[Vec<f32>], duration: f64, threshold: f32) -> Vec<Burst> {
    let mut out: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    for (k, patch) in scores.iter().enumerate() {
        let burst: Vec<f32> = BURST_CLASSES.iter().map(|&(i, _)| patch[i]).collect();
        if burst.iter().all(|&s| s < threshold) {
            continue;
        }
        match out.last_mut() {
            // Patch k-2 ends where patch k starts: touching patches are one stretch.
            Some((_, last, best)) if k <= *last + 2 => {
                *last = k;
                for (b, s) in best.iter_mut().zip(&burst) {
                    *b = b.max(*s);
                }
            }
            _ => out.push((k, k, burst)),
        }
    }
    out.into_iter()
        .map(|(first, last, scores)| {
            let begin = first as f64 * PATCH_HOP_SECS;
            let end = (last as f64 * PATCH_HOP_SECS + PATCH_SECS).min(duration.max(begin));
            Burst { begin, end, scores }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(class: usize, score: f32) -> Vec<f32> {
        let mut p = vec![0.01; 521];
        p[class] = score;
        p
    }

    #[test]
    fn touching_patches_merge_and_gaps_split() {
        let laugh = BURST_CLASSES.iter().position(|c| c.1 == "Laughter").unwrap();
        let cough = BURST_CLASSES.iter().position(|c| c.1 == "Cough").unwrap();
        let scores = vec![
            patch(13, 0.6),
            patch(0, 0.9), // speech only
            patch(13, 0.8),
            patch(0, 0.9),
            patch(0, 0.9),
            patch(0, 0.9),
            patch(42, 0.5),
        ];
        let found = stretches(&scores, 3.5, 0.3);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].begin, found[0].end), (0.0, 0.96 + 0.015 + 0.96));
        assert_eq!(found[0].scores[laugh], 0.8);
        assert_eq!(found[0].top(), ("Laughter", 0.8));
        assert_eq!(found[1].begin, 6.0 * 0.48);
        assert_eq!(found[1].end, 3.5, "capped at the audio's end");
        assert_eq!((found[1].scores[cough], found[1].top()), (0.5, ("Cough", 0.5)));
        assert!(stretches(&[patch(0, 0.99)], 1.0, 0.3).is_empty());
    }
}
