//! `hume-action`: the server behind the "Hume Expression Measurement" workflow action.
//!
//! A request travels one way, from the edge down: `http` (routes, handlers, error answers) ->
//! `action` (builder input) -> `idempotency` -> `backend` (where the job runs) -> `upstream`
//! (Hume v0 pass-through) or the durable `engine`, which runs each source through `fetch`,
//! `media` and the `analyzers` (embedded `models` or Hume v1) into typed `predictions`, kept in
//! the `store`. `intake` holds every job to its budgets before it is accepted; `job` holds the
//! domain types everything shares; `startup` wires it together.

pub mod action;
pub mod analyzers;
pub mod app;
pub mod backend;
pub mod budget;
pub mod config;
pub mod engine;
pub mod error;
pub mod error_code;
pub mod fetch;
pub mod http;
pub mod idempotency;
pub mod intake;
pub mod job;
pub mod media;
pub mod models;
pub mod predictions;
pub mod sealed;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod upstream;
