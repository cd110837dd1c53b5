//! Group commit for usage ingestion: concurrent requests that meter events
//! for the same tenant share one transaction, so a burst of single-event
//! requests pays for one commit per round instead of one each.
//!
//! Every request still gets its answer only after the transaction holding
//! its events committed (durability is unchanged: an acknowledged event
//! survives a `kill -9`). Per tenant, one worker task at a time takes
//! everything queued, records it with [`usage::ingest`] and answers each
//! request; what arrives meanwhile goes into the next round. The worker is a
//! task of its own, so a request that goes away (a client hanging up) never
//! strands the requests queued behind it. Ids repeated across requests of
//! one round are counted once, exactly as if the requests had come one after
//! the other. If a shared round fails for any other reason than an outage,
//! each request's events are retried alone, so one request's bad luck is
//! not another's.

use super::usage::{self, CheckedEvent, Ingested, MAX_BATCH};
use crate::app::AppState;
use crate::grant::TenantGrant;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use tenantry_store::StoreError;
use tokio::sync::oneshot;

type Answer = Result<Vec<Ingested>, StoreError>;

struct Waiting {
    grant: TenantGrant,
    events: Vec<CheckedEvent>,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Answer>,
}

/// The queues of tenants with a round in progress.
#[derive(Default)]
pub struct UsageGroupCommit {
    queues: Mutex<HashMap<String, Vec<Waiting>>>,
}

impl UsageGroupCommit {
    /// Records `events` of the grant's tenant, in a round shared with the
    /// tenant's other concurrent requests; answers as [`usage::ingest`].
    pub async fn ingest(
        &self,
        state: &AppState,
        grant: &TenantGrant,
        events: Vec<CheckedEvent>,
        now: DateTime<Utc>,
    ) -> Answer {
        let (reply, answer) = oneshot::channel();
        let tenant = grant.tenant().to_string();
        let start_worker = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = Waiting {
                grant: grant.clone(),
                events,
                now,
                reply,
            };
            match queues.get_mut(&tenant) {
                Some(queue) => {
                    queue.push(waiting);
                    false
                }
                None => {
                    queues.insert(tenant.clone(), vec![waiting]);
                    true
                }
            }
        };
        if start_worker {
            let state = state.clone();
            tokio::spawn(async move { state.usage_group_commit.work(&state, &tenant).await });
        }
        answer.await.unwrap_or_else(|_| {
            // The worker panicked: say so as an outage, never a partial answer.
            Err(StoreError::unavailable())
        })
    }

    /// Rounds for `tenant` until its queue is empty; then the queue goes.
    async fn work(&self, state: &AppState, tenant: &str) {
        let mut guard = QueueGuard {
            commit: self,
            tenant,
            armed: true,
        };
        loop {
            let round = {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                let Some(queue) = queues.get_mut(tenant) else {
                    guard.armed = false;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(tenant);
                    guard.armed = false;
                    return;
                }
                take_round(queue)
            };
            run_round(state, round).await;
        }
    }
}

/// Should a round panic, the tenant's queue goes with its worker (the
/// requests in it hear an error), so the next request starts a new one
/// instead of waiting behind a worker that is gone.
struct QueueGuard<'a> {
    commit: &'a UsageGroupCommit,
    tenant: &'a str,
    armed: bool,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut queues = self.commit.queues.lock().unwrap_or_else(|p| p.into_inner());
            queues.remove(self.tenant);
        }
    }
}

/// The oldest requests of `queue`, up to about [`MAX_BATCH`] events (a
/// request is never split; the first is always taken).
fn take_round(queue: &mut Vec<Waiting>) -> Vec<Waiting> {
    let mut events = 0;
    let mut take = 0;
    for waiting in queue.iter() {
        if take > 0 && events + waiting.events.len() > MAX_BATCH {
            break;
        }
        events += waiting.events.len();
        take += 1;
    }
    queue.drain(..take).collect()
}

async fn run_round(state: &AppState, mut round: Vec<Waiting>) {
    state.metrics.usage_round(round.len());
    if round.len() == 1 {
        if let Some(only) = round.pop() {
            let answer = usage::ingest(state, &only.grant, &only.events, only.now).await;
            let _ = only.reply.send(answer);
        }
        return;
    }
    let Some(first) = round.first() else {
        return;
    };
    let (grant, now) = (first.grant.clone(), first.now);
    // The round's events in one list, moved (not copied) out of the
    // requests; each request's share is a range of it.
    let mut events: Vec<CheckedEvent> =
        Vec::with_capacity(round.iter().map(|w| w.events.len()).sum());
    let mut shares = Vec::with_capacity(round.len());
    for waiting in &mut round {
        let start = events.len();
        events.append(&mut waiting.events);
        shares.push(start..events.len());
    }
    match usage::ingest(state, &grant, &events, now).await {
        Ok(results) => {
            let mut results = results.into_iter();
            for (waiting, share) in round.into_iter().zip(shares) {
                let mine: Vec<Ingested> = results.by_ref().take(share.len()).collect();
                let _ = waiting.reply.send(Ok(mine));
            }
        }
        Err(err) if err.is_unavailable() => {
            // The database is out: every request hears it (a 503 each).
            for waiting in round {
                let _ = waiting.reply.send(Err(StoreError::unavailable()));
            }
            tracing::warn!(error = %err, "a shared usage round found the database unavailable");
        }
        Err(err) => {
            tracing::warn!(error = %err, "a shared usage round failed; its requests are retried alone");
            for (waiting, share) in round.into_iter().zip(shares) {
                let mine = events.get(share).unwrap_or_default();
                let answer = usage::ingest(state, &waiting.grant, mine, waiting.now).await;
                let _ = waiting.reply.send(answer);
            }
        }
    }
}
