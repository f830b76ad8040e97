//! The few numeric loops of `hume-action`'s embedded models that candle does slowly on a CPU, in
//! a crate of its own so they run optimised even in the test profile, where `hume-action` itself
//! is not (this crate is built at opt-level 3 there, like candle; see the root `Cargo.toml`).
//!
//! - [`float16`]: float16 weights times a few f32 rows, reading each weight once (a decoding step).
//! - [`activation`]: softmax over rows and GELU with an exponential the compiler vectorises;
//!   candle's call the C library's `expf` and `tanhf` one value at a time, which made them a
//!   third of Whisper's encoder.

pub mod activation;
pub mod float16;
