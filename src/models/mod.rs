//! Embedded open models, one folder per modality. They know nothing of jobs or HTTP.

pub mod language;
pub mod segment;
