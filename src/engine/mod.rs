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
//! - [`callback`]: telling `callback_url` that the job ended;
//! - [`lease`]: renewing the claim on a job or a callback while its work runs;
//! - [`give_back_memory`]: the heap a large job or read freed goes back to the system.

pub mod budget;
pub mod callback;
pub mod lease;
pub mod pipeline;
pub mod worker;

/// Returns freed heap to the operating system. glibc keeps what a large job or a large read of
/// predictions freed for reuse, so without this the process would stay at its peak.
#[allow(unsafe_code)] // the FFI call below; nothing else in the crate is unsafe
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
