//! `/v1/tenants/{id}/credentials` and `/v1/tenants/{id}/settings/{category}`:
//! per-tenant third-party credentials and settings whose secret parts are
//! sealed, shown masked, and revealed only through an explicit, scoped,
//! logged call.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::tenants::{or_tenant_not_found, record};
use super::{PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, RequestMeta};
use crate::http::problem::{ApiError, Problem};
use crate::vault::seal::{
    MAX_SETTINGS_DEPTH, deeper_than, envelope_of, mask_of, mask_settings, open_settings,
    open_value, seal_settings, seal_value, sealed_field, uses_markers,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tenantry_core::ValidationError;
use tenantry_core::credentials::{CredentialKind, GENESYS_REGIONS, validate};
use tenantry_core::keys::Scope;
use tenantry_core::tenant::TenantEventKind;
use tenantry_crypto::Binding;
use tenantry_store::{AccessLogEntry, StoreError, StoredCredential, TenantTx};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialIn {
    /// `whatsapp`, `genesys`, `smtp`, `oauth_client` or `generic`.
    pub kind: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialPatchIn {
    pub name: Option<String>,
    /// Fields to change; sealed fields left out keep their value; `null` removes an optional field.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialOut {
    pub id: String,
    pub tenant_id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// Public fields as stored; sealed fields masked (`****` and at most the last 4 characters).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Names of the sealed fields.
    pub sealed_fields: Vec<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_revealed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevealedCredential {
    pub id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// Every field in plaintext.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialList {
    pub data: Vec<CredentialOut>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessLogOut {
    pub id: String,
    pub action: String,
    pub actor: String,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessLogPage {
    pub data: Vec<AccessLogOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsOut {
    pub category: String,
    /// Sensitive values masked (or in plaintext, from `reveal`).
    #[schema(value_type = Object)]
    pub data: Value,
    pub updated_at: DateTime<Utc>,
}

fn credential_not_found() -> ApiError {
    ApiError::NotFound {
        code: "credential_not_found",
        detail: "this tenant has no such credential".into(),
    }
}

fn cred_missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => credential_not_found(),
        other => other.into(),
    }
}

fn kind_of(stored: &StoredCredential) -> Result<CredentialKind, ApiError> {
    CredentialKind::parse(&stored.kind).map_err(|_| {
        tracing::error!(credential = %stored.id, kind = %stored.kind, "stored credential has an unknown kind");
        ApiError::Internal
    })
}

fn masked(tenant: &str, stored: &StoredCredential) -> Result<CredentialOut, ApiError> {
    let kind = kind_of(stored)?;
    let mut data = stored.fields.clone();
    for (name, sealed) in &stored.sealed {
        data.insert(name.clone(), mask_of(sealed));
    }
    if kind == CredentialKind::Genesys
        && let Some(region) = stored.fields.get("region").and_then(Value::as_str)
        && let Some((_, domain)) = GENESYS_REGIONS.iter().find(|(r, _)| *r == region)
    {
        data.insert("api_host".into(), Value::String(format!("api.{domain}")));
    }
    Ok(CredentialOut {
        id: stored.id.clone(),
        tenant_id: tenant.to_owned(),
        kind,
        name: stored.name.clone(),
        data: Value::Object(data),
        sealed_fields: stored.sealed.keys().cloned().collect(),
        is_active: stored.is_active,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        last_revealed_at: stored.last_revealed_at,
    })
}

fn as_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ValidationError::new("data", "invalid_type", "must be a JSON object").into()),
    }
}

/// Seals the given fields of a credential into `stored` (sealed ones
/// encrypted, others in clear); `null` removes a field.
async fn apply_fields(
    state: &AppState,
    tx: &mut TenantTx,
    kind: CredentialKind,
    stored: &mut StoredCredential,
    data: Map<String, Value>,
) -> Result<(), ApiError> {
    let dek = state.vault.active_dek(tx, state.clock.now()).await?;
    let tenant = tx.tenant_id().to_string();
    for (name, value) in data {
        stored.fields.remove(&name);
        stored.sealed.remove(&name);
        if value.is_null() {
            continue;
        }
        if kind.is_sealed(&name) {
            let binding = Binding {
                tenant_id: &tenant,
                record_id: &stored.id,
                kind: kind.as_str(),
                field: &name,
            };
            let (envelope, mask) = seal_value(&dek, &binding, &value)?;
            stored.sealed.insert(name, sealed_field(envelope, mask));
        } else {
            stored.fields.insert(name, value);
        }
    }
    Ok(())
}

/// Every field of a credential in plaintext.
async fn open_credential(
    state: &AppState,
    tx: &mut TenantTx,
    stored: &StoredCredential,
) -> Result<Map<String, Value>, ApiError> {
    let kind = kind_of(stored)?;
    let tenant = tx.tenant_id().to_string();
    let mut data = stored.fields.clone();
    for (name, sealed) in &stored.sealed {
        let envelope = envelope_of(sealed).ok_or(ApiError::DecryptionFailed)?;
        let dek_id =
            tenantry_crypto::envelope_dek_id(envelope).map_err(crate::vault::VaultError::from)?;
        let dek = state.vault.dek(tx, dek_id).await?;
        let binding = Binding {
            tenant_id: &tenant,
            record_id: &stored.id,
            kind: kind.as_str(),
            field: name,
        };
        data.insert(name.clone(), open_value(&dek, &binding, envelope)?);
    }
    Ok(data)
}

async fn log_access(
    state: &AppState,
    tx: &mut TenantTx,
    target: String,
    actor: &str,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    tx.record_access(&AccessLogEntry {
        id: state
            .ids
            .sortable("acc", now.timestamp_millis().max(0) as u64),
        target,
        action: "reveal".into(),
        actor: actor.to_owned(),
        source_ip: meta.source_ip.clone(),
        request_id: meta.request_id.clone(),
        user_agent: meta.user_agent.clone(),
        created_at: now,
    })
    .await?;
    Ok(())
}

/// Store a credential; its secret fields are sealed, and the answer shows them masked.
#[utoipa::path(post, path = "/v1/tenants/{id}/credentials", tag = "credentials", params(("id" = String, Path)), request_body = CredentialIn,
    responses((status = 201, body = CredentialOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<CredentialIn>,
) -> Result<(StatusCode, Json<CredentialOut>), ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsWrite)?;
    let kind = CredentialKind::parse(&input.kind)?;
    let name = super::parse_name(&input.name)?;
    let data = as_object(input.data)?;
    validate(kind, &data, None).map_err(ApiError::Validation)?;
    let now = state.clock.now();
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let mut stored = StoredCredential {
        id: state.ids.random("cred"),
        kind: kind.as_str().to_owned(),
        name,
        fields: Map::new(),
        sealed: Map::new(),
        is_active: true,
        created_at: now,
        updated_at: now,
        last_revealed_at: None,
    };
    apply_fields(&state, &mut tx, kind, &mut stored, data).await?;
    tx.insert_credential(&stored).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::CredentialCreated,
        &access.actor,
        json!({ "credential_id": stored.id, "kind": kind }),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(masked(access.tenant.as_str(), &stored)?),
    ))
}

