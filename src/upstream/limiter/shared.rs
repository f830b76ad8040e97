//! The fleet's sliding-window limiter, counted in Redis (`HUME_ACTION_REDIS_URL`), so that any
//! number of replicas sharing one API key stay under Hume's limit together.
//!
//! The bookkeeping is the in-process limiter's, done by atomic Lua scripts (`shared.lua`) on
//! Redis's clock: a slot is taken when a request leaves (counted as held for the longest a
//! request may take, `hold`), and frees one window after its response came back.
//!
//! - **Fairness.** Within a replica, callers queue FIFO behind one head; only the head asks
//!   Redis. Across replicas, heads queue in Redis by arrival, and a free slot goes to the
//!   oldest head: no replica starves another.
//! - **Fail closed.** When Redis does not answer, nothing is sent: calls queue until it answers
//!   again, and a call that waited as long as a call may queue gets [`Refused::Unavailable`]
//!   (503 with `Retry-After`). Sending without the count could break the fleet's limit.
//! - **A Redis that lost its counts** (a restart without persistence): the counts carry an
//!   epoch. An empty Redis gets a new epoch and grants nothing for [`GRACE`], while every
//!   replica, noticing the new epoch within [`WATCH_EVERY`], puts back the slots it holds or
//!   held within the last window. Run Redis with `appendonly yes` to keep counts across restarts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use tokio::time::Instant;
use url::Url;

use super::{LimiterKey, Permit, RateLimiter, Refused};
use crate::config::Secret;

/// How long an empty Redis grants nothing, so that every replica re-seeds first.
pub const GRACE: Duration = Duration::from_millis(2500);
/// How often each replica checks Redis (its epoch, its health).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A head that has not asked Redis for this long has left the fleet's queue.
const STALE: Duration = Duration::from_secs(3);
/// The longest a head sleeps between questions to Redis.
const POLL_MAX: Duration = Duration::from_millis(250);
/// How soon a head asks again when another replica's head is first.
const POLL_TURN: Duration = Duration::from_millis(20);
/// One Redis call's time limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a call queues while Redis is unreachable (bounded by `HUME_MAX_QUEUE_WAIT_SECS`).
const OUTAGE_WAIT: Duration = Duration::from_secs(30);
/// The `Retry-After` of a call refused because Redis is unreachable.
const OUTAGE_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The scripts of `shared.lua`, each the text between its `-- @name` line and the next.
static SCRIPTS: LazyLock<HashMap<&'static str, Script>> = LazyLock::new(|| {
    let text = include_str!("shared.lua");
    let mut scripts = HashMap::new();
    for part in text.split("-- @").skip(1) {
        let (name, body) = part.split_once('\n').expect("a script has a body");
        scripts.insert(name.trim(), Script::new(body));
    }
    scripts
});

fn script(name: &str) -> &'static Script {
    SCRIPTS.get(name).unwrap_or_else(|| panic!("shared.lua has no @{name}"))
}

/// One process's link to the Redis that holds the fleet's counts: its connection, the epoch of
/// the counts it has seen, and its health for `/readyz`.
pub struct SharedLimits {
    redis: ConnectionManager,
    /// `host:port` of the Redis, for messages (never the password).
    address: String,
    /// This process, among the fleet's heads.
    replica: String,
    epoch: Mutex<String>,
    /// Why the last call to Redis failed, while it fails.
    outage: Mutex<Option<String>>,
    limiters: Mutex<Vec<Weak<RedisLimiter>>>,
}

