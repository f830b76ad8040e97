//! Diarization error rate (NIST's DER, as `md-eval` and pyannote.metrics score it, on a 10 ms
//! grid): missed speech, false alarm and speaker confusion over the reference's speech time,
//! with hypothesis speakers mapped one-to-one onto reference speakers to agree the most, and
//! a collar around every reference boundary left unscored (the usual 0.25 s: a boundary's exact
//! place within a pause or a word edge is not the question).

use super::Turn;
use crate::media::audio::Pcm;
use crate::models::speech::eval::{silence, synthesize};

/// Grid step, in seconds.
const STEP: f64 = 0.01;

/// One reference turn: begin and end in seconds, and who spoke (any labels, numbered from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference {
    pub begin: f64,
    pub end: f64,
    pub speaker: usize,
}

/// DER and its parts, in seconds of scored reference speech.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Der {
    pub scored: f64,
    pub missed: f64,
    pub false_alarm: f64,
    pub confusion: f64,
}

impl Der {
    /// (missed + false alarm + confusion) / scored speech.
    pub fn rate(&self) -> f64 {
        if self.scored == 0.0 {
            0.0
        } else {
            (self.missed + self.false_alarm + self.confusion) / self.scored
        }
    }

    /// Adds another file's seconds (a corpus DER is the sum over files).
    pub fn add(&mut self, other: &Der) {
        self.scored += other.scored;
        self.missed += other.missed;
        self.false_alarm += other.false_alarm;
        self.confusion += other.confusion;
    }
}

/// The DER of `hypothesis` against `reference` with `collar` seconds unscored on each side of
/// every reference turn's begin and end.
pub fn der(reference: &[Reference], hypothesis: &[Turn], collar: f64) -> Der {
    let end = reference.iter().map(|r| r.end).chain(hypothesis.iter().map(|t| t.end)).fold(0.0, f64::max);
    let cells = (end / STEP).ceil() as usize + 1;
    let at = |t: f64| ((t / STEP).round() as usize).min(cells);
    let mut truth: Vec<Option<usize>> = vec![None; cells];
    let mut scored = vec![true; cells];
    for r in reference {
        truth[at(r.begin)..at(r.end)].iter_mut().for_each(|c| *c = Some(r.speaker));
    }
    for r in reference {
        for edge in [r.begin, r.end] {
            scored[at(edge - collar)..at(edge + collar)].iter_mut().for_each(|c| *c = false);
        }
    }
    let mut guess: Vec<Option<usize>> = vec![None; cells];
    for t in hypothesis {
        guess[at(t.begin)..at(t.end)].iter_mut().for_each(|c| *c = Some(t.speaker));
    }
    let refs = reference.iter().map(|r| r.speaker + 1).max().unwrap_or(0);
    let hyps = hypothesis.iter().map(|t| t.speaker + 1).max().unwrap_or(0);
    let mut together = vec![vec![0usize; refs]; hyps];
    for i in (0..cells).filter(|&i| scored[i]) {
        if let (Some(r), Some(h)) = (truth[i], guess[i]) {
            together[h][r] += 1;
        }
    }
    let mapping = best_mapping(&together, refs);
    let mut d = Der::default();
    for i in (0..cells).filter(|&i| scored[i]) {
        match (truth[i], guess[i]) {
            (Some(_), None) => d.missed += STEP,
            (None, Some(_)) => d.false_alarm += STEP,
            (Some(r), Some(h)) if mapping[h] != Some(r) => d.confusion += STEP,
            _ => {}
        }
        if truth[i].is_some() {
            d.scored += STEP;
        }
    }
    d
}

/// The one-to-one map of hypothesis speakers to reference speakers with the most agreement
/// (exhaustive: speaker counts are small).
fn best_mapping(together: &[Vec<usize>], refs: usize) -> Vec<Option<usize>> {
    fn search(
        h: usize,
        together: &[Vec<usize>],
        used: &mut Vec<bool>,
        current: &mut Vec<Option<usize>>,
        best: &mut (usize, Vec<Option<usize>>),
        score: usize,
    ) {
        if h == together.len() {
            if score >= best.0 {
                *best = (score, current.clone());
            }
            return;
        }
        current[h] = None;
        search(h + 1, together, used, current, best, score);
        for r in 0..used.len() {
            if !used[r] && together[h][r] > 0 {
                used[r] = true;
                current[h] = Some(r);
                search(h + 1, together, used, current, best, score + together[h][r]);
                used[r] = false;
                current[h] = None;
            }
        }
    }
    let mut best = (0, vec![None; together.len()]);
    search(0, together, &mut vec![false; refs], &mut vec![None; together.len()], &mut best, 0);
    best.1
}

/// A dialogue spoken by espeak-ng voices: each line is `(voice, text)`, lines separated by
/// `gap` seconds of silence (one second before the first and after the last). Speakers are
/// numbered by their voice's first line; each reference turn spans the line's audible samples
/// (espeak-ng's own leading and trailing silence excluded).
pub fn dialogue(lines: &[(&str, &str)], gap: f64, words_per_minute: u32) -> Result<(Pcm, Vec<Reference>), String> {
    let mut voices: Vec<&str> = Vec::new();
    let mut samples = silence(1.0);
    let mut reference = Vec::new();
    for (i, (voice, text)) in lines.iter().enumerate() {
        if i > 0 {
            samples.extend(silence(gap));
        }
        let speaker = voices.iter().position(|v| v == voice).unwrap_or_else(|| {
            voices.push(voice);
            voices.len() - 1
        });
        let line = synthesize(text, voice, words_per_minute)?.samples;
        let audible = |s: &&i16| s.unsigned_abs() > 300;
        let first = line.iter().position(|s| audible(&s)).unwrap_or(0);
        let last = line.iter().rposition(|s| audible(&s)).unwrap_or(0);
        let at = |n: usize| n as f64 / f64::from(Pcm::RATE);
        reference.push(Reference { begin: at(samples.len() + first), end: at(samples.len() + last + 1), speaker });
        samples.extend(line);
    }
    samples.extend(silence(1.0));
    Ok((Pcm { samples }, reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(begin: f64, end: f64, speaker: usize) -> Turn {
        Turn { begin, end, speaker, confidence: 1.0 }
    }

    #[test]
    fn labels_do_not_matter_only_who_is_who() {
        let reference =
            [Reference { begin: 0.0, end: 4.0, speaker: 0 }, Reference { begin: 5.0, end: 9.0, speaker: 1 }];
        let swapped = [turn(0.0, 4.0, 1), turn(5.0, 9.0, 0)];
        assert_eq!(der(&reference, &swapped, 0.25).rate(), 0.0);
        // One speaker for everything: the second turn (3.5 s scored of 7) is confused, and the
        // pause between the turns (0.5 s outside the collars) is a false alarm.
        let one = [turn(0.0, 9.0, 0)];
        let d = der(&reference, &one, 0.25);
        assert!((d.confusion - 3.5).abs() < 0.02 && (d.scored - 7.0).abs() < 0.02, "{d:?}");
        assert!((d.false_alarm - 0.5).abs() < 0.02, "{d:?}");
        assert!((d.rate() - 4.0 / 7.0).abs() < 0.01);
        // Silence called speech outside the collars is a false alarm; speech missed is missed.
        let d = der(&reference, &[turn(0.0, 2.0, 0), turn(5.0, 9.0, 1)], 0.25);
        assert!((d.missed - 1.75).abs() < 0.02, "{d:?}");
    }
}
