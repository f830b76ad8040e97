//! Hume's own v0 Python SDK (`hume==0.13.13`, from PyPI) against the engine: text and uploads
//! on the local backend, face, prosody and burst on the `hume` backend (v1 faked).
//!
//! `scripts/test.sh` installs the SDK into `data/sdk-venv`; `HUME_ACTION_SDK_PYTHON` may name
//! another interpreter that has it.

use std::path::PathBuf;

use crate::fake_v1::FakeV1;
use crate::helpers::{spawn_hume_app, spawn_local_app};
use crate::media_files::MEDIA;

fn sdk_python() -> PathBuf {
    std::env::var_os("HUME_ACTION_SDK_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sdk-venv/bin/python"))
}

/// Runs a script of `tests/sdk/` against `address` and checks it reports no failure.
pub(crate) async fn run_sdk_script(script: &str, address: &str, env: &[(&str, String)]) {
    let python = sdk_python();
    assert!(python.exists(), "{} is missing: run scripts/test.sh, which installs Hume's v0 SDK", python.display());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk").join(script);
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("HUME_ACTION_URL", address)
        .env("HUME_API_KEY", "test-key")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "SDK round trip failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[tokio::test]
async fn the_official_v0_python_sdk_starts_jobs_and_reads_them_unchanged() {
    let app = spawn_local_app(|_| {}).await;
    let audio = MEDIA.path("speech.mp3").to_string_lossy().into_owned();
    run_sdk_script("v0_roundtrip.py", &app.address, &[("MEDIA_AUDIO_FILE", audio)]).await;
}

#[tokio::test]
async fn the_official_v0_python_sdk_reads_face_prosody_and_burst() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let video = app.host_file("/talk.mp4", MEDIA.bytes("talk.mp4"), "video/mp4").await;
    let image = app.host_file("/photo.png", MEDIA.bytes("photo.png"), "image/png").await;
    let audio = MEDIA.path("speech.mp3").to_string_lossy().into_owned();
    let env = [("MEDIA_VIDEO_URL", video), ("MEDIA_IMAGE_URL", image), ("MEDIA_AUDIO_FILE", audio)];
    run_sdk_script("v0_media_roundtrip.py", &app.address, &env).await;
}
