//! The delivery worker: fans queued events out to the matching endpoints'
//! messages, then delivers the messages that are due, signed, through
//! [`crate::outbound`].
//!
//! Both steps claim their rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
//! any number of nodes share the work; on SQLite one process delivers. A
//! due message is leased (`webhook_lease`) in a short transaction before it
//! is sent and its attempt recorded in another after: a node that dies in
//! between leaves the message to be retried when the lease runs out, with
//! the same `webhook-id`. Delivery is therefore at least once: the window
//! for a duplicate is between the receiver's answer and the commit of the
//! attempt (one short write).

use super::signing;
use crate::app::AppState;
use crate::grant::OperatorGrant;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tenantry_core::tenant::TenantEventKind;
use tenantry_store::{AttemptOutcome, OutboxRow, StoreError, StoredEndpoint, StoredMessage};
use tokio::sync::watch;

const WORKER: &str = "webhooks";
const FAN_OUT_BATCH: i64 = 200;
const DELIVERY_BATCH: i64 = 64;
/// A receiver's answer is logged up to this many bytes.
pub const RESPONSE_LOG_BYTES: usize = 4096;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        let worked = match pass(&state).await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(error = %err, "webhook delivery pass failed; will retry");
                0
            }
        };
        if *stop.borrow() {
            break;
        }
        if worked == 0 {
            tokio::select! {
                _ = tokio::time::sleep(state.config.webhook_poll_interval) => {}
                _ = state.webhook_wake.notified() => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    }
}

fn worker() -> OperatorGrant {
    #[allow(clippy::disallowed_methods)] // system grant: the delivery worker's own authority
    OperatorGrant::system(WORKER)
}

/// One pass: fan-out, then one batch of deliveries. Returns how much was done.
pub async fn pass(state: &AppState) -> Result<usize, StoreError> {
    let fanned = fan_out(state).await?;
    let delivered = deliver_due(state).await?;
    Ok(fanned + delivered)
}

fn receives(endpoint: &StoredEndpoint, kind: &str) -> bool {
    endpoint.event_types.is_empty() || endpoint.event_types.iter().any(|t| t == kind)
}

/// Turns queued events into messages, one per matching endpoint, and
/// removes them from the outbox, in one transaction.
async fn fan_out(state: &AppState) -> Result<usize, StoreError> {
    // Bookkeeping: the events were recorded (and audited) by their changes;
    // making their messages changes nothing anyone configured.
    #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
    let mut tx = worker().untracked_write(state).await?;
    let events: Vec<OutboxRow> = tx.claim_outbox(FAN_OUT_BATCH).await?;
    if events.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let now_ms = state.clock.now().timestamp_millis();
    let mut endpoints: HashMap<String, Vec<StoredEndpoint>> = HashMap::new();
    for event in &events {
        if !endpoints.contains_key(&event.tenant_id) {
            let found = tx.endpoints_receiving(&event.tenant_id).await?;
            endpoints.insert(event.tenant_id.clone(), found);
        }
        for endpoint in endpoints
            .get(&event.tenant_id)
            .into_iter()
            .flatten()
            .filter(|e| receives(e, &event.kind))
        {
            let id = state.ids.sortable("msg", now_ms.max(0) as u64);
            tx.insert_message(&endpoint.tenant_id, &id, &endpoint.id, event, now_ms)
                .await?;
        }
        tx.remove_outbox(&event.tenant_id, &event.event_id).await?;
    }
    tx.commit().await?;
    Ok(events.len())
}

