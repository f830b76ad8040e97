//! Media benchmarks, run by hand: `cargo bench --bench media [-- SECTION...]`, sections
//! `prepare`, `requests`, `job` (all by default). Prints numbers; asserts nothing. Needs ffmpeg
//! and espeak-ng (`scripts/install-system.sh --tests`) and the language model files.
//!
//! - prepare: ffmpeg preparation speed as a multiple of real time: 60 s of speech (mp3 to 16 kHz
//!   PCM), and 60 s of 640x480 25 fps video (PCM plus JPEG frames at fps_pred 3);
//! - requests: Hume v1 requests per minute of media at default settings: audio (25 MB WAV
//!   chunks) and video (frames at 3 fps batched under 25 MB) at 640x480 and at 1280x720 with
//!   camera-like noise;
//! - job: end-to-end time of a 10-minute audio job (prosody and burst) on the `hume` backend
//!   against an instant fake of v1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hume_action::analyzers::hume::face::batches;
use hume_action::analyzers::hume::voice::{MAX_CHUNK_SAMPLES, SILENCE_SEARCH_SAMPLES};
use hume_action::config::{BackendKind, Config};
use hume_action::media::audio::chunk_ranges;
use hume_action::media::ffmpeg::Tools;
use hume_action::media::prepare::{MediaLimits, Needs, Prepared, Preparer};
use hume_action::media::MediaKind;
use hume_action::startup::Application;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[allow(dead_code)]
#[path = "../tests/api/fake_v1.rs"]
mod fake_v1;

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    let status = Command::new("ffmpeg").args(&all).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Speech looped with pauses to `seconds`, as mp3.
fn speech(dir: &Path, seconds: u32) -> PathBuf {
    let wav = dir.join("phrase.wav");
    if !wav.exists() {
        let sentence = "Thank you for calling. I have been waiting for an hour and I am getting really frustrated.";
        let status = Command::new("espeak-ng").arg("-w").arg(dir.join("s.wav")).arg(sentence).status();
        assert!(status.expect("espeak-ng runs").success());
        let s = dir.join("s.wav").to_string_lossy().into_owned();
        ffmpeg(&["-i", &s, "-af", "apad=pad_dur=2", "-ar", "22050", &wav.to_string_lossy()]);
    }
    let out = dir.join(format!("speech-{seconds}.mp3"));
    let (w, o, t) = (wav.to_string_lossy(), out.to_string_lossy(), seconds.to_string());
    ffmpeg(&["-stream_loop", "-1", "-i", &w, "-t", &t, "-ac", "1", "-b:a", "64k", &o]);
    out
}

/// A talking test-pattern video of 60 s; `noise` makes frames compress like a camera's.
fn video(dir: &Path, size: &str, noise: bool) -> PathBuf {
    let audio = speech(dir, 60);
    let out = dir.join(format!("video-{size}-{noise}.mp4"));
    let source = format!("testsrc2=size={size}:rate=25{}", if noise { ",noise=alls=25:allf=t" } else { "" });
    let (a, o) = (audio.to_string_lossy(), out.to_string_lossy());
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-i",
        &a,
        "-t",
        "60",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        &o,
    ]);
    out
}

fn preparer() -> Preparer {
    Preparer::new(Tools::default(), MediaLimits::default())
}

async fn timed_prepare(file: &Path, kind: MediaKind, needs: Needs) -> (Duration, Prepared) {
    let bytes = std::fs::read(file).unwrap();
    let preparer = preparer();
    let mut best = Duration::MAX;
    let mut prepared = None;
    for _ in 0..3 {
        let start = Instant::now();
        let p = preparer.prepare("bench", kind, &bytes, needs).await.expect("prepares");
        best = best.min(start.elapsed());
        prepared = Some(p);
    }
    (best, prepared.unwrap())
}

async fn prepare(dir: &Path) {
    let audio = speech(dir, 60);
    let (took, p) =
        timed_prepare(&audio, MediaKind::Audio, Needs { audio: true, frames: None, max_secs: None, max_frames: None })
            .await;
    let secs = p.audio.as_ref().unwrap().duration_secs();
    println!(
        "prepare audio: {secs:.0} s mp3 -> 16 kHz PCM in {:.3} s = {:.0}x real time",
        took.as_secs_f64(),
        secs / took.as_secs_f64()
    );
    let clip = video(dir, "640x480", false);
    let (took, p) = timed_prepare(
        &clip,
        MediaKind::Video,
        Needs { audio: true, frames: Some(3.0), max_secs: None, max_frames: None },
    )
    .await;
    let secs = p.duration_secs.unwrap_or(60.0);
    println!(
        "prepare video: {secs:.0} s 640x480 25 fps -> PCM + {} JPEG frames at 3 fps in {:.3} s = {:.1}x real time",
        p.frames.len(),
        took.as_secs_f64(),
        secs / took.as_secs_f64()
    );
}

