//! Turning one uploaded audio, video or image file into what the analyzers consume: 16 kHz mono PCM
//! and JPEG frames that fit the upstream API's limits.
//!
//! A file is written to a private temporary directory (removed on every path, including errors,
//! timeouts and cancellation), probed once with ffprobe, then decoded by at most one ffmpeg run for
//! audio and one for all frames. Images get their EXIF orientation applied (ffmpeg 5.1 ignores it)
//! and every JPEG is kept under the pixel and byte limits, with the scale recorded so boxes found in a
//! frame can be mapped back to source pixels.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::audio::Pcm;
use super::error::MediaError;
use super::ffmpeg::{
    self, input_options, last_error_line, run_into, PcmSink, Probe, RunOutput, Sink, StreamInfo, Tools,
};
use super::MediaKind;

/// Limits that keep one file from using unbounded time, memory or upstream quota; `Default` gives the
/// production values.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaLimits {
    /// Longest one ffprobe or ffmpeg run may take before it is killed (default 120 s).
    pub ffmpeg_timeout: Duration,
    /// Frames extracted per source at most (default 3600); [`Prepared::frames_truncated`] says when hit.
    pub max_frames_per_source: usize,
    /// Files per archive at most (default 100).
    pub max_archive_members: usize,
    /// Bytes an archive may expand to in total (default 512 MiB).
    pub max_expanded_bytes: u64,
    /// Expanded bytes per compressed byte at most, per archive (default 200): stops zip bombs early.
    pub max_compression_ratio: u64,
    /// Bytes per JPEG at most (default 2,000,000: Hume's v1 limit for an image).
    pub max_image_bytes: usize,
    /// Pixels per JPEG at most (default 8,294,400, i.e. 3840x2160).
    pub max_image_pixels: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            ffmpeg_timeout: Duration::from_secs(120),
            max_frames_per_source: 3600,
            max_archive_members: 100,
            max_expanded_bytes: 512 << 20,
            max_compression_ratio: 200,
            max_image_bytes: 2_000_000,
            max_image_pixels: 8_294_400,
        }
    }
}

/// What the caller wants from a file, so nothing else is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Needs {
    /// Decode the (first) audio stream to [`Pcm`].
    pub audio: bool,
    /// Extract video frames at this many frames per second (`0.0` = every frame at its own
    /// timestamp; a negative or non-finite value means the default of 3). Images always give their
    /// single frame.
    pub frames: Option<f64>,
    /// Refuse audio and video longer than this many seconds ([`MediaError::TooLong`]), found
    /// by the probe before anything is decoded (the job's budgets).
    pub max_secs: Option<f64>,
    /// Extract at most this many video frames, below [`MediaLimits::max_frames_per_source`]
    /// (what is left of the job's budget); [`Prepared::frames_truncated`] says when hit.
    pub max_frames: Option<usize>,
}

/// The frame rate used when [`Needs::frames`] holds an unusable value.
pub const DEFAULT_FPS: f64 = 3.0;

/// One extracted frame, as a JPEG within the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame's number in the source video (0-based); for fixed-rate sampling of a variable
    /// frame rate video this is estimated from the average frame rate.
    pub index: u64,
    /// Seconds from the start of the video.
    pub time_secs: f64,
    /// The encoded picture.
    pub jpeg: Bytes,
    /// Width of this JPEG in pixels.
    pub width: u32,
    /// Height of this JPEG in pixels.
    pub height: u32,
    /// Source pixels per JPEG pixel (1.0 when not downscaled): multiply box coordinates by it.
    pub scale: f64,
}

/// The decoded result of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Audio, Video or Image as probed (an .mp4 with no video stream is Audio).
    pub kind: MediaKind,
    /// Length in seconds when the container or the decoded audio tells it.
    pub duration_secs: Option<f64>,
    /// Source width in pixels (after EXIF orientation or display rotation).
    pub width: Option<u32>,
    /// Source height in pixels (after EXIF orientation or display rotation).
    pub height: Option<u32>,
    /// The audio, when asked for and the file has an audio stream.
    pub audio: Option<Pcm>,
    /// Video: frames at the asked rate; image: exactly one frame (index 0, time 0.0).
    pub frames: Vec<Frame>,
    /// True when frames beyond [`MediaLimits::max_frames_per_source`] were not extracted.
    pub frames_truncated: bool,
}

/// Prepares media files with ffmpeg; cheap to share (`Arc`) between requests.
#[derive(Debug, Clone)]
pub struct Preparer {
    tools: Tools,
    limits: MediaLimits,
    temp_root: Option<PathBuf>,
}

impl Preparer {
    /// A preparer using `tools` within `limits`; temporary files go to the system temp directory.
    pub fn new(tools: Tools, limits: MediaLimits) -> Self {
        Self { tools, limits, temp_root: None }
    }

    /// Puts temporary directories under `root` instead (a disk with room, or a folder a test watches).
    pub fn with_temp_root(mut self, root: PathBuf) -> Self {
        self.temp_root = Some(root);
        self
    }

    /// The limits in force, so callers apply the same ones (for example to archives).
    pub fn limits(&self) -> &MediaLimits {
        &self.limits
    }