/// Claims the due messages (leased), delivers them concurrently and records
/// each attempt.
async fn deliver_due(state: &AppState) -> Result<usize, StoreError> {
    let now_ms = state.clock.now().timestamp_millis();
    let lease_ms = i64::try_from(state.config.webhook_lease.as_millis()).unwrap_or(i64::MAX);
    // Bookkeeping: a lease on work queued by recorded changes.
    #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
    let mut tx = worker().untracked_write(state).await?;
    let claimed = tx
        .claim_due_messages(now_ms, now_ms.saturating_add(lease_ms), DELIVERY_BATCH)
        .await?;
    let mut endpoints: HashMap<(String, String), StoredEndpoint> = HashMap::new();
    for m in &claimed {
        let key = (m.tenant_id.clone(), m.endpoint_id.clone());
        if !endpoints.contains_key(&key)
            && let Some(e) = tx.endpoint_of(&m.tenant_id, &m.endpoint_id).await?
        {
            endpoints.insert(key, e);
        }
    }
    tx.commit().await?;
    let n = claimed.len();
    let jobs = claimed.into_iter().filter_map(|m| {
        let endpoint = endpoints.get(&(m.tenant_id.clone(), m.endpoint_id.clone()))?;
        Some(deliver_one(state, endpoint, m))
    });
    for result in futures_util::future::join_all(jobs).await {
        if let Err(err) = result {
            tracing::warn!(error = %err, "a webhook attempt could not be recorded; it will be retried");
        }
    }
    Ok(n)
}

/// The `webhook-signature` header: `v1` with the secret (and the previous
/// one during a rotation's overlap), `v1a` when the endpoint has a key.
fn signature(
    state: &AppState,
    endpoint: &StoredEndpoint,
    id: &str,
    timestamp: i64,
    body: &str,
    now_ms: i64,
) -> Result<String, crate::vault::VaultError> {
    let owner = &endpoint.tenant_id;
    let key = super::open(state, owner, &endpoint.id, &endpoint.secret)?;
    let mut parts = vec![signing::sign_v1(&key[..], id, timestamp, body)];
    if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_until_ms)
        && until > now_ms
    {
        let key = super::open(state, owner, &endpoint.id, previous)?;
        parts.push(signing::sign_v1(&key[..], id, timestamp, body));
    }
    if let Some(seed) = &endpoint.signing_seed {
        let seed = super::open(state, owner, &endpoint.id, seed)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        parts.push(signing::sign_v1a(&key, id, timestamp, body));
    }
    Ok(parts.join(" "))
}

/// What one attempt decided.
enum Verdict {
    Delivered,
    /// Retry after the schedule's next delay, or after this long when the
    /// receiver said so (`Retry-After` on 429 and 503).
    Retry(Option<Duration>),
    /// Give up on this message.
    Fail,
    /// Give up, and disable the endpoint (410 Gone).
    Gone,
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(86_400)))
}

fn with_jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    let extra = delay.mul_f64(rand::random::<f64>() * 0.1);
    delay + extra
}

