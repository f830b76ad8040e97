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

use crate::upstream::UpstreamError;

/// A v1 failure as one sentence for the source's errors: Hume's code and request id kept, and
/// for 401/403 the likely cause (v1 is in limited release).
pub fn describe_v1_error(file: &str, error: &UpstreamError) -> String {
    match error {
        UpstreamError::Rejected { status: status @ (401 | 403), message, .. } => format!(
            "{file}: Hume v1 refused the API key ({status}: {message}). The key may lack access to Hume's v1 Expression Measurement API, which is in limited release: ask Hume for access, or use HUME_ACTION_BACKEND=local."
        ),
        other => format!("{file}: {other}"),
    }
}