    /// Probes `bytes` (whose kind was sniffed as Audio, Video or Image) once and prepares what `needs`
    /// asks: [`Preparer::probe`] then [`Probed::decode`]. The probed kind wins over `kind`.
    pub async fn prepare(
        &self,
        file_name: &str,
        kind: MediaKind,
        bytes: &[u8],
        needs: Needs,
    ) -> Result<Prepared, MediaError> {
        self.probe(file_name, kind, bytes).await?.decode(bytes, needs).await
    }

    /// Probes `bytes` (whose kind was sniffed as Audio, Video or Image): what it is and how long,
    /// before anything is decoded, so a caller can hold it to its budgets first. Never blocks
    /// the runtime: the work runs in child processes, each killed after
    /// [`MediaLimits::ffmpeg_timeout`].
    pub async fn probe(&self, file_name: &str, kind: MediaKind, bytes: &[u8]) -> Result<Probed<'_>, MediaError> {
        if bytes.is_empty() {
            return Err(MediaError::Empty { file: file_name.to_string() });
        }
        let io = |source| MediaError::Io { file: file_name.to_string(), source };
        let mut builder = tempfile::Builder::new();
        builder.prefix("hume-media-");
        let dir = match &self.temp_root {
            Some(root) => builder.tempdir_in(root),
            None => builder.tempdir(),
        }
        .map_err(io)?;
        let input = dir.path().join(input_name(file_name));
        tokio::fs::write(&input, bytes).await.map_err(io)?;
        let probe = ffmpeg::probe(&self.tools, &input, file_name, self.limits.ffmpeg_timeout).await;
        let probed = probe.and_then(|probe| {
            let (probed_kind, _, audio) =
                classify(&probe).ok_or_else(|| MediaError::NoStream { file: file_name.to_string() })?;
            if probed_kind != kind {
                tracing::debug!(
                    file = file_name,
                    sniffed = kind.as_str(),
                    probed = probed_kind.as_str(),
                    "probe overrides sniffed kind"
                );
            }
            let duration_secs =
                probe.duration.or_else(|| audio.and_then(|a| a.duration)).filter(|_| probed_kind != MediaKind::Image);
            Ok((probed_kind, duration_secs, probe))
        });
        match probed {
            Ok((kind, duration_secs, probe)) => Ok(Probed {
                preparer: self,
                file: file_name.to_owned(),
                dir: Some(dir),
                input,
                probe,
                kind,
                duration_secs,
            }),
            Err(e) => {
                remove_dir(dir).await;
                Err(e)
            }
        }
    }
}

/// A probed file, kept in its temporary directory until it is decoded (or dropped).
pub struct Probed<'p> {
    preparer: &'p Preparer,
    file: String,
    /// `None` once removed.
    dir: Option<tempfile::TempDir>,
    input: PathBuf,
    probe: Probe,
    /// Audio, Video or Image, as probed.
    pub kind: MediaKind,
    /// Length in seconds when the container or its audio stream tells it (never for images).
    pub duration_secs: Option<f64>,
}

impl Probed<'_> {
    /// Decodes what `needs` asks of the probed file (`bytes`, as given to the probe), then
    /// removes its temporary directory.
    pub async fn decode(mut self, bytes: &[u8], needs: Needs) -> Result<Prepared, MediaError> {
        let dir = self.dir.take().expect("a probed file keeps its directory until decoded");
        let job = Job { p: self.preparer, file: &self.file, dir: dir.path(), input: self.input.clone() };
        let result = job.run(&self.probe, bytes, needs).await;
        remove_dir(dir).await;
        result
    }
}

impl std::fmt::Debug for Probed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probed")
            .field("file", &self.file)
            .field("kind", &self.kind)
            .field("duration_secs", &self.duration_secs)
            .finish_non_exhaustive()
    }
}

/// Removes a temporary directory (of frames, perhaps) off the runtime: it is blocking work.
async fn remove_dir(dir: tempfile::TempDir) {
    let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
}

/// `input` plus the original extension when it looks like one: some demuxers use it as a hint.
fn input_name(file_name: &str) -> String {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        format!("input.{ext}")
    } else {
        "input".to_string()
    }
}

/// Demuxer names that mean "a single picture".
const IMAGE_FORMATS: &[&str] =
    &["image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif", "gif_pipe", "bmp_pipe", "tiff_pipe", "apng"];
/// Decoders that produce still pictures.
const IMAGE_CODECS: &[&str] = &["mjpeg", "png", "apng", "webp", "gif", "bmp", "tiff", "jpegls"];

/// Audio, Video or Image from the probe, with the picture stream and the audio stream to use.
fn classify(probe: &Probe) -> Option<(MediaKind, Option<&StreamInfo>, Option<&StreamInfo>)> {
    let video = probe.streams.iter().find(|s| s.codec_type == "video" && !s.attached_pic);
    let audio = probe.streams.iter().find(|s| s.codec_type == "audio");
    let image_format = probe.format_names.iter().any(|f| IMAGE_FORMATS.contains(&f.as_str()));
    match (video, audio) {
        (Some(v), a) => {
            let still = IMAGE_CODECS.contains(&v.codec_name.as_str()) && v.nb_frames.is_some_and(|n| n <= 1);
            let kind = if image_format || (still && a.is_none()) { MediaKind::Image } else { MediaKind::Video };
            Some((kind, Some(v), a))
        }
        (None, Some(a)) => Some((MediaKind::Audio, None, Some(a))),
        (None, None) => None,
    }
}

