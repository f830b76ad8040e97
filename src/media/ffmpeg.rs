//! Running `ffmpeg` and `ffprobe` as locked-down child processes, and reading what `ffprobe` reports.
//!
//! Media decoding is delegated to Debian's ffmpeg because it handles every container and codec that
//! users send; the price is a child process, so every run here is bounded: input only from local files
//! or pipes (never the network), only the demuxers a user upload can legitimately need (no playlists
//! or concat lists that could open other local files), no stdin, a time limit after which the process
//! is killed, and `kill_on_drop` so a cancelled request never leaves a process behind.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::error::{trim_chars, MediaError};

/// Where to find the two programs; `Default` looks both up on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The `ffmpeg` program (decoding and encoding).
    pub ffmpeg: PathBuf,
    /// The `ffprobe` program (reading container and stream facts).
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Self { ffmpeg: PathBuf::from("ffmpeg"), ffprobe: PathBuf::from("ffprobe") }
    }
}

/// Checks at start-up that `ffmpeg` and `ffprobe` run, so a missing install fails fast instead of on
/// the first upload; returns ffmpeg's version line (for the start-up log).
pub async fn check_tools(tools: &Tools) -> Result<String, MediaError> {
    let mut version = String::new();
    for program in [&tools.ffmpeg, &tools.ffprobe] {
        let args = [OsString::from("-hide_banner"), OsString::from("-version")];
        let tool_error = |detail: String| MediaError::Tool { tool: program.display().to_string(), detail };
        let out = match run(program, &args, Duration::from_secs(20)).await {
            Ok(out) => out,
            Err(RunError::Timeout) => return Err(tool_error("it did not answer -version within 20 s".into())),
            Err(RunError::Spawn(e) | RunError::Io(e)) => return Err(tool_error(e.to_string())),
        };
        if !out.status.success() {
            return Err(tool_error(format!("-version exited with {}", out.status)));
        }
        if version.is_empty() {
            version = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string();
        }
    }
    Ok(version)
}

/// Demuxers that an uploaded audio, video or image file can need. Anything else (playlists such as
/// HLS or concat, `tty` for text, raw PCM guesses) is refused by ffmpeg before it reads a byte more.
const FORMAT_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,asf,flv,mpeg,mpegts,m4v,h264,hevc,ivf,\
mp3,ogg,wav,w64,flac,aac,ac3,eac3,amr,amrnb,amrwb,aiff,caf,au,wv,ape,mpc,mpc8,tta,loas,dts,\
image2,png_pipe,jpeg_pipe,webp_pipe,gif,gif_pipe,bmp_pipe,tiff_pipe,apng,mjpeg";

/// The options that go before `-i` for every ffmpeg and ffprobe run.
pub(super) fn input_options() -> Vec<OsString> {
    ["-protocol_whitelist", "file,pipe", "-format_whitelist", FORMAT_WHITELIST].iter().map(OsString::from).collect()
}

/// What a finished child process left behind; `S` holds its stdout.
#[derive(Debug)]
pub(super) struct RunOutput<S = Vec<u8>> {
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: S,
    /// Everything it wrote to stderr (lossily decoded).
    pub stderr: String,
}

