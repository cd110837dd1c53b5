//! `/v1/tenants/{id}/credentials`: per-tenant third-party credentials whose
//! secret parts are sealed, shown masked, and revealed only through an
//! explicit, scoped, audited call. Handlers parse, call [`crate::vault::credentials`]
//! and map the result.

use super::{PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::vault::credentials::{self as vault, CredentialPatch, kind_of};
use crate::vault::seal::mask_of;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};
pub use tenantry_api::credentials::{
    AccessLogOut, AccessLogPage, CredentialIn, CredentialList, CredentialOut, CredentialPatchIn,
    RevealedCredential,
};
use tenantry_core::ValidationError;
use tenantry_core::audit::{ActorType, AuditActor};
use tenantry_core::credentials::{CredentialKind, GENESYS_REGIONS};
use tenantry_core::keys::Scope;
use tenantry_store::StoredCredential;

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

/// The access log's short form of an actor (`key:key_…`, `operator:root`),
/// as it was shown before reveals moved into the audit log.
fn legacy_actor(actor: &AuditActor) -> String {
    match actor.kind {
        ActorType::Operator => format!("operator:{}", actor.id),
        ActorType::ApiKey => format!("key:{}", actor.id),
        ActorType::Token => format!("token:{}", actor.id),
        ActorType::Webhook => format!("webhook:{}", actor.id),
        ActorType::User => format!("user:{}", actor.id),
        ActorType::System => "system".to_owned(),
    }
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
    let grant = caller.grant(&id, Scope::CredentialsWrite)?;
    let kind = CredentialKind::parse(&input.kind)?;
    let name = super::parse_name(&input.name)?;
    let data = as_object(input.data)?;
    let stored = vault::create(&state, &grant, kind, name, data).await?;
    Ok((
        StatusCode::CREATED,
        Json(masked(grant.tenant().as_str(), &stored)?),
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
    let grant = caller.grant(&id, Scope::CredentialsRead)?;
    let all = vault::list(&state, &grant).await?;
    Ok(Json(CredentialList {
        data: all
            .iter()
            .map(|c| masked(grant.tenant().as_str(), c))
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
    let grant = caller.grant(&id, Scope::CredentialsRead)?;
    let stored = vault::get(&state, &grant, &cred_id).await?;
    Ok(Json(masked(grant.tenant().as_str(), &stored)?))
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
    let grant = caller.grant(&id, Scope::CredentialsWrite)?;
    let patch = CredentialPatch {
        name: input.name.as_deref().map(super::parse_name).transpose()?,
        data: input.data.map(as_object).transpose()?,
        is_active: input.is_active,
    };
    let stored = vault::update(&state, &grant, &cred_id, patch).await?;
    Ok(Json(masked(grant.tenant().as_str(), &stored)?))
}

/// Delete a credential.
#[utoipa::path(delete, path = "/v1/tenants/{id}/credentials/{cred_id}", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let grant = caller.grant(&id, Scope::CredentialsWrite)?;
    vault::delete(&state, &grant, &cred_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reveal a credential's plaintext (scope `credentials:reveal`). Every reveal
/// is recorded in the tenant's audit log (and so in the credential's access log).
#[utoipa::path(post, path = "/v1/tenants/{id}/credentials/{cred_id}/reveal", tag = "credentials", params(("id" = String, Path), ("cred_id" = String, Path)),
    responses((status = 200, body = RevealedCredential), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "decryption_failed: the stored secret was tampered with or moved", body = Problem, content_type = "application/problem+json")))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cred_id)): ApiPath<(String, String)>,
) -> Result<Json<RevealedCredential>, ApiError> {
    let grant = caller.grant(&id, Scope::CredentialsReveal)?;
    let (stored, data) = vault::reveal(&state, &grant, &cred_id).await?;
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
    let grant = caller.grant(&id, Scope::CredentialsRead)?;
    let limit = page.limit()?;
    let after = match page.after("access")? {
        None => 0,
        Some(position) => position.parse::<u64>().map_err(|_| {
            ApiError::from(ValidationError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor from this list",
            ))
        })?,
    };
    let mut entries = vault::reveals(&state, &grant, &cred_id, after, limit + 1).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries
            .last()
            .map(|e| cursor("access", &e.sequence.to_string()))
    } else {
        None
    };
    Ok(Json(AccessLogPage {
        data: entries
            .into_iter()
            .map(|e| AccessLogOut {
                actor: legacy_actor(&e.actor),
                id: e.id,
                // The access log's own name for a reveal.
                action: "reveal".to_owned(),
                source_ip: e.request.ip,
                request_id: e.request.id,
                user_agent: e.request.user_agent,
                created_at: e.occurred_at,
            })
            .collect(),
        next_cursor,
    }))
}