impl SharedLimits {
    /// A link to the Redis at `url` (`redis://[:password@]host[:port][/db]`); connects lazily,
    /// so a replica starts even while Redis is down, and watches it from then on.
    pub fn new(url: &Secret) -> Result<Arc<Self>, String> {
        let address = Url::parse(url.expose())
            .ok()
            .map(|u| format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(6379)))
            .unwrap_or_else(|| "?".into());
        let client = redis::Client::open(url.expose())
            .map_err(|e| format!("HUME_ACTION_REDIS_URL is not a Redis URL (redis://host:port/): {}", e.category()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(1);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("Redis at {address}: {}", e.category()))?;
        let shared = Arc::new(Self {
            redis,
            address,
            replica: uuid::Uuid::new_v4().to_string(),
            epoch: Mutex::default(),
            outage: Mutex::default(),
            limiters: Mutex::default(),
        });
        let watched = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let Some(shared) = watched.upgrade() else { break };
                let _ = shared.check().await;
            }
        });
        Ok(shared)
    }

    /// Where the Redis is (`host:port`), for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Asks Redis for the counts' epoch (creating it in an empty Redis), re-seeds this
    /// replica's slots when it changed, and records the outcome for `/readyz`.
    pub async fn check(&self) -> Result<(), String> {
        let new_epoch = uuid::Uuid::new_v4().to_string();
        let epoch = self.call::<String>("epoch", &[EPOCH_KEY, GRACE_KEY], &[new_epoch, ms(GRACE).to_string()]).await?;
        self.follow_epoch(epoch).await
    }

    /// The outage under way, if any: what `/readyz` reports.
    pub fn outage(&self) -> Option<String> {
        self.outage.lock().expect("outage poisoned").clone()
    }

    /// A limiter over these counts: `namespace` keeps v0's and v1's budgets apart; `hold` is the
    /// longest a request may take (its slot counts that long until it is released).
    pub fn limiter(
        self: &Arc<Self>,
        namespace: &'static str,
        limit: u32,
        window: Duration,
        hold: Duration,
        max_wait: Duration,
    ) -> Arc<RedisLimiter> {
        let limiter = Arc::new(RedisLimiter {
            shared: self.clone(),
            namespace,
            limit: limit.max(1),
            window,
            hold,
            max_wait,
            keys: Mutex::default(),
        });
        let mut limiters = self.limiters.lock().expect("limiters poisoned");
        limiters.retain(|l| l.strong_count() > 0);
        limiters.push(Arc::downgrade(&limiter));
        limiter
    }

    /// Script `name` of `shared.lua` on `keys` and `args`, bounded in time; its failure is
    /// recorded as an outage.
    async fn call<T: redis::FromRedisValue>(&self, name: &str, keys: &[&str], args: &[String]) -> Result<T, String> {
        let mut invocation = script(name).prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut redis = self.redis.clone();
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut redis)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("Redis at {}: {}", self.address, describe(&e))),
            Err(_) => Err(format!("Redis at {} did not answer within {} s", self.address, CALL_TIMEOUT.as_secs())),
        };
        let mut outage = self.outage.lock().expect("outage poisoned");
        match (&outcome, outage.is_some()) {
            (Err(e), false) => {
                tracing::error!(error = %e, "the shared rate limit is unreachable; upstream calls wait for it");
                *outage = Some(e.clone());
            }
            (Err(e), true) => *outage = Some(e.clone()),
            (Ok(_), true) => {
                tracing::info!(redis = %self.address, "the shared rate limit is reachable again");
                *outage = None;
            }
            (Ok(_), false) => {}
        }
        outcome
    }

    /// Adopts `epoch`; when it is new to this replica, first puts back the slots it knows.
    async fn follow_epoch(&self, epoch: String) -> Result<(), String> {
        if *self.epoch.lock().expect("epoch poisoned") == epoch {
            return Ok(());
        }
        let limiters: Vec<Arc<RedisLimiter>> =
            self.limiters.lock().expect("limiters poisoned").iter().filter_map(Weak::upgrade).collect();
        for limiter in limiters {
            limiter.reseed().await?;
        }
        tracing::info!(redis = %self.address, "following the shared rate limit's counts (epoch {epoch})");
        *self.epoch.lock().expect("epoch poisoned") = epoch;
        Ok(())
    }
}

/// Where the counts' epoch lives.
const EPOCH_KEY: &str = "hume-action:limit:epoch";
/// Set for [`GRACE`] when the epoch is new: nobody is granted a slot meanwhile.
const GRACE_KEY: &str = "hume-action:limit:grace";

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A Redis error in words, without anything of its URL.
fn describe(e: &redis::RedisError) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.category()),
        None if e.is_io_error() || e.is_connection_refusal() => format!("cannot connect ({e})"),
        None => e.category().to_owned(),
    }
}

/// Runs a Redis call a `Drop` cannot wait for; none when no runtime is left (a process shutting
/// down): the call only tidies up, and Redis expires what it would have tidied.
fn in_background(call: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(call);
    }
}

