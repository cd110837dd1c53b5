//! Tenants' third-party credentials: storing them with their secret fields
//! sealed, changing, deleting and revealing them, and re-encrypting them
//! under a new data key. Called by the API and by key rotation alike; every
//! mutation (and every reveal) is one change (see [`crate::change`]).

use super::seal::{envelope_of, seal_value, sealed_field};
use super::{DataKeys, VaultError};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use serde_json::{Map, Value, json};
use tenantry_core::audit::{AuditEntry, AuditTarget};
use tenantry_core::credentials::{CredentialKind, validate};
use tenantry_core::tenant::TenantEventKind;
use tenantry_crypto::{Binding, DataKey};
use tenantry_store::{StoreError, StoredCredential, TenantTx};

/// How a secret appears in audit entries.
pub const SEALED: &str = "[sealed]";

/// The audit action of a reveal (the credential's access log lists them).
pub const REVEALED: &str = "credential.revealed";

pub fn credential_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::CredentialNotFound,
        detail: "this tenant has no such credential".into(),
    }
}

fn cred_missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => credential_not_found(),
        other => other.into(),
    }
}

pub fn target(id: &str) -> AuditTarget {
    AuditTarget::new("credential", id)
}

/// The kind a stored credential was validated as.
pub fn kind_of(stored: &StoredCredential) -> Result<CredentialKind, ApiError> {
    CredentialKind::parse(&stored.kind).map_err(|_| {
        tracing::error!(credential = %stored.id, kind = %stored.kind, "stored credential has an unknown kind");
        ApiError::Internal
    })
}

fn binding<'a>(
    tenant: &'a str,
    stored: &'a StoredCredential,
    kind: CredentialKind,
    field: &'a str,
) -> Binding<'a> {
    Binding {
        tenant_id: tenant,
        record_id: &stored.id,
        kind: kind.as_str(),
        field,
    }
}

/// Writes the given fields into `stored`: the kind's secret fields sealed
/// with `dek`, the others in clear; `null` removes a field.
pub fn seal_fields(
    dek: &DataKey,
    tenant: &str,
    kind: CredentialKind,
    stored: &mut StoredCredential,
    data: Map<String, Value>,
) -> Result<(), VaultError> {
    for (name, value) in data {
        stored.fields.remove(&name);
        stored.sealed.remove(&name);
        if value.is_null() {
            continue;
        }
        if kind.is_sealed(&name) {
            let (envelope, mask) = seal_value(dek, &binding(tenant, stored, kind, &name), &value)?;
            stored.sealed.insert(name, sealed_field(envelope, mask));
        } else {
            stored.fields.insert(name, value);
        }
    }
    Ok(())
}

/// The envelopes of a credential's sealed fields, by field.
fn envelopes(stored: &StoredCredential) -> Result<Vec<(&str, &str)>, VaultError> {
    stored
        .sealed
        .iter()
        .map(|(name, sealed)| {
            envelope_of(sealed)
                .map(|envelope| (name.as_str(), envelope))
                .ok_or(VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))
        })
        .collect()
}

/// The data keys that open every sealed field of `stored`.
pub async fn keys_for(
    state: &AppState,
    tx: &mut TenantTx,
    stored: &StoredCredential,
) -> Result<DataKeys, VaultError> {
    let envelopes: Vec<&str> = envelopes(stored)?.into_iter().map(|(_, e)| e).collect();
    DataKeys::for_envelopes(&state.vault, tx, &envelopes).await
}

/// The sealed fields of a credential, opened.
fn open_sealed(
    keys: &DataKeys,
    tenant: &str,
    kind: CredentialKind,
    stored: &StoredCredential,
) -> Result<Map<String, Value>, VaultError> {
    let mut plain = Map::new();
    for (name, envelope) in envelopes(stored)? {
        let value = keys.open(&binding(tenant, stored, kind, name), envelope)?;
        plain.insert(name.to_owned(), value);
    }
    Ok(plain)
}

/// Every field of a credential in plaintext.
pub fn open_fields(
    keys: &DataKeys,
    tenant: &str,
    stored: &StoredCredential,
) -> Result<Map<String, Value>, ApiError> {
    let kind = kind_of(stored)?;
    let mut data = stored.fields.clone();
    data.extend(open_sealed(keys, tenant, kind, stored)?);
    Ok(data)
}

