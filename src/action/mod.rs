//! The workflow action "Hume Expression Measurement": its manifest, how builder input is
//! parsed, idempotent starts, and its handlers.

pub mod handlers;
pub mod idempotency;
pub mod input;
pub mod manifest;
