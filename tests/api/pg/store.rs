//! The PostgreSQL store on a real server: leases (claim, renew, takeover, fenced writes), the
//! crash-loop guard over expired leases, callbacks claimed once among racing replicas, and one
//! job for one idempotency key however many replicas race on it.
//!
//! Replicas are [`PostgresStore`]s with their own owner ids on one database. Leases are short,
//! and expiry is waited for by polling the condition with a deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hume_action::idempotency::{IdempotencyClaim, IdempotencyRecord};
use hume_action::job::spec::JobSpec;
use hume_action::job::state::JobState;
use hume_action::job::status::{CallbackState, JobStatus};
use hume_action::job::{JobId, Owner};
use hume_action::store::{Inserted, NewJob, PostgresStore, Store, MAX_RUNS};
use serde_json::json;

use super::Postgres;

async fn store(pg: &Postgres, lease: Duration) -> PostgresStore {
    PostgresStore::connect(&pg.url(), 32, lease, Duration::from_secs(10)).await.expect("PostgreSQL is reachable")
}

/// A job's spec from a v0 body (uploads allowed, so `{}` is a job), with this callback.
fn spec_of(mut request: serde_json::Value, callback_url: Option<String>) -> JobSpec {
    if let Some(url) = callback_url {
        request["callback_url"] = url.into();
    }
    JobSpec::from_v0(request, true).expect("a valid v0 body")
}

fn job(id: &str, callback: bool) -> NewJob {
    NewJob {
        id: id.into(),
        owner: Owner::without_key(),
        spec: spec_of(json!({"text": ["hi"], "b": 1, "a": 2}), callback.then(|| "http://127.0.0.1:9/callback".into())),
        created_ms: hume_action::job::now_ms(),
        files: vec![],
        api_key_sealed: None,
        idempotency: None,
        callback_body: Default::default(),
    }
}