/// ffmpeg filters that apply EXIF orientation `o` (1-8) to the stored picture.
fn orientation_filter(o: u32) -> Option<&'static str> {
    Some(match o {
        2 => "hflip",
        3 => "hflip,vflip",
        4 => "vflip",
        5 => "transpose=0",
        6 => "transpose=1",
        7 => "transpose=3",
        8 => "transpose=2",
        _ => return None,
    })
}

/// The EXIF Orientation tag of an image (JPEG, PNG, WebP, TIFF), 1 when absent or unreadable.
fn exif_orientation(bytes: &[u8]) -> u32 {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)) else { return 1 };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// Pixel formats that may carry transparency, which the JPEG encoder would otherwise drop to black.
fn has_alpha(pix_fmt: &str) -> bool {
    ["rgba", "bgra", "argb", "abgr", "ya", "yuva", "gbrap", "pal8", "rgba64", "bgra64"]
        .iter()
        .any(|p| pix_fmt.starts_with(p))
}

/// Composites a transparent picture onto white: invert, premultiply (transparent becomes black),
/// invert back (black becomes white), all within one filter chain.
const FLATTEN_ON_WHITE: &str = "format=gbrap,negate,premultiply=inplace=1,negate";

/// The largest size with the same aspect ratio and at most `max_pixels` pixels.
fn fit_pixels(w: u32, h: u32, max_pixels: u64) -> (u32, u32) {
    if u64::from(w) * u64::from(h) <= max_pixels {
        return (w, h);
    }
    let f = (max_pixels as f64 / (f64::from(w) * f64::from(h))).sqrt();
    let (mut tw, mut th) = (((f64::from(w) * f).floor() as u32).max(1), ((f64::from(h) * f).floor() as u32).max(1));
    while u64::from(tw) * u64::from(th) > max_pixels && (tw > 1 || th > 1) {
        if tw >= th {
            tw -= 1;
        } else {
            th -= 1;
        }
    }
    (tw, th)
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_dims(b: &[u8]) -> Option<(u32, u32)> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let sof = b.get(i + 5..i + 9)?;
            let h = u32::from(u16::from_be_bytes([sof[0], sof[1]]));
            let w = u32::from(u16::from_be_bytes([sof[2], sof[3]]));
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// One `prepare` call: the file, its temporary directory and the preparer's settings.
struct Job<'a> {
    p: &'a Preparer,
    file: &'a str,
    dir: &'a Path,
    input: PathBuf,
}

