//! `Idempotency-Key` on the POSTs that create something: a retry with the
//! same key returns the first response instead of doing the work again.
//!
//! A route opts in by being listed in [`ROUTES`]; the router runs
//! [`layer`] on every route, and the OpenAPI document documents the header
//! on exactly those operations ([`document`]).
//!
//! For a request with the header, in order:
//! 1. authentication (`401`, never a stored response) and the tenant path
//!    check (`404` for another tenant's path), as the handler would;
//! 2. the key itself: 1–255 visible ASCII characters, else `422`;
//! 3. the body, read here within the body limit and deadline;
//! 4. a reservation, committed on its own before the handler runs: a
//!    `pending` row under (caller's tenant, or the operator scope) + SHA-256
//!    of the key, whose primary key decides between racing requests;
//! 5. the handler; then its response (status < 500, except 408 and 429),
//!    body sealed, replaces the reservation. A 5xx releases the key.
//!
//! A request that finds the key done replays the response (with
//! `Idempotent-Replayed: true`) if its fingerprint (method, route, path and
//! query, caller, body) matches, else `422 idempotency_key_reused`; one that
//! finds it pending waits a little for it, then answers `409
//! idempotency_key_in_progress`. Expired keys are ignored (and pruned by
//! `workers::idempotency`); a reservation is renewed while its handler runs,
//! and one left behind by a crash (not renewed for twice the request
//! timeout) is taken over.

use super::auth::Caller;
use super::body::{BodyDeadline, timed_out};
use super::extract::{BodyLimit, TenantPathChecked};
use super::problem::ApiError;
use crate::app::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;
use tenantry_core::TenantId;
use tenantry_crypto::{Binding, CryptoError, DataKey, WrappedKey};
use tenantry_store::{
    IdempotencyRow, OperatorTx, Reservation, StoreError, StoredResponse, TenantTx,
};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The response header that marks a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// The POST routes (matched paths) that honour `Idempotency-Key`. A new
/// endpoint that creates something opts in with one line here.
pub const ROUTES: &[&str] = &[
    "/v1/tenants",
    "/v1/tenants/{id}/domains",
    "/v1/tenants/{id}/api-keys",
    "/v1/tenants/{id}/api-keys/{key_id}/rotate",
    "/v1/operator-keys",
    "/v1/tenants/{id}/credentials",
    "/v1/meters",
    "/v1/usage/events",
    "/v1/tokens",
    "/v1/webhook-endpoints",
    "/v1/webhook-endpoints/{eid}/secret/rotate",
    "/v1/tenants/{id}/webhook-endpoints",
    "/v1/tenants/{id}/webhook-endpoints/{eid}/secret/rotate",
    "/v1/provisioning",
];

/// Longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// How long a request waits for another one holding its key (at most half
/// the request timeout).
const MAX_WAIT: Duration = Duration::from_secs(3);

/// How often a waiting request looks again.
const POLL: Duration = Duration::from_millis(50);

/// The associated-data purpose of sealed responses.
const SEALED_KIND: &str = "idempotency";

/// Where a key lives.
#[derive(Debug, Clone)]
enum KeyScope {
    Tenant(TenantId),
    Operator,
}

impl KeyScope {
    /// Bound into the sealed response (and its wrapped data key): a row moved
    /// to another tenant, or between the tenant and operator tables, does
    /// not open. Never a tenant id itself (`:` is not allowed in one), so it
    /// cannot pass for a tenant's data key either.
    fn label(&self) -> String {
        match self {
            KeyScope::Tenant(t) => format!("idempotency:tenant:{t}"),
            KeyScope::Operator => "idempotency:operator".to_owned(),
        }
    }

