//! The unit of work: every mutation, tenant-scoped or operator-level, is a
//! [`TenantChange`] or an [`OperatorChange`] opened from a grant.
//!
//! A change carries its transaction, its actor and what it changed. Its
//! `commit` writes, inside the transaction and in this order, the tenant
//! events, the audit entries and the cross-process cache invalidations
//! (PostgreSQL NOTIFY, delivered only if the transaction commits), commits,
//! and only then clears this process's caches. A change that is dropped
//! instead rolls back with nothing recorded, so there is no entry for a
//! change that did not happen and no change without its entry: `commit`
//! refuses a change that records no audit entry at all.

#![allow(clippy::disallowed_methods)]

use crate::app::AppState;
use crate::grant::Principal;
use crate::resolution::cache::Invalidation;
use tenantry_core::audit::{AuditDraft, AuditTarget, Outcome, RequestInfo};
use tenantry_core::tenant::TenantEventKind;
use tenantry_store::{OperatorTx, StoreError, TenantTx};

tokio::task_local! {
    /// The request being served, set by the router for each request's
    /// handler: changes take their audit `request` from it.
    pub static REQUEST: std::sync::Arc<RequestContext>;
}

/// What the audit log needs to know of the request being served.
#[derive(Debug, Default)]
pub struct RequestContext {
    pub info: RequestInfo,
    /// The tenant credential the request presented, once authentication
    /// has told whose it is (valid or not): a refusal is recorded in that
    /// tenant's chain.
    credential: std::sync::Mutex<Option<(tenantry_core::TenantId, Principal)>>,
}

impl RequestContext {
    pub fn new(info: RequestInfo) -> RequestContext {
        RequestContext {
            info,
            credential: std::sync::Mutex::new(None),
        }
    }

    fn credential(&self) -> Option<(tenantry_core::TenantId, Principal)> {
        self.credential
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The request in progress, or nothing (a worker, a command).
pub fn current_request() -> RequestInfo {
    REQUEST.try_with(|c| c.info.clone()).unwrap_or_default()
}

/// Notes whose tenant credential the current request presented.
pub(crate) fn note_credential(tenant: &tenantry_core::TenantId, principal: Principal) {
    let _ = REQUEST.try_with(|c| {
        *c.credential.lock().unwrap_or_else(|p| p.into_inner()) = Some((tenant.clone(), principal));
    });
}

/// How many refusals of one credential a minute are recorded; beyond, they
/// are still refused but not recorded.
pub const REFUSALS_RECORDED_PER_MINUTE: u64 = 60;

/// Routes whose refusals are answers, not attempts on a tenant's
/// resources: verifying a key or resolving a request is their whole job.
const NOT_ATTEMPTS: [&str; 2] = ["/v1/keys/verify", "/v1/resolve"];

/// Records a refused request (`401`, `403` or `404`) made with a tenant's
/// credential in that tenant's chain, as its own change (nothing else
/// happened). A failure to record is logged, and the refusal still sent.
pub async fn record_refusal(
    state: &AppState,
    context: &RequestContext,
    status: axum::http::StatusCode,
    method: &axum::http::Method,
    route: Option<&str>,
) {
    use axum::http::StatusCode;
    if !matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ) {
        return;
    }
    let Some(route) = route else { return };
    if NOT_ATTEMPTS.contains(&route) {
        return;
    }
    let Some((tenant, principal)) = context.credential() else {
        return;
    };
    // Refusals come before any rate limit (a revoked key is never held to
    // one): each credential gets its refusals recorded up to a bound, so a
    // leaked key cannot turn into unbounded audit writes.
    let bucket = format!("t:{tenant}:refusals:{}", principal.audit.id);
    let policy = crate::limits::ratelimit::Policy {
        limit: REFUSALS_RECORDED_PER_MINUTE,
        period: std::time::Duration::from_secs(60),
    };
    if !state.rate_limiter.check(&bucket, policy, 1).await.allowed {
        tracing::debug!(tenant_id = %tenant, "refusal not recorded: over the per-credential bound");
        return;
    }
    let result = async {
        let tx = state.store.tenant_write(&tenant).await?;
        let mut change = TenantChange::new(state, tx, principal);
        let mut draft = change.record.draft(
            "access.denied",
            vec![AuditTarget::new("route", format!("{method} {route}"))],
            serde_json::json!({}),
        );
        draft.outcome = Outcome::Denied;
        draft.metadata = serde_json::json!({ "status": status.as_u16() });
        change.record.audit.push(draft);
        change.commit().await
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "a refused request could not be recorded in the audit log");
    }
}

/// What a change records besides its rows.
struct Record {
    principal: Principal,
    request: RequestInfo,
    events: Vec<(TenantEventKind, serde_json::Value)>,
    audit: Vec<AuditDraft>,
    invalidations: Vec<Invalidation>,
}