/// List a tenant's credentials, masked.
#[utoipa::path(get, path = "/v1/tenants/{id}/credentials", tag = "credentials", params(("id" = String, Path)),
    responses((status = 200, body = CredentialList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CredentialList>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsRead)?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let all = tx.list_credentials().await?;
    tx.commit().await?;
    Ok(Json(CredentialList {
        data: all
            .iter()
            .map(|c| masked(access.tenant.as_str(), c))
            .collect::<Result<_, _>>()?,
    }))
}

/// Get one credential, masked.
#[utoipa::path(get, path = "/v1/tenants/{id}/credentials/{cred_id}", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    responses((status = 200, body = CredentialOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
) -> Result<Json<CredentialOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsRead)?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let stored = tx.get_credential(&cred_id).await.map_err(cred_missing)?;
    tx.commit().await?;
    Ok(Json(masked(access.tenant.as_str(), &stored)?))
}

/// Change a credential's name, fields or active flag.
#[utoipa::path(patch, path = "/v1/tenants/{id}/credentials/{cred_id}", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    request_body = CredentialPatchIn,
    responses((status = 200, body = CredentialOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<CredentialPatchIn>,
) -> Result<Json<CredentialOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsWrite)?;
    let name = input.name.as_deref().map(super::parse_name).transpose()?;
    let data = input.data.map(as_object).transpose()?;
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let mut stored = tx.get_credential(&cred_id).await.map_err(cred_missing)?;
    let kind = kind_of(&stored)?;
    if let Some(data) = data {
        let existing: Vec<String> = stored
            .fields
            .keys()
            .chain(stored.sealed.keys())
            .cloned()
            .collect();
        validate(kind, &data, Some(&existing)).map_err(ApiError::Validation)?;
        apply_fields(&state, &mut tx, kind, &mut stored, data).await?;
    }
    if let Some(name) = name {
        stored.name = name;
    }
    if let Some(active) = input.is_active {
        stored.is_active = active;
    }
    stored.updated_at = state.clock.now();
    tx.update_credential(&stored).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::CredentialUpdated,
        &access.actor,
        json!({ "credential_id": stored.id }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(masked(access.tenant.as_str(), &stored)?))
}

