//! One job's budgets while it runs: what its sources have used of each per-job limit, shared by
//! the sources measured at once.
//!
//! A source takes what it needs before the work is done (text bytes and segments before scoring,
//! a media duration once probed, frames once extracted); what does not fit becomes that source's
//! error naming the limit, the job's total as it would have been, and the setting, and the
//! other sources go on.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::budget::{Budgets, Limit, LimitExceeded};

/// The running totals of one job.
pub struct JobBudget {
    budgets: Budgets,
    sources: AtomicU64,
    text_bytes: AtomicU64,
    segments: AtomicU64,
    media_secs: AtomicU64,
    frames: AtomicU64,
}

impl JobBudget {
    /// A job under `budgets` whose `sources` inputs were counted at intake.
    pub fn new(budgets: Budgets, sources: u64) -> Self {
        Self {
            budgets,
            sources: AtomicU64::new(sources),
            text_bytes: AtomicU64::default(),
            segments: AtomicU64::default(),
            media_secs: AtomicU64::default(),
            frames: AtomicU64::default(),
        }
    }

    /// The budgets the job runs under.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    fn counter(&self, limit: Limit) -> Option<&AtomicU64> {
        match limit {
            Limit::JobSources => Some(&self.sources),
            Limit::JobTextBytes => Some(&self.text_bytes),
            Limit::JobSegments => Some(&self.segments),
            Limit::JobMediaSecs => Some(&self.media_secs),
            Limit::JobFrames => Some(&self.frames),
            _ => None,
        }
    }

    fn max(&self, limit: Limit) -> u64 {
        self.budgets.max(limit).unwrap_or(u64::MAX)
    }

    /// What the job has used of a per-job `limit`.
    pub fn used(&self, limit: Limit) -> u64 {
        self.counter(limit).map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// What is left of a per-job `limit`.
    pub fn left(&self, limit: Limit) -> u64 {
        self.max(limit).saturating_sub(self.used(limit))
    }

    /// Checks one source's `seen` against a per-source `limit` (text item bytes, media duration).
    pub fn per_source(&self, limit: Limit, seen: u64, file: &str) -> Result<(), LimitExceeded> {
        let max = self.max(limit);
        match seen > max {
            true => Err(LimitExceeded::new(limit, max, seen, file)),
            false => Ok(()),
        }
    }

    /// Takes `amount` of a per-job `limit`, all or nothing; when it does not fit, the limit with
    /// the job's total as it would have been.
    pub fn take(&self, limit: Limit, amount: u64, file: &str) -> Result<(), LimitExceeded> {
        let (granted, over) = self.take_some(limit, amount, file, false);
        match over {
            Some(e) => Err(e),
            None => {
                debug_assert_eq!(granted, amount);
                Ok(())
            }
        }
    }

    /// Takes as much of `amount` as is left: what was granted, and the limit when not all was.
    pub fn take_up_to(&self, limit: Limit, amount: u64, file: &str) -> (u64, Option<LimitExceeded>) {
        self.take_some(limit, amount, file, true)
    }

    fn take_some(&self, limit: Limit, amount: u64, file: &str, partial: bool) -> (u64, Option<LimitExceeded>) {
        let Some(counter) = self.counter(limit) else { return (amount, None) };
        let max = self.max(limit);
        let (mut granted, mut seen) = (0, 0);
        let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            seen = used.saturating_add(amount);
            granted = match seen <= max {
                true => amount,
                false if partial => max.saturating_sub(used),
                false => 0,
            };
            Some(used + granted)
        });
        (granted, (granted < amount).then(|| LimitExceeded::new(limit, max, seen, file)))
    }

    /// Gives back what a source took but did not use.
    pub fn give_back(&self, limit: Limit, amount: u64) {
        if let Some(counter) = self.counter(limit) {
            let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| Some(used.saturating_sub(amount)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_are_all_or_nothing_or_as_much_as_is_left_and_name_the_total() {
        let budget = JobBudget::new(Budgets { job_sources: 5, job_frames: 10, ..Budgets::default() }, 3);
        assert_eq!(budget.left(Limit::JobSources), 2);
        let e = budget.take(Limit::JobSources, 3, "a.zip").unwrap_err();
        assert_eq!((e.max, e.seen, e.limit.setting()), (5, 6, "HUME_ACTION_MAX_JOB_SOURCES"));
        assert_eq!(budget.used(Limit::JobSources), 3, "nothing was taken");
        assert!(budget.take(Limit::JobFrames, 7, "v.mp4").is_ok());
        let (granted, over) = budget.take_up_to(Limit::JobFrames, 5, "w.mp4");
        assert_eq!((granted, over.map(|e| e.seen)), (3, Some(12)));
        assert_eq!(budget.left(Limit::JobFrames), 0);
        budget.give_back(Limit::JobFrames, 4);
        assert_eq!(budget.left(Limit::JobFrames), 4);
        assert!(budget.per_source(Limit::SourceMediaSecs, 3_601, "long.wav").is_err());
    }
}
