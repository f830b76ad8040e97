//! Diarization speed, by hand: `cargo bench --bench speakers [-- MINUTES...]` (default 1 and 5).
//! For each length, a dialogue of two espeak-ng voices (`en-us`, `en-us+Annie`) speaking
//! `assets/speakers/call.txt` in turn, repeated at other speeds up to that length, is diarized by the embedded model
//! (Silero VAD + CAM++ + spectral clustering); prints seconds per minute of audio, the
//! speakers found and the DER (0.25 s collar), and the RSS the speaker model adds at load.
//! Asserts nothing. Needs espeak-ng, ffmpeg and the models (`scripts/install-models.sh`).

use std::time::Instant;

use hume_action::media::audio::Pcm;
use hume_action::models::speakers::eval::{der, dialogue, Reference};
use hume_action::models::speakers::Diarizer;
use hume_action::models::speech::eval::rss_bytes;

mod support;

const SCRIPT: &str = include_str!("../assets/speakers/call.txt");

fn main() {
    let minutes: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let minutes = if minutes.is_empty() { vec![1.0, 5.0] } else { minutes };
    let dir = support::model_root();
    let before = rss_bytes().unwrap_or(0);
    let diarizer = Diarizer::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let after = rss_bytes().unwrap_or(0);
    println!("speaker model (CAM++ + VAD) load: +{:.0} MB RSS", (after.saturating_sub(before)) as f64 / 1e6);
    let lines: Vec<&str> = SCRIPT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    // Each pass through the script at another speed, so no window repeats another exactly
    // (exact copies make every window's nearest neighbours its own copies).
    let pass = |c: usize| {
        let turns: Vec<(&str, &str)> =
            lines.iter().enumerate().map(|(i, l)| (if i % 2 == 0 { "en-us" } else { "en-us+Annie" }, *l)).collect();
        dialogue(&turns, 0.4, 140 + 12 * (c as u32 % 8)).expect("espeak-ng and ffmpeg")
    };
    println!("| audio | diarization | s per minute of audio | x real time | speakers | DER |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for m in minutes {
        let mut samples: Vec<i16> = Vec::new();
        let mut truth: Vec<Reference> = Vec::new();
        let mut c = 0;
        while (samples.len() as f64) < m * 60.0 * f64::from(Pcm::RATE) {
            let (one, reference) = pass(c);
            let shift = samples.len() as f64 / f64::from(Pcm::RATE);
            truth.extend(reference.iter().map(|r| Reference {
                begin: r.begin + shift,
                end: r.end + shift,
                speaker: r.speaker,
            }));
            samples.extend_from_slice(&one.samples);
            c += 1;
        }
        let pcm = Pcm { samples };
        let audio = pcm.duration_secs();
        let started = Instant::now();
        let found = diarizer.diarize(&pcm).unwrap_or_else(|e| panic!("{e}"));
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {:.1} min | {secs:.2} s | {:.2} | {:.1}x | {} | {:.3} |",
            audio / 60.0,
            secs / audio * 60.0,
            audio / secs,
            found.speakers,
            der(&truth, &found.turns, 0.25).rate()
        );
    }
    println!("peak RSS {:.0} MB", support::memory_of("self").1);
}
