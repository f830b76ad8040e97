//! Who spoke when in a file (v0's `identify_speakers`), and how the other models use it: the
//! transcript's words carry their speaker, language segments and prosody windows are grouped
//! under the speaker of their words (`grouped_predictions[].id`), with `speaker_confidence`.
//!
//! Speaker ids are `spk_0`, `spk_1`, ... in order of first speech within a file (v0's format
//! is not documented; this follows its `face_0` for faces). They name voices, not people, and
//! are not the same person across files. Off, everything is `unknown`, as on v0.
//!
//! The local model ([`crate::models::speakers`]) runs on every backend: Hume's v1 API
//! identifies no speakers.

use std::path::PathBuf;
use std::sync::Arc;

use super::lazy::LazyModel;
use super::{MeasureError, Step, Transcript};
use crate::media::audio::Pcm;
use crate::models::speakers::{Diarizer, Turn};
pub use crate::predictions::speaker_of_words;
use crate::predictions::Grouped;
#[cfg(test)]
use crate::predictions::Word;

/// The group id of predictions whose speaker is not known (or not asked for).
pub const UNKNOWN: &str = "unknown";
/// A span no turn overlaps takes the nearest turn this close (seconds): word edges the VAD
/// left out.
const NEAREST_SECS: f64 = 1.0;

/// Finds the speakers of a file; one per server.
#[async_trait::async_trait]
pub trait SpeakerFinder: Send + Sync {
    /// Who spoke when in 16 kHz mono PCM. `Err` is one sentence for the source's errors.
    async fn speakers(&self, file: &str, pcm: &Pcm) -> Result<Speakers, MeasureError>;
}

/// The speakers of one file: turns in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Speakers {
    pub turns: Vec<Turn>,
}

impl Speakers {
    /// The id of speaker `n`.
    pub fn id(n: usize) -> String {
        format!("spk_{n}")
    }

    /// Who spoke most during `begin..end`, with that turn time's mean confidence: the speaker
    /// with the most turn time inside it; a span no turn overlaps takes the nearest turn within
    /// [`NEAREST_SECS`]; `None` when none is near.
    pub fn during(&self, begin: f64, end: f64) -> Option<(usize, f64)> {
        let mut time: Vec<(usize, f64, f64)> = Vec::new(); // (speaker, seconds, seconds x confidence)
        for t in &self.turns {
            let overlap = t.end.min(end) - t.begin.max(begin);
            if overlap > 0.0 {
                match time.iter_mut().find(|(s, _, _)| *s == t.speaker) {
                    Some(entry) => {
                        entry.1 += overlap;
                        entry.2 += overlap * t.confidence;
                    }
                    None => time.push((t.speaker, overlap, overlap * t.confidence)),
                }
            }
        }
        if let Some((speaker, secs, weighted)) = time.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            return Some((speaker, weighted / secs));
        }
        let gap = |t: &Turn| (t.begin - end).max(begin - t.end).max(0.0);
        self.turns
            .iter()
            .filter(|t| gap(t) <= NEAREST_SECS)
            .min_by(|a, b| gap(a).total_cmp(&gap(b)))
            .map(|t| (t.speaker, t.confidence))
    }

    /// Gives every word of `transcript` its speaker (the speaker during the word).
    pub fn label(&self, transcript: &mut Transcript) {
        for word in &mut transcript.words {
            if let Some((speaker, confidence)) = self.during(word.begin, word.end) {
                word.speaker = Some(Self::id(speaker));
                word.speaker_confidence = Some(confidence);
            }
        }
    }
}

/// Predictions grouped under their speaker ids (`spk_0` first, in id order; those with no
/// speaker under `unknown`, last), each group in the order given.
pub fn group<P>(predictions: Vec<(Option<String>, P)>) -> Vec<Grouped<P>> {
    let mut groups: Vec<Grouped<P>> = Vec::new();
    for (speaker, p) in predictions {
        let id = speaker.unwrap_or_else(|| UNKNOWN.to_owned());
        match groups.iter_mut().find(|g| g.id == id) {
            Some(g) => g.predictions.push(p),
            None => groups.push(Grouped { id, predictions: vec![p] }),
        }
    }
    let rank = |id: &str| id.strip_prefix("spk_").and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX);
    groups.sort_by_key(|g| rank(&g.id));
    if groups.is_empty() {
        groups.push(Grouped { id: UNKNOWN.to_owned(), predictions: Vec::new() });
    }
    groups
}

