//! Webhook endpoints: registering, changing, rotating the secret of and
//! deleting them. A tenant endpoint is a change to its tenant (a
//! [`TenantChange`]); an operator endpoint a change on the operator path.
//! Every function here records its audit entry and event on the change it
//! is given and does not commit it: the caller commits, so a provisioning
//! step and its endpoint commit together.

use super::signing;
use crate::app::AppState;
use crate::change::{OperatorChange, TenantChange};
use crate::http::problem::ApiError;
use chrono::{DateTime, Utc};
use serde_json::json;
pub use tenantry_api::webhooks::{EndpointInput, EndpointPatch, EndpointView, Ordering};
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantEventKind;
use tenantry_core::{SecretString, ValidationError};
use tenantry_store::{StoredEndpoint, Webhooks};

/// An endpoint as the API shows it.
pub fn endpoint_view(e: &StoredEndpoint) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        tenant_id: (!e.tenant_id.is_empty()).then(|| e.tenant_id.clone()),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        rate_limit_per_second: e.rate_limit_per_second.and_then(|n| u32::try_from(n).ok()),
        ordering: if e.ordering == "fifo" {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        metadata: e.metadata.clone(),
        public_key: e.signing_public_key.clone(),
        previous_secret_expires_at: e
            .previous_until_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// A new endpoint and its secret (`whsec_…`), shown this once.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: EndpointView,
    pub secret: SecretString,
}

pub fn endpoint_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::WebhookEndpointNotFound,
        detail: "no such webhook endpoint".into(),
    }
}

pub fn target(id: &str) -> AuditTarget {
    AuditTarget::new("webhook_endpoint", id)
}

fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    state
        .outbound
        .check_url(url)
        .map(|u| u.to_string())
        .map_err(|why| ValidationError::new("url", "url_not_allowed", why.to_string()).into())
}

fn check_event_types(types: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::with_capacity(types.len());
    for (i, name) in types.iter().enumerate() {
        if crate::events::catalogue::find(name).is_none() {
            return Err(ValidationError::new(
                format!("event_types[{i}]"),
                "unknown_event_type",
                "no such event type; see GET /v1/event-types",
            )
            .into());
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn check_description(description: Option<String>) -> Result<String, ApiError> {
    let description = description.unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(ValidationError::new(
            "description",
            "too_long",
            "must be at most 1000 characters",
        )
        .into());
    }
    Ok(description)
}

fn check_rate(rate: Option<u32>) -> Result<Option<i64>, ApiError> {
    match rate {
        None | Some(0) => Ok(None),
        Some(n) if n <= 10_000 => Ok(Some(i64::from(n))),
        Some(_) => Err(ValidationError::new(
            "rate_limit_per_second",
            "out_of_range",
            "must be between 1 and 10000",
        )
        .into()),
    }
}

fn check_metadata(metadata: Option<serde_json::Value>) -> Result<serde_json::Value, ApiError> {
    let metadata = metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() || metadata.to_string().len() > 4096 {
        return Err(ValidationError::new(
            "metadata",
            "invalid_metadata",
            "must be a JSON object of at most 4 KiB",
        )
        .into());
    }
    Ok(metadata)
}

/// Validates `input` and makes the endpoint row (secret sealed) for `owner`.
fn build(
    state: &AppState,
    owner: &str,
    input: EndpointInput,
) -> Result<(StoredEndpoint, SecretString), ApiError> {
    let url = check_url(state, &input.url)?;
    let event_types = check_event_types(&input.event_types)?;
    let description = check_description(input.description)?;
    let rate_limit_per_second = check_rate(input.rate_limit_per_second)?;
    let metadata = check_metadata(input.metadata)?;
    let id = state.ids.random("ep");
    let key: [u8; 32] = rand::random();
    let secret = super::seal(state, owner, &id, &key)?;
    let (signing_seed, signing_public_key) = if input.asymmetric_signing.unwrap_or(false) {
        let seed: [u8; 32] = rand::random();
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        (
            Some(super::seal(state, owner, &id, &seed)?),
            Some(signing::public_key_text(&public)),
        )
    } else {
        (None, None)
    };
    let now = state.clock.now();
    let endpoint = StoredEndpoint {
        tenant_id: owner.to_owned(),
        id,
        url,
        description,
        event_types,
        enabled: input.enabled.unwrap_or(true),
        rate_limit_per_second,
        ordering: input.ordering.unwrap_or_default().as_str().to_owned(),
        metadata,
        secret,
        previous_secret: None,
        previous_until_ms: None,
        signing_seed,
        signing_public_key,
        disabled_reason: None,
        failing_since_ms: None,
        created_at: now,
        updated_at: now,
    };
    Ok((endpoint, SecretString::new(signing::secret_text(&key))))
}

/// What an endpoint's audit entry records of it (never a secret).
fn audit_fields(e: &StoredEndpoint) -> serde_json::Value {
    json!({
        "url": e.url, "event_types": e.event_types, "enabled": e.enabled,
        "rate_limit_per_second": e.rate_limit_per_second, "ordering": e.ordering,
        "description": e.description, "asymmetric_signing": e.signing_public_key.is_some(),
        "secret": "[sealed]",
    })
}

/// The owner's side of a change: where its rows are and where its audit
/// entries and events go.
pub trait EndpointChange {
    fn webhooks(&mut self) -> Webhooks<'_>;
    fn owner(&self) -> String;
    fn record(
        &mut self,
        kind: TenantEventKind,
        data: serde_json::Value,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    );
}

impl EndpointChange for TenantChange {
    fn webhooks(&mut self) -> Webhooks<'_> {
        self.tx().webhooks()
    }
    fn owner(&self) -> String {
        self.tenant_id().as_str().to_owned()
    }
    fn record(
        &mut self,
        kind: TenantEventKind,
        data: serde_json::Value,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    ) {
        self.event(kind, data);
        self.audit(action, vec![target(id)], changes);
    }
}

impl EndpointChange for OperatorChange {
    fn webhooks(&mut self) -> Webhooks<'_> {
        self.tx().webhooks()
    }
    fn owner(&self) -> String {
        tenantry_store::OPERATOR_OWNER.to_owned()
    }
    fn record(
        &mut self,
        kind: TenantEventKind,
        data: serde_json::Value,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    ) {
        self.event(kind, data);
        self.audit(action, vec![target(id)], changes);
    }
}