    // Idempotency records are bookkeeping of the request layer, not a
    // change anyone made: a system grant and untracked writes (the change
    // the request makes is recorded by its handler).
    #[allow(clippy::disallowed_methods)]
    async fn open(&self, state: &AppState, write: bool) -> Result<Tx, StoreError> {
        use crate::grant::{OperatorGrant, TenantGrant};
        Ok(match (self, write) {
            (KeyScope::Tenant(t), true) => Tx::Tenant(
                TenantGrant::system(t.clone(), "idempotency")
                    .untracked_write(state)
                    .await?,
            ),
            (KeyScope::Tenant(t), false) => Tx::Tenant(
                TenantGrant::system(t.clone(), "idempotency")
                    .read(state)
                    .await?,
            ),
            (KeyScope::Operator, true) => Tx::Operator(
                OperatorGrant::system("idempotency")
                    .untracked_write(state)
                    .await?,
            ),
            (KeyScope::Operator, false) => {
                Tx::Operator(OperatorGrant::system("idempotency").read(state).await?)
            }
        })
    }
}

/// A transaction on whichever table the scope uses.
enum Tx {
    Tenant(TenantTx),
    Operator(OperatorTx),
}

macro_rules! on_tx {
    ($tx:expr, |$t:ident| $body:expr) => {
        match $tx {
            Tx::Tenant($t) => $body,
            Tx::Operator($t) => $body,
        }
    };
}

impl Tx {
    async fn reserve(&mut self, r: &Reservation<'_>) -> Result<bool, StoreError> {
        on_tx!(self, |t| t.idempotency_reserve(r).await)
    }
    async fn get(&mut self, key_hash: &[u8]) -> Result<Option<IdempotencyRow>, StoreError> {
        on_tx!(self, |t| t.idempotency_get(key_hash).await)
    }
    async fn take_over(&mut self, previous: &str, r: &Reservation<'_>) -> Result<bool, StoreError> {
        on_tx!(self, |t| t.idempotency_take_over(previous, r).await)
    }
    async fn complete(
        &mut self,
        key_hash: &[u8],
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, StoreError> {
        on_tx!(self, |t| t
            .idempotency_complete(key_hash, token, response)
            .await)
    }
    async fn touch(&mut self, key_hash: &[u8], token: &str, now: i64) -> Result<bool, StoreError> {
        on_tx!(self, |t| t.idempotency_touch(key_hash, token, now).await)
    }
    async fn release(&mut self, key_hash: &[u8], token: &str) -> Result<bool, StoreError> {
        on_tx!(self, |t| t.idempotency_release(key_hash, token).await)
    }
    async fn commit(self) -> Result<(), StoreError> {
        on_tx!(self, |t| t.commit().await)
    }
}

/// The middleware (see the module documentation), applied to each route.
/// Requests without the header, and routes not in [`ROUTES`], pass
/// straight through to the route (no cloning, no boxing).
#[derive(Clone)]
pub struct IdempotencyLayer {
    state: AppState,
}

impl IdempotencyLayer {
    pub fn new(state: AppState) -> IdempotencyLayer {
        IdempotencyLayer { state }
    }
}

impl<S> tower::Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;

    fn layer(&self, inner: S) -> Idempotency<S> {
        Idempotency {
            state: self.state.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Idempotency<S> {
    state: AppState,
    inner: S,
}

impl<S> tower::Service<Request> for Idempotency<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let honoured = req.method() == Method::POST
            && req.headers().contains_key(HEADER)
            && req
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|p| ROUTES.contains(&p.as_str()));
        if !honoured {
            return Either::Left(self.inner.call(req));
        }
        // The handler runs later, once the key is claimed: on a clone of
        // the route (ready, as routes always are).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Box::pin(async move {
            let next = move |req: Request| async move {
                match inner.call(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            Ok(match idempotent(state, req, next).await {
                Ok(response) | Err(response) => response,
            })
        }))
    }
}

/// A request with a valid key, ready to be claimed.
struct Claimed {
    scope: KeyScope,
    key_hash: [u8; 32],
    token: String,
}

