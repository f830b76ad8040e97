//! The workflow action "Hume Expression Measurement": its manifest (the single source of
//! defaults and help text) and how builder input is parsed into a job request. It speaks no HTTP:
//! the handlers are in `crate::http::action`.

pub mod input;
pub mod manifest;
