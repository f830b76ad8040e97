//! Measures the embedded vocal burst detection (YAMNet, `crate::models::burst`) on real acted
//! bursts and on speech without bursts, at several thresholds. Results:
//! `assets/burst/EVALUATION.md`.
//!
//! - Bursts: every clip of Debian's `hedgewars-data` (GFDL; 15 voice packs) whose kind maps to
//!   AudioSet burst classes (`eval::CLIP_KINDS`: Laugh, PoisonCough, PoisonMoan, Ow1..4,
//!   Ooff1..3). A clip is *detected* when it has a burst stretch whose top class is one of its
//!   kind's classes, and *any burst* when it has a stretch at all.
//! - Speech without bursts: Debian's `pocketsphinx-testdata` read speech (LibriVox, `cards`; BSD-2)
//!   and `assets/speech/sentences.txt` spoken by three espeak-ng voices; false positives are
//!   burst stretches per minute of speech.
//!
//! Usage: cargo run --release --bin evaluate-burst -- [--models DIR]
//!        evaluate-burst top FILE...                 (each patch's five best AudioSet classes)
//!        evaluate-burst features FILE.wav OUT.f32   (our log-mel patches of a 16 kHz WAV, to
//!                                                    compare with assets/burst/features_reference.py)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hume_action::models::burst::detect::stretches;
use hume_action::models::burst::eval::{decode, hedgewars_clips, CLIP_KINDS};
use hume_action::models::burst::features::LogMel;
use hume_action::models::burst::{Burst, Yamnet, DIR_NAME, THRESHOLD};
use hume_action::models::speech::eval::{silence, synthesize};

const SENTENCES: &str = include_str!("../../assets/speech/sentences.txt");
const PS_DATA: &str = "/usr/share/pocketsphinx/test/data";
const THRESHOLDS: [f32; 6] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
const VOICES: [&str; 3] = ["en-us", "en-gb+f3", "en-us+klatt"];
/// Acted game lines of `hedgewars-data` that are words, not bursts (often shouted).
const SPOKEN: [&str; 10] =
    ["Hello", "Incoming", "Amazing", "Brilliant", "Excellent", "Victory", "Hurry", "Missed", "Traitor", "Byebye"];

/// A clip's per-patch class probabilities and its length.
struct Scored {
    scores: Vec<Vec<f32>>,
    seconds: f64,
}

impl Scored {
    fn bursts(&self, threshold: f32) -> Vec<Burst> {
        stretches(&self.scores, self.seconds, threshold)
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("features") {
        let (Some(wav), Some(out)) = (args.get(1), args.get(2)) else {
            return Err("usage: evaluate-burst features FILE.wav OUT.f32".into());
        };
        let samples = decode(Path::new(wav))?;
        let front = LogMel::new();
        let bytes: Vec<u8> = front.patches(&samples).flatten().flatten().flat_map(f32::to_le_bytes).collect();
        std::fs::write(out, bytes).map_err(|e| format!("{out}: {e}"))?;
        return Ok(());
    }
    let models = match args.iter().position(|a| a == "--models") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--models needs a directory")?),
        None => std::env::var_os("HUME_ACTION_MODEL_DIR").map_or_else(|| PathBuf::from("data/models"), PathBuf::from),
    };
    let model = Yamnet::load(&models.join(DIR_NAME)).map_err(|e| e.to_string())?;
    if args.first().map(String::as_str) == Some("top") {
        for file in &args[1..] {
            for (k, patch) in model.scores(&decode(Path::new(file))?).map_err(|e| e.to_string())?.iter().enumerate() {
                let mut best: Vec<(usize, f32)> = patch.iter().copied().enumerate().collect();
                best.sort_by(|a, b| b.1.total_cmp(&a.1));
                let list: Vec<String> = best[..5].iter().map(|(i, s)| format!("{} {s:.2}", model.name(*i))).collect();
                println!("{file} @{:.2}s: {}", k as f64 * 0.48, list.join(", "));
            }
        }
        return Ok(());
    }
    let score = |samples: &[i16]| -> Result<Scored, String> {
        Ok(Scored {
            scores: model.scores(samples).map_err(|e| e.to_string())?,
            seconds: samples.len() as f64 / 16_000.0,
        })
    };

    let started = Instant::now();
    let mut audio_seconds = 0.0;
    println!("## Acted bursts (hedgewars-data)\n");
    let mut kinds: Vec<(&str, &str, &[&str], Vec<Scored>)> = Vec::new();
    for (kind, what, classes) in CLIP_KINDS {
        let mut scored = Vec::new();
        for clip in hedgewars_clips(kind) {
            let s = score(&decode(&clip)?)?;
            audio_seconds += s.seconds;
            scored.push(s);
        }
        if scored.is_empty() {
            return Err("no hedgewars clips: apt-get install hedgewars-data".into());
        }
        kinds.push((kind, what, classes, scored));
    }
    print!("| clips | kind | n |");
    for t in THRESHOLDS {
        print!(" detected @{t} | any @{t} |");
    }
    println!();
    println!("|---|---|---|{}", "---|---|".repeat(THRESHOLDS.len()));
    for (kind, what, classes, scored) in &kinds {
        print!("| {kind} | {what} | {} |", scored.len());
        for t in THRESHOLDS {
            let any = scored.iter().filter(|s| !s.bursts(t).is_empty()).count();
            let right = scored.iter().filter(|s| s.bursts(t).iter().any(|b| classes.contains(&b.top().0))).count();
            print!(" {} | {} |", pct(right, scored.len()), pct(any, scored.len()));
        }
        println!();
    }
    println!("\nTop class of each clip's strongest stretch at the threshold in use ({THRESHOLD}):\n");
    for (kind, _, _, scored) in &kinds {
        let mut tops: BTreeMap<&str, usize> = BTreeMap::new();
        for s in scored {
            let best = s.bursts(THRESHOLD).into_iter().max_by(|a, b| a.top().1.total_cmp(&b.top().1));
            *tops.entry(best.map_or("(none)", |b| b.top().0)).or_default() += 1;
        }
        let mut tops: Vec<(&str, usize)> = tops.into_iter().collect();
        tops.sort_by_key(|b| std::cmp::Reverse(b.1));
        let list: Vec<String> = tops.iter().map(|(name, n)| format!("{name} {n}")).collect();
        println!("- {kind}: {}", list.join(", "));
    }

