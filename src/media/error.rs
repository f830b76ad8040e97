//! Why a media file could not be prepared or an archive could not be expanded.
//!
//! Every message is one sentence meant for the person who sent the file: it names the file, says
//! what is wrong and what to do about it, so callers can pass `to_string()` through unchanged.

use std::time::Duration;

/// Everything that can go wrong while probing, decoding or expanding a file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file has no bytes at all (a failed upload or an empty download).
    #[error("{file} is empty (0 bytes): send the file again.")]
    Empty {
        /// The file's name as the caller knows it.
        file: String,
    },
    /// ffprobe or ffmpeg could not read the container or a stream in it.
    #[error("{file} could not be decoded: the file is truncated or corrupt ({tool}: {detail}).")]
    Corrupt {
        /// The file's name as the caller knows it.
        file: String,
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// The last meaningful line ffmpeg wrote to stderr, at most 200 characters.
        detail: String,
    },
    /// Not an audio, video or image format that this server accepts.
    #[error("{file} is not a supported audio, video or image file ({detail}): convert it to MP3, WAV, MP4 or JPEG.")]
    Unsupported {
        /// The file's name as the caller knows it.
        file: String,
        /// What was found instead.
        detail: String,
    },
    /// The container is readable but holds nothing usable (no audio, video or image stream).
    #[error("{file} has no audio, video or image stream: send a file that contains audio, video or a picture.")]
    NoStream {
        /// The file's name as the caller knows it.
        file: String,
    },
    /// An audio file that decodes to zero samples.
    #[error("{file} contains no audio samples: send a recording that is at least a fraction of a second long.")]
    NoSamples {
        /// The file's name as the caller knows it.
        file: String,
    },
    /// ffmpeg or ffprobe ran past the time limit and was killed.
    #[error("{file} took longer than {} s to decode: send a shorter or smaller file.", .limit.as_secs())]
    Timeout {
        /// The file's name as the caller knows it.
        file: String,
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// Audio or video longer than the caller allowed (the job's duration budgets).
    #[error("{file} lasts {duration_secs:.1} s, longer than the {max_secs:.0} s allowed.")]
    TooLong {
        /// The file's name as the caller knows it.
        file: String,
        /// Its duration, as probed or decoded.
        duration_secs: f64,
        /// The longest allowed.
        max_secs: f64,
    },
    /// An image or frame could not be brought under the size limit for the API.
    #[error("{file} could not be made smaller than {max_bytes} bytes as a JPEG: send a smaller picture.")]
    TooLarge {
        /// The file's name as the caller knows it.
        file: String,
        /// The byte limit for one JPEG.
        max_bytes: usize,
    },
    /// ffmpeg or ffprobe is missing or does not run.
    #[error(
        "{tool} could not be run ({detail}): install Debian's ffmpeg package: apt-get install ffmpeg, \
         or set the path to the ffmpeg and ffprobe programs."
    )]
    Tool {
        /// The program path that was tried.
        tool: String,
        /// What happened when it was started.
        detail: String,
    },
    /// A local I/O failure (temporary directory, pipes); not the file's fault.
    #[error("{file} could not be processed because of a local I/O error ({source}): try again later.")]
    Io {
        /// The file's name as the caller knows it.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive holds more files than allowed.
    #[error("{file} holds more than {max} files: send at most {max} files per archive.")]
    ArchiveTooManyMembers {
        /// The archive's name.
        file: String,
        /// The member limit.
        max: usize,
    },
    /// The archive expands to more bytes than allowed (total or relative to its size): likely a zip bomb.
    #[error("{file} expands to more than {limit} bytes: send the files uncompressed or in smaller archives.")]
    ArchiveTooLarge {
        /// The archive's name.
        file: String,
        /// The byte limit that was hit.
        limit: u64,
    },
    /// A member path that would escape the extraction folder (absolute or with `..`).
    #[error("{file} contains the unsafe path {member:?}: rebuild the archive with relative paths only.")]
    ArchiveUnsafePath {
        /// The archive's name.
        file: String,
        /// The offending member path.
        member: String,
    },
    /// A symbolic or hard link member, which is never followed.
    #[error("{file} contains the link {member:?}: rebuild the archive without symbolic or hard links.")]
    ArchiveLink {
        /// The archive's name.
        file: String,
        /// The offending member path.
        member: String,
    },
    /// The archive structure or its compression stream is damaged.
    #[error("{file} could not be expanded: the archive is truncated or corrupt ({detail}).")]
    ArchiveCorrupt {
        /// The archive's name.
        file: String,
        /// What the archive reader reported.
        detail: String,
    },
    /// Not one of .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz.
    #[error("{file} is not a supported archive: send a .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz file.")]
    ArchiveUnsupported {
        /// The archive's name.
        file: String,
    },
}

/// Shortens `s` to at most `max` characters (on a character boundary), adding "…" when cut.
pub(super) fn trim_chars(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut = s.char_indices().nth(max.saturating_sub(1)).map_or(s.len(), |(i, _)| i);
    format!("{}…", &s[..cut])
}
