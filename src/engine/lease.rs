//! Keeping a claim alive while its work runs: a job's lease while a worker runs it, a
//! callback's while it is delivered.
//!
//! Why: with several replicas on one PostgreSQL, a claim that is not renewed within the lease
//! is taken over by another replica (its owner is presumed dead). So the owner renews it every
//! third of the lease, and stops its work at once when a renewal says the claim is gone, or
//! when the store cannot be reached long enough that the claim may have expired: past that
//! point another replica may be doing the same work, and the fenced store refuses our writes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::StoreError;

/// Renews a claim every `lease / 3` with `renew` (`Ok(false)`: the claim is lost) until it is
/// lost; resolves then, never otherwise. Run it beside the work (`tokio::select!`) and drop it
/// when the work ends.
pub async fn hold<F, Fut>(lease: Duration, what: &str, renew: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, StoreError>>,
{
    let every = lease / 3;
    // The claim was taken (or renewed) just before this started.
    let mut held_until = Instant::now() + lease;
    loop {
        tokio::time::sleep(every).await; // the renewal period itself, not a wait on state
        let asked = Instant::now();
        match renew().await {
            Ok(true) => held_until = asked + lease,
            Ok(false) => {
                tracing::warn!("{what}: another replica took it over; abandoning it");
                return;
            }
            Err(e) if Instant::now() + every >= held_until => {
                tracing::warn!(error = %e, "{what}: the claim could not be renewed before it expires; abandoning it");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "{what}: could not renew the claim; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn renews_until_the_claim_is_lost() {
        let calls = AtomicUsize::new(0);
        hold(Duration::from_secs(30), "test", || async { Ok(calls.fetch_add(1, Ordering::SeqCst) < 4) }).await;
        assert_eq!(calls.load(Ordering::SeqCst), 5, "four renewals, then the loss");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_store_is_unreachable_until_the_lease_could_expire() {
        let start = Instant::now();
        hold(Duration::from_secs(30), "test", || async { Err(StoreError::Misuse("down".into())) }).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(20) && waited < Duration::from_secs(30), "{waited:?}");
    }
}