/// Delete a credential.
#[utoipa::path(delete, path = "/v1/tenants/{id}/credentials/{cred_id}", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsWrite)?;
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    tx.delete_credential(&cred_id).await.map_err(cred_missing)?;
    record(
        &state,
        &mut tx,
        TenantEventKind::CredentialDeleted,
        &access.actor,
        json!({ "credential_id": cred_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reveal a credential's plaintext (scope `credentials:reveal`). Every reveal
/// is recorded in the credential's access log.
#[utoipa::path(post, path = "/v1/tenants/{id}/credentials/{cred_id}/reveal", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    responses((status = 200, body = RevealedCredential), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "decryption_failed: the stored secret was tampered with or moved", body = Problem, content_type = "application/problem+json")))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
) -> Result<Json<RevealedCredential>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsReveal)?;
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let mut stored = tx.get_credential(&cred_id).await.map_err(cred_missing)?;
    let data = open_credential(&state, &mut tx, &stored).await?;
    stored.last_revealed_at = Some(state.clock.now());
    tx.update_credential(&stored).await?;
    log_access(
        &state,
        &mut tx,
        format!("credential:{}", stored.id),
        access.actor.as_str(),
        &meta,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %access.tenant, credential_id = %stored.id, actor = access.actor.as_str(), "credential revealed");
    Ok(Json(RevealedCredential {
        id: stored.id.clone(),
        kind: kind_of(&stored)?,
        name: stored.name.clone(),
        data: Value::Object(data),
    }))
}

/// Who revealed a credential, when, from where.
#[utoipa::path(get, path = "/v1/tenants/{id}/credentials/{cred_id}/access-log", tag = "credentials",
    params(("id" = String, Path), ("cred_id" = String, Path), PageParams),
    responses((status = 200, body = AccessLogPage), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<AccessLogPage>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsRead)?;
    let limit = page.limit()?;
    let after = page.after("access")?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    tx.get_credential(&cred_id).await.map_err(cred_missing)?;
    let mut entries = tx
        .access_log(
            &format!("credential:{cred_id}"),
            after.as_deref(),
            limit + 1,
        )
        .await?;
    tx.commit().await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| cursor("access", &e.id))
    } else {
        None
    };
    Ok(Json(AccessLogPage {
        data: entries
            .into_iter()
            .map(|e| AccessLogOut {
                id: e.id,
                action: e.action,
                actor: e.actor,
                source_ip: e.source_ip,
                request_id: e.request_id,
                user_agent: e.user_agent,
                created_at: e.created_at,
            })
            .collect(),
        next_cursor,
    }))
}

fn parse_category(category: &str) -> Result<String, ApiError> {
    let ok = !category.is_empty()
        && category.len() <= 63
        && category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(category.to_owned())
    } else {
        Err(ApiError::NotFound {
            code: "settings_not_found",
            detail: "categories are 1 to 63 characters of a-z, 0-9, '-' and '_'".into(),
        })
    }
}

fn settings_not_found() -> ApiError {
    ApiError::NotFound {
        code: "settings_not_found",
        detail: "this tenant has no settings in this category".into(),
    }
}

