//! Every HTTP call the layer makes to Tenantry's resolution endpoint, in one
//! place (so a typed client can replace it).

use crate::config::LayerConfig;
use crate::context::{TenantContext, TenantInfo};
use crate::problem::Refusal;
use http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a request presents, as configured strategies read it.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Inputs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Jobs only: a tenant named by id (the service key is trusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct ResolveOut {
    tenant: Resolved,
    matched_by: String,
}

#[derive(Deserialize)]
struct Resolved {
    id: String,
    status: String,
    plan: String,
    region: Option<String>,
    #[serde(default)]
    config: Option<Summary>,
}

#[derive(Deserialize, Default)]
struct Summary {
    #[serde(default)]
    features: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    limits: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ProblemCode {
    code: Option<String>,
}

/// `POST /v1/resolve` with the service key.
pub(crate) async fn resolve(
    http: &reqwest::Client,
    config: &LayerConfig,
    inputs: &Inputs,
) -> Result<TenantContext, Refusal> {
    let response = http
        .post(format!("{}/v1/resolve", config.tenantry_url))
        .bearer_auth(config.service_key.expose())
        .timeout(config.resolve_timeout)
        .json(inputs)
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(error = %err.without_url(), "Tenantry cannot be reached");
            Refusal::unavailable()
        })?;
    let status = response.status();
    if status.is_success() {
        let out: ResolveOut = response.json().await.map_err(|_| {
            tracing::warn!("Tenantry answered /v1/resolve with an unexpected body");
            Refusal::unavailable()
        })?;
        let summary = out.tenant.config.unwrap_or_default();
        return Ok(TenantContext::new(TenantInfo {
            id: out.tenant.id,
            status: out.tenant.status,
            plan: out.tenant.plan,
            region: out.tenant.region,
            features: summary.features,
            limits: summary.limits,
            matched_by: out.matched_by,
        }));
    }
    let code = response
        .json::<ProblemCode>()
        .await
        .ok()
        .and_then(|p| p.code)
        .unwrap_or_default();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            let code = if code.is_empty() {
                "unauthorized".to_owned()
            } else {
                code
            };
            Refusal::new(status, code)
        }
        // Malformed inputs (a host that is no host, say): no valid credential.
        s if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => Refusal::unauthorized(),
        _ => {
            tracing::warn!(
                status = status.as_u16(),
                "Tenantry could not resolve a request"
            );
            Refusal::unavailable()
        }
    })
}
