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

/// Amplitude under which a synthesised sample counts as silence when trimming a clip's edges.
const QUIET: i16 = 200;

/// `samples` without the near-silence espeak-ng leaves before and after the speech.
pub fn trim(samples: &[i16]) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > QUIET.unsigned_abs();
    let start = samples.iter().position(loud).unwrap_or(samples.len());
    let end = samples.iter().rposition(loud).map_or(start, |i| i + 1);
    &samples[start..end]
}

/// Words spoken one at a time (`voice`, `words_per_minute`) and joined with known silences: `lead`
/// seconds before the first, then `gaps[i % gaps.len()]` seconds after word `i`. Returns the audio
/// and each word with the second its sound starts (each word's clip trimmed of espeak-ng's own
/// leading and trailing silence, so the onset is where the sound really begins).
pub fn spaced_words(
    words: &[&str],
    gaps: &[f64],
    lead: f64,
    voice: &str,
    words_per_minute: u32,
) -> Result<(Pcm, Vec<(String, f64)>), String> {
    let mut samples = silence(lead);
    let mut onsets = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let spoken = synthesize(word, voice, words_per_minute)?;
        onsets.push(((*word).to_owned(), samples.len() as f64 / f64::from(Pcm::RATE)));
        samples.extend_from_slice(trim(&spoken.samples));
        samples.extend(silence(gaps[i % gaps.len()]));
    }
    Ok((Pcm { samples }, onsets))
}

/// Onset errors (hypothesis onset minus reference onset, seconds) of the words a transcript got
/// right: both sides are [`normalize`]d (a transcribed word that splits keeps its onset for each
/// part) and aligned by edit distance; only words matched exactly are compared, so a misheard word
/// counts in the WER, not here.
pub fn onset_errors(reference: &[(String, f64)], hypothesis: &[(String, f64)]) -> Vec<f64> {
    let split = |words: &[(String, f64)]| -> Vec<(String, f64)> {
        words.iter().flat_map(|(w, t)| normalize(w).into_iter().map(move |n| (n, *t))).collect()
    };
    let (r, h) = (split(reference), split(hypothesis));
    // cost[i][j]: edit distance between r[..i] and h[..j].
    let mut cost = vec![vec![0usize; h.len() + 1]; r.len() + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    cost[0] = (0..=h.len()).collect();
    for i in 1..=r.len() {
        for j in 1..=h.len() {
            let sub = cost[i - 1][j - 1] + usize::from(r[i - 1].0 != h[j - 1].0);
            cost[i][j] = sub.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let (mut i, mut j, mut errors) = (r.len(), h.len(), Vec::new());
    while i > 0 && j > 0 {
        let same = r[i - 1].0 == h[j - 1].0;
        if cost[i][j] == cost[i - 1][j - 1] + usize::from(!same) {
            if same {
                errors.push(h[j - 1].1 - r[i - 1].1);
            }
            i -= 1;
            j -= 1;
        } else if cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    errors.reverse();
    errors
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

    #[test]
    fn onset_errors_compare_only_matched_words() {
        let r = |w: &[(&str, f64)]| w.iter().map(|&(w, t)| (w.to_owned(), t)).collect::<Vec<_>>();
        let reference = r(&[("the", 1.0), ("cat", 2.0), ("sat", 3.0)]);
        // "cat" misheard as "hat", an extra word inserted: only "the" and "sat" are compared.
        let hypothesis = r(&[("The", 1.1), ("hat", 2.0), ("uh", 2.5), ("sat.", 2.8)]);
        let errors = onset_errors(&reference, &hypothesis);
        assert_eq!(errors.len(), 2);
        assert!((errors[0] - 0.1).abs() < 1e-9 && (errors[1] + 0.2).abs() < 1e-9, "{errors:?}");
        assert_eq!(trim(&[0, 5, 900, -700, 3, 0]), &[900, -700]);
    }
}
