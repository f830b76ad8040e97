//! Measures the embedded transcription: word error rate on sentences synthesised with
//! `espeak-ng` from `assets/speech/sentences.txt` (voice en-us at two speeds), speed as a multiple
//! of real time, memory, and word times: the onset error of words spoken one by one and joined
//! with known silences. Results and limits are recorded in `assets/speech/EVALUATION.md`.
//!
//! Usage: cargo run --release --bin evaluate-speech -- [--whisper base|tiny.en] [--models DIR]
//!        [--long-minutes N]   (N minutes of the sentences with pauses, looped; 0 skips it; default 5)
//!        [--skip-sentences]   (only the long recording)
//!        [--skip-onsets]      (no word-time evaluation)
//!        [--onsets-only]      (only the word-time evaluation)
//!        [--save-onset-clips DIR]  (also write each onset clip as WAV with its onsets as JSON)
//!        [--music DIR]        (only: the first minute of each .ogg/.mp3/.wav in DIR, music with no
//!                              words, transcribed as a user would, language detected: the words
//!                              Whisper invents per minute; e.g. /usr/share/games/hedgewars/Data/Music)

use std::path::PathBuf;
use std::time::Instant;

use hume_action::media::audio::Pcm;
use hume_action::models::speech::eval::{
    normalize, onset_errors, rss_bytes, silence, spaced_words, synthesize, word_errors,
};
use hume_action::models::speech::{SpeechModels, WhisperVariant};

