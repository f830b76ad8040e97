//! The embedded speech models ([`SpeechModels`]: Silero VAD and Whisper) behind the
//! [`Transcriber`] seam, as `local_face.rs` puts the face models behind [`super::Analyzer`]: the
//! models know nothing of analyzers.

use std::sync::Arc;

use super::{MeasureError, Step, Transcriber, Transcript};
use crate::media::audio::Pcm;
use crate::models::speech::SpeechModels;

/// The embedded transcriber: [`SpeechModels`] behind the analyzers' [`Transcriber`] seam.
#[derive(Clone)]
pub struct LocalTranscriber {
    models: Arc<SpeechModels>,
}

impl LocalTranscriber {
    /// Wraps models loaded once per process.
    pub fn new(models: Arc<SpeechModels>) -> Self {
        Self { models }
    }
}

#[async_trait::async_trait]
impl Transcriber for LocalTranscriber {
    async fn transcribe(&self, file: &str, pcm: &Pcm, language: Option<&str>) -> Result<Transcript, MeasureError> {
        let failed = |e: &dyn std::fmt::Display| MeasureError::failed(file, Step::Transcription, e);
        let result = if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            // No copy of the audio: this worker thread becomes a blocking one while Whisper runs.
            tokio::task::block_in_place(|| self.models.transcribe(pcm, language))
        } else {
            // A current-thread runtime cannot lend its thread: copy the samples into a blocking task.
            let (models, pcm, language) = (self.models.clone(), pcm.clone(), language.map(str::to_owned));
            tokio::task::spawn_blocking(move || models.transcribe(&pcm, language.as_deref()))
                .await
                .map_err(|e| failed(&e))?
        };
        result.map_err(|e| failed(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcriber() -> LocalTranscriber {
        let dir = std::env::var_os("HUME_ACTION_MODEL_DIR")
            .map_or_else(|| std::path::PathBuf::from("data/models"), std::path::PathBuf::from);
        LocalTranscriber::new(Arc::new(SpeechModels::load(&dir).unwrap_or_else(|e| panic!("{e}"))))
    }

    fn two_seconds_of_silence() -> Pcm {
        Pcm { samples: vec![0; 32_000] }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transcribes_on_a_multi_thread_runtime_without_copying() {
        let t = transcriber().transcribe("quiet.wav", &two_seconds_of_silence(), None).await.unwrap();
        assert!(t.words.is_empty());
    }

    #[tokio::test]
    async fn transcribes_on_a_current_thread_runtime_by_copying_into_a_blocking_task() {
        let t = transcriber().transcribe("quiet.wav", &two_seconds_of_silence(), Some("en")).await.unwrap();
        assert!(t.words.is_empty());
    }
}
