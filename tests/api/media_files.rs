//! Media the tests make themselves with real tools: speech from `espeak-ng`, video and images
//! from ffmpeg's test sources, archives of them, and broken files. Made once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

/// The files, in a directory that lives as long as the test binary.
pub struct MediaFiles {
    dir: PathBuf,
    _keep: tempfile::TempDir,
}

/// Every test's media, made on first use.
pub static MEDIA: LazyLock<MediaFiles> = LazyLock::new(MediaFiles::make);

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by the tests (scripts/test.sh installs it): {e}"));
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    run("ffmpeg", &all);
}

/// The sentence spoken in `speech.mp3`.
pub const SPEECH: &str =
    "This is the third time my order is late. I am really upset, and I want to speak to a manager now.";

/// The sentence spoken in `angry.mp3`.
pub const ANGRY: &str = "I am furious! This is outrageous, and I am so angry with you.";

/// The calm start of `rising.mp3`: quiet and low (espeak-ng `-a 40 -p 30`).
pub const CALM_START: &str =
    "Good morning. I am calling about my order from last week. It was supposed to arrive on Monday.";

/// The raised end of `rising.mp3`: loud and high (espeak-ng `-a 190 -p 90`).
pub const RAISED_END: &str = "It still has not arrived. I have called you three times this week!";

impl MediaFiles {
    fn make() -> Self {
        let keep = tempfile::tempdir().unwrap();
        let dir = keep.path().to_owned();
        let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
        run("espeak-ng", &["-w", &p("speech.wav"), SPEECH]);
        ffmpeg(&["-i", &p("speech.wav"), "-ac", "1", "-b:a", "64k", &p("speech.mp3")]);
        run("espeak-ng", &["-w", &p("angry.wav"), ANGRY]);
        ffmpeg(&["-i", &p("angry.wav"), "-ac", "1", "-b:a", "64k", &p("angry.mp3")]);
        // A call whose voice gets louder and higher: the same voice, raised for the last sentences.
        run("espeak-ng", &["-a", "40", "-p", "30", "-w", &p("calm-start.wav"), CALM_START]);
        run("espeak-ng", &["-a", "190", "-p", "90", "-w", &p("raised-end.wav"), RAISED_END]);
        ffmpeg(&[
            "-i",
            &p("calm-start.wav"),
            "-i",
            &p("raised-end.wav"),
            "-filter_complex",
            "[0:a][1:a]concat=n=2:v=0:a=1[out]",
            "-map",
            "[out]",
            "-ac",
            "1",
            "-b:a",
            "64k",
            &p("rising.mp3"),
        ]);
        // A video with a talking track: 640x480 test pattern at 25 fps, as long as the speech.
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=25",
            "-i",
            &p("speech.wav"),
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            &p("talk.mp4"),
        ]);
        ffmpeg(&["-f", "lavfi", "-i", "testsrc2=size=800x600", "-frames:v", "1", &p("photo.png")]);
        ffmpeg(&["-f", "lavfi", "-i", "testsrc2=size=800x600", "-frames:v", "1", &p("photo.jpg")]);
        // 14 minutes of speech and pauses: longer than one 25 MB v1 request (about 13 min).
        ffmpeg(&["-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "3", &p("pause.wav")]);
        ffmpeg(&[
            "-i",
            &p("speech.wav"),
            "-i",
            &p("pause.wav"),
            "-filter_complex",
            "[0:a]aresample=22050[s];[s][1:a]concat=n=2:v=0:a=1[out]",
            "-map",
            "[out]",
            &p("phrase.wav"),
        ]);
        ffmpeg(&["-stream_loop", "-1", "-i", &p("phrase.wav"), "-t", "840", "-ac", "1", "-b:a", "32k", &p("long.mp3")]);
        ffmpeg(&["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "5", &p("silence.wav")]);
        let speech = std::fs::read(p("speech.mp3")).unwrap();
        std::fs::write(p("corrupt.mp3"), [&b"ID3\x03\x00\x00\x00\x00\x00\x00"[..], &[0x5a; 4000]].concat()).unwrap();
        std::fs::write(p("truncated.mp4"), &std::fs::read(p("talk.mp4")).unwrap()[..2000]).unwrap();
        std::fs::write(p("empty.mp3"), b"").unwrap();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in
            [("calls/speech.mp3", speech), ("photos/photo.jpg", std::fs::read(p("photo.jpg")).unwrap())]
        {
            zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, &bytes).unwrap();
        }
        std::fs::write(p("bundle.zip"), zip.finish().unwrap().into_inner()).unwrap();
        Self { dir, _keep: keep }
    }

    /// A file's bytes.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// A file's path.
    pub fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(name)
    }
}
