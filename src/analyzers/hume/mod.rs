//! Hume's v1 API as the runner of face, prosody and burst (the `hume` backend).
//!
//! v1 takes uploads only, at most 25 MB a request: [`voice`] sends the source's 16 kHz PCM in as
//! few WAV chunks as that allows (cut in silence, times shifted back onto the source's
//! timeline), and one measurement serves both prosody and burst; [`face`] sends JPEG frames in
//! as few requests as fit, carrying `face_state` so face ids continue across requests.
//! [`mapping`] turns v1's answers into v0's shapes.

pub mod face;
pub mod mapping;
pub mod voice;
