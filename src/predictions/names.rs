//! v0's score names for face, prosody and burst, spelled and ordered as v0 returned them.
//!
//! v0 returned a score for every name, always in this order; v0 clients index into these lists
//! or look names up, so v1's answers are laid out onto them (`crate::analyzers::hume::mapping`).
//! The language model's 53 names are here too; the embedded language model scores them in this order.

/// The 53 expressions of v0's language model, in v0's (alphabetical) order: the 48 [`EMOTIONS`]
/// and the five names only the language model has ([`LANGUAGE_ONLY`]).
pub const LANGUAGE_EXPRESSIONS: [&str; 53] = [
    "Admiration",
    "Adoration",
    "Aesthetic Appreciation",
    "Amusement",
    "Anger",
    "Annoyance",
    "Anxiety",
    "Awe",
    "Awkwardness",
    "Boredom",
    "Calmness",
    "Concentration",
    "Confusion",
    "Contemplation",
    "Contempt",
    "Contentment",
    "Craving",
    "Desire",
    "Determination",
    "Disappointment",
    "Disapproval",
    "Disgust",
    "Distress",
    "Doubt",
    "Ecstasy",
    "Embarrassment",
    "Empathic Pain",
    "Enthusiasm",
    "Entrancement",
    "Envy",
    "Excitement",
    "Fear",
    "Gratitude",
    "Guilt",
    "Horror",
    "Interest",
    "Joy",
    "Love",
    "Nostalgia",
    "Pain",
    "Pride",
    "Realization",
    "Relief",
    "Romance",
    "Sadness",
    "Sarcasm",
    "Satisfaction",
    "Shame",
    "Surprise (negative)",
    "Surprise (positive)",
    "Sympathy",
    "Tiredness",
    "Triumph",
];

/// The names only the language model has.
pub const LANGUAGE_ONLY: [&str; 5] = ["Annoyance", "Disapproval", "Enthusiasm", "Gratitude", "Sarcasm"];

/// The 48 expressions shared by v0's face, prosody and burst models, in v0's (alphabetical)
/// order: the language model's names less [`LANGUAGE_ONLY`].
pub const EMOTIONS: [&str; 48] = shared_emotions();

const fn shared_emotions() -> [&'static str; 48] {
    let mut out = [""; 48];
    let (mut i, mut n) = (0, 0);
    while i < LANGUAGE_EXPRESSIONS.len() {
        if !is_language_only(LANGUAGE_EXPRESSIONS[i]) {
            out[n] = LANGUAGE_EXPRESSIONS[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == 48, "53 language names less 5 language-only ones");
    out
}

const fn is_language_only(name: &str) -> bool {
    let mut i = 0;
    while i < LANGUAGE_ONLY.len() {
        if const_str_eq(LANGUAGE_ONLY[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The 67 vocal burst types of v0's burst `descriptions`, in the order of Hume's documentation
/// table. "Ooph" and "Wheep" are spelled as that table rendered them; their exact strings in v0's
/// output are unconfirmed (and "Wheep" before "Whee" is the table's order, not strictly sorted).
pub const BURST_DESCRIPTIONS: [&str; 67] = [
    "Ah", "Aha", "Ahh", "Argh", "Aww", "Cackle", "Cheer", "Chuckle", "Cry", "Eek", "Eww", "Gasp", "Giggle", "Groan",
    "Growl", "Grr", "Grunt", "Ha", "Hah", "Haha", "Hehe", "Hiss", "Hmm", "Hoot", "Howl", "Huh", "Hurray", "Laugh",
    "Mhm", "Mmm", "Moan", "Oh", "Ohh", "Ooh", "Ooph", "Ouch", "Oww", "Pant", "Pff", "Phew", "Roar", "Scream",
    "Screech", "Shout", "Shriek", "Sigh", "Snicker", "Snort", "Sob", "Squeal", "Tsk", "Ugh", "Uh", "Uh-huh", "Umm",
    "Wail", "Wheep", "Whee", "Whew", "Whimper", "Woah", "Wow", "Yawn", "Yay", "Yelp", "Yippee", "Yuck",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn emotions_are_the_language_names_less_its_five_extras_in_the_same_order() {
        let expected: Vec<&str> = LANGUAGE_EXPRESSIONS.into_iter().filter(|n| !LANGUAGE_ONLY.contains(n)).collect();
        assert_eq!(EMOTIONS.to_vec(), expected);
        assert!(EMOTIONS.iter().all(|e| LANGUAGE_EXPRESSIONS.contains(e)));
    }

    #[test]
    fn emotions_are_sorted_and_unique_even_ignoring_case() {
        assert!(EMOTIONS.windows(2).all(|w| w[0] < w[1]));
        let lower: HashSet<String> = EMOTIONS.iter().map(|e| e.to_lowercase()).collect();
        assert_eq!(lower.len(), 48);
    }

    #[test]
    fn there_are_67_distinct_burst_descriptions() {
        let lower: HashSet<String> = BURST_DESCRIPTIONS.iter().map(|e| e.to_lowercase()).collect();
        assert_eq!(lower.len(), 67);
        assert_eq!((BURST_DESCRIPTIONS[0], BURST_DESCRIPTIONS[66]), ("Ah", "Yuck"));
    }
}
