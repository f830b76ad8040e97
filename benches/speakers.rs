//! Diarization speed, by hand: `cargo bench --bench speakers [-- MINUTES...]` (default 1 and 5).
//! For each length, a dialogue of two espeak-ng voices (`en-us`, `en-us+Annie`) speaking
//! `assets/speakers/call.txt` in turn, repeated at other speeds up to that length, is diarized by the embedded model
//! (Silero VAD + CAM++ + spectral clustering); prints seconds per minute of audio, the
//! speakers found and the DER (0.25 s collar), and the RSS the speaker model adds at load.
//! Asserts nothing. Needs espeak-ng, ffmpeg and the models (`scripts/install-models.sh`).

mod support;

fn main() {
    let minutes: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let minutes = if minutes.is_empty() { vec![1.0, 5.0] } else { minutes };
    support::diarization(&minutes);
    println!("peak RSS {:.0} MB", support::memory_of("self").1);
}
