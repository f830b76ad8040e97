//! Embedded open models, one folder per modality. They know nothing of jobs or HTTP.

pub mod burst;
pub mod face;
pub mod language;
pub mod segment;
pub mod speakers;
pub mod speech;
