//! Vocal bursts found locally (runner `local`): YAMNet ([`crate::models::burst`]) scores every
//! 0.96 s patch of the audio on AudioSet's classes, and each stretch where a vocal-burst class
//! (laughter, sigh, gasp, sob, scream, cough...) reaches the threshold becomes one v0 burst
//! prediction.
//!
//! What the numbers are, honestly:
//! - `descriptions` are YAMNet's probabilities of AudioSet's burst classes
//!   ([`BURST_CLASSES`], AudioSet's names such as "Laughter" or "Crying, sobbing", not Hume's 67
//!   burst types), each the highest over the stretch;
//! - `emotions` is empty: no local model measures what a burst expresses, and a laugh is not
//!   "Amusement" because a sound classifier heard laughter (Hume's burst emotions need the `hume`
//!   backend). The output's `note` says so.

use std::path::PathBuf;
use std::sync::Arc;

use crate::analyzers::lazy::LazyModel;
use crate::analyzers::{Analyzer, MeasureError, Missing, Step, Task};
use crate::media::audio::Pcm;
use crate::models::burst::{Burst, Yamnet, BURST_CLASSES};
use crate::predictions::{BurstPrediction, ModelOutput, ModelsPredictions, Score, TimeInterval};

/// What the burst output's `note` says about the numbers.
pub const NOTE: &str = "Vocal bursts found by YAMNet (AudioSet's sound classes, embedded): `descriptions` are its probabilities of AudioSet's burst classes over each stretch; `emotions` is empty because no local model measures a burst's emotions (use the hume backend for Hume's).";

/// What a caller reads when the burst model did not load on first use (the server's log has the
/// cause, which may name server paths).
pub const DID_NOT_LOAD: &str =
    "the model did not load on this server (its log says why); reinstall it with scripts/install-models.sh --with-burst and restart the server";

/// The local burst runner: YAMNet, loaded on its first use and shared by every worker (see
/// [`super::lazy`]).
pub struct LocalBurst {
    model: LazyModel<Yamnet>,
}

impl LocalBurst {
    /// A runner over a loaded model.
    pub fn new(model: Arc<Yamnet>) -> Self {
        Self { model: LazyModel::loaded("burst", model) }
    }

    /// A runner over the model in `dir` (the `burst` folder of the model directory), loaded by
    /// the first file that needs it; its files should have passed [`Yamnet::check`].
    pub fn on_first_use(dir: PathBuf) -> Self {
        Self { model: LazyModel::new("burst", move || Yamnet::load(&dir)) }
    }
}

#[async_trait::async_trait]
impl Analyzer for LocalBurst {
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError> {
        let file = task.subject.file;
        let Some(pcm) = task.subject.media.and_then(|m| m.audio.as_ref()) else {
            return Err(MeasureError::nothing(file, Missing::AudioTrack));
        };
        let failed = |e: &dyn std::fmt::Display| MeasureError::failed(file, Step::Burst, e);
        let model = self.model.get().await.map_err(|_| failed(&DID_NOT_LOAD))?;
        let found = if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| model.bursts(&pcm.samples))
        } else {
            let pcm: Pcm = pcm.clone();
            tokio::task::spawn_blocking(move || model.bursts(&pcm.samples)).await.map_err(|e| failed(&e))?
        }
        .map_err(|e| failed(&e))?;
        let mut output = ModelOutput::single("unknown", found.iter().map(prediction).collect());
        output.note = Some(NOTE.to_owned());
        Ok(ModelsPredictions { burst: Some(output), ..Default::default() })
    }
}

/// One stretch of bursts as v0's burst prediction.
pub fn prediction(burst: &Burst) -> BurstPrediction {
    let names: Vec<&str> = BURST_CLASSES.iter().map(|(_, name)| *name).collect();
    BurstPrediction {
        time: TimeInterval { begin: round3(burst.begin), end: round3(burst.end) },
        emotions: Vec::new(),
        descriptions: Score::list(&names, &burst.scores),
        hume_v1: None,
    }
}

/// `v` to milliseconds.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
