//! Job ends as they happen, for the requests waiting on them (`GET /v1/jobs/{id}/summary?wait=`,
//! the action's `wait_seconds`), so that a waiting request costs an idle task, not a poll.
//!
//! A waiter [`JobEnds::watch`]es a job before it reads the job's state, then sleeps until the job's
//! end is announced or its own deadline passes. The store announces every end it writes; on
//! PostgreSQL every replica also listens for the ends the others write (`NOTIFY`), and when that
//! listening was interrupted it wakes every waiter to read its job again, so none misses an end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Per job id: the signal its end sends, and how many wait on it.
type Waiting = Arc<Mutex<HashMap<String, (Arc<Notify>, usize)>>>;

/// The jobs someone is waiting on, each with the signal its end sends.
#[derive(Default)]
pub struct JobEnds {
    waiting: Waiting,
}

/// One waiter's hold on a job's end signal; let go when dropped.
pub struct EndWatch {
    id: String,
    notify: Arc<Notify>,
    waiting: Waiting,
}

impl JobEnds {
    /// Starts watching job `id`'s end.
    pub fn watch(&self, id: &str) -> EndWatch {
        let mut waiting = self.waiting.lock().expect("the waiters' lock is never poisoned");
        let (notify, count) = waiting.entry(id.to_owned()).or_insert_with(|| (Arc::new(Notify::new()), 0));
        *count += 1;
        crate::telemetry::metrics::summary_waits(1.0);
        EndWatch { id: id.to_owned(), notify: notify.clone(), waiting: self.waiting.clone() }
    }

    /// Announces that job `id` ended: its waiters wake.
    pub fn ended(&self, id: &str) {
        let waiting = self.waiting.lock().expect("the waiters' lock is never poisoned");
        if let Some((notify, _)) = waiting.get(id) {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter to read its job again (announcements may have been missed).
    pub fn wake_all(&self) {
        let waiting = self.waiting.lock().expect("the waiters' lock is never poisoned");
        for (notify, _) in waiting.values() {
            notify.notify_waiters();
        }
    }

    /// How many jobs are being waited on.
    pub fn watched(&self) -> usize {
        self.waiting.lock().expect("the waiters' lock is never poisoned").len()
    }
}

impl EndWatch {
    /// The next announcement of the job's end (or a wake-up of all). Enable it before reading the
    /// job's state, so an end announced in between is not missed.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for EndWatch {
    fn drop(&mut self) {
        crate::telemetry::metrics::summary_waits(-1.0);
        let mut waiting = self.waiting.lock().expect("the waiters' lock is never poisoned");
        if let Some((_, count)) = waiting.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_end_wakes_its_waiters_and_nobody_else() {
        let ends = JobEnds::default();
        let (a, b) = (ends.watch("a"), ends.watch("b"));
        let (mut wake_a, mut wake_b) = (Box::pin(a.notified()), Box::pin(b.notified()));
        wake_a.as_mut().enable();
        wake_b.as_mut().enable();
        ends.ended("a");
        wake_a.await;
        assert!(futures::poll!(wake_b.as_mut()).is_pending(), "b did not end");
        assert_eq!(ends.watched(), 2);
        drop(a);
        assert_eq!(ends.watched(), 1, "a's entry goes with its last watcher");
        ends.wake_all();
        wake_b.await;
    }
}
