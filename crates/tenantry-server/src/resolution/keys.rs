//! Verifying API keys: the per-request hot path. A key is
//! rejected by shape and checksum before any lookup; a well-formed one is
//! looked up by its SHA-256 in the cache, then the database, through the
//! resolver's grant ([`super::resolver`]). Making and changing keys is in
//! [`crate::keys`].

use super::cache::{Caches, Entry, TenantSnapshot};
use crate::app::AppState;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenantry_core::TenantId;
use tenantry_core::keys::{ApiKey, KeyKind, OperatorKey, Scopes, VerifyCode, parse_key};
use tenantry_core::tenant::TenantStatus;
use tenantry_store::StoreError;

// Kept here too for the callers that predate `crate::keys` (`seed.rs`).
pub use crate::keys::{MintedKey, hash_key, mint};

/// The outcome of verifying a tenant key.
#[derive(Debug, Clone)]
pub struct Verification {
    pub code: VerifyCode,
    pub key: Option<Arc<ApiKey>>,
    pub tenant: Option<Arc<TenantSnapshot>>,
}

impl Verification {
    fn not_found() -> Self {
        Verification {
            code: VerifyCode::NotFound,
            key: None,
            tenant: None,
        }
    }
}

/// Looks a tenant key up by hash: cache first, then the database.
pub async fn load_key(
    state: &AppState,
    hash: &[u8; 32],
) -> Result<Option<Arc<ApiKey>>, StoreError> {
    let caches: &Caches = &state.caches;
    if let Some(entry) = caches.keys.get(hash) {
        return Ok(match entry {
            Entry::Found(key) => Some(key),
            Entry::Missing => None,
        });
    }
    let generation = caches.generation();
    let mut op = super::resolver().read(state).await?;
    let found = op.find_key_by_hash(hash).await?;
    op.commit().await?;
    let found = found.map(Arc::new);
    let entry = found.clone().map(Entry::Found).unwrap_or(Entry::Missing);
    caches.store(&caches.keys, generation, *hash, entry);
    Ok(found)
}

/// Looks a tenant's snapshot up: cache first, then the database.
pub async fn load_tenant(
    state: &AppState,
    id: &TenantId,
) -> Result<Option<Arc<TenantSnapshot>>, StoreError> {
    let caches: &Caches = &state.caches;
    if let Some(entry) = caches.tenants.get(id) {
        return Ok(match entry {
            Entry::Found(t) => Some(t),
            Entry::Missing => None,
        });
    }
    let generation = caches.generation();
    let mut op = super::resolver().read(state).await?;
    let found = op.get_tenant(id).await?;
    op.commit().await?;
    let found = found.map(|t| {
        Arc::new(TenantSnapshot {
            id: t.id,
            name: t.name.to_string(),
            subdomain: t.subdomain.to_string(),
            status: t.status,
            plan: t.plan.to_string(),
            region: t.region.to_string(),
        })
    });
    let entry = found.clone().map(Entry::Found).unwrap_or(Entry::Missing);
    caches.store(&caches.tenants, generation, id.clone(), entry);
    Ok(found)
}

/// Verifies a presented tenant key and, when `required` is not empty, that
/// it grants those scopes, and records a valid key's use. Malformed keys
/// cost no I/O.
pub async fn verify(
    state: &AppState,
    presented: &str,
    required: &Scopes,
) -> Result<Verification, StoreError> {
    let verification = check(state, presented, required).await?;
    if let (VerifyCode::Valid, Some(key)) = (verification.code, &verification.key) {
        record_use(state, key);
    }
    Ok(verification)
}

/// Records that a key was used (written in the next batch).
pub fn record_use(state: &AppState, key: &ApiKey) {
    state
        .key_usage
        .record_tenant_key(&key.tenant_id, &key.id, state.clock.now());
}

/// Like [`verify`], without recording the key's use: for callers that may
/// not be entitled to learn of the key (another tenant's caller).
pub async fn check(
    state: &AppState,
    presented: &str,
    required: &Scopes,
) -> Result<Verification, StoreError> {
    let Some(parsed) = parse_key(presented) else {
        return Ok(Verification::not_found());
    };
    if parsed.kind != KeyKind::Tenant {
        return Ok(Verification::not_found());
    }
    check_hash(state, &hash_key(presented), required).await
}

