//! Measures the embedded transcription: word error rate on sentences synthesised with
//! `espeak-ng` from `assets/speech/sentences.txt` (voice en-us at two speeds), speed as a multiple
//! of real time, and memory. Results and limits are recorded in `assets/speech/EVALUATION.md`.
//!
//! Usage: cargo run --release --bin evaluate-speech -- [--whisper base|tiny.en] [--models DIR]
//!        [--long-minutes N]   (N minutes of the sentences with pauses, looped; 0 skips it; default 5)
//!        [--skip-sentences]   (only the long recording)

use std::path::PathBuf;
use std::time::Instant;

use hume_action::media::audio::Pcm;
use hume_action::models::speech::eval::{normalize, rss_bytes, silence, synthesize, word_errors};
use hume_action::models::speech::{SpeechModels, WhisperVariant};

const SENTENCES: &str = include_str!("../../assets/speech/sentences.txt");
/// espeak-ng speeds in words per minute: a calm pace and a brisk one.
const SPEEDS: [u32; 2] = [150, 210];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn run() -> Result<(), String> {
    let mut variant = WhisperVariant::Base;
    let mut dir = std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from);
    let mut long_minutes = 5.0;
    let mut skip_sentences = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--whisper" => {
                variant = match value()?.as_str() {
                    "base" => WhisperVariant::Base,
                    "tiny.en" => WhisperVariant::TinyEn,
                    other => return Err(format!("unknown Whisper {other:?}: base or tiny.en")),
                }
            }
            "--models" => dir = PathBuf::from(value()?),
            "--skip-sentences" => skip_sentences = true,
            "--long-minutes" => long_minutes = value()?.parse().map_err(|e| format!("--long-minutes: {e}"))?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let sentences: Vec<&str> =
        SENTENCES.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();

    let started = Instant::now();
    let models = SpeechModels::load_variant(&dir, variant).map_err(|e| e.to_string())?;
    println!(
        "loaded Silero VAD + {} in {:.1} s; RSS {:.0} MB",
        variant.dir_name(),
        started.elapsed().as_secs_f64(),
        rss_bytes().unwrap_or(0) as f64 / 1e6
    );

    println!("\n{:>4} {:>6} {:>6}  reference | hypothesis", "wpm", "WER", "xRT");
    let (mut all_errors, mut all_words, mut all_audio, mut all_cpu) = (0, 0, 0.0, 0.0);
    for speed in if skip_sentences { &[][..] } else { &SPEEDS[..] } {
        let speed = *speed;
        let (mut errors, mut words) = (0, 0);
        for sentence in &sentences {
            let mut samples = silence(0.5);
            samples.extend(synthesize(sentence, "en-us", speed)?.samples);
            samples.extend(silence(0.5));
            let pcm = Pcm { samples };
            let t0 = Instant::now();
            let transcript = models.transcribe(&pcm, Some("en")).map_err(|e| e.to_string())?;
            let cpu = t0.elapsed().as_secs_f64();
            let hypothesis = transcript.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
            let (e, n) = word_errors(&normalize(sentence), &normalize(&hypothesis));
            println!(
                "{speed:>4} {:>6.3} {:>6.1}  {sentence} | {hypothesis}",
                e as f64 / n as f64,
                pcm.duration_secs() / cpu
            );
            errors += e;
            words += n;
            all_audio += pcm.duration_secs();
            all_cpu += cpu;
        }
        println!("{speed:>4} wpm: WER {:.3} ({errors} errors / {words} words)", errors as f64 / words as f64);
        all_errors += errors;
        all_words += words;
    }
    if !skip_sentences {
        println!(
        "\nsentences overall: WER {:.3} ({all_errors}/{all_words}); {:.1}x real time on short clips ({:.0} s audio in {:.1} s)",
        all_errors as f64 / all_words as f64,
        all_audio / all_cpu,
        all_audio,
        all_cpu
    );
    }

    if long_minutes > 0.0 {
        // The sentences at the calm speed with 0.6..2.1 s pauses, looped to the length asked.
        let clips: Vec<Vec<i16>> =
            sentences.iter().map(|s| synthesize(s, "en-us", SPEEDS[0]).map(|p| p.samples)).collect::<Result<_, _>>()?;
        let target = (long_minutes * 60.0 * f64::from(Pcm::RATE)) as usize;
        let mut samples = Vec::with_capacity(target);
        let mut reference = Vec::new();
        let mut i = 0;
        while samples.len() < target {
            samples.extend(silence(0.6 + 0.3 * (i % 6) as f64));
            samples.extend(&clips[i % clips.len()]);
            reference.extend(normalize(sentences[i % sentences.len()]));
            i += 1;
        }
        let pcm = Pcm { samples };
        let t0 = Instant::now();
        let transcript = models.transcribe(&pcm, Some("en")).map_err(|e| e.to_string())?;
        let cpu = t0.elapsed().as_secs_f64();
        let hypothesis = normalize(&transcript.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "));
        let (e, n) = word_errors(&reference, &hypothesis);
        println!(
            "\nlong recording: {:.1} min ({i} sentences with pauses) in {cpu:.1} s = {:.1}x real time; WER {:.3}; \
             {} words, last ends at {:.1} s",
            pcm.duration_secs() / 60.0,
            pcm.duration_secs() / cpu,
            e as f64 / n as f64,
            transcript.words.len(),
            transcript.words.last().map_or(0.0, |w| w.end)
        );
    }
    println!(
        "RSS now {:.0} MB, peak {:.0} MB (process, including the synthesised audio)",
        rss_bytes().unwrap_or(0) as f64 / 1e6,
        peak_rss_mb()
    );
    Ok(())
}