/// Where a child's stdout goes as it arrives, so large outputs are kept once, in their final form.
pub(super) trait Sink: Send {
    fn push(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn push(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// s16le samples read straight into `samples` (a byte split across reads is carried over).
#[derive(Debug, Default)]
pub(super) struct PcmSink {
    pub samples: Vec<i16>,
    carry: Option<u8>,
}

impl PcmSink {
    /// A sink with room for `samples` samples, so a known duration is read without regrowing.
    pub fn with_capacity(samples: usize) -> Self {
        Self { samples: Vec::with_capacity(samples), carry: None }
    }
}

impl Sink for PcmSink {
    fn push(&mut self, mut bytes: &[u8]) {
        if let (Some(low), Some((&high, rest))) = (self.carry, bytes.split_first()) {
            self.samples.push(i16::from_le_bytes([low, high]));
            self.carry = None;
            bytes = rest;
        }
        let pairs = bytes.chunks_exact(2);
        self.carry = pairs.remainder().first().copied();
        self.samples.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
    }
}

/// Why a child process did not finish.
#[derive(Debug)]
pub(super) enum RunError {
    /// The program could not be started (missing, not executable).
    Spawn(std::io::Error),
    /// It ran past the limit and was killed.
    Timeout,
    /// Reading its output failed.
    Io(std::io::Error),
}

/// Runs `program args` with no stdin, collecting stdout and stderr, and kills it after `timeout`.
pub(super) async fn run(program: &Path, args: &[OsString], timeout: Duration) -> Result<RunOutput, RunError> {
    run_into(program, args, timeout, Vec::new()).await
}

/// [`run`] with stdout fed to `sink` as it arrives.
pub(super) async fn run_into<S: Sink>(
    program: &Path,
    args: &[OsString],
    timeout: Duration,
    mut sink: S,
) -> Result<RunOutput<S>, RunError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(RunError::Spawn)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let collect = async {
        let read_out = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf).await? {
                    0 => return Ok::<_, std::io::Error>(()),
                    n => sink.push(&buf[..n]),
                }
            }
        };
        let mut err = Vec::new();
        let (o, e) = tokio::join!(read_out, stderr.read_to_end(&mut err));
        o.and(e.map(drop)).map_err(RunError::Io)?;
        let status = child.wait().await.map_err(RunError::Io)?;
        Ok::<_, RunError>((status, String::from_utf8_lossy(&err).into_owned()))
    };
    let result = tokio::time::timeout(timeout, collect).await;
    match result {
        Ok(Ok((status, stderr))) => Ok(RunOutput { status, stdout: sink, stderr }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // `collect` is dropped here, releasing its borrows; kill and reap so no zombie or runaway stays.
            let _ = child.kill().await;
            Err(RunError::Timeout)
        }
    }
}

impl RunError {
    /// Turns a failed run into the user-facing error for `file`.
    pub(super) fn into_media(self, file: &str, program: &Path, limit: Duration) -> MediaError {
        match self {
            RunError::Timeout => MediaError::Timeout { file: file.to_string(), limit },
            RunError::Spawn(e) => MediaError::Tool { tool: program.display().to_string(), detail: e.to_string() },
            RunError::Io(source) => MediaError::Io { file: file.to_string(), source },
        }
    }
}

/// The last stderr line worth showing a user, with the temporary path replaced by the file's name,
/// trimmed to 200 characters.
pub(super) fn last_error_line(stderr: &str, temp_path: &Path, file: &str) -> String {
    const NOISE: [&str; 4] =
        ["Conversion failed!", "Exiting normally", "Error opening input files", "Error opening input"];
    let path = temp_path.display().to_string();
    let line = stderr
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !NOISE.iter().any(|n| l.starts_with(n)))
        .or_else(|| stderr.lines().map(str::trim).rev().find(|l| !l.is_empty()))
        .unwrap_or("no error message");
    trim_chars(&line.replace(&path, file), 200)
}

/// One stream as `ffprobe -show_streams` describes it (only the fields this module uses).
#[derive(Debug, Clone, Default)]
pub(super) struct StreamInfo {
    /// The stream's index in the container (for `-map 0:N`).
    pub index: usize,
    /// `audio`, `video`, `subtitle`, `data`...
    pub codec_type: String,
    /// `h264`, `mjpeg`, `png`, `mp3`...
    pub codec_name: String,
    /// Stored picture width (before any display rotation).
    pub width: Option<u32>,
    /// Stored picture height (before any display rotation).
    pub height: Option<u32>,
    /// `yuv420p`, `rgba`... (used to spot transparency).
    pub pix_fmt: String,
    /// Frame count when the container states it.
    pub nb_frames: Option<u64>,
    /// Average frame rate in frames per second, when known and non-zero.
    pub avg_frame_rate: Option<f64>,
    /// `(num, den)` of the stream time base.
    pub time_base: Option<(i64, i64)>,
    /// Stream length in seconds.
    pub duration: Option<f64>,
    /// Cover art in an audio file: not a video.
    pub attached_pic: bool,
    /// Display rotation in degrees (from the display matrix or the legacy `rotate` tag); ffmpeg applies it.
    pub rotation: i64,
}

