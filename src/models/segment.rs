//! Cutting text into the segments v0 scores at a `granularity`, with character offsets.
//!
//! Positions count Unicode scalar values (not bytes), begin inclusive and end exclusive, as v0
//! clients index strings. For text input, `utterance` behaves like `sentence` and
//! `conversational_turn` covers the whole passage, as Hume documented.

/// One piece of text and where it stands in the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub begin: usize,
    pub end: usize,
}

/// The granularities v0 knows.
pub const GRANULARITIES: [&str; 4] = ["word", "sentence", "utterance", "conversational_turn"];

/// Cuts `text` at `granularity` (one of [`GRANULARITIES`]; anything else is treated as `word`).
pub fn segment(text: &str, granularity: &str) -> Vec<Segment> {
    let chars: Vec<char> = text.chars().collect();
    spans(&chars, granularity)
        .into_iter()
        .map(|(begin, end)| Segment { text: chars[begin..end].iter().collect(), begin, end })
        .collect()
}

/// How many segments [`segment`] cuts `text` into, without copying them out (budgets count
/// them before any scoring).
pub fn segment_count(text: &str, granularity: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    spans(&chars, granularity).len()
}

/// The trimmed, non-empty spans of `chars` at `granularity`.
fn spans(chars: &[char], granularity: &str) -> Vec<(usize, usize)> {
    let spans = match granularity {
        "sentence" | "utterance" => sentence_spans(chars),
        "conversational_turn" => vec![(0, chars.len())],
        _ => word_spans(chars),
    };
    spans.into_iter().filter_map(|(b, e)| trim(chars, b, e)).collect()
}

fn word_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in chars.iter().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push(strip_punctuation(chars, s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(strip_punctuation(chars, s, chars.len()));
    }
    spans.into_iter().filter(|(b, e)| chars[*b..*e].iter().any(|c| c.is_alphanumeric())).collect()
}

/// A word without the punctuation around it ("(great!)" -> "great").
fn strip_punctuation(chars: &[char], mut begin: usize, mut end: usize) -> (usize, usize) {
    while begin < end && !chars[begin].is_alphanumeric() {
        begin += 1;
    }
    while end > begin && !chars[end - 1].is_alphanumeric() {
        end -= 1;
    }
    (begin, end)
}

fn sentence_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            spans.push((start, i));
            start = i + 1;
        } else if matches!(c, '.' | '!' | '?' | '…') {
            let mut end = i + 1;
            while end < chars.len() && matches!(chars[end], '.' | '!' | '?' | '…' | '"' | '\'' | ')' | '”' | '’')
            {
                end += 1;
            }
            if end == chars.len() || chars[end].is_whitespace() {
                spans.push((start, end));
                start = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    spans.push((start, chars.len()));
    spans
}

fn trim(chars: &[char], mut begin: usize, mut end: usize) -> Option<(usize, usize)> {
    while begin < end && chars[begin].is_whitespace() {
        begin += 1;
    }
    while end > begin && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    (begin < end).then_some((begin, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, granularity: &str) -> Vec<String> {
        segment(text, granularity).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn positions_are_character_offsets_into_the_original() {
        let text = "Grüße! Ich bin sehr froh. Danke…\nNext line";
        for g in GRANULARITIES {
            for s in segment(text, g) {
                let slice: String = text.chars().skip(s.begin).take(s.end - s.begin).collect();
                assert_eq!(slice, s.text, "{g}");
            }
        }
    }

    #[test]
    fn granularities() {
        let text = "I waited 3 hours. Nobody called back!  Is this a joke?\nThanks (I guess).";
        assert_eq!(
            texts(text, "sentence"),
            ["I waited 3 hours.", "Nobody called back!", "Is this a joke?", "Thanks (I guess)."]
        );
        assert_eq!(texts(text, "utterance"), texts(text, "sentence"));
        assert_eq!(texts(text, "conversational_turn"), [text]);
        assert_eq!(texts("Hello, (world)! e.g. 3.5 -- ok", "word"), ["Hello", "world", "e.g", "3.5", "ok"]);
        assert!(segment("   \n ", "sentence").is_empty());
        assert_eq!(texts("no final stop", "sentence"), ["no final stop"]);
        for g in GRANULARITIES {
            assert_eq!(segment_count(text, g), segment(text, g).len(), "{g}");
        }
    }
}
