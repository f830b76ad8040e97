//! Tests on the real installed models (`scripts/models/speech.sh`), with speech synthesised by
//! `espeak-ng`. Models dir: `HUME_ACTION_MODEL_DIR`, else `data/models`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::eval::{onset_errors, rss_bytes, silence, spaced_words, synthesize, wer};
use super::*;

/// Word error rate the synthetic sentence must stay within (Whisper base measured 0 on it at
/// 150 words per minute; espeak-ng is robotic enough that a word or two can slip).
const MAX_WER: f64 = 0.25;

fn models() -> Arc<SpeechModels> {
    static MODELS: OnceLock<Arc<SpeechModels>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let dir =
                std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from);
            let models = SpeechModels::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            println!("RSS with the speech models loaded: {:.0} MB", rss_bytes().unwrap_or(0) as f64 / 1e6);
            Arc::new(models)
        })
        .clone()
}

const SENTENCE: &str = "The doctor said that I should drink more water and get more sleep.";

/// One second of silence, the sentence, one second of silence.
fn sentence_pcm() -> Pcm {
    let mut samples = silence(1.0);
    samples.extend(synthesize(SENTENCE, "en-us", 150).expect("espeak-ng").samples);
    samples.extend(silence(1.0));
    Pcm { samples }
}

#[test]
fn a_synthesised_sentence_transcribes_within_the_stated_wer() {
    let pcm = sentence_pcm();
    let t = models().transcribe(&pcm, None).unwrap();
    let text = t.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
    let error = wer(SENTENCE, &text);
    println!("{text:?}: WER {error:.3}, language {}, confidence {:.3}", t.language, t.confidence);
    assert!(error <= MAX_WER, "WER {error} for {text:?}");
    assert_eq!(t.language, "en");
    assert!(t.confidence > 0.5 && t.confidence <= 1.0, "{}", t.confidence);
    assert!(t.words.iter().all(|w| (0.0..=1.0).contains(&w.confidence)));
}

#[test]
fn word_times_increase_and_stay_within_the_audio() {
    let pcm = sentence_pcm();
    let t = models().transcribe(&pcm, Some("en")).unwrap();
    assert!(!t.words.is_empty());
    let duration = pcm.duration_secs();
    let mut last_end = 0.0;
    for w in &t.words {
        assert!(w.begin >= last_end - 1e-9 && w.end >= w.begin, "{:?} after {last_end}", w);
        assert!(w.end <= duration + 1e-9, "{w:?} past {duration}");
        last_end = w.end;
    }
    // The speech starts after the leading second of silence (the VAD pads regions by 0.2 s).
    assert!(t.words[0].begin >= 0.5, "{:?}", t.words[0]);
}

/// Words spoken one by one with known silences between them (0.15 to 0.9 s) land where their
/// sound starts: every matched word within 0.2 s, 0.1 s on average (the goal of issue 17; the
/// measured error is in assets/speech/EVALUATION.md).
#[test]
fn measured_word_times_land_on_known_onsets() {
    let words: Vec<&str> = SENTENCE.trim_end_matches('.').split(' ').collect();
    let (pcm, onsets) = spaced_words(&words, &[0.15, 0.4, 0.9, 0.25], 1.0, "en-us", 150).expect("espeak-ng");
    let t = models().transcribe(&pcm, Some("en")).unwrap();
    let hypothesis: Vec<(String, f64)> = t.words.iter().map(|w| (w.text.clone(), w.begin)).collect();
    let errors = onset_errors(&onsets, &hypothesis);
    let mean = errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len().max(1) as f64;
    println!("onset errors {errors:.3?}, mean {mean:.3} s, {hypothesis:.2?}");
    assert!(
        errors.len() * 5 >= words.len() * 4,
        "only {} of {} words matched: {hypothesis:?}",
        errors.len(),
        words.len()
    );
    assert!(errors.iter().all(|e| e.abs() <= 0.2), "{errors:?}");
    assert!(mean <= 0.1, "mean onset error {mean}");
}

#[test]
fn silence_gives_no_words() {
    let models = models();
    let quiet = Pcm { samples: (0..5 * 16_000).map(|i| ((i * 7919) % 17) as i16 - 8).collect() };
    let t = models.transcribe(&quiet, None).unwrap();
    assert!(t.words.is_empty(), "{:?}", t.words);
    assert_eq!(t.confidence, 0.0);
    assert!(models.transcribe(&Pcm::default(), Some("en")).unwrap().words.is_empty());
}

#[test]
fn unknown_language_is_an_error() {
    let err = models().transcribe(&sentence_pcm(), Some("xx")).unwrap_err();
    assert!(err.to_string().contains("xx"), "{err}");
}

#[test]
fn speech_is_packed_without_the_silences_up_to_the_limit() {
    let packs = pack_speech(&[0..10, 12..20, 25..40, 41..45], 20);
    assert_eq!(
        packs.iter().map(|p| p.pieces.clone()).collect::<Vec<_>>(),
        vec![vec![0..10, 12..20], vec![25..40, 41..45]]
    );
    let long = pack_speech(&[0..50, 51..52], 20);
    assert_eq!(long.iter().map(|p| p.pieces.clone()).collect::<Vec<_>>(), vec![vec![0..50], vec![51..52]]);
}

#[test]
fn packed_times_map_back_to_the_source() {
    let rate = f64::from(Pcm::RATE);
    // One second of speech at 10 s, then one at 20 s: packed, they are 0-1 s and 1-2 s.
    let pack = Pack { pieces: vec![160_000..176_000, 320_000..336_000] };
    assert_eq!(pack.source_time(0.5, false), 10.5);
    assert_eq!(pack.source_time(1.0, false), 20.0, "a start at the join is the second piece's");
    assert_eq!(pack.source_time(1.0, true), 11.0, "an end at the join is the first piece's");
    assert_eq!(pack.source_time(1.25, true), 20.25);
    assert_eq!(pack.source_time(5.0, true), 336_000.0 / rate, "past the end: the last piece's end");
}

#[test]
fn weights_that_are_truncated_or_missing_name_the_install_command() {
    let installed =
        std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(installed.join(VAD_DIR), dir.path().join(VAD_DIR)).unwrap();
    let whisper = dir.path().join(WhisperVariant::Base.dir_name());
    std::fs::create_dir(&whisper).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(installed.join(WhisperVariant::Base.dir_name()).join(file), whisper.join(file))
            .unwrap();
    }
    let missing = SpeechModels::load(dir.path()).err().expect("no weights").to_string();
    assert!(
        missing.contains("model.safetensors is missing") && missing.contains("scripts/models/speech.sh"),
        "{missing}"
    );
    // The first megabyte of the real file: it reads until it ends early, and is not the pinned file.
    let mut start = std::fs::read(installed.join(WhisperVariant::Base.dir_name()).join("model.safetensors")).unwrap();
    start.truncate(1 << 20);
    std::fs::write(whisper.join("model.safetensors"), start).unwrap();
    let truncated = SpeechModels::load(dir.path()).err().expect("a truncated file").to_string();
    assert!(truncated.contains("has sha256") && truncated.contains("scripts/models/speech.sh"), "{truncated}");
}