/// What `ffprobe -show_format -show_streams` says about a file.
#[derive(Debug, Clone, Default)]
pub(super) struct Probe {
    /// The demuxer names, e.g. `["mov", "mp4", "m4a", "3gp", "3g2", "mj2"]`.
    pub format_names: Vec<String>,
    /// Container length in seconds.
    pub duration: Option<f64>,
    /// Every stream, by index.
    pub streams: Vec<StreamInfo>,
}

/// Probes `input` once. ffprobe's `flat` writer is used instead of JSON: it gives the same fields as
/// `key=value` lines, which need no JSON parser.
pub(super) async fn probe(tools: &Tools, input: &Path, file: &str, timeout: Duration) -> Result<Probe, MediaError> {
    let mut args: Vec<OsString> = ["-v", "error", "-hide_banner"].iter().map(OsString::from).collect();
    args.extend(input_options());
    args.extend(["-print_format", "flat", "-show_format", "-show_streams"].iter().map(OsString::from));
    args.push(OsStr::new("-i").to_owned());
    args.push(input.as_os_str().to_owned());
    let out = run(&tools.ffprobe, &args, timeout).await.map_err(|e| e.into_media(file, &tools.ffprobe, timeout))?;
    if !out.status.success() {
        let detail = last_error_line(&out.stderr, input, file);
        return Err(classify_failure(file, "ffprobe", detail));
    }
    Ok(parse_flat(&String::from_utf8_lossy(&out.stdout)))
}