async fn requests(dir: &Path) {
    // An hour of 16 kHz speech: how many 25 MB requests does it take?
    let clip = speech(dir, 60);
    let (_, p) =
        timed_prepare(&clip, MediaKind::Audio, Needs { audio: true, frames: None, max_secs: None, max_frames: None })
            .await;
    let minute = &p.audio.unwrap().samples;
    let hour: Vec<i16> = minute.iter().copied().cycle().take(minute.len() * 60).collect();
    let chunks = chunk_ranges(&hour, MAX_CHUNK_SAMPLES, SILENCE_SEARCH_SAMPLES);
    println!(
        "v1 requests, audio: {} for 60 min = {:.3} per minute of audio (chunks of at most {:.0} s)",
        chunks.len(),
        chunks.len() as f64 / 60.0,
        MAX_CHUNK_SAMPLES as f64 / 16_000.0
    );
    for (size, noise) in [("640x480", false), ("1280x720", true)] {
        let clip = video(dir, size, noise);
        let (_, p) = timed_prepare(
            &clip,
            MediaKind::Video,
            Needs { audio: false, frames: Some(3.0), max_secs: None, max_frames: None },
        )
        .await;
        let bytes: usize = p.frames.iter().map(|f| f.jpeg.len()).sum();
        // Ten minutes of such frames, to count requests per minute past the first one's rounding.
        let ten: Vec<_> = p.frames.iter().cycle().take(p.frames.len() * 10).cloned().collect();
        println!(
            "v1 requests, video {size}{}: {} frames a minute ({:.0} KB each) at fps_pred 3: {} request(s) for 10 min = {:.1} per minute of video",
            if noise { " with noise" } else { "" },
            p.frames.len(),
            bytes as f64 / p.frames.len() as f64 / 1000.0,
            batches(&ten).len(),
            batches(&ten).len() as f64 / 10.0
        );
    }
}

async fn job(dir: &Path) {
    let audio = std::fs::read(speech(dir, 600)).unwrap();
    let v1 = fake_v1::FakeV1::start(&["bench-key"]).await;
    let files = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/call.mp3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(audio, "audio/mpeg"))
        .mount(&files)
        .await;
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.backend = BackendKind::Hume;
    config.hume_api_base_url = v1.uri().parse().unwrap();
    config.hume_api_key = Some("bench-key".parse().unwrap());
    config.data_dir = data.path().to_owned();
    config.allow_private_urls = true;
    if let Some(dir) = std::env::var_os("HUME_ACTION_MODEL_DIR") {
        config.model_dir = Some(dir.into());
    } else {
        config.model_dir = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/models"));
    }
    let app = Application::build(config).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let start = Instant::now();
    let body = json!({"urls": [format!("{}/call.mp3", files.uri())], "models": {"prosody": {}, "burst": {}}});
    let answer: Value =
        client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
    let id = answer["job_id"].as_str().unwrap();
    let job = loop {
        let job: Value =
            client.get(format!("{address}/v0/batch/jobs/{id}")).send().await.unwrap().json().await.unwrap();
        if matches!(job["state"]["status"].as_str(), Some("COMPLETED" | "FAILED")) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = start.elapsed();
    let predictions: Value =
        client.get(format!("{address}/v0/batch/jobs/{id}/predictions")).send().await.unwrap().json().await.unwrap();
    let windows = predictions[0]["results"]["predictions"][0]["models"]["prosody"]["grouped_predictions"][0]
        ["predictions"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "10-minute audio job (prosody + burst, hume backend, instant v1 fake): {} in {:.2} s end to end; {} v1 request(s), {windows} windows",
        job["state"]["status"],
        took.as_secs_f64(),
        v1.requests().len()
    );
}

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if wants("prepare") {
            prepare(dir.path()).await;
        }
        if wants("requests") {
            requests(dir.path()).await;
        }
        if wants("job") {
            job(dir.path()).await;
        }
    });
}
