//! Voice measures on the `local` backend with the real models and real audio: a call whose voice
//! gets louder and higher reads so in its `voice` rows, its summary and its `voice.csv`; and the
//! seed's default action (prosody only) on a call completes with the language model's scores of
//! the words and the voice measures, while its errors say prosody needs the `hume` backend.

use serde_json::{json, Value};

use crate::helpers::{spawn_local_app, status_and_json, summary_when_done};
use crate::media_files::MEDIA;

fn rows(file: &Value) -> Vec<Value> {
    file["voice"].as_array().unwrap_or_else(|| panic!("a voice list: {file}")).clone()
}

fn number(row: &Value, field: &str) -> f64 {
    row[field].as_f64().unwrap_or_else(|| panic!("{field} in {row}"))
}

#[tokio::test]
async fn a_call_that_gets_louder_and_higher_reads_so_in_its_voice_measures_summary_and_csv() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/rising.mp3", MEDIA.bytes("rising.mp3"), "audio/mpeg").await;
    let id =
        app.start_v0(&json!({"urls": [url], "models": {"prosody": {}, "language": {"granularity": "sentence"}}})).await;
    let s = summary_when_done(&app, &id).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    let predictions = app.predictions(&id).await;
    let file = &predictions[0]["results"]["predictions"][0];
    let voice = rows(file);
    assert!(voice.len() >= 4, "one row per utterance: {voice:?}");
    assert!(voice.iter().all(|r| r["speaker"] == "unknown" && r["text"].is_string()), "{voice:?}");
    assert!(voice.iter().all(|r| number(r, "words") > 0.0), "{voice:?}");
    let begins: Vec<f64> = voice.iter().map(|r| r["time"]["begin"].as_f64().unwrap()).collect();
    assert!(begins.windows(2).all(|w| w[0] <= w[1]), "in time order: {begins:?}");
    let (first, last) = (&voice[0], &voice[voice.len() - 1]);
    // The raised sentences are louder and higher than the calm ones, in absolute terms...
    let louder = number(last, "loudness_lufs") - number(first, "loudness_lufs");
    let higher = 12.0 * (number(last, "pitch_hz") / number(first, "pitch_hz")).log2();
    assert!(louder > 6.0, "{louder:.1} dB: {first} / {last}");
    assert!(higher > 2.0, "{higher:.1} semitones: {first} / {last}");
    // ...and against the speaker's first minute (the whole clip here, so its loud end weighs in
    // its integrated loudness): below it at first, above it at the end.
    assert!(number(first, "loudness_change_db") < 0.0 && number(last, "loudness_change_db") > 0.0, "{first} / {last}");
    assert!(number(first, "pitch_change_semitones") < 0.0 && number(last, "pitch_change_semitones") > 0.0);
    for row in &voice {
        let wpm = number(row, "words_per_minute");
        assert!((60.0..400.0).contains(&wpm), "espeak-ng speaks about 175 words a minute: {row}");
        assert!(row["in_baseline"] == true);
    }
    // The voice is not labelled prosody: no prosody output, and an error that says why.
    assert!(file["models"].get("prosody").is_none(), "{file}");
    let error = predictions[0]["results"]["errors"][0]["message"].as_str().unwrap();
    assert!(error.contains("hume backend") && error.contains("under `voice`"), "{error}");

    // The summary: a voice timeline and the end against the start beside the escalation verdict.
    let summary_voice = &s["files"][0]["voice"];
    assert_eq!(summary_voice["utterances"].as_u64(), Some(voice.len() as u64), "{s}");
    assert!(!summary_voice["timeline"].as_array().unwrap().is_empty());
    let evidence = &s["files"][0]["escalation"]["voice"];
    assert!(evidence["louder_db"].as_f64().unwrap() > 3.0, "{evidence}");
    assert!(evidence["higher_semitones"].as_f64().unwrap() > 1.0, "{evidence}");
    assert_eq!(s["escalation"]["voice"], *evidence, "the job's verdict is its file's");
    let headline = s["headline"].as_str().unwrap();
    assert!(headline.contains("The voice is louder") && headline.contains("than at the start"), "{headline}");

    // The artifacts: one voice.csv row per utterance.
    let zip = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("voice.csv").unwrap(), &mut csv).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("source,file,") && header.contains("loudness_lufs") && header.contains("pitch_hz"));
    assert_eq!(csv.lines().count(), voice.len() + 1, "{csv}");
}

#[tokio::test]
async fn the_default_action_on_a_call_completes_with_the_words_scored_and_the_voice_measured() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let (status, answer) = status_and_json(app.start(&json!({"urls": [&url], "wait_seconds": 25})).await).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["job_id"].as_str().unwrap();
    let s = &summary_when_done(&app, id).await;
    assert_eq!((s["status"].as_str(), s["num_errors"].as_u64()), (Some("COMPLETED"), Some(1)), "{s}");
    // Something true to read: the language model's scores of the words, and the voice.
    let file = &s["files"][0];
    assert!(file["models"]["language"]["segments"].as_u64().unwrap() > 0, "{file}");
    assert!(file["models"].get("prosody").is_none(), "nothing is labelled prosody: {file}");
    assert!(file["voice"]["utterances"].as_u64().unwrap() > 0, "{file}");
    let headline = s["headline"].as_str().unwrap();
    assert!(!headline.starts_with("Nothing") && !headline.contains("failed"), "{headline}");
    // And plainly why there is no prosody.
    let message = s["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("The prosody model cannot run on the local backend"), "{message}");
    assert!(message.contains("HUME_ACTION_BACKEND=hume"), "{message}");
    assert!(message.contains("scored by the language model") && message.contains("not of the voice"), "{message}");
    assert!(message.contains("measurements, not emotions"), "{message}");

    // In v0's shapes: the language output at the action's granularity, the voice rows beside it.
    let predictions = app.predictions(id).await;
    let file = &predictions[0]["results"]["predictions"][0];
    let said = file["models"]["language"]["grouped_predictions"][0]["predictions"].as_array().unwrap();
    assert_eq!(said.len(), 2, "two utterances: {said:?}");
    assert!(said.iter().all(|p| p["time"].is_object()), "{said:?}");
    let voice = rows(file);
    assert_eq!(voice.len(), said.len(), "one voice row per utterance");
    for (v, l) in voice.iter().zip(said) {
        assert_eq!((&v["time"], &v["text"]), (&l["time"], &l["text"]), "the same utterance, the same time");
        assert!(number(v, "pitch_hz") > 60.0 && number(v, "loudness_lufs") < 0.0, "{v}");
    }
}
