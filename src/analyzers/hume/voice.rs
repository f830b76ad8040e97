//! Prosody and burst on Hume v1 (`POST /v1/expression/audio/file`).

use std::sync::Arc;

use bytes::Bytes;

use super::mapping::voice_predictions;
use crate::analyzers::speakers::{group, speaker_of_words, Speakers};
use crate::analyzers::{Analyzer, MeasureError, Missing, Task, Transcript};
use crate::job::models::Model;
use crate::media::audio::chunk_ranges;
use crate::media::audio::Pcm;
use crate::predictions::{ModelOutput, ModelsPredictions, ProsodyPrediction};
use crate::upstream::v1::{HumeV1Client, MAX_REQUEST_BYTES, MULTIPART_OVERHEAD_BYTES};
use crate::upstream::v1_types::AudioConfig;

/// Samples in one request: the 25 MB body less framing and the 44-byte WAV header, 2 bytes each.
pub const MAX_CHUNK_SAMPLES: usize = (MAX_REQUEST_BYTES - MULTIPART_OVERHEAD_BYTES - 44) / 2;
/// How far back from a chunk's limit a quiet place to cut is looked for.
pub const SILENCE_SEARCH_SAMPLES: usize = 30 * Pcm::RATE as usize;

/// The v1 voice runner.
pub struct HumeVoice {
    client: Arc<HumeV1Client>,
    max_chunk_samples: usize,
}

impl HumeVoice {
    /// A runner over the v1 client, with requests as large as v1 allows.
    pub fn new(client: Arc<HumeV1Client>) -> Self {
        Self { client, max_chunk_samples: MAX_CHUNK_SAMPLES }
    }

    /// The same runner with smaller chunks (benchmarks and tests of long audio).
    pub fn with_max_chunk_samples(client: Arc<HumeV1Client>, max_chunk_samples: usize) -> Self {
        Self { client, max_chunk_samples: max_chunk_samples.max(Pcm::RATE as usize) }
    }
}

#[async_trait::async_trait]
impl Analyzer for HumeVoice {
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError> {
        let Task { job, subject, models, settings } = *task;
        let file = subject.file;
        let pcm = subject
            .media
            .and_then(|m| m.audio.as_ref())
            .ok_or_else(|| MeasureError::nothing(file, Missing::AudioTrack))?;
        if pcm.is_silent() {
            return Err(MeasureError::nothing(file, Missing::Voice));
        }
        let api_key = job.require_api_key()?;
        let (mut prosody, mut burst) = (Vec::new(), Vec::new());
        let search = SILENCE_SEARCH_SAMPLES.min(self.max_chunk_samples / 4);
        for range in chunk_ranges(&pcm.samples, self.max_chunk_samples, search) {
            let offset_secs = range.start as f64 / f64::from(Pcm::RATE);
            let wav = Bytes::from(pcm.to_wav(range));
            let response = self
                .client
                .measure_audio(api_key, wav, &AudioConfig::default())
                .await
                .map_err(|e| MeasureError::upstream(file, e))?;
            let (p, b) = voice_predictions(&response, offset_secs, |begin, end| {
                subject.transcript.and_then(|t| t.text_between(begin, end))
            });
            prosody.extend(p);
            burst.extend(b);
        }
        let metadata = subject.transcript.map(|t| t.metadata());
        let speakers = subject.speakers.filter(|_| settings.identify_speakers.prosody);
        let prosody = group(prosody.into_iter().map(|p| window_speaker(p, subject.transcript, speakers)).collect());
        Ok(ModelsPredictions {
            prosody: models.contains(&Model::Prosody).then_some(ModelOutput {
                metadata,
                grouped_predictions: prosody,
                note: None,
            }),
            burst: models.contains(&Model::Burst).then(|| ModelOutput::single("unknown", burst)),
            ..Default::default()
        })
    }
}

/// A prosody window with its speaker (when speakers are identified): the speaker of the words
/// said in it, or of the voice heard in it when it holds no word; `speaker_confidence` with it.
fn window_speaker(
    mut p: ProsodyPrediction,
    transcript: Option<&Transcript>,
    speakers: Option<&Speakers>,
) -> (Option<String>, ProsodyPrediction) {
    let Some(speakers) = speakers else { return (None, p) };
    let (begin, end) = (p.time.begin, p.time.end);
    let found = transcript
        .and_then(|t| speaker_of_words(t.words_between(begin, end)))
        .or_else(|| speakers.during(begin, end).map(|(n, confidence)| (Speakers::id(n), confidence)));
    p.speaker_confidence = found.as_ref().map(|(_, c)| *c);
    (found.map(|(id, _)| id), p)
}
