//! Word times measured from Whisper's cross-attention, as OpenAI's `word_timestamps=True` does
//! (`whisper/timing.py`: `find_alignment`, `merge_punctuations`, `add_word_timestamps`).
//!
//! The decoder is run once more over the tokens it chose (teacher forcing); a few of its
//! cross-attention heads (the model's *alignment heads*, found by OpenAI to follow the audio)
//! say, for each token, which 20 ms encoder frames it attends to. Their scores are turned into
//! attention weights over the window's real frames (softmax), normalised per head and frame across
//! tokens (z-score), smoothed along time (median filter of width 7) and averaged over heads; a
//! monotonic path through that token × frame matrix (dynamic time warping on its negative) gives
//! the frame where each token starts. A word starts where its first token does and ends where the
//! next word starts. Punctuation is merged into its word as OpenAI does, and OpenAI's guards
//! against overlong words at sentence ends and after pauses are applied.
//!
//! That alignment has no silence: the path covers every frame, so a pause is given to the word
//! after it, and the first word of a window starts at the window's first frame. Measured on words
//! with known onsets, OpenAI's method (ours and faster-whisper's alike) starts words 0.4 s early on
//! average, about the length of the pause before them. So [`snap_to_sound`] then trims each word's
//! span to where the audio inside it is actually loud (10 ms frames against levels set by the
//! window's own quiet and loud frames, as stable-ts's `suppress_silence` does with loudness): a word starts at
//! the first loud frame of its aligned span and ends after the last. This measures the signal; it
//! never moves a word outside the span the attention gave it.
//!
//! This module holds the arithmetic; [`super::whisper`] runs the model and splits tokens into
//! words. Measured onset error: `assets/speech/EVALUATION.md`.

use std::ops::Range;

/// Seconds per encoder frame (OpenAI's `TOKENS_PER_SECOND` is 50).
pub const FRAME_SECS: f64 = 0.02;
/// Width of the median filter along time (OpenAI's `medfilt_width`).
const MEDIAN_WIDTH: usize = 7;
/// Punctuation joined to the word after it (OpenAI's `prepend_punctuations`).
const PREPENDED: &str = "\"'“¿([{-";
/// Punctuation joined to the word before it (OpenAI's `append_punctuations`).
const APPENDED: &str = "\"'.。,，!！?？:：”)]}、";
/// Marks that end a sentence (OpenAI's `sentence_end_marks`).
const SENTENCE_END: &str = ".。!！?？";

/// A word with its time in seconds from the window start, and the range of its tokens (indices
/// into the text tokens given to [`token_starts`]'s caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// The word as decoded, with its leading space (OpenAI's convention; trim for display).
    pub text: String,
    pub tokens: Range<usize>,
    pub start: f64,
    pub end: f64,
    /// Mean probability of the word's tokens (filled in by the caller; 0 here).
    pub confidence: f64,
}

/// The token × frame matrix of `find_alignment`: `scores` holds one alignment head's
/// pre-softmax cross-attention scores each, `tokens × stored` row-major (`stored` = the encoder's
/// 1500 frames); only the first `frames` (the window's real audio) are used. Returns rows of
/// `frames` values, one per token.
pub fn alignment_matrix(scores: &[Vec<f32>], tokens: usize, stored: usize, frames: usize) -> Vec<Vec<f32>> {
    let frames = frames.min(stored);
    let mut mean = vec![vec![0f32; frames]; tokens];
    if frames == 0 || tokens == 0 {
        return mean;
    }
    for head in scores {
        // Softmax over the real frames of each token's row.
        let mut w: Vec<Vec<f32>> = (0..tokens)
            .map(|t| {
                let row = &head[t * stored..t * stored + frames];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
                let sum: f32 = exp.iter().sum();
                exp.into_iter().map(|e| e / sum).collect()
            })
            .collect();
        // z-score of each frame over the tokens (torch.std_mean(dim=-2, unbiased=False)).
        for f in 0..frames {
            let m = w.iter().map(|r| r[f]).sum::<f32>() / tokens as f32;
            let var = w.iter().map(|r| (r[f] - m).powi(2)).sum::<f32>() / tokens as f32;
            let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
            for r in &mut w {
                r[f] = (r[f] - m) / sd;
            }
        }
        for (acc, row) in mean.iter_mut().zip(&w) {
            for (a, v) in acc.iter_mut().zip(median_filter(row, MEDIAN_WIDTH)) {
                *a += v / scores.len() as f32;
            }
        }
    }
    mean
}