/// Polls `condition` until it yields a value (bounded).
async fn eventually<T, F, Fut>(what: &str, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn completed() -> JobState {
    let now = hume_action::job::now_ms();
    JobState::Completed { created_ms: now, started_ms: now, ended_ms: now, num_predictions: 1, num_errors: 0 }
}

#[tokio::test]
async fn a_lease_is_renewed_by_its_holder_taken_over_once_expired_and_fences_the_old_holder() {
    let pg = Postgres::start().await;
    let a = store(&pg, Duration::from_secs(2)).await;
    let b = a.as_new_replica();
    assert_eq!(a.insert(job("j1", false)).await.unwrap(), Inserted::Job);
    let claimed = a.claim_next(hume_action::job::now_ms()).await.unwrap().expect("a claims the queued job");
    assert_eq!((claimed.id.as_str(), claimed.runs), ("j1", 1));
    assert!(b.claim_next(hume_action::job::now_ms()).await.unwrap().is_none(), "a live lease is not taken");
    assert!(a.renew(&"j1".into()).await.unwrap(), "the holder renews");
    assert!(!b.renew(&"j1".into()).await.unwrap(), "another replica cannot renew it");
    assert_eq!(b.requeue_interrupted(0).await.unwrap(), 0, "a starting replica leaves live leases alone");
    a.put_result(&"j1".into(), 0, r#"{"by":"a"}"#).await.unwrap();

    // a stops renewing (cut off): once the lease expires, b takes the job over.
    let b_ = &b;
    let taken = eventually("b takes the expired job over", move || async move {
        b_.claim_next(hume_action::job::now_ms()).await.unwrap()
    })
    .await;
    assert_eq!(taken.id, "j1");
    assert_eq!(taken.runs, 2, "the takeover counts as an unclean end");
    assert!(taken.last_problem.unwrap().contains("stopped renewing its lease"));

    // Everything a does now is refused: it must not overwrite b's run.
    assert!(!a.renew(&"j1".into()).await.unwrap(), "a learns it lost the lease");
    b.put_result(&"j1".into(), 0, r#"{"by":"b"}"#).await.unwrap();
    for refused in [
        a.put_result(&"j1".into(), 0, r#"{"by":"stale a"}"#).await,
        a.finish(&"j1".into(), &completed()).await,
        a.requeue(&"j1".into(), "problem").await,
        a.requeue_stopped(&"j1".into()).await,
    ] {
        assert!(refused.as_ref().is_err_and(|e| e.is_lease_lost()), "{refused:?}");
    }
    assert_eq!(b.result(&"j1".into(), 0).await.unwrap().as_deref(), Some(r#"{"by":"b"}"#));
    assert!(matches!(b.get(&"j1".into()).await.unwrap().unwrap().state, JobState::InProgress { .. }));
    b.finish(&"j1".into(), &completed()).await.unwrap();
    let ended = a.get(&"j1".into()).await.unwrap().unwrap();
    assert!(matches!(ended.state, JobState::Completed { .. }), "{:?}", ended.state);
    assert_eq!(ended.spec.echo(), job("j1", false).spec.echo());
    assert!(!b.renew(&"j1".into()).await.unwrap(), "an ended job has no lease");
}

#[tokio::test]
async fn expired_leases_count_toward_the_crash_loop_guard() {
    let pg = Postgres::start().await;
    let lease = Duration::from_millis(300);
    let first = store(&pg, lease).await;
    first.insert(job("crashy", false)).await.unwrap();

    // Each replica claims the job and dies (stops renewing); the next takes it over.
    let mut runs = Vec::new();
    let mut last = first.as_new_replica();
    for _ in 0..=MAX_RUNS {
        last = first.as_new_replica();
        let replica = &last;
        let claimed = eventually("the next replica takes the job", move || async move {
            replica.claim_next(hume_action::job::now_ms()).await.unwrap()
        })
        .await;
        assert_eq!(claimed.id, "crashy");
        runs.push(claimed.runs);
    }
    assert_eq!(runs, (1..=MAX_RUNS + 1).collect::<Vec<_>>(), "every takeover counted");
    // The worker gives a job claimed past MAX_RUNS up (`job.runs > MAX_RUNS`), with the reason.
    let crashed = first.get(&"crashy".into()).await.unwrap().unwrap();
    assert!(crashed.last_problem.unwrap().contains("stopped renewing its lease"));
    let now = hume_action::job::now_ms();
    let given_up = JobState::Failed { created_ms: now, started_ms: now, ended_ms: now, message: "given up".into() };
    last.finish(&"crashy".into(), &given_up).await.unwrap();

    // A replica starting up fails a job whose expired runs reached MAX_RUNS, as SQLite does.
    first.insert(job("crashy-2", false)).await.unwrap();
    for expected in 1..=MAX_RUNS {
        let other = first.as_new_replica();
        let claimed = other.claim_next(hume_action::job::now_ms()).await.unwrap().expect("the queued job");
        assert_eq!((claimed.id.as_str(), claimed.runs), ("crashy-2", expected));
        let starting = first.as_new_replica();
        let starting = &starting;
        let requeued = eventually("its lease expires", move || async move {
            match starting.requeue_interrupted(hume_action::job::now_ms()).await.unwrap() {
                0 if starting.get(&"crashy-2".into()).await.unwrap().unwrap().state.status()
                    == JobStatus::InProgress =>
                {
                    None
                }
                n => Some(n),
            }
        })
        .await;
        assert_eq!(requeued, u64::from(expected < MAX_RUNS), "run {expected}");
    }
    let JobState::Failed { message, .. } = first.get(&"crashy-2".into()).await.unwrap().unwrap().state else {
        panic!("given up after {MAX_RUNS} unclean ends")
    };
    assert!(message.contains("3 times"), "{message}");
}

#[tokio::test]
async fn racing_replicas_claim_each_pending_callback_once() {
    let pg = Postgres::start().await;
    let finisher = store(&pg, Duration::from_secs(3)).await;
    let ids: Vec<JobId> = (0..20).map(|i| format!("cb-{i:02}").into()).collect();
    for id in &ids {
        finisher.insert(job(id.as_str(), true)).await.unwrap();
        finisher.claim_next(hume_action::job::now_ms()).await.unwrap().unwrap();
        finisher.finish(id, &completed()).await.unwrap();
    }
    let replicas: Vec<PostgresStore> = (0..6).map(|_| finisher.as_new_replica()).collect();
    assert!(replicas[0].claim_callbacks().await.unwrap().is_empty(), "the finisher holds its deliveries");

    // The finisher dies before delivering; six replicas sweep at once until all are claimed.
    let claims: Arc<tokio::sync::Mutex<HashMap<JobId, Vec<String>>>> = Arc::default();
    let sweeps = replicas.iter().cloned().map(|replica| {
        let claims = claims.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while claims.lock().await.len() < 20 && tokio::time::Instant::now() < deadline {
                for job in replica.claim_callbacks().await.unwrap() {
                    claims.lock().await.entry(job.id).or_default().push(replica.replica().to_owned());
                }
                tokio::task::yield_now().await;
            }
        })
    });
    futures::future::join_all(sweeps).await;
    let claims = claims.lock().await;
    assert_eq!(claims.len(), 20, "every pending callback was claimed");
    assert!(claims.values().all(|owners| owners.len() == 1), "each by one replica: {claims:?}");

    let (id, owner) = claims.iter().next().unwrap();
    let owner = replicas.iter().find(|r| r.replica() == owner[0]).unwrap();
    assert!(!finisher.renew_callback(id).await.unwrap(), "the dead finisher lost its claim");
    finisher.set_callback_state(id, CallbackState::Failed).await.unwrap();
    let state: String = sqlx::query_scalar("SELECT callback_state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(owner.pool())
        .await
        .unwrap();
    assert_eq!(state, "PENDING", "a stale deliverer cannot record the callback's fate");
    assert!(owner.renew_callback(id).await.unwrap());
    owner.set_callback_state(id, CallbackState::Delivered).await.unwrap();
    let state: String = sqlx::query_scalar("SELECT callback_state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(owner.pool())
        .await
        .unwrap();
    assert_eq!(state, "DELIVERED");
}

#[tokio::test]
async fn one_idempotency_key_raced_by_many_replicas_makes_one_job() {
    let pg = Postgres::start().await;
    let base = store(&pg, Duration::from_secs(30)).await;
    let claim = IdempotencyClaim { scope: "s".into(), key: "run-1".into(), request_hash: "h".into() };
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let inserts = (0..16).map(|i| {
        let (replica, start) = (base.as_new_replica(), start.clone());
        let new = NewJob { idempotency: Some(claim.clone()), ..job(&format!("race-{i}"), false) };
        tokio::spawn(async move {
            start.wait().await;
            (format!("race-{i}"), replica.insert(new).await.unwrap())
        })
    });
    let outcomes: Vec<(String, Inserted)> =
        futures::future::join_all(inserts).await.into_iter().map(Result::unwrap).collect();
    let winners: Vec<&String> = outcomes.iter().filter(|(_, o)| *o == Inserted::Job).map(|(id, _)| id).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0].clone();
    for (_, outcome) in &outcomes {
        if let Inserted::KeyTaken(record) = outcome {
            assert_eq!(record, &IdempotencyRecord { request_hash: "h".into(), job_id: winner.as_str().into() });
        }
    }
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(base.pool()).await.unwrap();
    assert_eq!(jobs, 1, "the losers' jobs were rolled back");

    // The same key for another request is answered with the record (the backend says 4xx).
    let other = IdempotencyClaim { request_hash: "other".into(), ..claim.clone() };
    let taken = base.insert(NewJob { idempotency: Some(other), ..job("late", false) }).await.unwrap();
    assert!(matches!(taken, Inserted::KeyTaken(IdempotencyRecord { ref request_hash, .. }) if request_hash == "h"));

    // Past its 24 h the key is free again, replaced in the same statement.
    sqlx::query("UPDATE idempotency_keys SET created_ms = created_ms - 25 * 3600 * 1000")
        .execute(base.pool())
        .await
        .unwrap();
    let again = base.insert(NewJob { idempotency: Some(claim.clone()), ..job("next-day", false) }).await.unwrap();
    assert_eq!(again, Inserted::Job);
    let record = hume_action::idempotency::IdempotencyStore::get(&base, "s", "run-1").await.unwrap();
    assert_eq!(record.map(|r| r.job_id), Some("next-day".into()));
}
