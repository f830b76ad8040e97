//! The durable engine behind the `local` and `hume` backends: workers claim stored jobs, run
//! each source through the pipeline (fetch -> media -> analyzers -> predictions), store the
//! outcome and call back.
//!
//! Where each step of a source's journey lives:
//! - [`pipeline`]: one job, source by source, and the assembly of v0 predictions;
//! - `crate::fetch`: the SSRF-safe download of a URL;
//! - `crate::media`: what a file is, archives, and ffmpeg preparation (PCM audio, JPEG frames);
//! - `crate::analyzers`: one analyzer per model, on the runner the configuration chose;
//! - [`budget`]: what a job's sources have used of its budgets, shared while they run;
//! - [`worker`]: claiming, recovery after a stop, storing the end state;
//! - [`callback`]: telling `callback_url` that the job ended.

pub mod budget;
pub mod callback;
pub mod pipeline;
pub mod worker;