async fn idempotent<F: Future<Output = Response>>(
    state: AppState,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Result<Response, Response> {
    let (mut parts, body) = req.into_parts();
    // Authentication first: a credential that fails gets its 401, never a
    // stored response. The Caller caches itself in the extensions, so the
    // handler does not authenticate (or count against limits) again.
    let caller = Caller::from_request_parts(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    // Another tenant's path is 404 before anything about the key is said.
    TenantPathChecked::from_request_parts(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    let key = parse_key(&parts.headers).map_err(IntoResponse::into_response)?;
    let bytes = read_body(&state, &parts, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let scope = match &caller {
        Caller::Tenant { tenant, .. } => KeyScope::Tenant(tenant.id.clone()),
        Caller::Operator { .. } => KeyScope::Operator,
    };
    let key_hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let fingerprint = fingerprint(&parts, &caller, &bytes);
    let token = match claim(&state, &scope, &key_hash, &fingerprint).await {
        Ok(Claim::Owned(token)) => token,
        Ok(Claim::Replay(stored)) => return Ok(replay(&state, &scope, &key_hash, &stored)),
        Err(err) => return Err(err.into_response()),
    };
    let claimed = Claimed {
        scope,
        key_hash,
        token,
    };
    // Renewed while the handler runs, in a task of its own (on SQLite the
    // renewal waits for the one writer, which the handler may be holding).
    let heartbeat = Heartbeat(tokio::spawn(renew(
        state.clone(),
        claimed.scope.clone(),
        claimed.key_hash,
        claimed.token.clone(),
    )));
    // Released if the handler never returns (a panic unwinds through here).
    let mut guard = ReleaseOnDrop {
        state: state.clone(),
        claimed: Some(claimed),
    };
    let response = next(Request::from_parts(parts, Body::from(bytes))).await;
    drop(heartbeat);
    let Some(claimed) = guard.claimed.take() else {
        return Ok(response);
    };
    Ok(finish(&state, claimed, response).await)
}

/// The key of the request: one header of 1–255 visible ASCII characters.
fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = |detail: &'static str| {
        ApiError::invalid(tenantry_core::ValidationError::new(
            "Idempotency-Key",
            "invalid",
            detail,
        ))
    };
    let mut values = headers.get_all(HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid("send exactly one Idempotency-Key header"));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid(
            "the Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)",
        ));
    }
    // All ASCII, checked above.
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Reads the whole body within the limit and the deadline the outer layers
/// set, answering as the JSON extractor would (see `extract::ApiJson`).
async fn read_body(state: &AppState, parts: &Parts, body: Body) -> Result<Bytes, ApiError> {
    use axum::extract::FromRequest;
    let limit = parts.extensions.get::<BodyLimit>().map_or(0, |l| l.0);
    let deadline = parts.extensions.get::<BodyDeadline>().cloned();
    // The body limit travels in the extensions: read the body as the
    // handler's extractor would, under the same ones.
    let mut probe = Request::new(body);
    *probe.headers_mut() = parts.headers.clone();
    *probe.extensions_mut() = parts.extensions.clone();
    Bytes::from_request(probe, state)
        .await
        .map_err(|rejection| {
            if timed_out(deadline.as_ref()) {
                ApiError::RequestBodyTimeout
            } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::MalformedJson("the body could not be read".into())
            }
        })
}