pub async fn create<C: EndpointChange>(
    state: &AppState,
    change: &mut C,
    input: EndpointInput,
) -> Result<CreatedEndpoint, ApiError> {
    let (endpoint, secret) = build(state, &change.owner(), input)?;
    change.webhooks().insert_endpoint(&endpoint).await?;
    change.record(
        TenantEventKind::WebhookEndpointCreated,
        json!({ "endpoint_id": endpoint.id, "url": endpoint.url }),
        "webhook_endpoint.created",
        &endpoint.id,
        json!({ "after": audit_fields(&endpoint) }),
    );
    Ok(CreatedEndpoint {
        endpoint: endpoint_view(&endpoint),
        secret,
    })
}

/// Registers a tenant endpoint in `change` (not committed).
pub async fn create_tenant_endpoint(
    state: &AppState,
    change: &mut TenantChange,
    input: EndpointInput,
) -> Result<CreatedEndpoint, ApiError> {
    create(state, change, input).await
}

/// Deletes a tenant endpoint (and its messages) in `change` (not
/// committed); false if there was none.
pub async fn delete_tenant_endpoint(
    _state: &AppState,
    change: &mut TenantChange,
    id: &str,
) -> Result<bool, ApiError> {
    delete(change, id).await
}

pub async fn delete<C: EndpointChange>(change: &mut C, id: &str) -> Result<bool, ApiError> {
    let Some(before) = change.webhooks().endpoint(id).await? else {
        return Ok(false);
    };
    change.webhooks().delete_endpoint(id).await?;
    change.record(
        TenantEventKind::WebhookEndpointDeleted,
        json!({ "endpoint_id": id }),
        "webhook_endpoint.deleted",
        id,
        json!({ "before": audit_fields(&before) }),
    );
    Ok(true)
}

pub async fn update<C: EndpointChange>(
    state: &AppState,
    change: &mut C,
    id: &str,
    patch: EndpointPatch,
) -> Result<EndpointView, ApiError> {
    let before = change
        .webhooks()
        .endpoint(id)
        .await?
        .ok_or_else(endpoint_not_found)?;
    let mut after = before.clone();
    if let Some(url) = &patch.url {
        after.url = check_url(state, url)?;
    }
    if let Some(types) = &patch.event_types {
        after.event_types = check_event_types(types)?;
    }
    if patch.description.is_some() {
        after.description = check_description(patch.description)?;
    }
    if let Some(enabled) = patch.enabled {
        after.enabled = enabled;
        if enabled {
            after.disabled_reason = None;
            after.failing_since_ms = None;
        }
    }
    if patch.rate_limit_per_second.is_some() {
        after.rate_limit_per_second = check_rate(patch.rate_limit_per_second)?;
    }
    if let Some(ordering) = patch.ordering {
        after.ordering = ordering.as_str().to_owned();
    }
    if patch.metadata.is_some() {
        after.metadata = check_metadata(patch.metadata)?;
    }
    let (from, to) = (audit_fields(&before), audit_fields(&after));
    if from == to && before.metadata == after.metadata {
        return Ok(endpoint_view(&before));
    }
    after.updated_at = state.clock.now();
    change.webhooks().update_endpoint(&after).await?;
    change.record(
        TenantEventKind::WebhookEndpointUpdated,
        json!({ "endpoint_id": id }),
        "webhook_endpoint.updated",
        id,
        json!({ "from": from, "to": to }),
    );
    Ok(endpoint_view(&after))
}

/// Replaces the endpoint's secret; the old one keeps signing (a second
/// `v1` signature) for `overlap`.
pub async fn rotate_secret<C: EndpointChange>(
    state: &AppState,
    change: &mut C,
    id: &str,
    overlap: std::time::Duration,
) -> Result<CreatedEndpoint, ApiError> {
    let mut endpoint = change
        .webhooks()
        .endpoint(id)
        .await?
        .ok_or_else(endpoint_not_found)?;
    let key: [u8; 32] = rand::random();
    let now = state.clock.now();
    let until = now
        .timestamp_millis()
        .saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
    endpoint.previous_secret = Some(std::mem::replace(
        &mut endpoint.secret,
        super::seal(state, &change.owner(), id, &key)?,
    ));
    endpoint.previous_until_ms = Some(until);
    endpoint.updated_at = now;
    change.webhooks().update_endpoint(&endpoint).await?;
    let expires = DateTime::<Utc>::from_timestamp_millis(until);
    change.record(
        TenantEventKind::WebhookEndpointSecretRotated,
        json!({ "endpoint_id": id, "previous_secret_expires_at": expires }),
        "webhook_endpoint.secret_rotated",
        id,
        json!({ "secret": { "from": "[sealed]", "to": "[sealed]" }, "previous_secret_expires_at": expires }),
    );
    Ok(CreatedEndpoint {
        endpoint: endpoint_view(&endpoint),
        secret: SecretString::new(signing::secret_text(&key)),
    })
}
