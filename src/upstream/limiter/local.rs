//! The in-process sliding-window limiter: one server's own count, when no Redis is configured.
//!
//! Hume counts requests by arrival, and we cannot see when a request arrived, only when it left
//! and when its answer came back. So a slot is taken when a request leaves and is given back one
//! full window after its response came back: whatever the transit jitter, no window at Hume can
//! hold more than `limit` of our requests. A burst up to the limit goes out at once; later calls
//! wait in FIFO order. (GCRA, as in `governor`'s `Quota::per_minute(50)`, would let a full burst
//! *plus* a window's worth of refill through in the first window: about twice the limit.)

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{LimiterKey, Permit, RateLimiter, Refused};

/// Keys kept before idle ones are swept out of the map.
const IDLE_SWEEP_AT: usize = 1024;

/// The in-process sliding-window limiter.
pub struct SlidingWindowLimiter {
    limit: usize,
    window: Duration,
    max_wait: Duration,
    keys: Mutex<HashMap<LimiterKey, Arc<KeyQueue>>>,
}

/// One key's slots and queue.
struct KeyQueue {
    /// Held by the head of the queue; tokio's mutex is fair, so waiters are served FIFO.
    head: tokio::sync::Mutex<()>,
    slots: Mutex<Slots>,
    /// Signalled when an in-flight request gives its slot a release time.
    released: Notify,
    /// Callers that have not yet got their permit (the head included).
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Slots {
    /// Requests sent whose response has not come back yet.
    in_flight: usize,
    /// When each finished request's slot frees up, ascending.
    frees_at: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Slots {
    fn forget_expired(&mut self, now: Instant) {
        while self.frees_at.front().is_some_and(|t| *t <= now) {
            self.frees_at.pop_front();
        }
    }

    /// Nothing in flight, nothing counted in the window, no pause: forgetting it changes nothing.
    fn is_idle(&self, now: Instant) -> bool {
        self.in_flight == 0 && self.frees_at.back().is_none_or(|t| *t <= now) && self.paused_at(now).is_none()
    }

    fn used(&self) -> usize {
        self.in_flight + self.frees_at.len()
    }

    fn paused_at(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|t| *t > now)
    }

    /// When the caller at `position` in the queue (0 = head) can expect its slot. In-flight
    /// requests are assumed to answer at once, so this is a lower bound.
    fn estimate(&self, position: usize, now: Instant, limit: usize, window: Duration) -> Instant {
        let free_now = limit.saturating_sub(self.used());
        let slot_times = std::iter::repeat_n(now, free_now)
            .chain(self.frees_at.iter().copied())
            .chain(std::iter::repeat_n(now + window, self.in_flight));
        let base = slot_times.clone().nth(position % limit).unwrap_or(now);
        let rounds = u32::try_from(position / limit).unwrap_or(u32::MAX);
        let at = base + window.saturating_mul(rounds);
        at.max(self.paused_at(now).unwrap_or(now))
    }
}

impl SlidingWindowLimiter {
    /// At most `limit` requests per key in any `window`; refuse calls that would wait over `max_wait`.
    pub fn new(limit: u32, window: Duration, max_wait: Duration) -> Self {
        Self { limit: limit.max(1) as usize, window, max_wait, keys: Mutex::default() }
    }