/// SHA-256 over the request's method, route, path and query, caller (its
/// identity and, for a tenant key or token, the scopes it holds now) and
/// body, each length-prefixed. The caller is part of it: another key of the
/// same tenant, a narrower token of the same key, or the same key after its
/// scopes were narrowed cannot replay a response (a minted key, say) it
/// could not have obtained itself.
fn fingerprint(parts: &Parts, caller: &Caller, body: &[u8]) -> [u8; 32] {
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let actor = caller.actor();
    let scopes = match caller {
        Caller::Tenant { scopes, .. } => {
            let mut names: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            names.sort();
            names.join(" ")
        }
        Caller::Operator { .. } => String::new(),
    };
    let mut hash = Sha256::new();
    for part in [
        parts.method.as_str().as_bytes(),
        route.as_bytes(),
        path.as_bytes(),
        actor.as_str().as_bytes(),
        scopes.as_bytes(),
        body,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

enum Claim {
    /// This request holds the key: run it.
    Owned(String),
    /// The key's request already ran: answer what it answered.
    Replay(StoredResponse),
}

fn now_ms(state: &AppState) -> i64 {
    state.clock.now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A reservation not renewed for this long was left by a crash: the request
/// holding one renews it every [`heartbeat_every`] while its handler runs
/// (a slow handler, even one whose caller was answered 503 at the request
/// timeout, keeps its key).
fn abandoned_after(state: &AppState) -> i64 {
    millis(state.config.request_timeout).saturating_mul(2)
}

fn heartbeat_every(state: &AppState) -> Duration {
    (state.config.request_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(10))
}

/// What a request makes of the row it found under its key.
enum Found {
    /// The key is free, expired or abandoned: try to reserve it.
    Free,
    /// Another request holds it: wait.
    Pending,
    Done(StoredResponse),
}

/// Whether a row no longer holds its key: expired, or a reservation
/// abandoned by a crash.
fn is_stale(row: &IdempotencyRow, now: i64, abandoned_after: i64) -> bool {
    row.expires_ms <= now
        || (row.response.is_none() && row.reserved_ms.saturating_add(abandoned_after) <= now)
}

/// Reads a found row: another request's fingerprint is `422`.
fn judge(
    row: Option<IdempotencyRow>,
    fingerprint: &[u8; 32],
    now: i64,
    abandoned_after: i64,
) -> Result<Found, ApiError> {
    let Some(row) = row else {
        return Ok(Found::Free);
    };
    if is_stale(&row, now, abandoned_after) {
        return Ok(Found::Free);
    }
    if row.fingerprint.as_slice() != fingerprint.as_slice() {
        return Err(ApiError::idempotency_key_reused());
    }
    Ok(match row.response {
        Some(stored) => Found::Done(stored),
        None => Found::Pending,
    })
}

/// Reserves the key for this request, or finds the response to replay, or
/// waits (bounded) for the request that holds it. Reservations are write
/// transactions; waiting polls only read (SQLite has one writer, which the
/// request being waited for needs).
async fn claim(
    state: &AppState,
    scope: &KeyScope,
    key_hash: &[u8; 32],
    fingerprint: &[u8; 32],
) -> Result<Claim, ApiError> {
    let ttl = millis(state.config.idempotency_ttl);
    let abandoned_after = abandoned_after(state);
    let wait = MAX_WAIT.min(state.config.request_timeout / 2);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Reserve, or take over an expired or abandoned key.
        let token = hex::encode(rand::random::<[u8; 16]>());
        let mut tx = scope.open(state, true).await?;
        // The time once the write lock is ours: a reservation says when it
        // was made, not when its request began waiting for the database.
        let now = now_ms(state);
        let reservation = Reservation {
            key_hash,
            fingerprint,
            token: &token,
            now_ms: now,
            expires_ms: now.saturating_add(ttl),
        };
        if tx.reserve(&reservation).await? {
            tx.commit().await?;
            return Ok(Claim::Owned(token));
        }
        let row = tx.get(key_hash).await?;
        if let Some(held) = &row
            && is_stale(held, now, abandoned_after)
        {
            let taken = tx.take_over(&held.token, &reservation).await?;
            tx.commit().await?;
            if taken {
                if held.response.is_none() && held.expires_ms > now {
                    tracing::info!("took over an abandoned idempotency key reservation");
                }
                return Ok(Claim::Owned(token));
            }
            // Another request took it over first: it holds the key now.
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::IdempotencyKeyInProgress);
            }
            continue;
        }
        tx.commit().await?;
        let mut found = judge(row, fingerprint, now, abandoned_after)?;
        // Wait for the request that holds it, reading only.
        loop {
            match found {
                Found::Done(stored) => return Ok(Claim::Replay(stored)),
                Found::Free => break,
                Found::Pending => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::IdempotencyKeyInProgress);
            }
            tokio::time::sleep(POLL).await;
            let mut tx = scope.open(state, false).await?;
            let row = tx.get(key_hash).await?;
            tx.commit().await?;
            found = judge(row, fingerprint, now_ms(state), abandoned_after)?;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::IdempotencyKeyInProgress);
        }
    }
}

/// Whether a response is the request's result (stored and replayed), or a
/// transient failure after which a retry must run again.
fn is_result(status: StatusCode) -> bool {
    !status.is_server_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && status != StatusCode::REQUEST_TIMEOUT
}

