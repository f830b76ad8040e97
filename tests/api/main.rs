//! The integration tests: one binary, the app on port 0, Hume faked by wiremock.

mod action;
mod engine;
mod helpers;
mod manifest;
mod operations;
mod passthrough;
mod ratelimit;
mod recovery;
mod retries;
mod sdk;
