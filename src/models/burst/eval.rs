//! What the burst evaluation (`src/bin/evaluate-burst.rs`) and tests share: acted vocal bursts
//! from Debian's `hedgewars-data` (GFDL; hundreds of clips by 15 voice packs: Laugh, PoisonCough,
//! PoisonMoan, Ow1..4, Ooff1..3, ...), decoded by ffmpeg, and which AudioSet classes count as a
//! right answer for each kind of clip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `hedgewars-data` puts its voice packs.
pub const HEDGEWARS_VOICES: &str = "/usr/share/games/hedgewars/Data/Sounds/voices";

/// The laughter classes.
pub const LAUGHTER: [&str; 6] = ["Laughter", "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle"];

/// Each kind of hedgewars clip that is a vocal burst (its file name without digits), what it is,
/// and the burst classes whose top score counts as detecting it.
pub const CLIP_KINDS: [(&str, &str, &[&str]); 5] = [
    ("Laugh", "laughter", &LAUGHTER),
    ("PoisonCough", "cough", &["Cough", "Throat clearing", "Sneeze"]),
    ("PoisonMoan", "moan", &["Wail, moan", "Groan", "Whimper", "Sigh", "Crying, sobbing"]),
    ("Ow", "cry of pain", &["Shout", "Yell", "Bellow", "Screaming", "Groan", "Grunt", "Whimper", "Wail, moan", "Gasp"]),
    ("Ooff", "grunt of effort or impact", &["Grunt", "Groan", "Gasp", "Pant", "Shout", "Bellow"]),
];

/// `hedgewars-data`'s clip `name` (e.g. `Laugh`) of voice pack `voice` (e.g. `Default`).
pub fn hedgewars_clip(voice: &str, name: &str) -> PathBuf {
    Path::new(HEDGEWARS_VOICES).join(voice).join(format!("{name}.ogg"))
}

/// Every clip of `hedgewars-data` whose name without digits is `kind`, sorted.
pub fn hedgewars_clips(kind: &str) -> Vec<PathBuf> {
    let mut clips = Vec::new();
    for pack in std::fs::read_dir(HEDGEWARS_VOICES).into_iter().flatten().flatten() {
        for clip in std::fs::read_dir(pack.path()).into_iter().flatten().flatten() {
            let path = clip.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if stem.trim_end_matches(|c: char| c.is_ascii_digit()) == kind {
                clips.push(path);
            }
        }
    }
    clips.sort();
    clips
}

/// Any audio file as 16 kHz mono 16-bit samples (ffmpeg).
pub fn decode(path: &Path) -> Result<Vec<i16>, String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-ar", "16000", "-ac", "1", "-f", "s16le", "pipe:1"])
        .output()
        .map_err(|e| format!("ffmpeg: {e} (install it with scripts/install-system.sh)"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg could not decode {} ({}); hedgewars clips need apt-get install hedgewars-data",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
}
