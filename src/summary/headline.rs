//! The one sentence a workflow pastes into a message: how far the job is, or what it found.
//!
//! "Calm at first; Anger and Annoyance rise from 0:40 and peak at 2:12 ("I want a refund
//! today")." Plain English, expressions by their v0 names, times as a player shows them.

use super::escalation::Escalation;
use super::segments::Unit;
use super::{Progress, Stage};
use crate::job::state::JobState;
use crate::predictions::{Score, SourceError};

/// Characters of a quote the headline keeps.
const QUOTE_CHARS: usize = 80;

/// The headline of a job in `state`.
pub fn headline(
    state: &JobState,
    progress: &Progress,
    escalation: Option<&Escalation>,
    top: &[Score],
    errors: &[SourceError],
) -> String {
    match state {
        JobState::Queued { .. } => return "Queued: measuring has not started yet.".to_owned(),
        JobState::InProgress { .. } => {
            let stage = match progress.stage {
                Stage::Downloading => "downloading",
                Stage::Storing => "storing the results",
                _ => "measuring",
            };
            return format!(
                "In progress ({stage}): {} of {} sources done.",
                progress.sources_done, progress.sources_total
            );
        }
        JobState::Failed { message, .. } => return format!("The job failed: {}", cut(message, 300)),
        JobState::Completed { .. } => {}
    }
    let Some(escalation) = escalation else {
        return match errors.first() {
            Some(e) => format!("Nothing was measured: {}: {}", e.file, cut(&e.message, 200)),
            None => "Nothing was measured.".to_owned(),
        };
    };
    let names = |list: &[&str]| match list {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, rest @ ..] => format!("{first} and {}", rest.join(" and ")),
    };
    let overall: Vec<&str> = top.iter().take(2).map(|s| s.name.as_str()).collect();
    let voice = escalation
        .voice
        .as_ref()
        .and_then(|v| v.rose())
        .map(|(words, figures)| format!(" The voice is {words} at the end than at the start ({figures})."))
        .unwrap_or_default();
    if !escalation.detected {
        let course =
            if escalation.change <= -0.1 { "negative expressions ease over the course" } else { "no escalation" };
        return format!("Mostly {}; {course}.{voice}", names(&overall));
    }
    let start = escalation.start_top.as_deref().map_or_else(|| "Calm".to_owned(), adjective);
    let rising: Vec<&str> = escalation.rising.iter().map(String::as_str).collect();
    let rising = if rising.is_empty() { "Negative expressions".to_owned() } else { names(&rising) };
    let verb = if escalation.rising.len() == 1 { "rises" } else { "rise" };
    let quote = escalation.peak.text.as_deref().map(|t| format!("\"{}\"", cut(t.trim(), QUOTE_CHARS)));
    match (escalation.unit, escalation.rises_at, escalation.peak.at.as_deref()) {
        (Unit::Seconds, rises_at, Some(peak_at)) => {
            let from = rises_at.map(|t| format!(" from {}", super::aggregate::clock(t))).unwrap_or_default();
            let quote = quote.map(|q| format!(" ({q})")).unwrap_or_default();
            format!("{start} at first; {rising} {verb}{from} and peak at {peak_at}{quote}.{voice}")
        }
        _ => {
            let quote = quote.map(|q| format!(" at {q}")).unwrap_or_default();
            format!("{start} at first; {rising} {verb} toward the end and peak{quote}.{voice}")
        }
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// How a leading expression reads at the start of a sentence ("Calm at first").
fn adjective(name: &str) -> String {
    let word = match name {
        "Calmness" => "Calm",
        "Interest" => "Interested",
        "Joy" => "Joyful",
        "Contentment" => "Content",
        "Satisfaction" => "Satisfied",
        "Determination" => "Determined",
        "Concentration" => "Focused",
        "Confusion" => "Confused",
        "Boredom" => "Bored",
        "Gratitude" => "Grateful",
        "Enthusiasm" => "Enthusiastic",
        "Excitement" => "Excited",
        "Amusement" => "Amused",
        "Sadness" => "Sad",
        "Anxiety" => "Anxious",
        "Doubt" => "Doubtful",
        "Tiredness" => "Tired",
        "Contemplation" => "Thoughtful",
        "Relief" => "Relieved",
        other => return format!("{other} leads"),
    };
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::models::Model;
    use crate::summary::escalation::EscalationPeak;

    fn escalation(detected: bool, unit: Unit) -> Escalation {
        Escalation {
            detected,
            score_start: 0.1,
            score_end: 0.6,
            change: 0.5,
            peak: EscalationPeak {
                time: Some(132.0),
                at: (unit == Unit::Seconds).then(|| "2:12".to_owned()),
                score: 0.7,
                text: Some("I want a refund today".into()),
                file: "call.mp3".into(),
            },
            emotions: vec!["Anger".into()],
            model: Model::Language,
            rises_at: Some(40.0),
            rising: vec!["Anger".into(), "Annoyance".into()],
            start_top: Some("Calmness".into()),
            unit,
            voice: None,
        }
    }

    fn completed() -> JobState {
        JobState::Completed { created_ms: 0, started_ms: 0, ended_ms: 0, num_predictions: 1, num_errors: 0 }
    }

    const DONE: Progress = Progress { sources_total: 1, sources_done: 1, stage: Stage::Done };

    #[test]
    fn an_escalation_is_told_with_its_times_and_words() {
        let e = escalation(true, Unit::Seconds);
        assert_eq!(
            headline(&completed(), &DONE, Some(&e), &[], &[]),
            "Calm at first; Anger and Annoyance rise from 0:40 and peak at 2:12 (\"I want a refund today\")."
        );
        let e = escalation(true, Unit::Characters);
        assert_eq!(
            headline(&completed(), &DONE, Some(&e), &[], &[]),
            "Calm at first; Anger and Annoyance rise toward the end and peak at \"I want a refund today\"."
        );
    }

    #[test]
    fn a_voice_that_rose_is_mentioned_with_its_figures_and_only_then() {
        use crate::summary::voice::VoiceEvidence;
        let mut e = escalation(false, Unit::Seconds);
        let top = [Score::new("Interest", 0.3)];
        e.voice = Some(VoiceEvidence { louder_db: Some(6.04), higher_semitones: Some(2.5), faster_ratio: Some(1.02) });
        assert_eq!(
            headline(&completed(), &DONE, Some(&e), &top, &[]),
            "Mostly Interest; no escalation. The voice is louder and higher at the end than at the start (+6.0 dB, +2.5 semitones)."
        );
        e.voice = Some(VoiceEvidence { louder_db: Some(1.0), higher_semitones: Some(-3.0), faster_ratio: None });
        assert_eq!(headline(&completed(), &DONE, Some(&e), &top, &[]), "Mostly Interest; no escalation.");
    }

    #[test]
    fn no_escalation_names_what_dominates_and_unfinished_jobs_say_how_far() {
        let top = [Score::new("Interest", 0.3), Score::new("Joy", 0.2)];
        let e = escalation(false, Unit::Seconds);
        assert_eq!(headline(&completed(), &DONE, Some(&e), &top, &[]), "Mostly Interest and Joy; no escalation.");
        let running = JobState::InProgress { created_ms: 0, started_ms: 0 };
        let progress = Progress { sources_total: 3, sources_done: 1, stage: Stage::Measuring };
        assert_eq!(headline(&running, &progress, None, &[], &[]), "In progress (measuring): 1 of 3 sources done.");
        let error = SourceError { file: "a.mp3".into(), message: "could not be fetched".into() };
        assert_eq!(
            headline(&completed(), &DONE, None, &[], &[error]),
            "Nothing was measured: a.mp3: could not be fetched"
        );
    }
}
