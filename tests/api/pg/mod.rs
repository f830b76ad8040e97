//! The tests that need a real PostgreSQL ([`server::Postgres`]): the store, replicas of the real
//! binary, and the `hume-batch` backend's idempotency claims.

mod batch;
mod replicas;
mod server;
mod store;

pub use server::Postgres;
