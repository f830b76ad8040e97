//! What the transcription evaluation and tests share: speech synthesised from known text with
//! `espeak-ng` (so the reference transcript is exact and nothing has to be downloaded), and word
//! error rate. Synthetic speech is clean and regular, so these numbers are a floor on the error
//! real recordings will show, not an estimate of it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::media::audio::Pcm;

/// Speaks `text` with `espeak-ng` (`voice` such as `en-us`, `words_per_minute` 80..450) and
/// resamples it to 16 kHz mono with ffmpeg.
pub fn synthesize(text: &str, voice: &str, words_per_minute: u32) -> Result<Pcm, String> {
    let wav = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &words_per_minute.to_string(), "--stdout", text])
        .output()
        .map_err(|e| format!("espeak-ng: {e} (install it with apt-get install espeak-ng)"))?;
    if !wav.status.success() {
        return Err(format!("espeak-ng failed: {}", String::from_utf8_lossy(&wav.stderr)));
    }
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-i", "pipe:0", "-ar", "16000", "-ac", "1", "-f", "s16le", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let mut stdin = ffmpeg.stdin.take().ok_or("ffmpeg: no stdin")?;
    let feeder = std::thread::spawn(move || stdin.write_all(&wav.stdout));
    let out = ffmpeg.wait_with_output().map_err(|e| format!("ffmpeg: {e}"))?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let samples = out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    Ok(Pcm { samples })
}

/// `seconds` of silence at 16 kHz.
pub fn silence(seconds: f64) -> Vec<i16> {
    vec![0; (seconds * f64::from(Pcm::RATE)) as usize]
}

/// Lower-case words with punctuation removed (apostrophes kept, hyphens split), for scoring.
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word edit distance between `reference` and `hypothesis` (substitutions, insertions,
/// deletions), and the reference's length: WER is their ratio.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> (usize, usize) {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut row = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    (prev[hypothesis.len()], reference.len())
}

/// Word error rate of `hypothesis` against `reference` text, after [`normalize`].
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (errors, words) = word_errors(&normalize(reference), &normalize(hypothesis));
    errors as f64 / words.max(1) as f64
}

/// Resident set size of this process in bytes (Linux), for the memory benchmark.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_edits() {
        assert_eq!(wer("The cat sat.", "the cat sat"), 0.0);
        assert_eq!(wer("the cat sat on the mat", "the cat sat on mat"), 1.0 / 6.0);
        assert_eq!(wer("a b", "a x b y"), 1.0);
        assert_eq!(normalize("Don't stop-now!"), ["don't", "stop", "now"]);
    }
}
