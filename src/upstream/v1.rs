//! Client of Hume's v1 Expression Measurement upload endpoints, used by the `hume` runners.
//!
//! `POST /v1/expression/audio/file` takes one 16 kHz mono s16le WAV, `POST
//! /v1/expression/video/file` one or more JPEGs; both answer synchronously, at most 25 MB per
//! request. Every request goes through the v1 limiter (its own budget: v1's quota is not
//! documented) and the shared retry policy; v1's error bodies (`{type, code, message,
//! request_id}`, and a 401's bare `{message}`) reach the caller with their code and request id.

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::client::UpstreamClient;
use super::v1_types::{AudioConfig, AudioFileResponse, VideoConfig, VideoFileResponse};
use super::UpstreamError;
use crate::config::Secret;

/// The most one v1 upload request may hold, the whole multipart body included.
pub const MAX_REQUEST_BYTES: usize = 25_000_000;
/// Room kept in a request for the multipart framing and the `config` part.
pub const MULTIPART_OVERHEAD_BYTES: usize = 16 * 1024;
/// Room one extra `file` part takes beyond its bytes (boundary and headers).
pub const PART_OVERHEAD_BYTES: usize = 256;

const AUDIO_PATH: &str = "/v1/expression/audio/file";
const VIDEO_PATH: &str = "/v1/expression/video/file";

/// The v1 upload client.
pub struct HumeV1Client {
    client: UpstreamClient,
}

impl HumeV1Client {
    /// A client on the shared upstream client for the v1 API's base URL.
    pub fn new(client: UpstreamClient) -> Self {
        Self { client }
    }

    /// Measures one WAV (16 kHz mono s16le) of at most [`MAX_REQUEST_BYTES`].
    pub async fn measure_audio(
        &self,
        api_key: &Secret,
        wav: Bytes,
        config: &AudioConfig,
    ) -> Result<AudioFileResponse, UpstreamError> {
        let config = serde_json::to_string(config).expect("config serialises");
        let form =
            || Form::new().part("file", file_part(&wav, "audio.wav", "audio/wav")).part("config", json_part(&config));
        self.upload(api_key, AUDIO_PATH, form).await
    }

    /// Measures the faces in JPEG images (each at most 2 MB), in one request.
    pub async fn measure_images(
        &self,
        api_key: &Secret,
        images: &[Bytes],
        config: &VideoConfig,
    ) -> Result<VideoFileResponse, UpstreamError> {
        let config = serde_json::to_string(config).expect("config serialises");
        let form = || {
            let files = images.iter().enumerate();
            let form = files.fold(Form::new(), |form, (i, jpeg)| {
                form.part("file", file_part(jpeg, &format!("frame-{i}.jpg"), "image/jpeg"))
            });
            form.part("config", json_part(&config))
        };
        self.upload(api_key, VIDEO_PATH, form).await
    }

    async fn upload<T: DeserializeOwned>(
        &self,
        api_key: &Secret,
        path: &str,
        form: impl Fn() -> Form,
    ) -> Result<T, UpstreamError> {
        let raw = self.client.call(api_key, Method::POST, path, |request| request.multipart(form())).await?;
        serde_json::from_slice(&raw.body).map_err(|e| UpstreamError::Rejected {
            status: 502,
            message: format!("Hume v1 answered {path} with a body this server cannot read: {e}"),
            attempts: 1,
        })
    }
}

fn file_part(bytes: &Bytes, name: &str, mime: &str) -> Part {
    Part::stream_with_length(reqwest::Body::from(bytes.clone()), bytes.len() as u64)
        .file_name(name.to_owned())
        .mime_str(mime)
        .expect("a valid MIME type")
}

fn json_part(json: &str) -> Part {
    Part::text(json.to_owned()).mime_str("application/json").expect("a valid MIME type")
}