    fn queue(&self, key: &LimiterKey) -> Arc<KeyQueue> {
        let mut keys = self.keys.lock().expect("limiter map poisoned");
        if !keys.contains_key(key) && keys.len() >= IDLE_SWEEP_AT {
            // Forget keys nobody is using, so callers cannot grow the map without bound.
            let now = Instant::now();
            keys.retain(|_, q| {
                Arc::strong_count(q) > 1 || !q.slots.lock().expect("limiter slots poisoned").is_idle(now)
            });
        }
        keys.entry(key.clone())
            .or_insert_with(|| {
                Arc::new(KeyQueue {
                    head: tokio::sync::Mutex::new(()),
                    slots: Mutex::default(),
                    released: Notify::new(),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn permit(&self, queue: Arc<KeyQueue>) -> Permit {
        let window = self.window;
        Permit::new(move || {
            let mut slots = queue.slots.lock().expect("limiter slots poisoned");
            slots.in_flight -= 1;
            slots.frees_at.push_back(Instant::now() + window);
            drop(slots);
            queue.released.notify_one();
        })
    }
}

/// Decrements the waiting count however the wait ends (granted, refused or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl RateLimiter for SlidingWindowLimiter {
    async fn acquire(&self, key: &LimiterKey) -> Result<Permit, Refused> {
        let queue = self.queue(key);
        let position = queue.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&queue.waiting);
        {
            let now = Instant::now();
            let mut slots = queue.slots.lock().expect("limiter slots poisoned");
            slots.forget_expired(now);
            let wait = slots.estimate(position, now, self.limit, self.window) - now;
            if wait > self.max_wait {
                return Err(Refused::QueueFull { retry_after: wait });
            }
        }
        let _head = queue.head.lock().await;
        loop {
            let released = queue.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let next_change = {
                let now = Instant::now();
                let mut slots = queue.slots.lock().expect("limiter slots poisoned");
                slots.forget_expired(now);
                match slots.paused_at(now) {
                    Some(until) => Some(until),
                    None if slots.used() < self.limit => {
                        slots.in_flight += 1;
                        drop(slots);
                        drop(waiting);
                        return Ok(self.permit(queue.clone()));
                    }
                    None => slots.frees_at.front().copied(),
                }
            };
            match next_change {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = &mut released => {}
                },
                None => released.await,
            }
        }
    }

    fn pause(&self, key: &LimiterKey, duration: Duration) {
        let queue = self.queue(key);
        let mut slots = queue.slots.lock().expect("limiter slots poisoned");
        let until = Instant::now() + duration;
        slots.paused_until = Some(slots.paused_until.map_or(until, |t| t.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LimiterKey {
        LimiterKey::of(&crate::config::Secret::from("k").hash())
    }

    /// Grants `n` acquisitions made in order and returns their grant times (virtual clock).
    async fn grant_times(limiter: Arc<SlidingWindowLimiter>, n: usize, hold: Duration) -> Vec<(usize, Instant)> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..n {
            let (limiter, tx) = (limiter.clone(), tx.clone());
            tokio::spawn(async move {
                let permit = limiter.acquire(&key()).await.expect("queued");
                tx.send((i, Instant::now())).unwrap();
                tokio::time::sleep(hold).await;
                drop(permit);
            });
            tokio::task::yield_now().await; // let task i join the queue before task i+1
        }
        drop(tx);
        let mut out = Vec::new();
        while let Some(x) = rx.recv().await {
            out.push(x);
        }
        out
    }

    fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
        times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < *t + window).count()).max().unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn burst_goes_at_once_then_fifo_one_window_after_each_response() {
        let window = Duration::from_secs(2);
        let limiter = Arc::new(SlidingWindowLimiter::new(10, window, Duration::from_secs(600)));
        let start = Instant::now();
        let hold = Duration::from_millis(100); // each request takes 100 ms to answer
        let granted = grant_times(limiter, 100, hold).await;
        let order: Vec<usize> = granted.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>(), "FIFO");
        let times: Vec<Instant> = granted.iter().map(|(_, t)| *t).collect();
        assert!(times[..10].iter().all(|t| *t == start), "the first 10 go at once");
        assert_eq!(times[10] - start, hold + window, "slot frees a window after the response");
        // Judged against arrival at upstream anywhere between send and response:
        let late_arrivals: Vec<Instant> = times.iter().map(|t| *t + hold).collect();
        assert!(max_in_any_window(&times, window) <= 10);
        assert!(max_in_any_window(&[&times[..50], &late_arrivals[50..]].concat(), window) <= 10);
        let total = times[99] - start;
        assert_eq!(total, (hold + window) * 9, "sustained rate is limit per (window + latency)");
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_calls_that_would_wait_too_long_with_an_estimate() {
        let window = Duration::from_secs(2);
        let limiter = SlidingWindowLimiter::new(2, window, Duration::from_secs(3));
        let held: Vec<Permit> = vec![limiter.acquire(&key()).await.unwrap(), limiter.acquire(&key()).await.unwrap()];
        drop(held);
        // Two slots free at +2 s; a third and fourth caller would get them then; the fifth at +4 s.
        let limiter = Arc::new(limiter);
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire(&key()).await.map(drop) })
            })
            .collect();
        tokio::task::yield_now().await;
        let refused = limiter.acquire(&key()).await.err().expect("would wait 4 s > 3 s");
        assert_eq!(refused, Refused::QueueFull { retry_after: Duration::from_secs(4) });
        for q in queued {
            q.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_request_of_that_key_only() {
        let limiter = SlidingWindowLimiter::new(10, Duration::from_secs(1), Duration::from_secs(60));
        let start = Instant::now();
        limiter.pause(&key(), Duration::from_secs(5));
        drop(limiter.acquire(&LimiterKey::of(&crate::config::Secret::from("other").hash())).await.unwrap());
        assert_eq!(Instant::now(), start);
        drop(limiter.acquire(&key()).await.unwrap());
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let limiter = Arc::new(SlidingWindowLimiter::new(1, Duration::from_secs(10), Duration::from_secs(15)));
        let _held = limiter.acquire(&key()).await.unwrap();
        let l = limiter.clone();
        let waiter = tokio::spawn(async move { l.acquire(&key()).await.map(drop) });
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(limiter.queue(&key()).waiting.load(Ordering::SeqCst), 0);
    }
}
