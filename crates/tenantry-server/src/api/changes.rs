//! `GET /v1/changes`: a server-sent event stream of committed changes that
//! make cached tenant resolutions wrong (key revocations, suspensions,
//! configuration, domain and signing-key changes), so app-side caches (the
//! `tenantry-layer` crate) stay fresh without polling.
//!
//! - Operator credentials see every tenant's changes; a tenant key only its
//!   own tenant's (and the global signing-key and identity-provider
//!   changes, which name no tenant).
//! - The first event is `ready` (or, after a `Last-Event-ID` this node
//!   cannot replay from, `reset`); a resumed stream first replays what it
//!   missed. A `reset` means "drop everything you cached".
//! - A comment every `changes_keepalive`; a stream that falls more than
//!   [`crate::changes::BUFFER`] events behind is sent a `reset` instead of
//!   being buffered without bound; at most `changes_streams_per_caller`
//!   streams per credential.
//! - A stream whose own credential stops verifying (revoked, tenant
//!   suspended) ends after telling so.

use crate::app::AppState;
use crate::changes::{Change, ChangeEvent, StreamGuard};
use crate::http::auth::Caller;
use crate::http::codes::Code;
use crate::http::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::resolution::cache::Invalidation;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::{SecretString, TenantId};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

/// Whose changes a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    Operator,
    Tenant(TenantId),
}