/// [`check`] for a key known by its hash (a console session keeps the hash,
/// never the key): the same verdict, read through the same caches.
pub async fn check_hash(
    state: &AppState,
    hash: &[u8; 32],
    required: &Scopes,
) -> Result<Verification, StoreError> {
    let Some(key) = load_key(state, hash).await? else {
        return Ok(Verification::not_found());
    };
    let tenant = match load_tenant(state, &key.tenant_id).await? {
        Some(t) if matches!(t.status, TenantStatus::Active | TenantStatus::Suspended) => t,
        // A key of a deleted (or purged) tenant does not exist any more; one
        // of a tenant being provisioned does not exist yet.
        _ => return Ok(Verification::not_found()),
    };
    let now = state.clock.now();
    let code = if key.revoked_at.is_some() {
        VerifyCode::Revoked
    } else if key.expires_at.is_some_and(|at| at <= now) {
        VerifyCode::Expired
    } else if !key.enabled {
        VerifyCode::Disabled
    } else if tenant.status == TenantStatus::Suspended {
        VerifyCode::TenantSuspended
    } else if key.scopes.missing(required).is_some() {
        VerifyCode::InsufficientScopes
    } else {
        VerifyCode::Valid
    };
    Ok(Verification {
        code,
        key: Some(key),
        tenant: Some(tenant),
    })
}

/// Authenticates an operator key (`tnt_op_…`).
pub async fn verify_operator_key(
    state: &AppState,
    presented: &str,
) -> Result<Option<Arc<OperatorKey>>, StoreError> {
    let Some(parsed) = parse_key(presented) else {
        return Ok(None);
    };
    if parsed.kind != KeyKind::Operator {
        return Ok(None);
    }
    operator_key_by_hash(state, &hash_key(presented)).await
}

/// [`verify_operator_key`] for a key known by its hash (console sessions).
pub async fn operator_key_by_hash(
    state: &AppState,
    hash: &[u8; 32],
) -> Result<Option<Arc<OperatorKey>>, StoreError> {
    let hash = *hash;
    let caches: &Caches = &state.caches;
    let key = match caches.operator_keys.get(&hash) {
        Some(Entry::Found(key)) => Some(key),
        Some(Entry::Missing) => None,
        None => {
            let generation = caches.generation();
            let mut op = super::resolver().read(state).await?;
            let found = op.find_operator_key_by_hash(&hash).await?.map(Arc::new);
            op.commit().await?;
            let entry = found.clone().map(Entry::Found).unwrap_or(Entry::Missing);
            caches.store(&caches.operator_keys, generation, hash, entry);
            found
        }
    };
    let key = key.filter(|k| k.revoked_at.is_none());
    if let Some(k) = &key {
        state
            .key_usage
            .record_operator_key(&k.id, state.clock.now());
    }
    Ok(key)
}

/// When keys were last used, gathered in memory and written in batches by
/// `workers::key_usage`, so a request costs no database write.
#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// key id → (tenant, last use); key ids are unique across tenants.
    tenant_keys: HashMap<String, (TenantId, DateTime<Utc>)>,
    operator_keys: HashMap<String, DateTime<Utc>>,
}

/// One tenant's keys and when each was last used.
pub type TenantUsage = (TenantId, Vec<(String, DateTime<Utc>)>);

/// Last-use times to write, per tenant, and for operator keys.
pub type UsageBatch = (
    HashMap<TenantId, Vec<(String, DateTime<Utc>)>>,
    Vec<(String, DateTime<Utc>)>,
);

impl KeyUsage {
    pub fn record_tenant_key(&self, tenant: &TenantId, key_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.tenant_keys.get_mut(key_id) {
            Some((_, existing)) => *existing = (*existing).max(at),
            None => {
                pending
                    .tenant_keys
                    .insert(key_id.to_owned(), (tenant.clone(), at));
            }
        }
    }

    pub fn record_operator_key(&self, key_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.operator_keys.insert(key_id.to_owned(), at);
    }

    /// Puts back what a failed flush could not write, so the next flush
    /// writes it (uses recorded meanwhile win when they are later).
    pub fn restore(&self, tenant_keys: &[TenantUsage], operator_keys: &[(String, DateTime<Utc>)]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (tenant, used) in tenant_keys {
            for (key_id, at) in used {
                pending
                    .tenant_keys
                    .entry(key_id.clone())
                    .and_modify(|(_, existing)| *existing = (*existing).max(*at))
                    .or_insert_with(|| (tenant.clone(), *at));
            }
        }
        for (key_id, at) in operator_keys {
            pending
                .operator_keys
                .entry(key_id.clone())
                .and_modify(|existing| *existing = (*existing).max(*at))
                .or_insert(*at);
        }
    }

    /// Takes everything recorded since the last call.
    pub fn take(&self) -> UsageBatch {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut by_tenant: HashMap<TenantId, Vec<(String, DateTime<Utc>)>> = HashMap::new();
        for (key, (tenant, at)) in pending.tenant_keys {
            by_tenant.entry(tenant).or_default().push((key, at));
        }
        (by_tenant, pending.operator_keys.into_iter().collect())
    }
}