/// Stores the handler's response (or releases the key), and returns it.
async fn finish(state: &AppState, claimed: Claimed, response: Response) -> Response {
    if !is_result(response.status()) {
        release(state, &claimed).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers' responses are whole JSON documents already in memory.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            release(state, &claimed).await;
            return ApiError::Internal.into_response();
        }
    };
    let header_text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let stored = seal(state, &claimed.scope, &claimed.key_hash, &bytes).map(
        |(kek_id, wrapped_key, body)| StoredResponse {
            status: parts.status.as_u16(),
            content_type: header_text(header::CONTENT_TYPE),
            location: header_text(header::LOCATION),
            kek_id,
            wrapped_key,
            body,
        },
    );
    let outcome = match stored {
        Ok(stored) => store(state, &claimed, &stored).await,
        Err(err) => Err(err),
    };
    if let Err(err) = outcome {
        // The change (if any) is done and the caller gets its answer. The
        // reservation stays pending (a retry is told 409 in progress) until
        // it counts as abandoned: releasing it would invite a second effect.
        tracing::error!(error = %err, "the response to an idempotent request could not be stored");
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn store(state: &AppState, claimed: &Claimed, stored: &StoredResponse) -> Result<(), String> {
    let mut tx = claimed
        .scope
        .open(state, true)
        .await
        .map_err(|e| e.to_string())?;
    let done = tx
        .complete(&claimed.key_hash, &claimed.token, stored)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    if !done {
        // Taken over meanwhile (this request outlived twice the request
        // timeout; the newer request's answer stands), or purged with its
        // tenant.
        tracing::warn!(
            "an idempotency key reservation was gone (taken over or purged) when its request finished"
        );
    }
    Ok(())
}

async fn release(state: &AppState, claimed: &Claimed) {
    let outcome = async {
        let mut tx = claimed.scope.open(state, true).await?;
        tx.release(&claimed.key_hash, &claimed.token).await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = outcome {
        tracing::warn!(error = %err, "an idempotency key could not be released; it is taken over once abandoned");
    }
}

/// Renews a reservation until aborted.
async fn renew(state: AppState, scope: KeyScope, key_hash: [u8; 32], token: String) {
    let every = heartbeat_every(&state);
    loop {
        tokio::time::sleep(every).await;
        let outcome = async {
            let mut tx = scope.open(&state, true).await?;
            let held = tx.touch(&key_hash, &token, now_ms(&state)).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(held)
        }
        .await;
        match outcome {
            Ok(true) => {}
            // Taken over or purged: nothing left to renew.
            Ok(false) => return,
            // The next beat tries again.
            Err(err) => {
                tracing::debug!(error = %err, "could not renew an idempotency key reservation")
            }
        }
    }
}

/// Stops the renewal when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Releases the key if the request is dropped (or panics) before it finished.
struct ReleaseOnDrop {
    state: AppState,
    claimed: Option<Claimed>,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some(claimed) = self.claimed.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let state = self.state.clone();
            runtime.spawn(async move { release(&state, &claimed).await });
        }
    }
}

fn binding<'a>(label: &'a str, record: &'a str) -> Binding<'a> {
    Binding {
        tenant_id: label,
        record_id: record,
        kind: SEALED_KIND,
        field: "response",
    }
}

/// Seals a response body under a fresh data key, itself wrapped by the
/// keyring's active KEK for this scope: (KEK id, wrapped key, envelope). The
/// database alone can never show a key or token a response handed out.
fn seal(
    state: &AppState,
    scope: &KeyScope,
    key_hash: &[u8; 32],
    body: &[u8],
) -> Result<(String, Vec<u8>, String), String> {
    let label = scope.label();
    let record = hex::encode(key_hash);
    let dek = DataKey::generate(tenantry_core::ids::prefixed_id("idk", rand::random()));
    // The keyring in memory: these keys live a day at most, and one whose
    // KEK is later removed from the keyring only stops replaying.
    let keyring = state.vault.keyring();
    let wrapped = tenantry_crypto::wrap(&keyring, &label, &dek).map_err(|e| e.to_string())?;
    let envelope =
        tenantry_crypto::seal(&dek, &binding(&label, &record), body).map_err(|e| e.to_string())?;
    Ok((wrapped.kek_id, wrapped.ciphertext, envelope))
}