/// Median of each `width`-wide window along `x`, reflect-padded at the ends (torch's
/// `F.pad(mode="reflect")` then `unfold`), so the output is as long as `x`. Rows too short to
/// reflect are returned as they are, as OpenAI does.
pub fn median_filter(x: &[f32], width: usize) -> Vec<f32> {
    let pad = width / 2;
    if x.len() <= pad {
        return x.to_vec();
    }
    let at = |i: isize| -> f32 {
        let n = x.len() as isize;
        let j = if i < 0 {
            -i
        } else if i >= n {
            2 * (n - 1) - i
        } else {
            i
        };
        x[j as usize]
    };
    let mut window = vec![0f32; width];
    (0..x.len() as isize)
        .map(|c| {
            for (k, w) in window.iter_mut().enumerate() {
                *w = at(c - pad as isize + k as isize);
            }
            window.sort_by(f32::total_cmp);
            window[pad]
        })
        .collect()
}

/// Dynamic time warping over `cost` (rows × columns): the cheapest monotonic path from the first
/// cell to the last, as `(row, column)` pairs in order (OpenAI's `dtw_cpu` and `backtrace`,
/// ties broken the same way).
pub fn dtw(cost: &[Vec<f32>]) -> Vec<(usize, usize)> {
    let n = cost.len();
    let m = cost.first().map_or(0, Vec::len);
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let mut acc = vec![vec![f64::INFINITY; m + 1]; n + 1];
    let mut trace = vec![vec![0u8; m + 1]; n + 1];
    acc[0][0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let (c0, c1, c2) = (acc[i - 1][j - 1], acc[i - 1][j], acc[i][j - 1]);
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i][j] = f64::from(cost[i - 1][j - 1]) + c;
            trace[i][j] = t;
        }
    }
    for t in &mut trace[0] {
        *t = 2;
    }
    for row in &mut trace {
        row[0] = 1;
    }
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        path.push((i.saturating_sub(1), j.saturating_sub(1)));
        match trace[i][j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

/// The second (from the window start) where each row of `matrix` starts on the DTW path through
/// its negative: one time per row (OpenAI's `jump_times`).
pub fn token_starts(matrix: &[Vec<f32>]) -> Vec<f64> {
    let negative: Vec<Vec<f32>> = matrix.iter().map(|r| r.iter().map(|v| -v).collect()).collect();
    let mut starts = Vec::with_capacity(matrix.len());
    let mut last_row = None;
    for (row, column) in dtw(&negative) {
        if last_row != Some(row) {
            starts.push(column as f64 * FRAME_SECS);
            last_row = Some(row);
        }
    }
    starts
}

/// Times the `words` (text and token ranges covering `0..n` text tokens in order) from the token
/// starts of [`token_starts`] (`n + 1` values: the last is where the end of text starts), then
/// applies OpenAI's sentence-end guard and merges punctuation into its words. Returns the words
/// (merged punctuation removed) and the median word duration capped at 0.7 s, which
/// [`fit_segment`] needs.
pub fn time_words(words: Vec<(String, Range<usize>)>, starts: &[f64]) -> (Vec<Timed>, f64) {
    let at = |i: usize| starts.get(i).or(starts.last()).copied().unwrap_or(0.0);
    let mut timed: Vec<Timed> = words
        .into_iter()
        .map(|(text, tokens)| Timed { start: at(tokens.start), end: at(tokens.end), text, tokens, confidence: 0.0 })
        .collect();
    let mut durations: Vec<f64> = timed.iter().map(|w| w.end - w.start).filter(|&d| d != 0.0).collect();
    durations.sort_by(f64::total_cmp);
    let median = match durations.len() {
        0 => 0.0,
        n if n % 2 == 1 => durations[n / 2],
        n => (durations[n / 2 - 1] + durations[n / 2]) / 2.0,
    }
    .min(0.7);
    let max = median * 2.0;
    if !durations.is_empty() {
        // Words at sentence boundaries are not longer than twice the median word duration.
        let ends_sentence = |w: &str| !w.is_empty() && SENTENCE_END.contains(w);
        for i in 1..timed.len() {
            if timed[i].end - timed[i].start > max {
                if ends_sentence(&timed[i].text) {
                    timed[i].end = timed[i].start + max;
                } else if ends_sentence(&timed[i - 1].text) {
                    timed[i].start = timed[i].end - max;
                }
            }
        }
    }
    merge_punctuation(&mut timed);
    timed.retain(|w| !w.text.is_empty());
    (timed, median)
}

/// OpenAI's `merge_punctuations`: opening marks (with a leading space) join the word after them,
/// closing marks the word before them (which keeps its own times). Merged entries are left with
/// empty text and tokens.
fn merge_punctuation(words: &mut [Timed]) {
    let n = words.len();
    if n < 2 {
        return;
    }
    let (mut i, mut j) = (n as isize - 2, n - 1);
    while i >= 0 {
        let p = i as usize;
        let word = &words[p].text;
        if word.starts_with(' ') && PREPENDED.contains(word.trim()) {
            let text = std::mem::take(&mut words[p].text);
            words[j].text = text + &words[j].text;
            words[j].tokens = words[p].tokens.start..words[j].tokens.end;
            words[p].tokens = words[p].tokens.start..words[p].tokens.start;
        } else {
            j = p;
        }
        i -= 1;
    }
    let (mut i, mut j) = (0, 1);
    while j < n {
        if !words[i].text.ends_with(' ') && APPENDED.contains(words[j].text.as_str()) {
            let text = std::mem::take(&mut words[j].text);
            words[i].text.push_str(&text);
            words[i].tokens = words[i].tokens.start..words[j].tokens.end;
            words[j].tokens = words[j].tokens.end..words[j].tokens.end;
        } else {
            i = j;
        }
        j += 1;
    }
}

/// Samples per loudness frame (10 ms at 16 kHz).
const HOP: usize = 160;
/// A frame is loud when its RMS is above the window's quiet level by this fraction of the
/// distance from its quiet level to its loud level.
const LOUD_FRACTION: f32 = 0.1;
/// Quantiles of frame RMS taken as the window's quiet (background) and loud levels.
const QUIET_QUANTILE: f64 = 0.1;
const LOUD_QUANTILE: f64 = 0.9;

/// Quiet stretches shorter than this many frames do not split a stretch of sound (stops and
/// short pauses inside a word).
const MIN_GAP: usize = 4;

/// Fits each word to the sound it covers (`window`: the window's samples in -1..1, word times in
/// seconds from its start, in order): stretches are runs of loud 10 ms frames, split by quiet of
/// at least 40 ms. A word starts where the stretch it overlaps most does, if that is inside its
/// aligned span (never earlier), and ends with the last stretch that starts after that one and
/// inside its aligned span (a word's sound can dip inside it), but not after the next word's
/// start. A span with no loud frame keeps its times.
pub fn snap_to_sound(words: &mut [Timed], window: &[f32]) {
    let rms: Vec<f32> =
        window.chunks(HOP).map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt()).collect();
    if rms.is_empty() {
        return;
    }
    let mut sorted = rms.clone();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    let (quiet, loud) = (at(QUIET_QUANTILE), at(LOUD_QUANTILE));
    if loud <= quiet {
        return;
    }
    let threshold = quiet + (loud - quiet) * LOUD_FRACTION;
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, _) in rms.iter().enumerate().filter(|&(_, &r)| r >= threshold) {
        match runs.last_mut() {
            Some(run) if i - run.end < MIN_GAP => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    let hop_secs = HOP as f64 / 16_000.0;
    for w in words.iter_mut() {
        let from = ((w.start / hop_secs).floor().max(0.0) as usize).min(rms.len());
        let to = ((w.end / hop_secs).ceil().max(0.0) as usize).clamp(from, rms.len());
        let overlap = |r: &std::ops::Range<usize>| r.end.min(to).saturating_sub(r.start.max(from));
        if let Some(best) = runs.iter().filter(|r| overlap(r) > 0).max_by_key(|r| overlap(r)) {
            // A word's sound can dip inside it (a stop, a nasal): it ends with the last stretch
            // that starts after the one it covers most and inside its aligned span.
            let later = runs.iter().filter(|r| (best.start..to).contains(&r.start));
            let last = later.map(|r| r.end).max().unwrap_or(best.end);
            w.start = w.start.max(best.start as f64 * hop_secs);
            w.end = (last as f64 * hop_secs).max(w.start);
        }
    }
    for i in 1..words.len() {
        let next = words[i].start;
        let w = &mut words[i - 1];
        w.end = w.end.min(next).max(w.start);
    }
}

/// OpenAI's per-segment guards for the `words` of one segment (`start..end`, seconds from the
/// window start, from its timestamp tokens): the first word after a pause longer than four median
/// words is at most twice the median long, and a first or last word that overruns the segment's
/// own timestamps by more than 0.5 s is cut back to them. Returns the segment's end, the new
/// `last_speech`.
pub fn fit_segment(words: &mut [Timed], start: f64, end: f64, last_speech: f64, median: f64) -> f64 {
    let max = median * 2.0;
    let Some(first) = words.first() else { return last_speech };
    let long_second = words.len() > 1 && words[1].end - first.start > max * 2.0;
    if first.end - last_speech > median * 4.0 && (first.end - first.start > max || long_second) {
        if words.len() > 1 && words[1].end - words[1].start > max {
            let boundary = (words[1].end / 2.0).max(words[1].end - max);
            words[0].end = boundary;
            words[1].start = boundary;
        }
        words[0].start = (words[0].end - max).max(0.0);
    }
    let mut seg_end = end;
    if start < words[0].end && start - 0.5 > words[0].start {
        words[0].start = (words[0].end - median).min(start).max(0.0);
    }
    let last = words.len() - 1;
    if end > words[last].start && end + 0.5 < words[last].end {
        words[last].end = (words[last].start + median).max(end);
    } else {
        seg_end = words[last].end;
    }
    seg_end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_snap_to_the_sound_inside_their_span() {
        // 1 s of audio: silence, then a tone from 0.3 s to 0.6 s, then silence.
        let window: Vec<f32> = (0..16_000).map(|i| if (4_800..9_600).contains(&i) { 0.5 } else { 0.0 }).collect();
        let mut words = vec![
            Timed { text: " hi".into(), tokens: 0..1, start: 0.0, end: 0.8, confidence: 1.0 },
            Timed { text: " quiet".into(), tokens: 1..2, start: 0.8, end: 1.0, confidence: 1.0 },
        ];
        snap_to_sound(&mut words, &window);
        assert!((words[0].start - 0.3).abs() < 1e-9 && (words[0].end - 0.6).abs() < 1e-9, "{words:?}");
        assert_eq!((words[1].start, words[1].end), (0.8, 1.0));
        // A span that starts in the tail of the word before and ends inside its own sound.
        let window: Vec<f32> = (0..16_000)
            .map(|i| if (1_600..4_800).contains(&i) || (8_000..12_800).contains(&i) { 0.5 } else { 0.0 })
            .collect();
        let mut words = vec![
            Timed { text: " one".into(), tokens: 0..1, start: 0.05, end: 0.25, confidence: 1.0 },
            Timed { text: " two".into(), tokens: 1..2, start: 0.25, end: 0.7, confidence: 1.0 },
        ];
        snap_to_sound(&mut words, &window);
        assert!((words[0].start - 0.1).abs() < 1e-9 && (words[0].end - 0.3).abs() < 1e-9, "{words:?}");
        assert!((words[1].start - 0.5).abs() < 1e-9 && (words[1].end - 0.8).abs() < 1e-9, "{words:?}");
    }

    #[test]
    fn median_filter_reflects_at_the_edges() {
        // torch: F.pad([1,9,2,8,3], (1,1), reflect) = [9,1,9,2,8,3,8] -> medians of 3.
        assert_eq!(median_filter(&[1.0, 9.0, 2.0, 8.0, 3.0], 3), [9.0, 2.0, 8.0, 3.0, 8.0]);
        assert_eq!(median_filter(&[1.0], 3), [1.0]);
    }

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // Row 0 is cheap in columns 0..2, row 1 in columns 2..4.
        let cost = vec![vec![0.0, 0.0, 5.0, 5.0], vec![5.0, 5.0, 0.0, 0.0]];
        assert_eq!(dtw(&cost), vec![(0, 0), (0, 1), (1, 2), (1, 3)]);
        let matrix: Vec<Vec<f32>> = cost.iter().map(|r| r.iter().map(|v| -v).collect()).collect();
        assert_eq!(token_starts(&matrix), vec![0.0, 2.0 * FRAME_SECS]);
    }

    #[test]
    fn the_matrix_peaks_where_each_token_attends() {
        // Two heads, three tokens over ten frames, each token attending to its own frames.
        let stored = 12;
        let head: Vec<f32> =
            (0..3).flat_map(|t| (0..stored).map(move |f| if f / 3 == t { 8.0 } else { 0.0 })).collect();
        let m = alignment_matrix(&[head.clone(), head], 3, stored, 10);
        assert_eq!((m.len(), m[0].len()), (3, 10));
        let starts = token_starts(&m);
        // Token 1 starts at frame 3 and token 2 at frame 6 (the median filter may shift it a frame).
        assert_eq!(starts[..2], [0.0, 3.0 * FRAME_SECS]);
        assert!((starts[2] - 6.0 * FRAME_SECS).abs() <= FRAME_SECS + 1e-9, "{starts:?}");
    }

    fn word(text: &str, tokens: Range<usize>) -> (String, Range<usize>) {
        (text.to_owned(), tokens)
    }

    #[test]
    fn punctuation_joins_its_word_and_keeps_the_words_times() {
        let words =
            vec![word(" \"", 0..1), word(" Hello", 1..2), word(",", 2..3), word(" world", 3..5), word(".", 5..6)];
        let starts = [0.0, 0.1, 0.5, 0.6, 1.0, 1.2, 1.3];
        let (timed, _) = time_words(words, &starts);
        let texts: Vec<&str> = timed.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, [" \" Hello,", " world."]);
        assert_eq!((timed[0].start, timed[0].end, timed[0].tokens.clone()), (0.1, 0.5, 0..3));
        assert_eq!((timed[1].start, timed[1].end, timed[1].tokens.clone()), (0.6, 1.2, 3..6));
    }

    #[test]
    fn a_first_word_stretched_into_a_pause_is_cut_to_twice_the_median() {
        let mut words = vec![
            Timed { text: " So".into(), tokens: 0..1, start: 0.0, end: 2.2, confidence: 1.0 },
            Timed { text: " what".into(), tokens: 1..2, start: 2.2, end: 2.5, confidence: 1.0 },
        ];
        fit_segment(&mut words, 1.9, 2.5, 0.0, 0.3);
        assert!((words[0].start - 1.6).abs() < 1e-9, "{words:?}");
    }
}
