//! Tests on the real installed model (`scripts/models/speakers.sh`), with dialogues synthesised
//! by `espeak-ng`. Models dir: `HUME_ACTION_MODEL_DIR`, else `data/models`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::eval::{der, dialogue};
use super::*;

fn model_dir() -> PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from)
}

fn diarizer() -> Arc<Diarizer> {
    static DIARIZER: OnceLock<Arc<Diarizer>> = OnceLock::new();
    DIARIZER.get_or_init(|| Arc::new(Diarizer::load(&model_dir()).unwrap_or_else(|e| panic!("{e}")))).clone()
}

const LINES: [&str; 6] = [
    "Hello, thank you for calling. How can I help you today?",
    "Hi. My order was supposed to arrive last week and it still has not come.",
    "I am sorry to hear that. Could you give me the order number, please?",
    "Yes, it is four five seven two one. I have been waiting for ten days now.",
    "Thank you. I can see it was held at the depot. I will send it out again today.",
    "Good. Please make sure it arrives before the weekend, because I need it.",
];

#[test]
fn two_espeak_voices_are_two_speakers() {
    let lines: Vec<(&str, &str)> =
        LINES.iter().enumerate().map(|(i, l)| (if i % 2 == 0 { "en-us" } else { "en-us+Annie" }, *l)).collect();
    let (pcm, reference) = dialogue(&lines, 0.6, 160).expect("espeak-ng and ffmpeg");
    let found = diarizer().diarize(&pcm).unwrap();
    let d = der(&reference, &found.turns, 0.25);
    println!("{} speakers, DER {:.3} ({d:?})", found.speakers, d.rate());
    assert_eq!(found.speakers, 2, "{:?}", found.turns);
    assert!(d.rate() <= 0.15, "DER {:.3}: {:?}", d.rate(), found.turns);
    assert_eq!(found.turns[0].speaker, 0, "speakers are numbered by first speech");
    assert!(found.turns.iter().all(|t| t.end > t.begin && (0.0..=1.0).contains(&t.confidence)));
    assert!(found.turns.windows(2).all(|w| w[0].end <= w[1].begin + 1e-9), "turns in order, apart");
}

#[test]
fn one_voice_is_one_speaker() {
    let lines: Vec<(&str, &str)> = LINES.iter().map(|l| ("en-us", *l)).collect();
    let (pcm, _) = dialogue(&lines, 0.6, 160).expect("espeak-ng and ffmpeg");
    let found = diarizer().diarize(&pcm).unwrap();
    assert_eq!(found.speakers, 1, "{:?}", found.turns);
    assert!(found.turns.iter().all(|t| (t.confidence - 1.0).abs() < 1e-9));
}

#[test]
fn silence_has_no_speakers() {
    let found = diarizer().diarize(&Pcm { samples: vec![0; 32_000] }).unwrap();
    assert_eq!(found, Diarization::default());
}

#[test]
fn the_embedding_is_the_same_voice_across_sentences_and_another_voice_is_not() {
    let d = diarizer();
    let embed = |voice: &str, text: &str| {
        let pcm = crate::models::speech::eval::synthesize(text, voice, 160).unwrap();
        let audio: Vec<f32> = pcm.samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let feats = d.fbank().compute(&audio);
        d.model().embed_frames(&feats, feats.len() / fbank::MEL_BINS).unwrap()
    };
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    let a1 = embed("en-us", LINES[0]);
    let a2 = embed("en-us", LINES[3]);
    let b = embed("en-us+f4", LINES[3]);
    assert_eq!(a1.len(), campplus::EMBEDDING);
    let (same, other) = (cos(&a1, &a2), cos(&a2, &b));
    println!("same voice {same:.3}, other voice {other:.3}");
    assert!(same > other + 0.2, "same voice {same}, other voice {other}");
}

#[test]
fn a_missing_model_names_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let err = Diarizer::load(dir.path()).err().expect("no model there").to_string();
    assert!(err.contains("scripts/models/speakers.sh"), "{err}");
    assert!(err.contains("campplus_cn_en_common.pt"), "{err}");
    // The start-up check (the model loads on first use) says the same.
    let checked = Diarizer::check(dir.path()).unwrap_err().to_string();
    assert_eq!(checked, err);
}

#[test]
fn the_installed_files_pass_the_start_up_check() {
    Diarizer::check(&model_dir()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(model_dir().join(DIR_NAME), dir.path().join(DIR_NAME)).unwrap();
    let err = Diarizer::check(dir.path()).unwrap_err().to_string();
    assert!(err.contains("voice activity"), "the VAD is checked too: {err}");
}
