//! `/v1/identity-providers` (operators) and the members of a tenant
//! (`/v1/tenants/{id}/members`, `/v1/members/{subject}/tenants`). The
//! behaviour is in [`crate::identity`].

use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::identity::{members, providers};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
pub use tenantry_api::identity::{MemberIn, MemberOut, MemberPage, MemberTenants, ProviderList};
use tenantry_core::ValidationError;
use tenantry_core::keys::Scope;
use tenantry_store::MemberRow;

/// Register a trusted identity provider (operators).
#[utoipa::path(post, path = "/v1/identity-providers", tag = "identity", request_body = providers::ProviderIn,
    responses((status = 201, body = providers::ProviderOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "issuer_taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid settings, or a jwks_url the outbound rules refuse", body = Problem, content_type = "application/problem+json")))]
pub async fn create_provider(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<providers::ProviderIn>,
) -> Result<(StatusCode, Json<providers::ProviderOut>), ApiError> {
    let config = providers::parse(&state, input)?;
    let (row, _) = providers::put(&state, operator.grant(), None, config).await?;
    Ok((StatusCode::CREATED, Json(providers::out(&row)?)))
}

/// List the identity providers (operators).
#[utoipa::path(get, path = "/v1/identity-providers", tag = "identity", responses((status = 200, body = ProviderList)))]
pub async fn list_providers(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<ProviderList>, ApiError> {
    let rows = providers::list(&state, operator.grant()).await?;
    Ok(Json(ProviderList {
        data: rows.iter().map(providers::out).collect::<Result<_, _>>()?,
    }))
}

/// One identity provider (operators).
#[utoipa::path(get, path = "/v1/identity-providers/{provider_id}", tag = "identity", params(("provider_id" = String, Path)),
    responses((status = 200, body = providers::ProviderOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_provider(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<providers::ProviderOut>, ApiError> {
    let row = providers::get(&state, operator.grant(), &id).await?;
    Ok(Json(providers::out(&row)?))
}

/// Replace an identity provider's settings (operators).
#[utoipa::path(put, path = "/v1/identity-providers/{provider_id}", tag = "identity", params(("provider_id" = String, Path)),
    request_body = providers::ProviderIn,
    responses((status = 200, body = providers::ProviderOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "issuer_taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_provider(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<providers::ProviderIn>,
) -> Result<Json<providers::ProviderOut>, ApiError> {
    let config = providers::parse(&state, input)?;
    let (row, _) = providers::put(&state, operator.grant(), Some(&id), config).await?;
    Ok(Json(providers::out(&row)?))
}

/// Remove an identity provider (operators): its tokens are refused on every
/// node within a second. Memberships stay, for a provider registered again.
#[utoipa::path(delete, path = "/v1/identity-providers/{provider_id}", tag = "identity", params(("provider_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_provider(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    providers::delete(&state, operator.grant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn member_out(row: &MemberRow) -> MemberOut {
    MemberOut {
        tenant_id: row.tenant_id.to_string(),
        subject: crate::identity::member_key(&row.provider_id, &row.subject),
        provider_id: row.provider_id.clone(),
        roles: members::roles_of(row),
        metadata: members::metadata_of(row),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Add a member to a tenant or replace their roles (`tenant:admin`).
#[utoipa::path(put, path = "/v1/tenants/{id}/members/{subject}", tag = "identity",
    params(("id" = String, Path), ("subject" = String, Path, description = "`idp_…:subject`")), request_body = MemberIn,
    responses((status = 200, description = "replaced", body = MemberOut), (status = 201, description = "added", body = MemberOut),
        (status = 404, description = "tenant_not_found, identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, subject)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<MemberIn>,
) -> Result<(StatusCode, Json<MemberOut>), ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let (provider_id, sub) = members::parse_subject(&subject)?;
    let roles = members::parse_roles(&input.roles)?;
    let metadata = input
        .metadata
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !metadata.is_object() || metadata.to_string().len() > 16 * 1024 {
        return Err(ValidationError::new(
            "metadata",
            "invalid_metadata",
            "must be a JSON object of at most 16 KiB",
        )
        .into());
    }
    let registry = crate::identity::registry(&state).await?;
    let provider = registry
        .providers()
        .find(|p| p.id == provider_id)
        .ok_or_else(providers::not_found)?;
    if let Some(role) = roles.iter().find(|r| {
        !crate::identity::BUILTIN_ROLES.contains(&r.as_str())
            && !provider.config.custom_roles.contains_key(*r)
    }) {
        return Err(ValidationError::new(
            "roles",
            "unknown_role",
            format!("'{role}' is not admin, member nor a custom role of the provider"),
        )
        .into());
    }
    let (row, created) = members::put(&state, &grant, provider_id, sub, roles, metadata).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(member_out(&row))))
}

/// A tenant's members, by subject (`tenant:read`).
#[utoipa::path(get, path = "/v1/tenants/{id}/members", tag = "identity", params(("id" = String, Path), super::PageParams),
    responses((status = 200, body = MemberPage), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<super::PageParams>,
) -> Result<Json<MemberPage>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let after = page.after("members")?;
    let after = match &after {
        Some(position) => {
            Some(members::parse_subject(position).map_err(|_| super::invalid_cursor())?)
        }
        None => None,
    };
    let mut rows = members::list(&state, &grant, after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(super::cursor(
            "members",
            &crate::identity::member_key(&last.provider_id, &last.subject),
        )),
        _ => None,
    };
    Ok(Json(MemberPage {
        data: rows.iter().map(member_out).collect(),
        next_cursor,
    }))
}

/// One member of a tenant (`tenant:read`).
#[utoipa::path(get, path = "/v1/tenants/{id}/members/{subject}", tag = "identity",
    params(("id" = String, Path), ("subject" = String, Path)),
    responses((status = 200, body = MemberOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, subject)): ApiPath<(String, String)>,
) -> Result<Json<MemberOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let (provider_id, sub) = members::parse_subject(&subject)?;
    let row = members::get(&state, &grant, provider_id, sub).await?;
    Ok(Json(member_out(&row)))
}

/// Remove a member (`tenant:admin`): their login tokens stop resolving to
/// the tenant on every node within a second.
#[utoipa::path(delete, path = "/v1/tenants/{id}/members/{subject}", tag = "identity",
    params(("id" = String, Path), ("subject" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, subject)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let (provider_id, sub) = members::parse_subject(&subject)?;
    members::remove(&state, &grant, provider_id, sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every tenant a user is a member of (operators).
#[utoipa::path(get, path = "/v1/members/{subject}/tenants", tag = "identity", params(("subject" = String, Path)),
    responses((status = 200, body = MemberTenants), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn member_tenants(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(subject): ApiPath<String>,
) -> Result<Json<MemberTenants>, ApiError> {
    let (provider_id, sub) = members::parse_subject(&subject)?;
    let rows = members::tenants_of(&state, operator.grant(), provider_id, sub).await?;
    Ok(Json(MemberTenants {
        data: rows.iter().map(member_out).collect(),
    }))
}
