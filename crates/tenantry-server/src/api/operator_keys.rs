//! `/v1/operator-keys`: keys that act on every tenant, made with the root key.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use crate::app::AppState;
use crate::http::auth::Operator;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::Invalidation;
use crate::resolution::keys::mint;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::keys::{Environment, KeyKind, OperatorKey};
use tenantry_store::StoreError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyIn {
    pub name: String,
    /// `live` (default) or `test`.
    pub environment: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorKeyOut {
    pub id: String,
    pub start: String,
    pub name: String,
    pub environment: Environment,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&OperatorKey> for OperatorKeyOut {
    fn from(k: &OperatorKey) -> Self {
        OperatorKeyOut {
            id: k.id.clone(),
            start: k.start.clone(),
            name: k.name.clone(),
            environment: k.environment,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewOperatorKeyOut {
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub details: OperatorKeyOut,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorKeyList {
    pub data: Vec<OperatorKeyOut>,
}

fn root_required(operator: &Operator) -> Result<(), ApiError> {
    if operator.root {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "root_key_required",
            detail: "only the root key manages operator keys".into(),
        })
    }
}

/// Create an operator key (root key only).
#[utoipa::path(post, path = "/v1/operator-keys", tag = "keys", request_body = OperatorKeyIn,
    responses((status = 201, body = NewOperatorKeyOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<OperatorKeyIn>,
) -> Result<(StatusCode, Json<NewOperatorKeyOut>), ApiError> {
    root_required(&operator)?;
    let name = super::parse_name(&input.name)?;
    let environment = match &input.environment {
        Some(e) => Environment::parse("environment", e)?,
        None => Environment::Live,
    };
    let minted = mint(KeyKind::Operator, environment);
    let key = OperatorKey {
        id: state.ids.random("opk"),
        key_hash: minted.hash,
        start: minted.start,
        name,
        environment,
        revoked_at: None,
        last_used_at: None,
        created_at: state.clock.now(),
    };
    let mut op = state.store.operator_write().await?;
    op.insert_operator_key(&key).await?;
    let changes = [Invalidation::OperatorKey(key.key_hash)];
    op.notify(&changes[0].encode()).await?;
    op.commit().await?;
    state.forget(&changes);
    tracing::info!(key_id = %key.id, "operator key created");
    Ok((
        StatusCode::CREATED,
        Json(NewOperatorKeyOut {
            key: minted.secret.expose().to_owned(),
            details: (&key).into(),
        }),
    ))
}

/// List operator keys.
#[utoipa::path(get, path = "/v1/operator-keys", tag = "keys", responses((status = 200, body = OperatorKeyList)))]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<OperatorKeyList>, ApiError> {
    let mut op = state.store.operator_read().await?;
    let keys = op.list_operator_keys().await?;
    op.commit().await?;
    Ok(Json(OperatorKeyList {
        data: keys.iter().map(OperatorKeyOut::from).collect(),
    }))
}

/// Revoke an operator key (root key only).
#[utoipa::path(post, path = "/v1/operator-keys/{key_id}/revoke", tag = "keys", params(("key_id" = String, Path)),
    responses((status = 200, body = OperatorKeyOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Json<OperatorKeyOut>, ApiError> {
    root_required(&operator)?;
    let mut op = state.store.operator_write().await?;
    let key = op
        .revoke_operator_key(&key_id, state.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound {
                code: "key_not_found",
                detail: "no such operator key".into(),
            },
            other => other.into(),
        })?;
    let changes = [Invalidation::OperatorKey(key.key_hash)];
    op.notify(&changes[0].encode()).await?;
    op.commit().await?;
    state.forget(&changes);
    Ok(Json((&key).into()))
}
