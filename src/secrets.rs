//! The one scrubber of secrets: what reaches a caller, a log or a stored error passes through it
//! wherever it may carry a secret (an upstream's own message, a source's error).
//!
//! It knows the server's secrets (`HUME_API_KEY`, `HUME_ACTION_TOKEN`, the callback and sealing
//! secrets) and is given the caller's key per use. A secret is removed in any case, and as it
//! travels in URLs and headers: percent-encoded (reserved characters or every byte, either hex
//! case) and base64 (standard or URL-safe, with or without padding, also inside a longer encoded
//! value such as `user:key`, at any of the three byte alignments). Any run of 8 or more
//! characters that begins one of these forms is removed too, so a key cut to a prefix does not
//! leak either. Each match becomes `[redacted]`.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The shortest run of a secret's beginning that is removed on its own.
pub const MIN_PREFIX: usize = 8;

/// Removes known secrets from text.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Every form of every secret, ASCII-lowercased (matching ignores ASCII case).
    forms: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} forms)", self.forms.len())
    }
}

impl Scrubber {
    /// A scrubber of `secrets` (blank ones are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<Vec<u8>> = secrets.into_iter().flat_map(forms_of).collect();
        forms.sort();
        forms.dedup();
        Self { forms }
    }

    /// `text` without this scrubber's secrets.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_with(text, &[])
    }

    /// `text` without this scrubber's secrets nor `extra` ones (the caller's key).
    pub fn scrub_with(&self, text: &str, extra: &[&str]) -> String {
        let extra: Vec<Vec<u8>> = extra.iter().flat_map(|s| forms_of(s)).collect();
        let lower = text.to_ascii_lowercase().into_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for form in self.forms.iter().chain(&extra) {
            spans.extend(matches(&lower, form));
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (mut begin, mut end) in spans {
            while !text.is_char_boundary(begin) {
                begin -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if end <= at {
                continue;
            }
            if begin >= at {
                out.push_str(&text[at..begin]);
                out.push_str(REDACTED);
            }
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Where `form` stands in `text`, whole or by a beginning of at least [`MIN_PREFIX`] bytes.
fn matches<'a>(text: &'a [u8], form: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
    (0..text.len()).filter_map(move |i| {
        let common = text[i..].iter().zip(form).take_while(|(a, b)| a == b).count();
        (common == form.len() || common >= MIN_PREFIX).then_some((i, i + common))
    })
}

/// A secret as it may appear: itself, percent-encoded, and base64-encoded at each alignment.
/// Derived forms shorter than [`MIN_PREFIX`] are left out (they would match ordinary words).
fn forms_of(secret: &str) -> Vec<Vec<u8>> {
    let raw = secret.trim().as_bytes();
    if raw.is_empty() {
        return Vec::new();
    }
    let mut derived = vec![percent_encode(raw, false), percent_encode(raw, true)];
    for offset in 0..3 {
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            derived.push(base64_core(raw, offset, &engine));
        }
    }
    let mut forms = vec![raw.to_ascii_lowercase()];
    forms.extend(derived.into_iter().filter(|f| f.len() >= MIN_PREFIX).map(|f| f.to_ascii_lowercase()));
    forms
}

/// `raw` percent-encoded: the bytes outside RFC 3986's unreserved set, or every byte.
fn percent_encode(raw: &[u8], every_byte: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 3);
    for &b in raw {
        if !every_byte && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out
}

/// The base64 characters that encode only `raw`'s bits when it starts `offset` bytes into an
/// encoded value: the same whatever comes before or after it.
fn base64_core(raw: &[u8], offset: usize, engine: &impl base64::Engine) -> Vec<u8> {
    let mut input = vec![0u8; offset];
    input.extend_from_slice(raw);
    let encoded = engine.encode(&input).into_bytes();
    let skip = [0, 2, 3][offset];
    let whole = input.len() * 8 / 6;
    encoded.get(skip..whole).map(<[u8]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine as _;

    const KEY: &str = "hk_Sup3r/Secret+Key=2024?x";

    fn assert_scrubbed(text: &str) {
        let out = Scrubber::new([KEY]).scrub(text);
        assert!(out.contains(REDACTED), "{text} -> {out}");
        let lower = out.to_ascii_lowercase();
        assert!(!lower.contains("sup3r"), "{text} -> {out}");
        for engine_out in [STANDARD.encode(KEY), URL_SAFE.encode(KEY)] {
            assert!(!out.contains(&engine_out[4..16]), "{text} -> {out}");
        }
    }

    #[test]
    fn a_key_is_removed_in_every_form_it_travels_in() {
        assert_scrubbed(&format!("bad key {KEY} given"));
        assert_scrubbed(&format!("bad key {} given", KEY.to_uppercase()));
        assert_scrubbed(&format!("bad key {} given", KEY.to_lowercase()));
        let percent = String::from_utf8(percent_encode(KEY.as_bytes(), false)).unwrap();
        assert_scrubbed(&format!("GET /x?api_key={percent}&y=1"));
        assert_scrubbed(&format!("GET /x?api_key={}&y=1", percent.to_lowercase()));
        assert_scrubbed(&format!("raw {}", String::from_utf8(percent_encode(KEY.as_bytes(), true)).unwrap()));
        for encoded in
            [STANDARD.encode(KEY), STANDARD_NO_PAD.encode(KEY), URL_SAFE.encode(KEY), URL_SAFE_NO_PAD.encode(KEY)]
        {
            assert_scrubbed(&format!("token {encoded} refused"));
        }
        for prefix in ["user:", ":", "ab:"] {
            assert_scrubbed(&format!("Authorization: Basic {}", STANDARD.encode(format!("{prefix}{KEY}"))));
        }
        assert_scrubbed(&format!("key {}… is invalid", &KEY[..10]));
        assert_scrubbed(&format!("key {}… is invalid", &KEY[..8].to_uppercase()));
    }

    #[test]
    fn ordinary_text_and_short_prefixes_are_kept() {
        let s = Scrubber::new([KEY, "", "  "]);
        let text = "Job not found: hk_Sup3 is not a job id (request_id req_1).";
        assert_eq!(s.scrub(text), text, "7 characters of a key stay");
        assert_eq!(s.scrub("Invalid ApiKey"), "Invalid ApiKey");
        assert_eq!(s.scrub_with("key sk-caller-key-77 and é", &["sk-caller-key-77"]), "key [redacted] and é");
        assert_eq!(s.scrub(&format!("{KEY}{KEY}")), format!("{REDACTED}{REDACTED}"));
    }
}
