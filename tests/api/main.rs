//! The integration tests: one binary, the app on port 0, Hume faked by wiremock.

mod action;
mod bounds;
mod connections;
mod deadlines;
mod early_answers;
mod engine;
mod fake_v1;
mod helpers;
mod hume;
mod local_media;
mod manifest;
mod media_files;
mod metrics;
mod openapi;
mod operations;
mod passthrough;
mod pg;
mod ratelimit;
mod recovery;
mod redis_server;
mod retries;
mod sdk;
mod shared_limits;
mod slow_host;
mod storage;
mod summary;