const SENTENCES: &str = include_str!("../../assets/speech/sentences.txt");
/// espeak-ng speeds in words per minute: a calm pace and a brisk one.
const SPEEDS: [u32; 2] = [150, 210];
/// Word-time clips: (voice, words per minute, silences after successive words in seconds, peak
/// amplitude of white noise added over the whole clip, of 32767).
type OnsetClip = (&'static str, u32, &'static [f64], i16);
const ONSET_CLIPS: [OnsetClip; 4] = [
    ("en-us", 150, &[0.15, 0.4, 0.9, 0.25], 0),
    ("en-us", 210, &[0.05, 0.1, 0.2], 0),
    ("en-us+f3", 170, &[0.3, 0.6, 1.2, 0.5], 0),
    ("en-us", 170, &[0.1, 0.5, 0.3], 600),
];
/// How many of the longer sentences each onset clip setting speaks.
const ONSET_SENTENCES: usize = 4;

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
    let mut onsets = true;
    let mut save_clips: Option<PathBuf> = None;
    let mut music: Option<PathBuf> = None;
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
            "--skip-onsets" => onsets = false,
            "--onsets-only" => {
                skip_sentences = true;
                long_minutes = 0.0;
            }
            "--save-onset-clips" => save_clips = Some(PathBuf::from(value()?)),
            "--music" => music = Some(PathBuf::from(value()?)),
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

    if let Some(music) = music {
        return evaluate_music(&models, &music);
    }

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

    if onsets {
        evaluate_onsets(&models, &sentences, save_clips.as_deref())?;
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

/// Word times against known onsets: sentences spoken word by word with the silences of
/// [`ONSET_CLIPS`]; prints each clip's mean absolute onset error over the words transcribed right,
/// and the overall mean.
fn evaluate_onsets(models: &SpeechModels, sentences: &[&str], save: Option<&std::path::Path>) -> Result<(), String> {
    let long: Vec<&str> =
        sentences.iter().copied().filter(|s| s.split(' ').count() >= 8).take(ONSET_SENTENCES).collect();
    println!("\nword onsets (words spoken one by one, known silences between them)");
    println!(
        "{:>10} {:>4} {:>5} {:>6} {:>7} {:>8} {:>8}  sentence",
        "voice", "wpm", "noise", "words", "matched", "mean |e|", "max |e|"
    );
    let (mut all, mut words_total) = (Vec::new(), 0);
    for (c, &(voice, wpm, gaps, noise)) in ONSET_CLIPS.iter().enumerate() {
        for (k, sentence) in long.iter().enumerate() {
            let words: Vec<&str> = sentence.split(' ').collect();
            let (mut pcm, reference) = spaced_words(&words, gaps, 1.0, voice, wpm)?;
            // Deterministic white noise (a linear congruential generator), so runs compare.
            let mut state = 12_345u32;
            for s in &mut pcm.samples {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = (i32::from((state >> 16) as u16) - 32_768) * i32::from(noise) / 32_768;
                *s = (i32::from(*s) + n).clamp(-32_768, 32_767) as i16;
            }
            if let Some(dir) = save {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let name = dir.join(format!("onsets-{c}-{k}"));
                std::fs::write(name.with_extension("wav"), pcm.to_wav(0..pcm.samples.len()))
                    .map_err(|e| e.to_string())?;
                let json = serde_json::to_string(&reference).map_err(|e| e.to_string())?;
                std::fs::write(name.with_extension("json"), json).map_err(|e| e.to_string())?;
            }
            let transcript = models.transcribe(&pcm, Some("en")).map_err(|e| e.to_string())?;
            let hypothesis: Vec<(String, f64)> = transcript.words.iter().map(|w| (w.text.clone(), w.begin)).collect();
            if std::env::var_os("EVAL_DEBUG").is_some() {
                let r: Vec<String> = reference.iter().map(|(w, t)| format!("{w}@{t:.2}")).collect();
                let h: Vec<String> =
                    transcript.words.iter().map(|w| format!("{}@{:.2}-{:.2}", w.text, w.begin, w.end)).collect();
                println!("  ref {}\n  hyp {}", r.join(" "), h.join(" "));
            }
            let errors: Vec<f64> = onset_errors(&reference, &hypothesis).into_iter().map(f64::abs).collect();
            let max = errors.iter().copied().fold(0.0, f64::max);
            println!(
                "{voice:>10} {wpm:>4} {noise:>5} {:>6} {:>7} {:>8.3} {:>8.3}  {sentence}",
                words.len(),
                errors.len(),
                errors.iter().sum::<f64>() / errors.len().max(1) as f64,
                max
            );
            words_total += words.len();
            all.extend(errors);
        }
    }
    let within = |limit: f64| all.iter().filter(|&&e| e <= limit).count() as f64 / all.len().max(1) as f64;
    println!(
        "word onsets overall: mean absolute error {:.3} s over {} matched of {words_total} words; \
         {:.0}% within 0.1 s, {:.0}% within 0.2 s",
        all.iter().sum::<f64>() / all.len().max(1) as f64,
        all.len(),
        100.0 * within(0.1),
        100.0 * within(0.2)
    );
    Ok(())
}

/// The words Whisper writes on music without words: the first minute of each track in `dir`.
fn evaluate_music(models: &SpeechModels, dir: &std::path::Path) -> Result<(), String> {
    let mut tracks: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ogg" || e == "mp3" || e == "wav"))
        .collect();
    tracks.sort();
    let (mut words, mut minutes, mut with_words) = (0, 0.0, 0);
    for track in &tracks {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-t", "60", "-i"])
            .arg(track)
            .args(["-f", "s16le", "-ac", "1", "-ar", "16000", "-"])
            .output()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        let samples: Vec<i16> = out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let pcm = Pcm { samples };
        let transcript = models.transcribe(&pcm, None).map_err(|e| e.to_string())?;
        let text = transcript.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
        let name = track.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "{name}: {:.0} s, {} words [{}] {text}",
            pcm.duration_secs(),
            transcript.words.len(),
            transcript.language
        );
        words += transcript.words.len();
        minutes += pcm.duration_secs() / 60.0;
        with_words += usize::from(!transcript.words.is_empty());
    }
    println!(
        "\nmusic: {} tracks, {minutes:.1} min; {with_words} tracks with words; {words} words in all = {:.1} invented words per minute",
        tracks.len(),
        words as f64 / minutes.max(1e-9)
    );
    Ok(())
}