/// Seals every sealed field of `stored` again, with `dek` (a data key
/// rotation); the public fields are left as they are.
pub fn reseal(
    keys: &DataKeys,
    dek: &DataKey,
    tenant: &str,
    stored: &mut StoredCredential,
) -> Result<(), VaultError> {
    let kind = CredentialKind::parse(&stored.kind)
        .map_err(|_| VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))?;
    for (name, value) in open_sealed(keys, tenant, kind, stored)? {
        let (envelope, mask) = seal_value(dek, &binding(tenant, stored, kind, &name), &value)?;
        stored.sealed.insert(name, sealed_field(envelope, mask));
    }
    Ok(())
}

/// A credential as the audit log shows it: its public fields, and each
/// secret field as `"[sealed]"`.
fn audit_data(stored: &StoredCredential) -> Map<String, Value> {
    let mut data = stored.fields.clone();
    for name in stored.sealed.keys() {
        data.insert(name.clone(), Value::String(SEALED.into()));
    }
    data
}

fn audit_view(stored: &StoredCredential) -> Value {
    json!({
        "kind": stored.kind,
        "name": stored.name,
        "is_active": stored.is_active,
        "data": audit_data(stored),
    })
}

/// What an update changed, secrets as `"[sealed]"`. A secret field the
/// update wrote counts as changed (its value is not compared).
fn audit_changes(
    before: &StoredCredential,
    after: &StoredCredential,
    written: &[String],
) -> Map<String, Value> {
    let mut changes = Map::new();
    if before.name != after.name {
        changes.insert(
            "name".into(),
            json!({ "from": before.name, "to": after.name }),
        );
    }
    if before.is_active != after.is_active {
        changes.insert(
            "is_active".into(),
            json!({ "from": before.is_active, "to": after.is_active }),
        );
    }
    let (from, to) = (audit_data(before), audit_data(after));
    let mut names: Vec<&String> = from.keys().chain(to.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (old, new) = (from.get(name), to.get(name));
        let secret_written = written.contains(name)
            && (before.sealed.contains_key(name) || after.sealed.contains_key(name));
        if old != new || secret_written {
            changes.insert(format!("data.{name}"), json!({ "from": old, "to": new }));
        }
    }
    changes
}

/// Stores a new credential of `kind` (its fields validated, its secret
/// fields sealed with the tenant's active data key).
pub async fn create(
    state: &AppState,
    grant: &TenantGrant,
    kind: CredentialKind,
    name: String,
    data: Map<String, Value>,
) -> Result<StoredCredential, ApiError> {
    validate(kind, &data, None).map_err(ApiError::Validation)?;
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let id = state.ids.random("cred");
    let stored = create_on(state, &mut change, id, kind, name, data).await?;
    change.commit().await?;
    Ok(stored)
}

/// Stores a new credential with id `id` on an open change of its tenant
/// (recording its event and audit entry there, not committing); its data
/// already validated.
pub async fn create_on(
    state: &AppState,
    change: &mut crate::change::TenantChange,
    id: String,
    kind: CredentialKind,
    name: String,
    data: Map<String, Value>,
) -> Result<StoredCredential, ApiError> {
    let now = state.clock.now();
    let tenant = change.tx().tenant_id().clone();
    let mut stored = StoredCredential {
        id,
        kind: kind.as_str().to_owned(),
        name,
        fields: Map::new(),
        sealed: Map::new(),
        is_active: true,
        created_at: now,
        updated_at: now,
        last_revealed_at: None,
    };
    let dek = state.vault.active_dek(change.tx(), now).await?;
    seal_fields(&dek, tenant.as_str(), kind, &mut stored, data)?;
    change.tx().insert_credential(&stored).await?;
    if kind == CredentialKind::Whatsapp {
        crate::inbound::whatsapp::sync_routes(change).await?;
    }
    change.event(
        TenantEventKind::CredentialCreated,
        json!({ "credential_id": stored.id, "kind": kind }),
    );
    change.audit(
        "credential.created",
        vec![target(&stored.id)],
        json!({ "after": audit_view(&stored) }),
    );
    Ok(stored)
}

/// Every credential of the tenant (sealed fields stay sealed).
pub async fn list(
    state: &AppState,
    grant: &TenantGrant,
) -> Result<Vec<StoredCredential>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let all = tx.list_credentials().await?;
    tx.commit().await?;
    Ok(all)
}

