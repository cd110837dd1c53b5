//! `/v1/operator-keys`: keys that act on every tenant, made with the root
//! key. The behaviour is in [`crate::keys::operator_keys`].

use crate::app::AppState;
use crate::http::auth::Operator;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::keys::operator_keys;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
pub use tenantry_api::operator_keys::{
    NewOperatorKeyOut, OperatorKeyIn, OperatorKeyList, OperatorKeyOut,
};
use tenantry_core::keys::Environment;

fn root_required(operator: &Operator) -> Result<(), ApiError> {
    if operator.root {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: crate::http::codes::Code::RootKeyRequired,
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
    let (key, secret) = operator_keys::create(&state, operator.grant(), name, environment).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewOperatorKeyOut {
            key: secret.expose().to_owned(),
            details: (&key).into(),
        }),
    ))
}

/// List operator keys.
#[utoipa::path(get, path = "/v1/operator-keys", tag = "keys", responses((status = 200, body = OperatorKeyList)))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<OperatorKeyList>, ApiError> {
    let keys = operator_keys::list(&state, operator.grant()).await?;
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
    let key = operator_keys::revoke(&state, operator.grant(), &key_id).await?;
    Ok(Json((&key).into()))
}