impl Record {
    fn new(principal: Principal) -> Record {
        Record {
            principal,
            request: current_request(),
            events: Vec::new(),
            audit: Vec::new(),
            invalidations: Vec::new(),
        }
    }

    fn draft(
        &self,
        action: &str,
        targets: Vec<AuditTarget>,
        changes: serde_json::Value,
    ) -> AuditDraft {
        AuditDraft {
            actor: self.principal.audit.clone(),
            action: action.to_owned(),
            targets,
            outcome: Outcome::Success,
            request: self.request.clone(),
            changes,
            metadata: serde_json::json!({}),
        }
    }

    fn push_audit(
        &mut self,
        action: &str,
        targets: Vec<AuditTarget>,
        changes: serde_json::Value,
        metadata: serde_json::Value,
    ) {
        let mut draft = self.draft(action, targets, changes);
        draft.metadata = metadata;
        self.audit.push(draft);
    }

    fn invalidate(&mut self, invalidation: Invalidation) {
        if !self.invalidations.contains(&invalidation) {
            self.invalidations.push(invalidation);
        }
    }

    fn require_audit(&self) -> Result<(), StoreError> {
        if self.audit.is_empty() {
            return Err(StoreError::Corrupt(
                "a change was committed without an audit entry".into(),
            ));
        }
        Ok(())
    }
}

/// A change to one tenant's rows.
pub struct TenantChange {
    state: AppState,
    tx: TenantTx,
    record: Record,
}

impl TenantChange {
    pub(crate) fn new(state: &AppState, tx: TenantTx, principal: Principal) -> TenantChange {
        TenantChange {
            state: state.clone(),
            tx,
            record: Record::new(principal),
        }
    }

    /// The transaction, for the change's own reads and writes.
    pub fn tx(&mut self) -> &mut TenantTx {
        &mut self.tx
    }

    pub fn tenant_id(&self) -> &tenantry_core::TenantId {
        self.tx.tenant_id()
    }

    /// The actor as the tenant event history shows it.
    pub fn actor(&self) -> &tenantry_core::tenant::Actor {
        &self.record.principal.legacy
    }

    /// Adds an entry to the tenant's event history.
    pub fn event(&mut self, kind: TenantEventKind, data: serde_json::Value) {
        self.record.events.push((kind, data));
    }

    /// Records what changed (`changes`: before/after; never a secret: a
    /// sealed value appears as `"[sealed]"`).
    pub fn audit(&mut self, action: &str, targets: Vec<AuditTarget>, changes: serde_json::Value) {
        self.audit_with(action, targets, changes, serde_json::json!({}));
    }

    /// [`Self::audit`] with metadata (context that is not a change).
    pub fn audit_with(
        &mut self,
        action: &str,
        targets: Vec<AuditTarget>,
        changes: serde_json::Value,
        metadata: serde_json::Value,
    ) {
        self.record.push_audit(action, targets, changes, metadata);
    }

    /// A cache entry this change makes wrong, on every server process.
    pub fn invalidate(&mut self, invalidation: Invalidation) {
        self.record.invalidate(invalidation);
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let TenantChange {
            state,
            mut tx,
            record,
        } = self;
        record.require_audit()?;
        let now = state.clock.now();
        let wake = !record.events.is_empty();
        for (kind, data) in record.events {
            let id = state.ids.sortable("evt", millis(now));
            tx.record_event(id, kind, &record.principal.legacy, data, now)
                .await?;
        }
        for draft in &record.audit {
            let id = state.ids.sortable("aud", millis(now));
            tx.append_audit(id, draft, now).await?;
        }
        let tenant = tx.tenant_id().clone();
        for invalidation in &record.invalidations {
            tx.notify(&crate::changes::wire(Some(&tenant), invalidation))
                .await?;
        }
        tx.commit().await?;
        state.forget(&record.invalidations);
        state
            .changes
            .committed(Some(&tenant), &record.invalidations);
        if wake {
            state.webhook_wake.notify_one();
        }
        Ok(())
    }