    println!("\n## Acted game lines that are words (hedgewars-data)\n");
    let mut lines = Vec::new();
    for kind in SPOKEN {
        for clip in hedgewars_clips(kind) {
            let s = score(&decode(&clip)?)?;
            audio_seconds += s.seconds;
            lines.push(s);
        }
    }
    print!("| clips | n |");
    for t in THRESHOLDS {
        print!(" with a burst @{t} |");
    }
    println!();
    println!("|---|---|{}", "---|".repeat(THRESHOLDS.len()));
    print!("| {} | {} |", SPOKEN.join(", "), lines.len());
    for t in THRESHOLDS {
        print!(" {} |", pct(lines.iter().filter(|s| !s.bursts(t).is_empty()).count(), lines.len()));
    }
    println!();
    let mut tops: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &lines {
        for b in s.bursts(THRESHOLD) {
            *tops.entry(b.top().0).or_default() += 1;
        }
    }
    let list: Vec<String> = tops.iter().map(|(name, n)| format!("{name} {n}")).collect();
    println!(
        "\nTheir stretches' top classes at {THRESHOLD}: {}",
        if list.is_empty() { "none".into() } else { list.join(", ") }
    );

    println!("\n## Speech without bursts\n");
    let mut sets: Vec<(String, Vec<Scored>)> = Vec::new();
    let real = real_speech()?;
    if real.is_empty() {
        println!("(pocketsphinx-testdata is not installed: apt-get install pocketsphinx-testdata adds real speech)");
    } else {
        sets.push((
            "read speech (pocketsphinx-testdata: LibriVox, cards)".into(),
            real.iter().map(|s| score(s)).collect::<Result<_, _>>()?,
        ));
    }
    let sentences: Vec<&str> = SENTENCES.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    for voice in VOICES {
        let mut samples = silence(0.5);
        for sentence in &sentences {
            samples.extend(synthesize(sentence, voice, 150)?.samples);
            samples.extend(silence(0.5));
        }
        sets.push((format!("espeak-ng {voice}: {} sentences", sentences.len()), vec![score(&samples)?]));
    }
    print!("| speech | minutes |");
    for t in THRESHOLDS {
        print!(" FP/min @{t} |");
    }
    println!();
    println!("|---|---|{}", "---|".repeat(THRESHOLDS.len()));
    let mut total_minutes = 0.0;
    let mut total: Vec<usize> = vec![0; THRESHOLDS.len()];
    let mut false_classes: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, scored) in &sets {
        let minutes: f64 = scored.iter().map(|s| s.seconds).sum::<f64>() / 60.0;
        audio_seconds += minutes * 60.0;
        total_minutes += minutes;
        print!("| {name} | {minutes:.2} |");
        for (i, t) in THRESHOLDS.iter().enumerate() {
            let n: usize = scored.iter().map(|s| s.bursts(*t).len()).sum();
            total[i] += n;
            print!(" {:.2} |", n as f64 / minutes);
        }
        println!();
        for s in scored {
            for b in s.bursts(THRESHOLD) {
                *false_classes.entry(b.top().0).or_default() += 1;
            }
        }
    }
    print!("| all | {total_minutes:.2} |");
    for n in &total {
        print!(" {:.2} |", *n as f64 / total_minutes);
    }
    println!();
    let list: Vec<String> = false_classes.iter().map(|(name, n)| format!("{name} {n}")).collect();
    println!(
        "\nTop classes of the false positives at {THRESHOLD}: {}",
        if list.is_empty() { "none".into() } else { list.join(", ") }
    );
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n{audio_seconds:.0} s of audio scored in {elapsed:.1} s (decoding and synthesis included): {:.2} s per minute of audio",
        elapsed / audio_seconds * 60.0
    );
    Ok(())
}

fn pct(n: usize, of: usize) -> String {
    format!("{:.0}% ({n})", 100.0 * n as f64 / of as f64)
}

/// The read speech of `pocketsphinx-testdata` (LibriVox, `cards`), one clip per file; empty when
/// the package is not installed.
fn real_speech() -> Result<Vec<Vec<i16>>, String> {
    let base = Path::new(PS_DATA);
    if !base.join("librivox").is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = ["0870", "0880", "0890", "0920", "0930"]
        .iter()
        .map(|n| base.join(format!("librivox/sense_and_sensibility_01_austen_64kb-{n}.wav")))
        .collect();
    files.extend(["001", "002", "003", "004", "005"].iter().map(|n| base.join(format!("cards/{n}.wav"))));
    files.iter().map(|f| decode(f)).collect()
}