/// Keys kept before idle ones are swept out of the map.
const IDLE_SWEEP_AT: usize = 1024;

/// One namespace's limiter (v0 or v1) over the shared counts.
pub struct RedisLimiter {
    shared: Arc<SharedLimits>,
    namespace: &'static str,
    limit: u32,
    window: Duration,
    hold: Duration,
    max_wait: Duration,
    keys: Mutex<HashMap<LimiterKey, Arc<KeyQueue>>>,
}

/// One key's queue in this replica, and the slots it holds or held within a window.
#[derive(Default)]
struct KeyQueue {
    /// Held by the head of the queue; tokio's mutex is fair, so waiters are served FIFO.
    head: tokio::sync::Mutex<()>,
    /// Callers that have not yet got their permit (the head included).
    waiting: AtomicUsize,
    /// The head's last known wait, in ms, for estimates.
    last_wait_ms: AtomicU64,
    /// Slot member → until when it counts (local clock): re-seeded if Redis loses them.
    live: Mutex<HashMap<String, Instant>>,
    /// A 429's pause, known here at once (Redis is told too).
    paused_until: Mutex<Option<Instant>>,
}

impl KeyQueue {
    fn live_now(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        let mut live = self.live.lock().expect("live slots poisoned");
        live.retain(|_, until| *until > now);
        live.iter().map(|(member, until)| (member.clone(), ms(*until - now))).collect()
    }
}

/// The Redis keys of one limiter key.
struct Keys {
    slots: String,
    pause: String,
    waiters: String,
    alive: String,
}

impl RedisLimiter {
    fn keys_of(&self, key: &LimiterKey) -> Keys {
        let base = format!("hume-action:limit:{}:{}", self.namespace, key.as_str());
        Keys {
            slots: format!("{base}:slots"),
            pause: format!("{base}:pause"),
            waiters: format!("{base}:waiters"),
            alive: format!("{base}:alive"),
        }
    }

    fn queue(&self, key: &LimiterKey) -> Arc<KeyQueue> {
        let mut keys = self.keys.lock().expect("limiter map poisoned");
        if !keys.contains_key(key) && keys.len() >= IDLE_SWEEP_AT {
            keys.retain(|_, q| Arc::strong_count(q) > 1 || !q.live_now().is_empty());
        }
        keys.entry(key.clone()).or_default().clone()
    }

    /// Puts back every slot this replica holds or held within a window, into a Redis that may
    /// have lost them.
    async fn reseed(&self) -> Result<(), String> {
        let queues: Vec<(LimiterKey, Arc<KeyQueue>)> =
            self.keys.lock().expect("limiter map poisoned").iter().map(|(k, q)| (k.clone(), q.clone())).collect();
        for (key, queue) in queues {
            let live = queue.live_now();
            if live.is_empty() {
                continue;
            }
            let args: Vec<String> = live.into_iter().flat_map(|(member, left)| [member, left.to_string()]).collect();
            self.shared.call::<i64>("reseed", &[&self.keys_of(&key).slots], &args).await?;
        }
        Ok(())
    }

    /// The permit of a granted slot: dropping it frees the slot one window later.
    fn permit(&self, queue: Arc<KeyQueue>, slots: String, member: String) -> Permit {
        let (shared, window) = (self.shared.clone(), self.window);
        Permit::new(move || {
            queue.live.lock().expect("live slots poisoned").insert(member.clone(), Instant::now() + window);
            // If Redis is unreachable (or the runtime is gone), the slot keeps counting for its
            // whole hold.
            in_background(async move {
                let _ = shared.call::<i64>("release", &[&slots], &[member, ms(window).to_string()]).await;
            });
        })
    }