/// Opens a stored response body.
fn open(
    state: &AppState,
    scope: &KeyScope,
    key_hash: &[u8; 32],
    stored: &StoredResponse,
) -> Result<Vec<u8>, CryptoError> {
    let label = scope.label();
    let record = hex::encode(key_hash);
    let dek_id = tenantry_crypto::envelope_dek_id(&stored.body)?;
    let wrapped = WrappedKey {
        kek_id: stored.kek_id.clone(),
        ciphertext: stored.wrapped_key.clone(),
    };
    let dek = match tenantry_crypto::unwrap(&state.vault.keyring(), &label, dek_id, &wrapped) {
        // Another process may have rotated the keyring file.
        Err(CryptoError::UnknownKek(_)) if state.vault.reload().unwrap_or(false) => {
            tenantry_crypto::unwrap(&state.vault.keyring(), &label, dek_id, &wrapped)?
        }
        other => other?,
    };
    tenantry_crypto::open(&dek, &binding(&label, &record), &stored.body)
}

/// The stored response, as it was first given, marked as a replay.
fn replay(
    state: &AppState,
    scope: &KeyScope,
    key_hash: &[u8; 32],
    stored: &StoredResponse,
) -> Response {
    let body = match open(state, scope, key_hash, stored) {
        Ok(body) => body,
        Err(CryptoError::UnknownKek(kek)) => {
            tracing::warn!(
                kek_id = kek,
                "a stored idempotent response's KEK is no longer in the keyring"
            );
            return ApiError::idempotency_response_unavailable().into_response();
        }
        Err(err) => {
            tracing::error!(error = %err, "a stored idempotent response could not be opened");
            return ApiError::DecryptionFailed.into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, &stored.content_type),
        (header::LOCATION, &stored.location),
    ] {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Documents the header on every operation of [`ROUTES`].
pub fn document(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    for route in ROUTES {
        let Some(item) = openapi.paths.paths.get_mut(*route) else {
            continue;
        };
        let Some(operation) = item.post.as_mut() else {
            continue;
        };
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: a request with the same key (1 to 255 visible ASCII characters) \
                 and the same method, path, credential and body within the retention period \
                 (TENANTRY_IDEMPOTENCY_TTL, 24 h by default) is answered with the first \
                 response's status and body, marked `Idempotent-Replayed: true`, without a \
                 second effect. Keys are scoped to the caller's tenant (or to the operators). The \
                 same key with another request is `422 idempotency_key_reused`; while the first \
                 request still runs, `409 idempotency_key_in_progress` with `Retry-After`.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_KEY_LEN))
                    .pattern(Some("^[\\x21-\\x7E]+$")),
            ))
            .build();
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(parameter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let headers = |value: &[u8]| {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(value) {
                h.insert(HEADER, v);
            }
            h
        };
        assert!(parse_key(&headers(b"a")).is_ok());
        assert!(parse_key(&headers(&[b'k'; 255])).is_ok());
        assert!(parse_key(&headers(&[b'k'; 256])).is_err());
        assert!(parse_key(&headers(b"has space")).is_err());
        assert!(parse_key(&headers(b"tab\there")).is_err());
        assert!(parse_key(&headers("caf\u{e9}".as_bytes())).is_err());
        assert!(parse_key(&HeaderMap::new()).is_err());
    }

    #[test]
    fn every_listed_route_is_documented_with_the_header() {
        let doc = crate::openapi::document();
        for route in ROUTES {
            let operation = doc
                .paths
                .paths
                .get(*route)
                .and_then(|item| item.post.as_ref());
            let has = operation.is_some_and(|op| {
                op.parameters
                    .iter()
                    .flatten()
                    .any(|p| p.name == "Idempotency-Key")
            });
            assert!(has, "{route} does not document Idempotency-Key");
        }
    }
}