pub async fn get(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
) -> Result<StoredCredential, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let stored = tx.get_credential(id).await.map_err(cred_missing)?;
    tx.commit().await?;
    Ok(stored)
}

/// A change to a credential; `None` leaves a part as it is.
#[derive(Debug, Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    /// Fields to write (secret ones sealed); `null` removes a field.
    pub data: Option<Map<String, Value>>,
    pub is_active: Option<bool>,
}

pub async fn update(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
    patch: CredentialPatch,
) -> Result<StoredCredential, ApiError> {
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let before = change.tx().get_credential(id).await.map_err(cred_missing)?;
    let kind = kind_of(&before)?;
    let mut stored = before.clone();
    let mut written = Vec::new();
    if let Some(data) = patch.data {
        let existing: Vec<String> = stored
            .fields
            .keys()
            .chain(stored.sealed.keys())
            .cloned()
            .collect();
        validate(kind, &data, Some(&existing)).map_err(ApiError::Validation)?;
        written = data.keys().cloned().collect();
        let dek = state
            .vault
            .active_dek(change.tx(), state.clock.now())
            .await?;
        seal_fields(&dek, grant.tenant().as_str(), kind, &mut stored, data)?;
    }
    if let Some(name) = patch.name {
        stored.name = name;
    }
    if let Some(active) = patch.is_active {
        stored.is_active = active;
    }
    let changes = audit_changes(&before, &stored, &written);
    if changes.is_empty() {
        // Nothing changed: nothing to write or record.
        return Ok(before);
    }
    stored.updated_at = state.clock.now();
    change.tx().update_credential(&stored).await?;
    if kind == CredentialKind::Whatsapp {
        crate::inbound::whatsapp::sync_routes(&mut change).await?;
    }
    change.event(
        TenantEventKind::CredentialUpdated,
        json!({ "credential_id": stored.id }),
    );
    change.audit(
        "credential.updated",
        vec![target(&stored.id)],
        Value::Object(changes),
    );
    change.commit().await?;
    Ok(stored)
}

pub async fn delete(state: &AppState, grant: &TenantGrant, id: &str) -> Result<(), ApiError> {
    let mut change = crate::tenancy::open_live(state, grant).await?;
    delete_on(&mut change, id).await?;
    change.commit().await?;
    Ok(())
}

/// Deletes a credential on an open change of its tenant (not committing).
pub async fn delete_on(change: &mut crate::change::TenantChange, id: &str) -> Result<(), ApiError> {
    let before = change.tx().get_credential(id).await.map_err(cred_missing)?;
    change
        .tx()
        .delete_credential(id)
        .await
        .map_err(cred_missing)?;
    if kind_of(&before)? == CredentialKind::Whatsapp {
        crate::inbound::whatsapp::sync_routes(change).await?;
    }
    change.event(
        TenantEventKind::CredentialDeleted,
        json!({ "credential_id": id }),
    );
    change.audit(
        "credential.deleted",
        vec![target(id)],
        json!({ "before": audit_view(&before) }),
    );
    Ok(())
}

/// Every field of a credential in plaintext. The reveal is recorded in the
/// same transaction that reads the secret: if the entry cannot be written,
/// the secret is not returned.
pub async fn reveal(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
) -> Result<(StoredCredential, Map<String, Value>), ApiError> {
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let mut stored = change.tx().get_credential(id).await.map_err(cred_missing)?;
    let keys = keys_for(state, change.tx(), &stored).await?;
    let data = open_fields(&keys, grant.tenant().as_str(), &stored)?;
    stored.last_revealed_at = Some(state.clock.now());
    change.tx().update_credential(&stored).await?;
    change.audit_with(
        REVEALED,
        vec![target(&stored.id)],
        json!({}),
        json!({ "sealed_fields": stored.sealed.keys().collect::<Vec<_>>() }),
    );
    change.commit().await?;
    tracing::info!(tenant_id = %grant.tenant(), credential_id = %stored.id, actor = grant.actor().as_str(), "credential revealed");
    Ok((stored, data))
}

/// The reveals of one credential, oldest first, after the entry with
/// sequence `after`: its access log, read from the tenant's audit chain.
pub async fn reveals(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<AuditEntry>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    tx.get_credential(id).await.map_err(cred_missing)?;
    let entries = tx
        .audit_entries_about(REVEALED, &target(id), after, limit)
        .await?;
    tx.commit().await?;
    Ok(entries)
}