/// What a caller reads when the speaker model did not load on first use (the server's log has
/// the cause, which may name server paths).
pub const DID_NOT_LOAD: &str = "the speaker model did not load on this server (its log says why); reinstall it with scripts/models/speakers.sh (or scripts/install-models.sh) and restart the server";

/// The embedded speaker model behind the [`SpeakerFinder`] seam, loaded on its first use and
/// shared by every worker (see [`super::lazy`]).
pub struct LocalSpeakers {
    diarizer: LazyModel<Diarizer>,
}

impl LocalSpeakers {
    /// Over a model loaded already.
    pub fn new(diarizer: Arc<Diarizer>) -> Self {
        Self { diarizer: LazyModel::loaded("speakers", diarizer) }
    }

    /// Over the model in `models_dir`, loaded by the first file that needs speakers; its files
    /// should have passed [`Diarizer::check`].
    pub fn on_first_use(models_dir: PathBuf) -> Self {
        Self { diarizer: LazyModel::new("speakers", move || Diarizer::load(&models_dir)) }
    }
}

#[async_trait::async_trait]
impl SpeakerFinder for LocalSpeakers {
    async fn speakers(&self, file: &str, pcm: &Pcm) -> Result<Speakers, MeasureError> {
        let failed = |e: &dyn std::fmt::Display| MeasureError::failed(file, Step::Speakers, e);
        let diarizer = self
            .diarizer
            .get()
            .await
            .map_err(|_| MeasureError::NoSpeakerModel { file: file.to_owned(), why: DID_NOT_LOAD.to_owned() })?;
        let result = if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| diarizer.diarize(pcm))
        } else {
            let pcm = pcm.clone();
            tokio::task::spawn_blocking(move || diarizer.diarize(&pcm)).await.map_err(|e| failed(&e))?
        };
        result.map(|d| Speakers { turns: d.turns }).map_err(|e| failed(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(begin: f64, end: f64, speaker: usize) -> Turn {
        Turn { begin, end, speaker, confidence: 0.8 }
    }

    fn word(text: &str, begin: f64, end: f64) -> Word {
        Word { text: text.into(), begin, end, confidence: 0.9, speaker: None, speaker_confidence: None }
    }

    #[test]
    fn words_take_the_speaker_of_their_time_and_segments_the_speaker_of_their_words() {
        let speakers = Speakers { turns: vec![turn(0.0, 2.0, 0), turn(2.5, 5.0, 1)] };
        let mut t = Transcript {
            words: vec![
                word("Hello", 0.2, 0.6),
                word("there.", 1.9, 2.55),
                word("Hi.", 3.0, 3.4),
                word("Late", 6.5, 7.0),
            ],
            language: "en".into(),
            confidence: 0.9,
        };
        speakers.label(&mut t);
        let ids: Vec<Option<&str>> = t.words.iter().map(|w| w.speaker.as_deref()).collect();
        // "there." is more spk_0's (0.1 s) than spk_1's (0.05 s); "Late" is 1.5 s past the last
        // turn: nobody.
        assert_eq!(ids, [Some("spk_0"), Some("spk_0"), Some("spk_1"), None]);
        assert_eq!(t.words[0].speaker_confidence, Some(0.8));
        let (who, confidence) = speaker_of_words(&t.words[..3]).unwrap();
        assert_eq!(who, "spk_0");
        assert!((confidence - 0.8 * 1.05 / 1.45).abs() < 1e-9, "{confidence}");
        assert_eq!(speakers.during(5.5, 5.9), Some((1, 0.8)), "the nearest turn within a second");
    }

    #[test]
    fn groups_are_in_speaker_order_with_unknown_last() {
        let g = group(vec![
            (Some("spk_1".to_owned()), 1),
            (None, 2),
            (Some("spk_0".to_owned()), 3),
            (Some("spk_10".to_owned()), 4),
            (Some("spk_1".to_owned()), 5),
            (Some("spk_2".to_owned()), 6),
        ]);
        let ids: Vec<&str> = g.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["spk_0", "spk_1", "spk_2", "spk_10", "unknown"]);
        assert_eq!(g[1].predictions, [1, 5]);
        assert_eq!(group::<u8>(Vec::new())[0].id, "unknown");
    }
}