    /// Deletes every row of the tenant (its audit chain included) and
    /// records the purge in the operator's chain, in one transaction; then
    /// drops everything this process cached about any tenant.
    pub async fn purge(self) -> Result<(), StoreError> {
        let TenantChange {
            state,
            mut tx,
            mut record,
        } = self;
        let tenant = tx.tenant_id().clone();
        tx.notify(&Invalidation::All.encode()).await?;
        let mut op = tx.purge().await?;
        if record.audit.is_empty() {
            let draft = record.draft(
                "tenant.purged",
                vec![AuditTarget::new("tenant", tenant.as_str())],
                serde_json::json!({}),
            );
            record.audit.push(draft);
        }
        let now = state.clock.now();
        for draft in &record.audit {
            let id = state.ids.sortable("aud", millis(now));
            op.append_operator_audit(id, draft, now).await?;
        }
        // The tenant's own stream is gone with its rows: the purge is an
        // operator-level event.
        let purged = [(
            TenantEventKind::TenantPurged,
            serde_json::json!({ "tenant_id": tenant.as_str() }),
        )];
        record_operator_events(&state, &mut op, &record, purged.iter(), now).await?;
        op.commit().await?;
        state.forget(&[Invalidation::All]);
        state.changes.committed(None, &[Invalidation::All]);
        // SQLite: the deleted rows were zeroed (secure_delete); empty the WAL
        // too, whose older frames still hold the wrapped data key.
        if !state.store.shred_checkpoint().await? {
            tracing::warn!(
                "the write-ahead log could not be emptied after a purge; it will be at the next checkpoint"
            );
        }
        Ok(())
    }
}

/// A change on the operator path.
pub struct OperatorChange {
    state: AppState,
    tx: OperatorTx,
    record: Record,
}

impl OperatorChange {
    pub(crate) fn new(state: &AppState, tx: OperatorTx, principal: Principal) -> OperatorChange {
        OperatorChange {
            state: state.clone(),
            tx,
            record: Record::new(principal),
        }
    }

    pub fn tx(&mut self) -> &mut OperatorTx {
        &mut self.tx
    }

    pub fn actor(&self) -> &tenantry_core::tenant::Actor {
        &self.record.principal.legacy
    }

    /// Adds an event with no tenant to the operator's event stream (it is
    /// delivered to operator webhook endpoints).
    pub fn event(&mut self, kind: TenantEventKind, data: serde_json::Value) {
        self.record.events.push((kind, data));
    }

    /// Records an operator-level change in the operator's chain.
    pub fn audit(&mut self, action: &str, targets: Vec<AuditTarget>, changes: serde_json::Value) {
        self.audit_with(action, targets, changes, serde_json::json!({}));
    }

    /// [`Self::audit`] with metadata (context that is not a change).
    pub fn audit_with(
        &mut self,
        action: &str,
        targets: Vec<AuditTarget>,
        changes: serde_json::Value,
        metadata: serde_json::Value,
    ) {
        self.record.push_audit(action, targets, changes, metadata);
    }

    pub fn invalidate(&mut self, invalidation: Invalidation) {
        self.record.invalidate(invalidation);
    }

    /// Continues this same transaction as a change to one tenant (a
    /// registry row and the tenant's own rows commit together, and the
    /// change is recorded in the tenant's chain). Entries already recorded
    /// here go to the operator chain first; invalidations carry over.
    pub async fn scope_to(
        self,
        tenant: &tenantry_core::TenantId,
    ) -> Result<TenantChange, StoreError> {
        let OperatorChange {
            state,
            mut tx,
            mut record,
        } = self;
        let now = state.clock.now();
        for draft in record.audit.drain(..) {
            let id = state.ids.sortable("aud", millis(now));
            tx.append_operator_audit(id, &draft, now).await?;
        }
        record_operator_events(&state, &mut tx, &record, record.events.iter(), now).await?;
        record.events.clear();
        let tx = tx.scope_to(tenant).await?;
        Ok(TenantChange { state, tx, record })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let OperatorChange {
            state,
            mut tx,
            record,
        } = self;
        record.require_audit()?;
        let now = state.clock.now();
        for draft in &record.audit {
            let id = state.ids.sortable("aud", millis(now));
            tx.append_operator_audit(id, draft, now).await?;
        }
        record_operator_events(&state, &mut tx, &record, record.events.iter(), now).await?;
        for invalidation in &record.invalidations {
            tx.notify(&invalidation.encode()).await?;
        }
        tx.commit().await?;
        state.forget(&record.invalidations);
        state.changes.committed(None, &record.invalidations);
        if !record.events.is_empty() {
            state.webhook_wake.notify_one();
        }
        Ok(())
    }
}

/// Writes events with no tenant to the operator's stream (and its outbox).
async fn record_operator_events<'a>(
    state: &AppState,
    tx: &mut OperatorTx,
    record: &Record,
    events: impl Iterator<Item = &'a (TenantEventKind, serde_json::Value)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    for (kind, data) in events {
        let id = state.ids.sortable("evt", millis(now));
        let body = tenantry_core::tenant::webhook_body(*kind, None, data, now);
        tx.record_operator_event(
            &id,
            kind.as_str(),
            record.principal.legacy.as_str(),
            data,
            &body,
            now,
        )
        .await?;
    }
    Ok(())
}

fn millis(now: chrono::DateTime<chrono::Utc>) -> u64 {
    now.timestamp_millis().max(0) as u64
}