impl Job<'_> {
    async fn run(&self, probe: &Probe, bytes: &[u8], needs: Needs) -> Result<Prepared, MediaError> {
        let limits = &self.p.limits;
        let Some((kind, video, audio)) = classify(probe) else {
            return Err(MediaError::NoStream { file: self.file.to_string() });
        };
        let mut prepared = Prepared {
            kind,
            duration_secs: probe
                .duration
                .or_else(|| audio.and_then(|a| a.duration))
                .filter(|_| kind != MediaKind::Image),
            width: None,
            height: None,
            audio: None,
            frames: Vec::new(),
            frames_truncated: false,
        };
        if let (Some(max_secs), Some(duration_secs)) = (needs.max_secs, prepared.duration_secs) {
            if duration_secs > max_secs {
                return Err(MediaError::TooLong { file: self.file.to_string(), duration_secs, max_secs });
            }
        }
        if kind == MediaKind::Image {
            let v = video.expect("images have a picture stream");
            let frame = self.image(bytes, v).await?;
            let (w, h) = oriented(v, exif_orientation(bytes));
            (prepared.width, prepared.height) = (w, h);
            prepared.frames.push(frame);
            return Ok(prepared);
        }
        if let Some(v) = video {
            let (w, h) = oriented(v, 1);
            (prepared.width, prepared.height) = (w, h);
        }
        if needs.audio {
            if let Some(a) = audio {
                let pcm = self.audio(a).await?;
                if pcm.samples.is_empty() {
                    if kind == MediaKind::Audio {
                        return Err(MediaError::NoSamples { file: self.file.to_string() });
                    }
                } else {
                    let duration_secs = prepared.duration_secs.unwrap_or(pcm.duration_secs());
                    if let Some(max_secs) = needs.max_secs.filter(|max| duration_secs > *max) {
                        return Err(MediaError::TooLong { file: self.file.to_string(), duration_secs, max_secs });
                    }
                    prepared.duration_secs = Some(duration_secs);
                    prepared.audio = Some(pcm);
                }
            }
        }
        if let (Some(fps), Some(v)) = (needs.frames, video) {
            let fps = if fps.is_finite() && fps >= 0.0 { fps } else { DEFAULT_FPS };
            let cap =
                needs.max_frames.map_or(limits.max_frames_per_source, |max| max.min(limits.max_frames_per_source));
            let (frames, truncated) = self.frames(v, fps, cap, prepared.width.zip(prepared.height)).await?;
            prepared.frames = frames;
            prepared.frames_truncated = truncated;
        }
        Ok(prepared)
    }

    /// Runs ffmpeg on `input` with the common safety options and `args` after `-i`, its stdout
    /// collected by `sink`.
    async fn ffmpeg<S: Sink>(
        &self,
        input: &Path,
        input_opts: &[&str],
        args: Vec<OsString>,
        sink: S,
    ) -> Result<RunOutput<S>, MediaError> {
        let timeout = self.p.limits.ffmpeg_timeout;
        let mut all: Vec<OsString> =
            ["-nostdin", "-hide_banner", "-loglevel", "error"].iter().map(OsString::from).collect();
        all.extend(input_options());
        all.extend(input_opts.iter().map(OsString::from));
        all.push("-i".into());
        all.push(input.as_os_str().to_owned());
        all.extend(args);
        let out = run_into(&self.p.tools.ffmpeg, &all, timeout, sink)
            .await
            .map_err(|e| e.into_media(self.file, &self.p.tools.ffmpeg, timeout))?;
        if !out.status.success() {
            let detail = last_error_line(&out.stderr, input, self.file);
            return Err(ffmpeg::classify_failure(self.file, "ffmpeg", detail));
        }
        Ok(out)
    }

    /// Decodes stream `a` to 16 kHz mono s16le on stdout, read straight into the samples (room
    /// for the probed duration is made first), so the decoded audio exists once.
    async fn audio(&self, a: &StreamInfo) -> Result<Pcm, MediaError> {
        let map = format!("0:{}", a.index);
        let args = [
            "-map",
            &map,
            "-vn",
            "-sn",
            "-dn",
            "-ac",
            "1",
            "-ar",
            "16000",
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "pipe:1",
        ];
        // A little over the probed length; a wrong or missing duration only costs regrowth.
        let expected =
            a.duration.map_or(0, |secs| (secs.clamp(0.0, 4.0 * 3600.0) * 1.01 * f64::from(Pcm::RATE)) as usize);
        let args = args.iter().map(OsString::from).collect();
        let mut samples = self.ffmpeg(&self.input, &[], args, PcmSink::with_capacity(expected)).await?.stdout.samples;
        if samples.capacity() - samples.len() > samples.len() / 8 {
            samples.shrink_to_fit();
        }
        Ok(Pcm { samples })
    }

    /// The one frame of an image: EXIF orientation applied, transparency flattened onto white, within limits.
    async fn image(&self, bytes: &[u8], v: &StreamInfo) -> Result<Frame, MediaError> {
        let orientation = exif_orientation(bytes);
        let mut filters = Vec::new();
        if has_alpha(&v.pix_fmt) {
            filters.push(FLATTEN_ON_WHITE.to_string());
        }
        filters.extend(orientation_filter(orientation).map(str::to_string));
        let source = oriented(v, orientation);
        let (jpeg, width, height) =
            self.encode_fitting(&self.input, &["-noautorotate"], filters, source, "image").await?;
        let scale = source.0.map_or(1.0, |sw| f64::from(sw) / f64::from(width));
        Ok(Frame { index: 0, time_secs: 0.0, jpeg: Bytes::from(jpeg), width, height, scale })
    }

    /// Encodes the first picture of `input` as one JPEG of at most `max_image_bytes` and
    /// `max_image_pixels`: first at high quality, then lower quality, then smaller sizes.
    async fn encode_fitting(
        &self,
        input: &Path,
        input_opts: &[&str],
        filters: Vec<String>,
        source: (Option<u32>, Option<u32>),
        stem: &str,
    ) -> Result<(Vec<u8>, u32, u32), MediaError> {
        let limits = &self.p.limits;
        let mut target = match source {
            (Some(w), Some(h)) => Some(fit_pixels(w, h, limits.max_image_pixels)),
            _ => None,
        };
        let out = self.dir.join(format!("{stem}.jpg"));
        for attempt in 0..8 {
            let mut chain = filters.clone();
            if let (Some((tw, th)), (Some(sw), Some(sh))) = (target, source) {
                if (tw, th) != (sw, sh) {
                    chain.push(format!("scale={tw}:{th}"));
                }
            }
            let quality = if attempt == 0 { "3" } else { "8" };
            let mut args: Vec<OsString> = vec!["-map".into(), "0:v:0".into(), "-frames:v".into(), "1".into()];
            if !chain.is_empty() {
                args.extend(["-vf".into(), chain.join(",").into()]);
            }
            args.extend(
                ["-pix_fmt", "yuvj420p", "-q:v", quality, "-f", "image2", "-update", "1", "-y"]
                    .iter()
                    .map(OsString::from),
            );
            args.push(out.as_os_str().to_owned());
            self.ffmpeg(input, input_opts, args, Vec::new()).await?;
            let jpeg =
                tokio::fs::read(&out).await.map_err(|source| MediaError::Io { file: self.file.to_string(), source })?;
            let Some((w, h)) = jpeg_dims(&jpeg) else {
                return Err(MediaError::Corrupt {
                    file: self.file.to_string(),
                    tool: "ffmpeg",
                    detail: "no picture was produced".into(),
                });
            };
            if jpeg.len() <= limits.max_image_bytes && u64::from(w) * u64::from(h) <= limits.max_image_pixels {
                return Ok((jpeg, w, h));
            }
            if attempt > 0 || u64::from(w) * u64::from(h) > limits.max_image_pixels {
                // Shrink the area in proportion to the excess bytes, with a margin.
                let f = ((limits.max_image_bytes as f64 / jpeg.len() as f64).sqrt() * 0.9).min(0.9);
                let (tw, th) = (((f64::from(w) * f) as u32).max(1), ((f64::from(h) * f) as u32).max(1));
                target = Some((tw, th));
                if source.0.is_none() {
                    return Err(MediaError::TooLarge {
                        file: self.file.to_string(),
                        max_bytes: limits.max_image_bytes,
                    });
                }
            }
        }
        Err(MediaError::TooLarge { file: self.file.to_string(), max_bytes: limits.max_image_bytes })
    }

    /// Video stream `v`'s frames in one ffmpeg run: at `fps`, or every frame when `fps` is 0; at
    /// most `cap` (and whether there were more).
    async fn frames(
        &self,
        v: &StreamInfo,
        fps: f64,
        cap: usize,
        source: Option<(u32, u32)>,
    ) -> Result<(Vec<Frame>, bool), MediaError> {
        let limits = &self.p.limits;
        let out_dir = self.dir.join("frames");
        tokio::fs::create_dir(&out_dir)
            .await
            .map_err(|source| MediaError::Io { file: self.file.to_string(), source })?;
        let every = fps == 0.0;
        let mut chain = Vec::new();
        if !every {
            chain.push(format!("fps={fps}"));
        }
        if let Some((sw, sh)) = source {
            let (tw, th) = fit_pixels(sw, sh, limits.max_image_pixels);
            if (tw, th) != (sw, sh) {
                chain.push(format!("scale={tw}:{th}"));
            }
        }
        let mut args: Vec<OsString> =
            vec!["-map".into(), format!("0:{}", v.index).into(), "-an".into(), "-sn".into(), "-dn".into()];
        if !chain.is_empty() {
            args.extend(["-vf".into(), chain.join(",").into()]);
        }
        if every {
            args.extend(
                ["-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-frame_pts", "1"].iter().map(OsString::from),
            );
        } else {
            args.extend(["-start_number", "0"].iter().map(OsString::from));
        }
        // One frame past the cap tells whether the source had more.
        args.extend(["-frames:v".into(), (cap as u64 + 1).to_string().into()]);
        args.extend(["-pix_fmt", "yuvj420p", "-q:v", "3", "-f", "image2"].iter().map(OsString::from));
        args.push(out_dir.join("%d.jpg").into_os_string());
        self.ffmpeg(&self.input, &[], args, Vec::new()).await?;

        let mut numbered = Vec::new();
        let mut entries = tokio::fs::read_dir(&out_dir)
            .await
            .map_err(|source| MediaError::Io { file: self.file.to_string(), source })?;
        while let Some(entry) =
            entries.next_entry().await.map_err(|source| MediaError::Io { file: self.file.to_string(), source })?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".jpg").and_then(|n| n.parse::<i64>().ok()) {
                numbered.push((n, entry.path()));
            }
        }
        numbered.sort();
        let truncated = numbered.len() > cap;
        numbered.truncate(cap);

        let mut frames = Vec::with_capacity(numbered.len());
        for (k, (n, path)) in numbered.into_iter().enumerate() {
            let (index, time_secs) = if every {
                let time = match v.time_base {
                    Some((num, den)) => n as f64 * num as f64 / den as f64,
                    None => k as f64 / v.avg_frame_rate.unwrap_or(1.0),
                };
                (k as u64, time)
            } else {
                let time = n as f64 / fps;
                (v.avg_frame_rate.map_or(n as u64, |r| (time * r).round() as u64), time)
            };
            let mut jpeg = tokio::fs::read(&path)
                .await
                .map_err(|source| MediaError::Io { file: self.file.to_string(), source })?;
            let mut dims = jpeg_dims(&jpeg);
            if jpeg.len() > limits.max_image_bytes {
                let stem = format!("frame-{k}");
                let (small, w, h) = self.encode_fitting(&path, &[], Vec::new(), dims.unzip(), &stem).await?;
                jpeg = small;
                dims = Some((w, h));
            }
            let Some((width, height)) = dims else {
                return Err(MediaError::Corrupt {
                    file: self.file.to_string(),
                    tool: "ffmpeg",
                    detail: "a frame was not a JPEG".into(),
                });
            };
            let scale = source.map_or(1.0, |(sw, _)| f64::from(sw) / f64::from(width));
            frames.push(Frame { index, time_secs, jpeg: Bytes::from(jpeg), width, height, scale });
        }
        Ok((frames, truncated))
    }
}

