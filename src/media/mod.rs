//! What a downloaded or uploaded file is, and turning media into what the analyzers take.
//!
//! [`sniff`] tells text, audio, video, image and archive apart: magic bytes win over the declared
//! `Content-Type`, which wins over the file extension (servers often send
//! `application/octet-stream`, and extensions lie more often than bytes). [`archive`] expands an
//! archive into its members; [`prepare`] probes a media file once with ffprobe and decodes what
//! the selected models need ([`audio`] PCM, JPEG frames) with ffmpeg ([`ffmpeg`]).

pub mod archive;
pub mod audio;
pub mod error;
pub mod ffmpeg;
pub mod prepare;

/// The kind of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Text,
    Audio,
    Video,
    Image,
    Archive,
    Unknown,
}

impl MediaKind {
    /// The v0 `file_type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Image => "image",
            Self::Archive => "archive",
            Self::Unknown => "unknown",
        }
    }
}

/// Decides a file's kind from its first bytes, its declared content type and its name.
pub fn sniff(bytes: &[u8], content_type: Option<&str>, filename: Option<&str>) -> MediaKind {
    if let Some(kind) = from_magic(bytes) {
        return kind;
    }
    let declared = content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    if let Some(kind) = declared.as_deref().and_then(from_content_type) {
        return kind;
    }
    if let Some(kind) = filename.and_then(from_extension) {
        return kind;
    }
    if looks_like_text(bytes) {
        MediaKind::Text
    } else {
        MediaKind::Unknown
    }
}

fn from_magic(b: &[u8]) -> Option<MediaKind> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    let mp3 = at(0, b"ID3") || (b.len() > 1 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0); // tagged, or an MPEG frame sync
    let kind = if mp3 || (at(0, b"RIFF") && at(8, b"WAVE")) || at(0, b"fLaC") || at(0, b"OggS") || at(0, b"#!AMR") {
        MediaKind::Audio
    } else if at(4, b"ftyp") {
        if at(8, b"M4A ") || at(8, b"M4B ") {
            MediaKind::Audio
        } else {
            MediaKind::Video
        }
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) || (at(0, b"RIFF") && at(8, b"AVI ")) {
        MediaKind::Video // Matroska/WebM, AVI
    } else if at(0, &[0xFF, 0xD8, 0xFF])
        || at(0, b"\x89PNG")
        || at(0, b"GIF8")
        || at(0, b"BM")
        || (at(0, b"RIFF") && at(8, b"WEBP"))
    {
        MediaKind::Image
    } else if at(0, b"PK\x03\x04") || at(0, &[0x1F, 0x8B]) || at(0, b"BZh") || at(0, &[0xFD, b'7', b'z', b'X', b'Z', 0])
    {
        MediaKind::Archive
    } else {
        return None;
    };
    Some(kind)
}

fn from_content_type(ct: &str) -> Option<MediaKind> {
    let (top, sub) = ct.split_once('/')?;
    Some(match (top, sub) {
        ("text", _) | ("application", "json" | "xml" | "x-ndjson") => MediaKind::Text,
        ("audio", _) => MediaKind::Audio,
        ("video", _) => MediaKind::Video,
        ("image", _) => MediaKind::Image,
        ("application", "zip" | "gzip" | "x-gzip" | "x-tar" | "x-bzip2" | "x-xz" | "x-zip-compressed") => {
            MediaKind::Archive
        }
        _ => return None,
    })
}

fn from_extension(name: &str) -> Option<MediaKind> {
    let name = name.to_ascii_lowercase();
    let name = name.split(['?', '#']).next().unwrap_or_default();
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "txt" | "text" | "md" | "csv" | "json" | "srt" | "vtt" => MediaKind::Text,
        "mp3" | "wav" | "flac" | "ogg" | "m4a" | "aac" | "opus" | "amr" => MediaKind::Audio,
        "mp4" | "mov" | "webm" | "mkv" | "avi" | "m4v" => MediaKind::Video,
        "jpg" | "jpeg" | "png" | "gif" | "bmp" | "webp" => MediaKind::Image,
        "zip" | "gz" | "tgz" | "bz2" | "xz" | "tar" => MediaKind::Archive,
        _ => return None,
    })
}

/// UTF-8 with no NUL bytes in the first 8 KiB (a cut multi-byte character at the end is fine).
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_beat_headers_and_names() {
        assert_eq!(sniff(b"ID3\x03rest", Some("text/plain"), Some("x.txt")), MediaKind::Audio);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt ", None, None), MediaKind::Audio);
        assert_eq!(sniff(b"\0\0\0\x20ftypisom", None, None), MediaKind::Video);
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A ", None, None), MediaKind::Audio);
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0], Some("application/octet-stream"), None), MediaKind::Image);
        assert_eq!(sniff(b"PK\x03\x04....", None, Some("a.bin")), MediaKind::Archive);
    }

    #[test]
    fn text_from_header_extension_or_content() {
        assert_eq!(sniff(b"hello", Some("text/plain; charset=utf-8"), None), MediaKind::Text);
        assert_eq!(sniff(b"\x01\x02", None, Some("/calls/notes.txt")), MediaKind::Text);
        assert_eq!(sniff("Grüße, I am upset".as_bytes(), Some("application/octet-stream"), None), MediaKind::Text);
        assert_eq!(sniff(b"\x00\x01\x02\x03", None, None), MediaKind::Unknown);
        assert_eq!(sniff(b"", None, None), MediaKind::Unknown);
    }
}