/// Replace a settings category. Every value whose key is sensitive
/// (password, secret, token, key, …), at any depth, is sealed.
#[utoipa::path(put, path = "/v1/tenants/{id}/settings/{category}", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    request_body(content = Object),
    responses((status = 200, body = SettingsOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, category)): ApiPath<(String, String)>,
    ApiJson(data): ApiJson<Value>,
) -> Result<Json<SettingsOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsWrite)?;
    let category = parse_category(&category)?;
    if let Some(path) = uses_markers(&data) {
        return Err(ValidationError::new(
            path,
            "reserved_name",
            "'$sealed' and '$mask' are reserved",
        )
        .into());
    }
    if serde_json::to_vec(&data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > 64 * 1024
    {
        return Err(
            ValidationError::new("body", "too_large", "settings may be at most 64 KiB").into(),
        );
    }
    let too_deep = |path: String| -> ApiError {
        ValidationError::new(
            path,
            "too_deep",
            format!(
                "settings may nest at most {MAX_SETTINGS_DEPTH} levels deep (the top-level object is 1; a sealed value counts as one more level)"
            ),
        )
        .into()
    };
    if let Some(path) = deeper_than(&data, MAX_SETTINGS_DEPTH) {
        return Err(too_deep(path));
    }
    let now = state.clock.now();
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let dek = state.vault.active_dek(&mut tx, now).await?;
    let sealed = seal_settings(&dek, access.tenant.as_str(), &category, "", &data)?;
    // Measured again as stored: sealing turns each sensitive value into an
    // object, one level deeper than the key it replaces.
    if let Some(path) = deeper_than(&sealed, MAX_SETTINGS_DEPTH) {
        return Err(too_deep(path));
    }
    tx.put_settings(&category, &sealed, now).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::SettingsUpdated,
        &access.actor,
        json!({ "category": category }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SettingsOut {
        category,
        data: mask_settings(&sealed),
        updated_at: now,
    }))
}

/// A settings category, sensitive values masked.
#[utoipa::path(get, path = "/v1/tenants/{id}/settings/{category}", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    responses((status = 200, body = SettingsOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, category)): ApiPath<(String, String)>,
) -> Result<Json<SettingsOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsRead)?;
    let category = parse_category(&category)?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let (stored, updated_at) = tx.get_settings(&category).await.map_err(|e| match e {
        StoreError::NotFound => settings_not_found(),
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(Json(SettingsOut {
        category,
        data: mask_settings(&stored),
        updated_at,
    }))
}

/// A settings category in plaintext (scope `credentials:reveal`; logged).
#[utoipa::path(post, path = "/v1/tenants/{id}/settings/{category}/reveal", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    responses((status = 200, body = SettingsOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reveal_settings(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiPath((id, category)): ApiPath<(String, String)>,
) -> Result<Json<SettingsOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::CredentialsReveal)?;
    let category = parse_category(&category)?;
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let (stored, updated_at) = tx.get_settings(&category).await.map_err(|e| match e {
        StoreError::NotFound => settings_not_found(),
        other => other.into(),
    })?;
    let data = open_settings_in(&state, &mut tx, &category, &stored).await?;
    log_access(
        &state,
        &mut tx,
        format!("settings:{category}"),
        access.actor.as_str(),
        &meta,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SettingsOut {
        category,
        data,
        updated_at,
    }))
}

/// Opens stored settings: loads the data keys its envelopes name first.
pub async fn open_settings_in(
    state: &AppState,
    tx: &mut TenantTx,
    category: &str,
    stored: &Value,
) -> Result<Value, ApiError> {
    let mut envelopes = Vec::new();
    crate::vault::seal::settings_envelopes(stored, "", &mut envelopes);
    let mut deks = std::collections::HashMap::new();
    for (_, envelope) in &envelopes {
        let dek_id = tenantry_crypto::envelope_dek_id(envelope)
            .map_err(crate::vault::VaultError::from)?
            .to_owned();
        if let std::collections::hash_map::Entry::Vacant(slot) = deks.entry(dek_id) {
            let dek = state.vault.dek(tx, slot.key()).await?;
            slot.insert(dek);
        }
    }
    let tenant = tx.tenant_id().to_string();
    let opened = open_settings(stored, "", &mut |pointer, envelope| {
        let dek_id = tenantry_crypto::envelope_dek_id(envelope)?;
        let dek = deks
            .get(dek_id)
            .ok_or_else(|| crate::vault::VaultError::MissingDataKey(dek_id.to_owned()))?;
        let binding = Binding {
            tenant_id: &tenant,
            record_id: category,
            kind: "settings",
            field: pointer,
        };
        open_value(dek, &binding, envelope)
    })?;
    Ok(opened)
}