/// Stream the changes that invalidate cached tenant resolutions, as
/// server-sent events (`text/event-stream`). Events: `ready` (the stream is
/// live; its `id` is the current position), `change` (data: `{"type": "key"
/// | "tenant" | "host" | "member" | "signing_keys" | "identity_providers",
/// "tenant_id"?, "key_hash"?, "domain"?, "subdomain"?, "member"?}`; a
/// `key_hash` is the hex SHA-256 of the key), `reset` (drop every cached
/// entry). Send `Last-Event-ID` to resume; ids are per node, and one the node
/// cannot replay from is answered with `reset`.
/// One event of the change stream, as its fields arrive on the wire.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the stream; the events are written as text
pub struct StreamEvent {
    /// The position to resume after, as `Last-Event-ID`.
    id: Option<String>,
    /// `ready` once connected, `change` for each change, `reset` when the
    /// stream cannot replay from `Last-Event-ID` (drop every cached tenant).
    #[schema(value_type = Option<StreamEventKind>)]
    event: Option<String>,
    /// The event's JSON payload.
    data: Option<String>,
    /// The reconnection delay in milliseconds.
    retry: Option<u64>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum StreamEventKind {
    Ready,
    Change,
    Reset,
}

#[utoipa::path(get, path = "/v1/changes", tag = "resolution",
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received, to resume after it")),
    responses(
        (status = 200, description = "an endless text/event-stream of `ready`, `change` and `reset` events and keep-alive comments", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "tenant_suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_streams: this credential already holds the most streams allowed", body = Problem, content_type = "application/problem+json")))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let credential = crate::http::auth::credential(&headers)
        .map(SecretString::new)
        .ok_or(ApiError::Unauthorized)?;
    let (audience, owner) = match &caller {
        Caller::Operator { .. } => (Audience::Operator, caller.actor().as_str().to_owned()),
        Caller::Tenant { tenant, .. } => (
            Audience::Tenant(tenant.id.clone()),
            format!("{}/{}", tenant.id, caller.actor().as_str()),
        ),
    };
    let limit = state.config.changes_streams_per_caller;
    let Some(guard) = state.changes.open_stream(&owner, limit) else {
        return Ok(too_many_streams(limit));
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let subscription = state.changes.subscribe(last_event_id);
    let own_hash = crate::keys::hash_key(credential.expose());
    let mut stream = EventStream {
        keepalive: state.config.changes_keepalive,
        closed: state.changes.closed(),
        state,
        audience,
        credential,
        own_hash,
        receiver: subscription.receiver,
        pending: VecDeque::new(),
        done: false,
        _guard: guard,
    };
    // Tells EventSource clients how soon to reconnect.
    stream.pending.push_back("retry: 1000\n\n".to_owned());
    if subscription.reset {
        stream.pending.push_back(frame(
            Some(&subscription.position),
            "reset",
            &serde_json::json!({ "reason": "cannot_resume" }),
        ));
    } else {
        // Only what this caller may see is counted: the count of the whole
        // replay would tell a tenant how much other tenants changed.
        let mut replayed = 0;
        for event in &subscription.replay {
            if let Some(data) = stream.visible(event) {
                let id = stream.state.changes.id_of(event.seq);
                stream.pending.push_back(frame(Some(&id), "change", &data));
                replayed += 1;
            }
        }
        stream.pending.push_back(frame(
            Some(&subscription.position),
            "ready",
            &serde_json::json!({ "replayed": replayed }),
        ));
    }
    let body = Body::from_stream(futures_util::stream::unfold(stream, EventStream::next));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx: pass events on at once instead of buffering them.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn too_many_streams(limit: usize) -> Response {
    let problem = Problem {
        kind: "https://tenantry.dev/problems/too-many-streams".to_owned(),
        title: "Too Many Requests".to_owned(),
        status: 429,
        detail: format!("this credential already holds {limit} open change streams"),
        code: Code::TooManyStreams.as_str().to_owned(),
        field: None,
        errors: Vec::new(),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// One event in the SSE wire format (data is one line of JSON).
fn frame(id: Option<&str>, event: &str, data: &serde_json::Value) -> String {
    match id {
        Some(id) => format!("id: {id}\nevent: {event}\ndata: {data}\n\n"),
        None => format!("event: {event}\ndata: {data}\n\n"),
    }
}

struct EventStream {
    state: AppState,
    audience: Audience,
    credential: SecretString,
    own_hash: [u8; 32],
    receiver: broadcast::Receiver<Arc<ChangeEvent>>,
    pending: VecDeque<String>,
    keepalive: Duration,
    closed: watch::Receiver<bool>,
    done: bool,
    _guard: StreamGuard,
}

impl EventStream {
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((Ok(Bytes::from(chunk)), self));
            }
            if self.done || *self.closed.borrow() {
                return None;
            }
            tokio::select! {
                changed = self.closed.changed() => {
                    if changed.is_err() {
                        self.done = true;
                    }
                }
                received = self.receiver.recv() => match received {
                    Ok(event) => self.handle(&event).await,
                    Err(RecvError::Lagged(_)) => {
                        self.pending.push_back(frame(
                            None,
                            "reset",
                            &serde_json::json!({ "reason": "lagged" }),
                        ));
                        // The events missed may include this credential's
                        // own revocation.
                        self.recheck_credential().await;
                    }
                    Err(RecvError::Closed) => self.done = true,
                },
                () = tokio::time::sleep(self.keepalive) => {
                    self.pending.push_back(": keep-alive\n\n".to_owned());
                    // An expiry passing sends no event: the credential is
                    // checked again at every keep-alive too.
                    self.recheck_credential().await;
                }
            }
        }
    }

    async fn handle(&mut self, event: &ChangeEvent) {
        if let Some(data) = self.visible(event) {
            let kind = if event.change == Change::Reset {
                "reset"
            } else {
                "change"
            };
            let id = self.state.changes.id_of(event.seq);
            self.pending.push_back(frame(Some(&id), kind, &data));
        }
        if self.concerns_caller(event) {
            self.recheck_credential().await;
        }
    }

    /// Ends the stream with `closed` unless its credential still verifies
    /// for the same audience (revoked, expired, disabled, tenant suspended).
    async fn recheck_credential(&mut self) {
        let still = crate::http::auth::verify_credential(&self.state, self.credential.expose())
            .await
            .is_ok_and(|caller| match (&self.audience, &caller) {
                (Audience::Operator, Caller::Operator { .. }) => true,
                (Audience::Tenant(own), Caller::Tenant { tenant, .. }) => tenant.id == *own,
                _ => false,
            });
        if !still {
            self.pending.push_back(frame(
                None,
                "closed",
                &serde_json::json!({ "reason": "credential_no_longer_valid" }),
            ));
            self.done = true;
        }
    }

    /// Whether a change may make this stream's own credential invalid.
    fn concerns_caller(&self, event: &ChangeEvent) -> bool {
        match &event.change {
            Change::Reset => true,
            Change::Invalidated(Invalidation::Key(h) | Invalidation::OperatorKey(h)) => {
                *h == self.own_hash
            }
            Change::Invalidated(Invalidation::SigningKeys) => true,
            Change::Invalidated(Invalidation::Tenant(id)) => {
                self.audience == Audience::Tenant(id.clone())
            }
            Change::Invalidated(_) => false,
        }
    }

    /// The event's data as this stream's caller may see it, or nothing.
    fn visible(&self, event: &ChangeEvent) -> Option<serde_json::Value> {
        let invalidation = match &event.change {
            Change::Reset => return Some(serde_json::json!({ "reason": "changes_missed" })),
            Change::Invalidated(invalidation) => invalidation,
        };
        let global = matches!(
            invalidation,
            Invalidation::SigningKeys | Invalidation::IdentityProviders
        );
        let allowed = global
            || match &self.audience {
                Audience::Operator => true,
                Audience::Tenant(own) => event.tenant.as_ref() == Some(own),
            };
        if !allowed {
            return None;
        }
        let tenant = event.tenant.as_ref().map(|t| t.as_str());
        let data = match invalidation {
            Invalidation::Key(hash) => serde_json::json!({
                "type": "key", "tenant_id": tenant, "key_hash": hex::encode(hash),
            }),
            Invalidation::Tenant(id) => {
                serde_json::json!({ "type": "tenant", "tenant_id": id.as_str() })
            }
            Invalidation::Host(host) => match host.split_once(':') {
                Some(("d", domain)) => {
                    serde_json::json!({ "type": "host", "tenant_id": tenant, "domain": domain })
                }
                Some(("s", label)) => {
                    serde_json::json!({ "type": "host", "tenant_id": tenant, "subdomain": label })
                }
                _ => serde_json::json!({ "type": "host", "tenant_id": tenant }),
            },
            Invalidation::Member(member) => {
                serde_json::json!({ "type": "member", "tenant_id": tenant, "member": member })
            }
            Invalidation::SigningKeys => serde_json::json!({ "type": "signing_keys" }),
            Invalidation::IdentityProviders => {
                serde_json::json!({ "type": "identity_providers" })
            }
            // Operator keys are not for apps; `All` is a reset (above).
            Invalidation::OperatorKey(_) | Invalidation::All => return None,
        };
        Some(data)
    }
}