async fn deliver_one(
    state: &AppState,
    endpoint: &StoredEndpoint,
    message: StoredMessage,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let now_ms = now.timestamp_millis();
    if let Some(rate) = endpoint.rate_limit_per_second.filter(|r| *r > 0) {
        let policy = crate::limits::ratelimit::Policy {
            limit: rate.unsigned_abs(),
            period: Duration::from_secs(1),
        };
        let bucket = format!("webhook:{}:{}", endpoint.tenant_id, endpoint.id);
        let decision = state.rate_limiter.check(&bucket, policy, 1).await;
        if !decision.allowed {
            let wait = i64::try_from(decision.retry_after_ms.clamp(1, 1000)).unwrap_or(1000);
            #[allow(clippy::disallowed_methods)] // untracked write: gives the lease back
            let mut tx = worker().untracked_write(state).await?;
            tx.release_message(&message.tenant_id, &message.id, now_ms + wait)
                .await?;
            return tx.commit().await;
        }
    }
    let timestamp = now.timestamp();
    let started = Instant::now();
    let (verdict, status_code, response_body, error) = match signature(
        state,
        endpoint,
        &message.event_id,
        timestamp,
        &message.body,
        now_ms,
    ) {
        Err(err) => (
            Verdict::Retry(None),
            None,
            String::new(),
            Some(format!("the endpoint's secret cannot be opened: {err}")),
        ),
        Ok(signature) => {
            let request = state
                .outbound
                .client()
                .post(&endpoint.url)
                .timeout(state.config.webhook_timeout)
                .header("content-type", "application/json")
                .header("webhook-id", &message.event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(message.body.clone());
            match state.outbound.send(request).await {
                Ok(response) => {
                    let status = response.status();
                    let verdict = if status.is_success() {
                        Verdict::Delivered
                    } else if status == reqwest::StatusCode::GONE {
                        Verdict::Gone
                    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    {
                        Verdict::Retry(retry_after(&response))
                    } else {
                        Verdict::Retry(None)
                    };
                    let body = crate::outbound::read_limited(response, RESPONSE_LOG_BYTES).await;
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let error = (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                    (verdict, Some(i64::from(status.as_u16())), text, error)
                }
                Err(crate::outbound::OutboundError::Refused(why)) => (
                    Verdict::Fail,
                    None,
                    String::new(),
                    Some(format!("refused: {why}")),
                ),
                Err(err) => (
                    Verdict::Retry(None),
                    None,
                    String::new(),
                    Some(err.to_string()),
                ),
            }
        }
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let attempt = message.attempts + 1;
    let schedule = &state.config.webhook_retry_schedule;
    let (status, next_attempt_ms) = match verdict {
        Verdict::Delivered => ("delivered", now_ms),
        Verdict::Fail | Verdict::Gone => ("failed", now_ms),
        Verdict::Retry(asked) => {
            match usize::try_from(attempt).ok().and_then(|i| schedule.get(i)) {
                None => ("failed", now_ms),
                Some(delay) => {
                    let delay = asked.unwrap_or_else(|| with_jitter(*delay));
                    let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    ("pending", now_ms.saturating_add(delay))
                }
            }
        }
    };
    let outcome = AttemptOutcome {
        attempt,
        started_ms: now_ms,
        status_code,
        latency_ms,
        response_body,
        error,
        status,
        next_attempt_ms,
    };
    // Bookkeeping: the delivery log of work queued by recorded changes.
    #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
    let mut tx = worker().untracked_write(state).await?;
    tx.record_attempt(&message.tenant_id, &message.id, &outcome)
        .await?;
    let delivered = matches!(verdict, Verdict::Delivered);
    let failing_since = tx
        .note_endpoint_health(&endpoint.tenant_id, &endpoint.id, delivered, now_ms)
        .await?;
    tx.commit().await?;
    let disable_after =
        i64::try_from(state.config.webhook_disable_after.as_millis()).unwrap_or(i64::MAX);
    if matches!(verdict, Verdict::Gone) {
        disable(state, endpoint, "gone").await?;
    } else if failing_since.is_some_and(|since| now_ms.saturating_sub(since) >= disable_after) {
        disable(state, endpoint, "failing").await?;
    }
    Ok(())
}

/// Disables an endpoint on the server's own authority: an audited
/// operator change with a `webhook_endpoint.disabled` operator event.
async fn disable(
    state: &AppState,
    endpoint: &StoredEndpoint,
    reason: &str,
) -> Result<(), StoreError> {
    let mut change = worker().change(state).await?;
    if !change
        .tx()
        .disable_endpoint(&endpoint.tenant_id, &endpoint.id, reason, state.clock.now())
        .await?
    {
        return Ok(()); // already disabled
    }
    let owner = (!endpoint.tenant_id.is_empty()).then(|| endpoint.tenant_id.clone());
    change.event(
        TenantEventKind::WebhookEndpointDisabled,
        serde_json::json!({ "endpoint_id": endpoint.id, "owner_tenant_id": owner, "reason": reason }),
    );
    change.audit(
        "webhook_endpoint.disabled",
        vec![super::endpoints::target(&endpoint.id)],
        serde_json::json!({ "enabled": { "from": true, "to": false }, "reason": reason, "owner_tenant_id": owner }),
    );
    change.commit().await?;
    tracing::warn!(endpoint_id = %endpoint.id, reason, "webhook endpoint disabled");
    Ok(())
}