/// The stream's picture size as displayed: swapped for EXIF orientations 5-8 and for a 90/270
/// degree display rotation (which ffmpeg applies to video frames).
fn oriented(v: &StreamInfo, exif_orientation: u32) -> (Option<u32>, Option<u32>) {
    let swap = exif_orientation >= 5 || v.rotation.rem_euclid(180) == 90;
    if swap {
        (v.height, v.width)
    } else {
        (v.width, v.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Makes a media file with ffmpeg's synthetic sources; `args` are everything between the
    /// global options and the output path.
    fn make(dir: &Path, name: &str, args: &str) -> Vec<u8> {
        let out = dir.join(name);
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args(args.split_whitespace())
            .arg(&out)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "making {name} with {args}");
        std::fs::read(out).unwrap()
    }

    struct Fixture {
        media: tempfile::TempDir,
        temp_root: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Self { media: tempfile::tempdir().unwrap(), temp_root: tempfile::tempdir().unwrap() }
        }
        fn preparer(&self, limits: MediaLimits) -> Preparer {
            Preparer::new(Tools::default(), limits).with_temp_root(self.temp_root.path().to_path_buf())
        }
        fn make(&self, name: &str, args: &str) -> Vec<u8> {
            make(self.media.path(), name, args)
        }
        fn assert_no_leftovers(&self) {
            let left: Vec<_> = std::fs::read_dir(self.temp_root.path()).unwrap().collect();
            assert!(left.is_empty(), "temporary directories left behind: {left:?}");
        }
    }

    const AUDIO: Needs = Needs { audio: true, frames: None, max_secs: None, max_frames: None };

    #[tokio::test]
    async fn audio_files_decode_to_16k_mono_with_the_right_duration() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        let sine = "-f lavfi -i sine=frequency=440:sample_rate=44100:duration=2.5";
        for (name, codec) in [("a.mp3", "libmp3lame"), ("a.ogg", "libvorbis"), ("a.wav", "pcm_s16le")] {
            let bytes = fx.make(name, &format!("{sine} -ac 2 -c:a {codec}"));
            let prepared = p.prepare(name, MediaKind::Audio, &bytes, AUDIO).await.unwrap();
            assert_eq!(prepared.kind, MediaKind::Audio);
            let pcm = prepared.audio.expect("audio");
            assert!((pcm.duration_secs() - 2.5).abs() <= 0.05, "{name}: {} s", pcm.duration_secs());
            assert!(!pcm.is_silent());
            assert!(prepared.frames.is_empty());
        }
        // Speech from espeak-ng.
        let wav = fx.media.path().join("speech.wav");
        let ok =
            Command::new("espeak-ng").arg("-w").arg(&wav).arg("I am very happy to see you today").status().unwrap();
        assert!(ok.success());
        let bytes = std::fs::read(&wav).unwrap();
        let prepared = p.prepare("speech.wav", MediaKind::Audio, &bytes, AUDIO).await.unwrap();
        let pcm = prepared.audio.unwrap();
        assert!(pcm.duration_secs() > 1.0 && !pcm.is_silent());
        let probed = prepared.duration_secs.unwrap();
        assert!((pcm.duration_secs() - probed).abs() / probed < 0.02);
        // All-zero audio is prepared; the caller decides.
        let bytes = fx.make("silence.wav", "-f lavfi -i anullsrc=r=8000:cl=mono -t 1");
        let pcm = p.prepare("silence.wav", MediaKind::Audio, &bytes, AUDIO).await.unwrap().audio.unwrap();
        assert!(pcm.is_silent() && (pcm.duration_secs() - 1.0).abs() < 0.02);
        // An mp4 holding only audio is Audio.
        let bytes = fx.make("voice.mp4", &format!("{sine} -c:a aac"));
        let prepared = p.prepare("voice.mp4", MediaKind::Video, &bytes, AUDIO).await.unwrap();
        assert_eq!(prepared.kind, MediaKind::Audio);
        assert!((prepared.audio.unwrap().duration_secs() - 2.5).abs() <= 0.05);
        fx.assert_no_leftovers();
    }

    fn clip(fx: &Fixture, seconds: u32) -> Vec<u8> {
        fx.make(
            "clip.mp4",
            &format!(
                "-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=300:sample_rate=48000 \
                 -t {seconds} -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac"
            ),
        )
    }

    #[tokio::test]
    async fn video_gives_frames_at_the_asked_rate_and_audio() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        let bytes = clip(&fx, 4);
        let needs = Needs { audio: true, frames: Some(3.0), max_secs: None, max_frames: None };
        let prepared = p.prepare("clip.mp4", MediaKind::Video, &bytes, needs).await.unwrap();
        assert_eq!(prepared.kind, MediaKind::Video);
        assert_eq!((prepared.width, prepared.height), (Some(320), Some(240)));
        assert!((prepared.duration_secs.unwrap() - 4.0).abs() < 0.1);
        assert!((prepared.audio.as_ref().unwrap().duration_secs() - 4.0).abs() < 0.08);
        assert_eq!(prepared.frames.len(), 12, "4 s at 3 fps");
        assert!(!prepared.frames_truncated);
        for (k, f) in prepared.frames.iter().enumerate() {
            assert!((f.time_secs - k as f64 / 3.0).abs() < 1e-9, "frame {k} at {}", f.time_secs);
            assert_eq!(f.index, (k as f64 * 25.0 / 3.0).round() as u64);
            assert_eq!((f.width, f.height, f.scale), (320, 240, 1.0));
            assert_eq!(jpeg_dims(&f.jpeg), Some((320, 240)));
        }

        // Every frame at its own timestamp.
        let every = Needs { audio: false, frames: Some(0.0), max_secs: None, max_frames: None };
        let prepared = p.prepare("clip.mp4", MediaKind::Video, &bytes, every).await.unwrap();
        assert!(prepared.audio.is_none());
        assert_eq!(prepared.frames.len(), 100);
        for (k, f) in prepared.frames.iter().enumerate() {
            assert_eq!(f.index, k as u64);
            assert!((f.time_secs - k as f64 / 25.0).abs() < 1e-6, "frame {k} at {}", f.time_secs);
        }

        // The cap.
        let capped = fx.preparer(MediaLimits { max_frames_per_source: 5, ..MediaLimits::default() });
        let prepared = capped.prepare("clip.mp4", MediaKind::Video, &bytes, needs).await.unwrap();
        assert_eq!(prepared.frames.len(), 5);
        assert!(prepared.frames_truncated);
        let prepared = capped.prepare("clip.mp4", MediaKind::Video, &bytes, every).await.unwrap();
        assert_eq!(prepared.frames.len(), 5);
        assert!(prepared.frames_truncated);
        // What is left of a job's budget caps it too, and a duration over the allowed is refused
        // after the probe.
        let left = Needs { max_frames: Some(2), ..needs };
        let prepared = p.prepare("clip.mp4", MediaKind::Video, &bytes, left).await.unwrap();
        assert_eq!((prepared.frames.len(), prepared.frames_truncated), (2, true));
        let short = Needs { max_secs: Some(1.5), ..needs };
        let err = p.prepare("clip.mp4", MediaKind::Video, &bytes, short).await.unwrap_err();
        assert!(matches!(err, MediaError::TooLong { max_secs: 1.5, .. }), "{err}");

        // A video with no audio track: no audio, no error.
        let mute = fx.make("mute.mp4", "-f lavfi -i testsrc2=size=160x120:rate=10 -t 1 -c:v libx264 -pix_fmt yuv420p");
        let prepared = p.prepare("mute.mp4", MediaKind::Video, &mute, needs).await.unwrap();
        assert!(prepared.audio.is_none());
        assert_eq!(prepared.frames.len(), 3);
        fx.assert_no_leftovers();
    }

    #[tokio::test]
    async fn every_image_format_gives_one_jpeg() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        let src = "-f lavfi -i testsrc2=size=200x150 -frames:v 1";
        let cases = [
            ("a.png", src.to_string()),
            ("a.gif", src.to_string()),
            ("a.bmp", src.to_string()),
            ("a.webp", format!("{src} -c:v libwebp")),
            ("a.tiff", src.to_string()),
            ("a.jpg", src.to_string()),
            ("clear.png", "-f lavfi -i color=c=red@0.0:s=200x150,format=rgba -frames:v 1".to_string()),
            ("anim.gif", "-f lavfi -i testsrc2=size=200x150:rate=5 -t 1".to_string()),
        ];
        for (name, args) in cases {
            let bytes = fx.make(name, &args);
            let prepared =
                p.prepare(name, MediaKind::Image, &bytes, Needs::default()).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(prepared.kind, MediaKind::Image, "{name}");
            assert_eq!((prepared.width, prepared.height), (Some(200), Some(150)), "{name}");
            assert_eq!(prepared.frames.len(), 1, "{name}");
            let f = &prepared.frames[0];
            assert_eq!((f.index, f.time_secs, f.width, f.height, f.scale), (0, 0.0, 200, 150, 1.0), "{name}");
            assert_eq!(jpeg_dims(&f.jpeg), Some((200, 150)));
            assert!(prepared.duration_secs.is_none());
        }
        // Transparency is flattened onto white.
        let bytes = std::fs::read(fx.media.path().join("clear.png")).unwrap();
        let prepared = p.prepare("clear.png", MediaKind::Image, &bytes, Needs::default()).await.unwrap();
        let jpg = fx.media.path().join("clear-out.jpg");
        std::fs::write(&jpg, &prepared.frames[0].jpeg).unwrap();
        let out = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-i"])
            .arg(&jpg)
            .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .output()
            .unwrap();
        assert!(out.stdout.iter().all(|&g| g > 240), "transparent pixels should be white");
        fx.assert_no_leftovers();
    }

    /// Inserts an EXIF APP1 segment with the given Orientation right after the JPEG's SOI marker.
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2A\0\0\0\x08".to_vec(); // big-endian TIFF header, IFD at offset 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[tokio::test]
    async fn exif_orientation_is_applied() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        // Left half white, right half black, 64x32.
        let plain = fx.make(
            "plain.jpg",
            "-f lavfi -i color=c=black:s=64x32 -vf drawbox=x=0:y=0:w=32:h=32:color=white:t=fill -frames:v 1",
        );
        let rotated = with_orientation(&plain, 6);
        assert_eq!(exif_orientation(&rotated), 6);
        let prepared = p.prepare("photo.jpg", MediaKind::Image, &rotated, Needs::default()).await.unwrap();
        assert_eq!((prepared.width, prepared.height), (Some(32), Some(64)));
        let f = &prepared.frames[0];
        assert_eq!((f.width, f.height), (32, 64));
        // Orientation 6 means "rotate 90 degrees clockwise to display": the white left half goes on top.
        let jpg = fx.media.path().join("rotated-out.jpg");
        std::fs::write(&jpg, &f.jpeg).unwrap();
        let gray = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-i"])
            .arg(&jpg)
            .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(gray.len(), 32 * 64);
        assert!(gray[16 * 32 + 16] > 200 && gray[48 * 32 + 16] < 50, "top white, bottom black");
        fx.assert_no_leftovers();
    }

    #[tokio::test]
    async fn large_images_are_downscaled_under_both_limits() {
        let fx = Fixture::new();
        // Noise compresses badly, so the byte limit bites as well as the pixel limit.
        let bytes = fx.make("noise.png", "-f lavfi -i nullsrc=s=1200x900,geq=random(1)*255:128:128 -frames:v 1");
        let limits = MediaLimits { max_image_pixels: 400_000, max_image_bytes: 60_000, ..MediaLimits::default() };
        let p = fx.preparer(limits.clone());
        let prepared = p.prepare("noise.png", MediaKind::Image, &bytes, Needs::default()).await.unwrap();
        assert_eq!((prepared.width, prepared.height), (Some(1200), Some(900)));
        let f = &prepared.frames[0];
        assert!(f.jpeg.len() <= limits.max_image_bytes, "{} bytes", f.jpeg.len());
        assert!(u64::from(f.width) * u64::from(f.height) <= limits.max_image_pixels);
        assert!(f.scale > 1.5, "scale {}", f.scale);
        let aspect = f64::from(f.width) / f64::from(f.height);
        assert!((aspect - 4.0 / 3.0).abs() < 0.02, "aspect {aspect}");
        assert!((f.scale - 1200.0 / f64::from(f.width)).abs() < 1e-9);

        // Video frames obey the same limits.
        let video = fx.make(
            "noise.mp4",
            "-f lavfi -i nullsrc=s=1200x900:rate=5,geq=random(1)*255:128:128 -t 1 \
             -c:v libx264 -preset ultrafast -pix_fmt yuv420p",
        );
        let prepared = p
            .prepare(
                "noise.mp4",
                MediaKind::Video,
                &video,
                Needs { audio: true, frames: Some(2.0), max_secs: None, max_frames: None },
            )
            .await
            .unwrap();
        assert_eq!(prepared.frames.len(), 2);
        for f in &prepared.frames {
            assert!(
                f.jpeg.len() <= limits.max_image_bytes
                    && u64::from(f.width) * u64::from(f.height) <= limits.max_image_pixels
            );
            assert!((f.scale - 1200.0 / f64::from(f.width)).abs() < 1e-9);
        }
        fx.assert_no_leftovers();
    }

    #[tokio::test]
    async fn bad_input_gives_an_error_naming_the_file_and_leaves_nothing_behind() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        let mp4 = clip(&fx, 2);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let random: Vec<u8> = (0..50_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut corrupt = b"ftypisom".to_vec();
        corrupt.splice(0..0, [0, 0, 0, 0x20]);
        corrupt.extend_from_slice(&random[..4000]);
        let cases: Vec<(&str, MediaKind, Vec<u8>)> = vec![
            ("empty.mp3", MediaKind::Audio, Vec::new()),
            ("truncated.mp4", MediaKind::Video, mp4[..mp4.len() / 2].to_vec()),
            ("corrupt.mp4", MediaKind::Video, corrupt),
            ("random.bin", MediaKind::Unknown, random),
            ("notes.txt", MediaKind::Text, b"hello, this is text and not a video at all\n".repeat(40)),
        ];
        for (name, kind, bytes) in cases {
            let err = p
                .prepare(name, kind, &bytes, Needs { audio: true, frames: Some(3.0), max_secs: None, max_frames: None })
                .await
                .map(|p| p.kind)
                .expect_err(name);
            let expected = match name {
                "empty.mp3" => matches!(err, MediaError::Empty { .. }),
                "random.bin" | "notes.txt" => matches!(err, MediaError::Unsupported { .. }),
                _ => matches!(err, MediaError::Corrupt { .. }),
            };
            assert!(expected, "{name}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(name), "{msg}");
            assert!(!msg.contains(&fx.temp_root.path().display().to_string()), "{msg}");
            println!("{msg}");
        }
        // A time limit that is always exceeded.
        let slow = fx.preparer(MediaLimits { ffmpeg_timeout: Duration::from_millis(1), ..MediaLimits::default() });
        let err = slow.prepare("clip.mp4", MediaKind::Video, &mp4, AUDIO).await.unwrap_err();
        assert!(matches!(err, MediaError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("took longer than"));
        fx.assert_no_leftovers();
    }

    /// Prints how long `prepare` takes for a minute of speech-like mp3 and a minute of 640x480 video.
    #[tokio::test]
    async fn timing_of_one_minute_sources() {
        let fx = Fixture::new();
        let p = fx.preparer(MediaLimits::default());
        let wav = fx.media.path().join("speech.wav");
        let text = "The quick brown fox jumps over the lazy dog. I am really pleased with how this turned out, \
                    but I was worried yesterday. ";
        let ok = Command::new("espeak-ng").arg("-w").arg(&wav).arg(text.repeat(2)).status().unwrap();
        assert!(ok.success());
        let mp3 =
            fx.make("speech.mp3", &format!("-stream_loop -1 -i {} -t 60 -ar 16000 -c:a libmp3lame", wav.display()));
        let started = std::time::Instant::now();
        let prepared = p.prepare("speech.mp3", MediaKind::Audio, &mp3, AUDIO).await.unwrap();
        let audio_time = started.elapsed();
        let secs = prepared.audio.unwrap().duration_secs();
        assert!((secs - 60.0).abs() < 1.2, "{secs}");

        let mp4 = fx.make(
            "minute.mp4",
            "-f lavfi -i testsrc2=size=640x480:rate=25 -f lavfi -i sine=frequency=300:sample_rate=44100 -t 60 \
             -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac",
        );
        let started = std::time::Instant::now();
        let prepared = p
            .prepare(
                "minute.mp4",
                MediaKind::Video,
                &mp4,
                Needs { audio: true, frames: Some(3.0), max_secs: None, max_frames: None },
            )
            .await
            .unwrap();
        let video_time = started.elapsed();
        assert_eq!(prepared.frames.len(), 180);
        println!(
            "TIMING prepare: 60 s speech mp3 ({} bytes) -> PCM in {:?}; \
             60 s 640x480 25 fps mp4 ({} bytes) -> audio + 180 frames at 3 fps in {:?}",
            mp3.len(),
            audio_time,
            mp4.len(),
            video_time
        );
    }
}