/// Sorts an ffmpeg/ffprobe failure into "not a format we read" or "damaged".
pub(super) fn classify_failure(file: &str, tool: &'static str, detail: String) -> MediaError {
    let lower = detail.to_ascii_lowercase();
    // ffprobe answers "Invalid argument" when the probed demuxer is not on the format whitelist.
    if tool == "ffprobe" && lower.ends_with("invalid argument") {
        return MediaError::Unsupported { file: file.to_string(), detail: "the format is not recognised".into() };
    }
    if lower.contains("not on whitelist") || lower.contains("unknown format") || lower.contains("no decoder") {
        MediaError::Unsupported { file: file.to_string(), detail: format!("{tool}: {detail}") }
    } else {
        MediaError::Corrupt { file: file.to_string(), tool, detail }
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

fn parse_f64(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn parse_ratio(v: &str) -> Option<(i64, i64)> {
    let (n, d) = v.split_once('/')?;
    Some((n.parse().ok()?, d.parse().ok()?))
}

/// Parses ffprobe's `flat` output (`format.duration="2.0"`, `streams.stream.0.width=320`, ...).
fn parse_flat(text: &str) -> Probe {
    let mut probe = Probe::default();
    for line in text.lines() {
        let Some((key, raw)) = line.split_once('=') else { continue };
        let value = unquote(raw);
        if let Some(field) = key.strip_prefix("format.") {
            match field {
                "format_name" => probe.format_names = value.split(',').map(str::to_string).collect(),
                "duration" => probe.duration = parse_f64(&value),
                _ => {}
            }
            continue;
        }
        let Some(rest) = key.strip_prefix("streams.stream.") else { continue };
        let Some((n, field)) = rest.split_once('.') else { continue };
        let Ok(n) = n.parse::<usize>() else { continue };
        if n > 1000 {
            continue;
        }
        while probe.streams.len() <= n {
            let index = probe.streams.len();
            probe.streams.push(StreamInfo { index, ..StreamInfo::default() });
        }
        let s = &mut probe.streams[n];
        match field {
            "index" => s.index = value.parse().unwrap_or(n),
            "codec_type" => s.codec_type = value,
            "codec_name" => s.codec_name = value,
            "width" => s.width = value.parse().ok().filter(|w| *w > 0),
            "height" => s.height = value.parse().ok().filter(|h| *h > 0),
            "pix_fmt" => s.pix_fmt = value,
            "nb_frames" => s.nb_frames = value.parse().ok(),
            "avg_frame_rate" => {
                s.avg_frame_rate =
                    parse_ratio(&value).filter(|(n, d)| *n > 0 && *d > 0).map(|(n, d)| n as f64 / d as f64)
            }
            "time_base" => s.time_base = parse_ratio(&value).filter(|(n, d)| *n > 0 && *d > 0),
            "duration" => s.duration = parse_f64(&value),
            "disposition.attached_pic" => s.attached_pic = value == "1",
            "tags.rotate" => s.rotation = value.parse().unwrap_or(s.rotation),
            f if f.starts_with("side_data_list.") && f.ends_with(".rotation") => {
                s.rotation = value.parse::<f64>().map(|r| r.round() as i64).unwrap_or(s.rotation)
            }
            _ => {}
        }
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_sink_joins_samples_split_across_reads() {
        let mut sink = PcmSink::with_capacity(4);
        let bytes = [1i16, -2, 300, -32768].iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>();
        for piece in [&bytes[..1], &bytes[1..4], &bytes[4..5], &bytes[5..]] {
            sink.push(piece);
        }
        assert_eq!(sink.samples, vec![1, -2, 300, -32768]);
    }

    #[test]
    fn parses_flat_output() {
        let text =
            "streams.stream.0.index=0\nstreams.stream.0.codec_name=\"h264\"\nstreams.stream.0.codec_type=\"video\"\n\
streams.stream.0.width=320\nstreams.stream.0.height=240\nstreams.stream.0.avg_frame_rate=\"25/1\"\n\
streams.stream.0.time_base=\"1/12800\"\nstreams.stream.0.side_data_list.side_data.0.rotation=-90\n\
streams.stream.1.codec_type=\"audio\"\nstreams.stream.1.disposition.attached_pic=0\n\
format.format_name=\"mov,mp4,m4a,3gp,3g2,mj2\"\nformat.duration=\"2.000000\"\n";
        let p = parse_flat(text);
        assert_eq!(p.format_names[0], "mov");
        assert_eq!(p.duration, Some(2.0));
        assert_eq!(p.streams.len(), 2);
        assert_eq!(p.streams[0].width, Some(320));
        assert_eq!(p.streams[0].avg_frame_rate, Some(25.0));
        assert_eq!(p.streams[0].time_base, Some((1, 12800)));
        assert_eq!(p.streams[0].rotation, -90);
        assert_eq!(p.streams[1].codec_type, "audio");
    }

    #[test]
    fn error_line_hides_the_temp_path() {
        let stderr = "/tmp/x/input.mp4: Invalid data found when processing input\nConversion failed!\n";
        assert_eq!(
            last_error_line(stderr, Path::new("/tmp/x/input.mp4"), "clip.mp4"),
            "clip.mp4: Invalid data found when processing input"
        );
    }

    #[tokio::test]
    async fn check_tools_reports_version_or_how_to_install() {
        let version = check_tools(&Tools::default()).await.expect("ffmpeg installed");
        assert!(version.starts_with("ffmpeg version"), "{version}");
        let missing = Tools { ffmpeg: "/nonexistent/ffmpeg".into(), ffprobe: "ffprobe".into() };
        let err = check_tools(&missing).await.unwrap_err().to_string();
        assert!(err.contains("apt-get install ffmpeg"), "{err}");
    }
}
