//! `hume-action`: the server behind the "Hume Expression Measurement" workflow action.
//!
//! A request travels one way: `http` (routes, errors) -> `action` (builder input) ->
//! `backend` (where the job runs) -> `upstream` (Hume, with retries and rate limit) or the local
//! engine (`jobs`, `fetch`, `media`, `models`). `startup` wires it together.

pub mod action;
pub mod app;
pub mod backend;
pub mod config;
pub mod fetch;
pub mod http;
pub mod jobs;
pub mod media;
pub mod models;
pub mod startup;
pub mod telemetry;
pub mod upstream;
