//! Evaluates the job summary's `escalation.detected` on the labelled scripts of
//! `assets/escalation/scripts.tsv`, end to end through the real server (started in this process):
//! - language on text (`local`): each script as a `text` item;
//! - language on speech (`local`): each script spoken by espeak-ng, a sentence at a time with
//!   pauses, uploaded as a WAV file, transcribed by Whisper and scored;
//! - prosody on `hume` against the strict fake of Hume v1 (`tests/api/fake_v1.rs`), on the same
//!   speech: the fake's scores follow loudness, not emotion, so this row checks that prosody
//!   windows reach the method, not how well Hume's model would do.
//!
//! Prints each script's verdict, then precision and recall of `detected` per row. Needs the
//! model files (`HUME_ACTION_MODEL_DIR`, default `data/models`), ffmpeg and espeak-ng.
//!
//! Usage: cargo run --release --example evaluate-escalation [-- --text-only] [-- --threshold-sweep]

#[path = "../tests/api/fake_v1.rs"]
#[allow(dead_code)]
mod fake_v1;

use std::path::PathBuf;
use std::time::Duration;

use hume_action::config::{BackendKind, Config};
use hume_action::media::audio::Pcm;
use hume_action::models::speech::eval::{silence, synthesize};
use hume_action::startup::Application;
use serde_json::{json, Value};

const SCRIPTS: &str = include_str!("../assets/escalation/scripts.tsv");

struct Script {
    id: String,
    kind: String,
    escalates: bool,
    text: String,
}

fn scripts() -> Vec<Script> {
    SCRIPTS
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            Script { id: cells[0].into(), kind: cells[1].into(), escalates: cells[2] == "true", text: cells[3].into() }
        })
        .collect()
}

/// The script's sentences spoken one after another with 0.7 s pauses, as a WAV file.
fn speech(text: &str) -> Result<Vec<u8>, String> {
    let mut samples = silence(0.3);
    for sentence in text.split_inclusive(['.', '?', '!']).map(str::trim).filter(|s| !s.is_empty()) {
        samples.extend(synthesize(sentence, "en-us", 160)?.samples);
        samples.extend(silence(0.7));
    }
    Ok(wav(&samples))
}

fn wav(samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend(b"RIFF");
    out.extend((36 + data).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(Pcm::RATE.to_le_bytes());
    out.extend((Pcm::RATE * 2).to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend(data.to_le_bytes());
    for s in samples {
        out.extend(s.to_le_bytes());
    }
    out
}

/// A server of `backend` on port 0, and its address.
async fn server(backend: BackendKind, v1: Option<&str>, data: &std::path::Path) -> Result<String, String> {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.backend = backend;
    config.data_dir = data.to_owned();
    config.model_dir =
        Some(std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from));
    config.hume_api_key = Some("eval-key".parse().unwrap());
    if let Some(v1) = v1 {
        config.hume_api_base_url = v1.parse().unwrap();
    }
    let app = Application::build(config).await.map_err(|e| format!("{e:#}"))?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Ok(address)
}

/// Starts a job and returns its summary once it ended.
async fn summary(
    client: &reqwest::Client,
    address: &str,
    request: Value,
    file: Option<Vec<u8>>,
) -> Result<Value, String> {
    let post = client.post(format!("{address}/v0/batch/jobs"));
    let post =
        match file {
            None => post.json(&request),
            Some(bytes) => post.multipart(reqwest::multipart::Form::new().text("json", request.to_string()).part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("call.wav").mime_str("audio/wav").unwrap(),
            )),
        };
    let started: Value = post.send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let id = started["job_id"].as_str().ok_or_else(|| format!("no job: {started}"))?.to_owned();
    loop {
        let url = format!("{address}/v1/jobs/{id}/summary?wait=25");
        let summary: Value =
            client.get(url).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        if summary["done"] == true {
            return Ok(summary);
        }
    }
}

#[derive(Default)]
struct Tally {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
    missing: u32,
}

impl Tally {
    fn add(&mut self, expected: bool, got: Option<bool>) {
        match (expected, got) {
            (_, None) => self.missing += 1,
            (true, Some(true)) => self.tp += 1,
            (false, Some(true)) => self.fp += 1,
            (true, Some(false)) => self.fn_ += 1,
            (false, Some(false)) => self.tn += 1,
        }
    }

    fn line(&self, name: &str) -> String {
        let precision = f64::from(self.tp) / f64::from(self.tp + self.fp).max(1.0);
        let recall = f64::from(self.tp) / f64::from(self.tp + self.fn_).max(1.0);
        format!(
            "{name:<34} precision {precision:.2}  recall {recall:.2}  (tp {}, fp {}, fn {}, tn {}, no verdict {})",
            self.tp, self.fp, self.fn_, self.tn, self.missing
        )
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let text_only = std::env::args().any(|a| a == "--text-only");
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let local = server(BackendKind::Local, None, &data.path().join("local")).await?;
    let fake = fake_v1::FakeV1::start(&["eval-key"]).await;
    let hume = server(BackendKind::Hume, Some(&fake.uri()), &data.path().join("hume")).await?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| e.to_string())?;
    let language = json!({"models": {"language": {"granularity": "utterance"}}});
    let (mut on_text, mut on_speech, mut prosody) = (Tally::default(), Tally::default(), Tally::default());
    let verdict =
        |s: &Value, model: &str| -> Option<bool> { s["files"][0]["models"][model]["escalation"]["detected"].as_bool() };
    println!(
        "{:<10} {:<40} {:>8} | {:>13} {:>13} {:>13}",
        "script", "kind", "expected", "language/text", "language/speech", "prosody/fake"
    );
    for script in scripts() {
        let mut request = language.clone();
        request["text"] = json!([script.text]);
        let text = summary(&client, &local, request, None).await?;
        let got_text = verdict(&text, "language");
        on_text.add(script.escalates, got_text);
        let (mut got_speech, mut got_prosody) = (None, None);
        if !text_only {
            let audio = speech(&script.text)?;
            let spoken = summary(&client, &local, language.clone(), Some(audio.clone())).await?;
            got_speech = verdict(&spoken, "language");
            on_speech.add(script.escalates, got_speech);
            let voice = summary(&client, &hume, json!({"models": {"prosody": {}}}), Some(audio)).await?;
            got_prosody = verdict(&voice, "prosody");
            prosody.add(script.escalates, got_prosody);
        }
        let show = |v: Option<bool>| v.map_or("-".to_owned(), |b| b.to_string());
        println!(
            "{:<10} {:<40} {:>8} | {:>13} {:>13} {:>13}   start {} end {}",
            script.id,
            script.kind,
            script.escalates,
            show(got_text),
            show(got_speech),
            show(got_prosody),
            text["escalation"]["score_start"],
            text["escalation"]["score_end"]
        );
    }
    println!();
    println!("{}", on_text.line("language on text (local)"));
    if !text_only {
        println!("{}", on_speech.line("language on speech (local, Whisper)"));
        println!("{}", prosody.line("prosody on hume (v1 fake: loudness)"));
    }
    Ok(())
}