    /// The head's loop: asks Redis until it grants a slot.
    async fn wait_as_head(&self, key: &LimiterKey, queue: &Arc<KeyQueue>) -> Result<Permit, Refused> {
        let keys = self.keys_of(key);
        let outage_wait = OUTAGE_WAIT.min(self.max_wait);
        let mut unreachable_since: Option<Instant> = None;
        loop {
            let paused = queue.paused_until.lock().expect("pause poisoned").filter(|t| *t > Instant::now());
            if let Some(until) = paused {
                tokio::time::sleep_until(until).await;
            }
            let member = uuid::Uuid::new_v4().to_string();
            let known_epoch = self.shared.epoch.lock().expect("epoch poisoned").clone();
            let keys_used = [&*keys.slots, &keys.pause, &keys.waiters, &keys.alive, EPOCH_KEY, GRACE_KEY];
            let args = [
                self.shared.replica.clone(),
                member.clone(),
                self.limit.to_string(),
                ms(self.window).to_string(),
                ms(self.hold).to_string(),
                ms(STALE).to_string(),
                known_epoch,
                uuid::Uuid::new_v4().to_string(),
                ms(GRACE).to_string(),
            ];
            let asked = self.shared.call::<(i64, String)>("acquire", &keys_used, &args).await;
            let (code, value) = match asked {
                Ok(answer) => {
                    unreachable_since = None;
                    answer
                }
                Err(_) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= outage_wait {
                        return Err(Refused::Unavailable { retry_after: OUTAGE_RETRY_AFTER });
                    }
                    tokio::time::sleep(POLL_MAX).await;
                    continue;
                }
            };
            match code {
                1 => {
                    let until = Instant::now() + self.hold + self.window;
                    queue.live.lock().expect("live slots poisoned").insert(member.clone(), until);
                    queue.last_wait_ms.store(0, Ordering::Relaxed);
                    return Ok(self.permit(queue.clone(), keys.slots, member));
                }
                2 => tokio::time::sleep(POLL_TURN).await,
                3 => {
                    if self.shared.follow_epoch(value).await.is_err() {
                        tokio::time::sleep(POLL_MAX).await;
                    }
                }
                _ => {
                    let wait = value.parse::<u64>().unwrap_or(0);
                    queue.last_wait_ms.store(wait, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(wait).clamp(Duration::from_millis(5), POLL_MAX)).await;
                }
            }
        }
    }
}

/// Decrements the waiting count however the wait ends (granted, refused or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// While alive, this replica's head is in the fleet's queue for a key; a head that stops
/// waiting without a slot (refused, or its caller gone) leaves it. (A granted head was taken
/// out of the queue by the grant itself.)
struct Head<'a> {
    limiter: &'a RedisLimiter,
    key: &'a LimiterKey,
    granted: bool,
}

impl Drop for Head<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let (shared, keys) = (self.limiter.shared.clone(), self.limiter.keys_of(self.key));
        in_background(async move {
            let _ =
                shared.call::<i64>("leave", &[&keys.waiters, &keys.alive], std::slice::from_ref(&shared.replica)).await;
        });
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn acquire(&self, key: &LimiterKey) -> Result<Permit, Refused> {
        let queue = self.queue(key);
        let position = queue.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&queue.waiting);
        // Those ahead here get slots first: a round of `limit` per window, after the head's wait.
        let rounds = u32::try_from(position / self.limit as usize).unwrap_or(u32::MAX);
        let estimate =
            Duration::from_millis(queue.last_wait_ms.load(Ordering::Relaxed)) + self.window.saturating_mul(rounds);
        if position > 0 && estimate > self.max_wait {
            return Err(Refused::QueueFull { retry_after: estimate });
        }
        let _head = queue.head.lock().await;
        let mut in_fleet_queue = Head { limiter: self, key, granted: false };
        let permit = self.wait_as_head(key, &queue).await;
        in_fleet_queue.granted = permit.is_ok();
        permit
    }

    fn pause(&self, key: &LimiterKey, duration: Duration) {
        let queue = self.queue(key);
        let until = Instant::now() + duration;
        let mut paused = queue.paused_until.lock().expect("pause poisoned");
        *paused = Some(paused.map_or(until, |t| t.max(until)));
        let (shared, pause) = (self.shared.clone(), self.keys_of(key).pause);
        in_background(async move {
            let _ = shared.call::<i64>("pause", &[&pause], &[ms(duration).to_string()]).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_found() {
        for name in ["acquire", "release", "leave", "pause", "reseed", "epoch"] {
            assert!(!script(name).get_hash().is_empty(), "{name}");
        }
        assert_eq!(SCRIPTS.len(), 6);
    }
}
