//! Plans, meters, tenant configuration, usage events and statistics, quota
//! checks and rate-limit decisions.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::tenants::{or_tenant_not_found, record};
use super::{Checks, PageParams};
use crate::app::{AppState, announce};
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::limits::config::{EffectiveConfig, Plan, merge_patch, validate_overrides};
use crate::limits::quotas::{self, QuotaDecision};
use crate::limits::service::{Aggregation, effective_config, meters};
use crate::limits::usage::{
    self, CheckedEvent, MAX_BATCH, MAX_FUTURE, Outcome, next_period, period_start,
};
use crate::resolution::cache::Invalidation;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::{TenantEventKind, TenantStatus};
use tenantry_core::{TenantId, ValidationError};

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The tenant a body-addressed request is for: implied by a tenant key
/// (another tenant's id is not found), required from operators.
fn body_tenant(
    caller: &Caller,
    tenant_id: Option<&str>,
    scope: Scope,
) -> Result<TenantId, ApiError> {
    match (caller, tenant_id) {
        (Caller::Tenant { tenant, .. }, None) => {
            Ok(caller.for_tenant(tenant.id.as_str(), scope)?.tenant)
        }
        (_, Some(id)) => Ok(caller.for_tenant(id, scope)?.tenant),
        (Caller::Operator { .. }, None) => {
            Err(
                ValidationError::new("tenant_id", "required", "is required with an operator key")
                    .into(),
            )
        }
    }
}

// ----- plans and meters -------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    pub name: String,
    pub description: String,
    /// Monthly quotas per meter (null: unlimited).
    #[schema(value_type = Object)]
    pub quotas: Value,
    /// Other limits, e.g. `agents` (null: unlimited).
    #[schema(value_type = Object)]
    pub limits: Value,
    /// `{limit, period_seconds}` per rate limit.
    #[schema(value_type = Object)]
    pub rate_limits: Value,
    #[schema(value_type = Object)]
    pub features: Value,
    pub updated_at: DateTime<Utc>,
}

fn plan_out(plan: &Plan, updated_at: DateTime<Utc>) -> PlanOut {
    let def = plan.to_json();
    PlanOut {
        name: plan.name.clone(),
        description: plan.description.clone(),
        quotas: def["quotas"].clone(),
        limits: def["limits"].clone(),
        rate_limits: def["rate_limits"].clone(),
        features: def["features"].clone(),
        updated_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanList {
    pub data: Vec<PlanOut>,
}

/// The plan catalog.
#[utoipa::path(get, path = "/v1/plans", tag = "plans", responses((status = 200, body = PlanList)))]
pub async fn list_plans(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<PlanList>, ApiError> {
    let mut op = state.store.operator_read().await?;
    let rows = op.list_plans().await?;
    op.commit().await?;
    let mut data = Vec::new();
    for (name, def, updated_at) in rows {
        let plan = crate::limits::service::plan_from_row(&name, &def.0)?;
        data.push(plan_out(&plan, updated_at));
    }
    Ok(Json(PlanList { data }))
}

/// Create or replace a plan (operators). Takes effect at once for every
/// tenant on it, on every server process.
#[utoipa::path(put, path = "/v1/plans/{name}", tag = "plans", params(("name" = String, Path)), request_body(content = Object),
    responses((status = 200, body = PlanOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_plan(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(definition): ApiJson<Value>,
) -> Result<Json<PlanOut>, ApiError> {
    if !name_ok(&name) {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "plan names are 1 to 63 characters of a-z, 0-9, '-' and '_'",
        )
        .into());
    }
    let plan = Plan::parse(&name, &definition).map_err(ApiError::Validation)?;
    let now = state.clock.now();
    let mut op = state.store.operator_write().await?;
    op.put_plan(&name, &plan.to_json(), now).await?;
    op.notify(&Invalidation::All.encode()).await?;
    op.commit().await?;
    state.forget(&[Invalidation::All]);
    Ok(Json(plan_out(&plan, now)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeterOut {
    pub name: String,
    pub aggregation: Aggregation,
    pub description: String,
    pub builtin: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeterList {
    pub data: Vec<MeterOut>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeterIn {
    pub name: String,
    /// `sum` (default), `last` (a gauge) or `distinct` (distinct subjects per period).
    pub aggregation: Option<String>,
    pub description: Option<String>,
}

/// Every meter.
#[utoipa::path(get, path = "/v1/meters", tag = "usage", responses((status = 200, body = MeterList)))]
pub async fn list_meters(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<MeterList>, ApiError> {
    let mut op = state.store.operator_read().await?;
    let rows = op.list_meters().await?;
    op.commit().await?;
    Ok(Json(MeterList {
        data: rows
            .into_iter()
            .filter_map(|(name, agg, description, builtin)| {
                Aggregation::parse(&agg).map(|aggregation| MeterOut {
                    name,
                    aggregation,
                    description,
                    builtin,
                })
            })
            .collect(),
    }))
}

/// Register a custom meter (operators).
#[utoipa::path(post, path = "/v1/meters", tag = "usage", request_body = MeterIn,
    responses((status = 201, body = MeterOut), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_meter(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<MeterIn>,
) -> Result<(StatusCode, Json<MeterOut>), ApiError> {
    let mut checks = Checks::default();
    let name = checks.check(if name_ok(&input.name) && !input.name.contains('-') {
        Ok(input.name.clone())
    } else {
        Err(ValidationError::new(
            "name",
            "invalid_name",
            "meter names are 1 to 63 characters of a-z, 0-9 and '_'",
        ))
    });
    let aggregation = checks.check(match input.aggregation.as_deref() {
        None => Ok(Aggregation::Sum),
        Some(a) => Aggregation::parse(a).ok_or_else(|| {
            ValidationError::new(
                "aggregation",
                "invalid_value",
                "must be sum, last or distinct",
            )
        }),
    });
    let description = input.description.unwrap_or_default();
    if description.chars().count() > 500 {
        checks.check::<()>(Err(ValidationError::new(
            "description",
            "too_long",
            "must be at most 500 characters",
        )));
    }
    checks.finish()?;
    let (Some(name), Some(aggregation)) = (name, aggregation) else {
        return Err(ApiError::Internal);
    };
    let mut op = state.store.operator_write().await?;
    if !op
        .insert_meter(&name, aggregation.as_str(), &description, state.clock.now())
        .await?
    {
        return Err(ApiError::Conflict {
            code: "meter_exists",
            detail: "a meter with this name exists".into(),
            field: Some("name"),
        });
    }
    op.notify(&Invalidation::All.encode()).await?;
    op.commit().await?;
    state.forget(&[Invalidation::All]);
    Ok((
        StatusCode::CREATED,
        Json(MeterOut {
            name,
            aggregation,
            description,
            builtin: false,
        }),
    ))
}

// ----- tenant configuration ----------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigOut {
    pub tenant_id: String,
    /// Every value with `value` and `source` (`plan`, `tenant` or `default`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: Value,
}

fn config_out(tenant: &TenantId, config: &EffectiveConfig) -> ConfigOut {
    ConfigOut {
        tenant_id: tenant.to_string(),
        config: serde_json::to_value(config).unwrap_or(Value::Null),
    }
}

/// A tenant's effective configuration: its plan's defaults overridden by its own.
#[utoipa::path(get, path = "/v1/tenants/{id}/config", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = ConfigOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_config(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConfigOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::TenantRead)?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let config = effective_config(&state, &mut tx).await?;
    tx.commit().await?;
    Ok(Json(config_out(&access.tenant, &config)))
}

/// Change a tenant's configuration (a JSON merge patch of its overrides:
/// `null` removes one). Stores a new version; in force at once everywhere.
/// Tenant admins may change `branding` and `retention_policy`; rate limits,
/// quotas and features need an operator.
#[utoipa::path(patch, path = "/v1/tenants/{id}/config", tag = "plans", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = ConfigOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_config(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<ConfigOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::TenantAdmin)?;
    if !caller.is_operator()
        && let Some(section) = ["rate_limits", "quotas", "features"]
            .into_iter()
            .find(|s| patch.get(*s).is_some())
    {
        return Err(ApiError::Forbidden {
            code: "operator_required",
            detail: format!("changing {section} needs an operator key").into(),
        });
    }
    let now = state.clock.now();
    let mut tx = state.store.tenant_write(&access.tenant).await?;
    let tenant = tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    if tenant.status == TenantStatus::Deleted {
        return Err(ApiError::Conflict {
            code: "tenant_deleted",
            detail: "the tenant is deleted".into(),
            field: None,
        });
    }
    let (version, mut overrides) = match tx.latest_config().await? {
        Some((v, o, _, _)) => (v, o.0),
        None => (0, json!({})),
    };
    merge_patch(&mut overrides, &patch);
    validate_overrides(&overrides).map_err(ApiError::Validation)?;
    tx.insert_config_version(version + 1, &overrides, access.actor.as_str(), now)
        .await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::ConfigUpdated,
        &access.actor,
        json!({ "version": version + 1, "patch": patch }),
    )
    .await?;
    let changes = [Invalidation::Tenant(access.tenant.clone())];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    let config = crate::limits::service::effective_config_of(&state, &access.tenant).await?;
    Ok(Json(config_out(&access.tenant, &config)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigVersionOut {
    pub version: i64,
    /// The tenant's overrides as of this version.
    #[schema(value_type = Object)]
    pub overrides: Value,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigVersionList {
    pub data: Vec<ConfigVersionOut>,
    pub next_cursor: Option<String>,
}

/// The history of a tenant's configuration, newest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/config/versions", tag = "plans", params(("id" = String, Path), PageParams),
    responses((status = 200, body = ConfigVersionList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn config_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ConfigVersionList>, ApiError> {
    let access = caller.for_tenant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let before = match page.after("versions")? {
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::from(ValidationError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor from this list",
            ))
        })?),
        None => None,
    };
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let mut rows = tx.config_versions(before, limit + 1).await?;
    tx.commit().await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::cursor("versions", &r.0.to_string()))
    } else {
        None
    };
    Ok(Json(ConfigVersionList {
        data: rows
            .into_iter()
            .map(|(version, o, actor, created_at)| ConfigVersionOut {
                version,
                overrides: o.0,
                actor,
                created_at,
            })
            .collect(),
        next_cursor,
    }))
}

// ----- usage -------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventResult {
    /// The event's id, when it had one.
    pub id: Option<String>,
    pub status: Outcome,
    /// For `duplicate`: the outcome the id got the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Outcome>,
    /// For `rejected`: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestOut {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// One result per event, in order.
    pub results: Vec<EventResult>,
}

fn rejected(id: Option<String>, field: &str, reason: impl Into<String>) -> EventResult {
    EventResult {
        id,
        status: Outcome::Rejected,
        original: None,
        reason: Some(reason.into()),
        field: Some(field.to_owned()),
    }
}

/// Checks one raw event; `Err` is its rejection.
fn check_event(
    raw: &Value,
    meters: &std::collections::HashMap<String, Aggregation>,
    now: DateTime<Utc>,
) -> Result<(Option<String>, CheckedEvent), EventResult> {
    let Value::Object(map) = raw else {
        return Err(rejected(None, "event", "each event must be a JSON object"));
    };
    let id = match map.get("id") {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control) =>
        {
            s.clone()
        }
        _ => {
            return Err(rejected(
                None,
                "id",
                "id (the idempotency key) is required: a string of 1 to 128 characters",
            ));
        }
    };
    let fail = |field: &str, why: &str| rejected(Some(id.clone()), field, why.to_owned());
    if let Some(unknown) = map.keys().find(|k| {
        ![
            "id",
            "tenant_id",
            "meter",
            "quantity",
            "timestamp",
            "subject",
            "properties",
        ]
        .contains(&k.as_str())
    }) {
        return Err(fail(unknown, "unknown field"));
    }
    let tenant = match map.get("tenant_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(fail("tenant_id", "must be a string")),
    };
    let meter = map
        .get("meter")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("meter", "meter is required"))?;
    let aggregation = *meters.get(meter).ok_or_else(|| {
        fail(
            "meter",
            "unknown meter; register custom meters with POST /v1/meters",
        )
    })?;
    let quantity = match map.get("quantity") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_i64()
            .filter(|q| (0..=1_000_000_000_000).contains(q))
            .ok_or_else(|| fail("quantity", "must be a whole number from 0 to 10^12"))?,
    };
    let occurred_at = match map.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(t)) => DateTime::parse_from_rfc3339(t)
            .map_err(|_| fail("timestamp", "must be an RFC 3339 time"))?
            .with_timezone(&Utc),
        Some(_) => return Err(fail("timestamp", "must be an RFC 3339 time")),
    };
    if occurred_at > now + MAX_FUTURE {
        return Err(fail("timestamp", "is more than 5 minutes in the future"));
    }
    let subject = match map.get("subject") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Some(_) => return Err(fail("subject", "must be a string of 1 to 256 characters")),
    };
    if aggregation == Aggregation::Distinct && subject.is_none() {
        return Err(fail(
            "subject",
            "is required for a distinct meter (it is what is counted)",
        ));
    }
    let properties = match map.get("properties") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(p))
            if serde_json::to_vec(p).map(|v| v.len()).unwrap_or(usize::MAX) <= 4096 =>
        {
            Value::Object(p.clone())
        }
        Some(_) => return Err(fail("properties", "must be an object of at most 4 KiB")),
    };
    Ok((
        tenant,
        CheckedEvent {
            id,
            meter: meter.to_owned(),
            aggregation,
            quantity,
            occurred_at,
            subject,
            properties,
        },
    ))
}

/// Record usage: one event or `{"events": [...]}` (up to 1,000). Each event
/// has an `id` (idempotency key): a repeated id is answered `duplicate` and
/// never counted twice. Results come per event; events are written before
/// the answer, so an accepted event survives a crash.
#[utoipa::path(post, path = "/v1/usage/events", tag = "usage", request_body(content = Object),
    responses((status = 200, body = IngestOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<IngestOut>, ApiError> {
    let items: Vec<Value> = match body {
        Value::Object(mut map) if map.contains_key("events") => {
            if map.len() > 1 {
                return Err(ValidationError::new(
                    "events",
                    "invalid_type",
                    "a batch is {\"events\": [...]} alone",
                )
                .into());
            }
            match map.remove("events") {
                Some(Value::Array(items)) if items.len() <= MAX_BATCH && !items.is_empty() => items,
                Some(Value::Array(items)) if items.is_empty() => {
                    return Err(ValidationError::new(
                        "events",
                        "empty",
                        "must hold at least one event",
                    )
                    .into());
                }
                Some(Value::Array(_)) => {
                    return Err(ValidationError::new(
                        "events",
                        "too_many",
                        "at most 1000 events per batch",
                    )
                    .into());
                }
                _ => {
                    return Err(ValidationError::new(
                        "events",
                        "invalid_type",
                        "must be an array of events",
                    )
                    .into());
                }
            }
        }
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(ValidationError::new(
                "body",
                "invalid_type",
                "must be an event or {\"events\": [...]}",
            )
            .into());
        }
    };
    let now = state.clock.now();
    let meters = meters(&state).await?;
    let mut results: Vec<Option<EventResult>> = (0..items.len()).map(|_| None).collect();
    // Events grouped by tenant, in order; one transaction per tenant.
    let mut by_tenant: BTreeMap<TenantId, Vec<(usize, CheckedEvent)>> = BTreeMap::new();
    for (i, raw) in items.iter().enumerate() {
        match check_event(raw, &meters, now) {
            Err(result) => results[i] = Some(result),
            Ok((tenant, event)) => match body_tenant(&caller, tenant.as_deref(), Scope::UsageWrite)
            {
                Ok(tenant) => by_tenant.entry(tenant).or_default().push((i, event)),
                Err(ApiError::Forbidden {
                    code: "insufficient_scope",
                    ..
                }) => {
                    return Err(crate::http::auth::insufficient_scope(Scope::UsageWrite));
                }
                Err(ApiError::Validation(_)) => {
                    results[i] = Some(rejected(
                        Some(event.id),
                        "tenant_id",
                        "tenant_id is required with an operator key",
                    ))
                }
                Err(_) => {
                    results[i] = Some(rejected(Some(event.id), "tenant_id", "no such tenant"))
                }
            },
        }
    }
    for (tenant, events) in by_tenant {
        let mut tx = state.store.tenant_write(&tenant).await?;
        let active = match tx.tenant().await {
            Ok(t) => t.status != TenantStatus::Deleted,
            Err(tenantry_store::StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if !active {
            for (i, event) in events {
                results[i] = Some(rejected(Some(event.id), "tenant_id", "no such tenant"));
            }
            continue;
        }
        let config = effective_config(&state, &mut tx).await?;
        let oldest = now - Duration::days(config.retention_days());
        let mut kept = Vec::with_capacity(events.len());
        for (i, event) in events {
            if event.occurred_at < oldest {
                results[i] = Some(rejected(
                    Some(event.id),
                    "timestamp",
                    "is older than the tenant's retention window",
                ));
            } else {
                kept.push((i, event));
            }
        }
        let batch: Vec<CheckedEvent> = kept.iter().map(|(_, e)| e.clone()).collect();
        let outcomes = usage::record_batch(&state, &mut tx, &config, &batch, now).await?;
        for ((i, event), outcome) in kept.into_iter().zip(outcomes) {
            let original = matches!(outcome, Outcome::Duplicate).then_some(Outcome::Accepted);
            results[i] = Some(EventResult {
                id: Some(event.id),
                status: outcome,
                original,
                reason: None,
                field: None,
            });
        }
        tx.commit().await?;
    }
    let results: Vec<EventResult> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| rejected(None, "event", "not processed")))
        .collect();
    let count = |want: fn(&Outcome) -> bool| results.iter().filter(|r| want(&r.status)).count();
    Ok(Json(IngestOut {
        accepted: count(|o| matches!(o, Outcome::Accepted)),
        duplicates: count(|o| matches!(o, Outcome::Duplicate)),
        rejected: count(|o| matches!(o, Outcome::Rejected)),
        results,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    pub meter: String,
    /// RFC 3339; default: the start of the current month.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    pub to: Option<String>,
    /// `hour`, `day` (default) or `month`.
    pub granularity: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsagePoint {
    pub period_start: DateTime<Utc>,
    pub value: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageOut {
    pub tenant_id: String,
    pub meter: String,
    pub aggregation: Aggregation,
    pub granularity: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Periods with usage, oldest first.
    pub series: Vec<UsagePoint>,
    /// Sum over the series (`last` meters: the latest value; `distinct`: the sum of each period's distinct count).
    pub total: i64,
}

fn parse_time(
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    value
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ValidationError::new(field, "invalid_time", "must be an RFC 3339 time")
                })
        })
        .transpose()
}

/// A meter's usage over time.
#[utoipa::path(get, path = "/v1/tenants/{id}/usage", tag = "usage", params(("id" = String, Path), UsageParams),
    responses((status = 200, body = UsageOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn usage_series(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Json<UsageOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::UsageRead)?;
    let now = state.clock.now();
    let mut checks = Checks::default();
    let granularity = params.granularity.clone().unwrap_or_else(|| "day".into());
    if !usage::GRANULARITIES.contains(&granularity.as_str()) {
        checks.check::<()>(Err(ValidationError::new(
            "granularity",
            "invalid_value",
            "must be hour, day or month",
        )));
    }
    let from = checks
        .check(parse_time("from", &params.from))
        .flatten()
        .unwrap_or_else(|| period_start("month", now));
    let to = checks
        .check(parse_time("to", &params.to))
        .flatten()
        .unwrap_or(now);
    let meters = meters(&state).await?;
    let aggregation = checks.check(
        meters
            .get(&params.meter)
            .copied()
            .ok_or_else(|| ValidationError::new("meter", "unknown_meter", "no such meter")),
    );
    if to <= from {
        checks.check::<()>(Err(ValidationError::new(
            "to",
            "invalid_range",
            "must be after from",
        )));
    }
    checks.finish()?;
    let Some(aggregation) = aggregation else {
        return Err(ApiError::Internal);
    };
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let rows = tx
        .counter_series(
            &params.meter,
            &granularity,
            period_start(&granularity, from),
            to,
        )
        .await?;
    tx.commit().await?;
    let total = match aggregation {
        Aggregation::Last => rows.last().map(|(_, v)| *v).unwrap_or(0),
        _ => rows.iter().map(|(_, v)| v).sum(),
    };
    Ok(Json(UsageOut {
        tenant_id: access.tenant.to_string(),
        meter: params.meter,
        aggregation,
        granularity,
        from,
        to,
        series: rows
            .into_iter()
            .map(|(period_start, value)| UsagePoint {
                period_start,
                value,
            })
            .collect(),
        total,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsOut {
    pub tenant_id: String,
    pub month_start: DateTime<Utc>,
    /// This month's totals per meter.
    #[schema(value_type = Object)]
    pub month: Map<String, Value>,
    /// Today's (UTC) counts per meter.
    #[schema(value_type = Object)]
    pub today: Map<String, Value>,
    /// Distinct conversations this month.
    pub active_conversations: i64,
    /// Quota use this month, per meter with a quota.
    #[schema(value_type = Object)]
    pub quotas: Map<String, Value>,
}

/// Totals, today's counts, active conversations and quota use.
#[utoipa::path(get, path = "/v1/tenants/{id}/stats", tag = "usage", params(("id" = String, Path)),
    responses((status = 200, body = StatsOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<StatsOut>, ApiError> {
    let access = caller.for_tenant(&id, Scope::UsageRead)?;
    let now = state.clock.now();
    let month_start = period_start("month", now);
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let month: Map<String, Value> = tx
        .counters_of_period("month", month_start)
        .await?
        .into_iter()
        .map(|(m, v)| (m, json!(v)))
        .collect();
    let today: Map<String, Value> = tx
        .counters_of_period("day", period_start("day", now))
        .await?
        .into_iter()
        .map(|(m, v)| (m, json!(v)))
        .collect();
    let config = effective_config(&state, &mut tx).await?;
    tx.commit().await?;
    let quotas = config
        .quotas
        .iter()
        .map(|(meter, q)| {
            let used = month.get(meter).and_then(Value::as_i64).unwrap_or(0);
            (meter.clone(), json!({"limit": q.quota.limit, "used": used, "remaining": q.quota.limit.map(|l| (l - used).max(0)), "resets_at": next_period("month", now)}))
        })
        .collect();
    Ok(Json(StatsOut {
        tenant_id: access.tenant.to_string(),
        month_start,
        active_conversations: month
            .get("active_conversations")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        month,
        today,
        quotas,
    }))
}

// ----- quotas and rate limits ------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaCheckIn {
    /// Required with operator keys; implied by tenant keys.
    pub tenant_id: Option<String>,
    pub meter: String,
    /// Default 1.
    pub quantity: Option<i64>,
    /// Take the quantity when allowed (atomic). Default false.
    pub consume: Option<bool>,
}

/// Check a quota for this month, and with `consume` take from it
/// atomically: concurrent consumers never push usage past a hard limit.
#[utoipa::path(post, path = "/v1/quotas/check", tag = "usage", request_body = QuotaCheckIn,
    responses((status = 200, body = QuotaDecision), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn check_quota(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<QuotaCheckIn>,
) -> Result<Json<QuotaDecision>, ApiError> {
    let consume = input.consume.unwrap_or(false);
    let scope = if consume {
        Scope::UsageWrite
    } else {
        Scope::UsageRead
    };
    let tenant = body_tenant(&caller, input.tenant_id.as_deref(), scope)?;
    let quantity = input.quantity.unwrap_or(1);
    if !(1..=1_000_000_000_000).contains(&quantity) {
        return Err(ValidationError::new(
            "quantity",
            "out_of_range",
            "must be a whole number from 1 to 10^12",
        )
        .into());
    }
    let meters = meters(&state).await?;
    match meters.get(&input.meter) {
        Some(Aggregation::Sum) => {}
        Some(_) => {
            return Err(ValidationError::new(
                "meter",
                "not_consumable",
                "quotas apply to sum meters",
            )
            .into());
        }
        None => return Err(ValidationError::new("meter", "unknown_meter", "no such meter").into()),
    }
    let now = state.clock.now();
    let mut tx = if consume {
        state.store.tenant_write(&tenant).await?
    } else {
        state.store.tenant_read(&tenant).await?
    };
    let t = tx.tenant().await.map_err(or_tenant_not_found)?;
    if t.status == TenantStatus::Deleted {
        return Err(ApiError::tenant_not_found());
    }
    let config = effective_config(&state, &mut tx).await?;
    let decision = quotas::check(
        &state,
        &mut tx,
        &config,
        &input.meter,
        quantity,
        consume,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(decision))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// Required with operator keys; implied by tenant keys.
    pub tenant_id: Option<String>,
    /// Limit per key instead of per tenant.
    pub key_id: Option<String>,
    /// A rate limit of the tenant's configuration, e.g. `messages_per_minute`.
    pub limit: String,
    /// Default 1.
    pub cost: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateLimitOut {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_after_ms: u64,
    pub retry_after_ms: u64,
}

/// Take from a rate limit (GCRA), per tenant or per key. Exact across
/// server processes when Redis is configured.
#[utoipa::path(post, path = "/v1/ratelimit", tag = "usage", request_body = RateLimitIn,
    responses((status = 200, body = RateLimitOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn ratelimit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RateLimitIn>,
) -> Result<Json<RateLimitOut>, ApiError> {
    let tenant = body_tenant(&caller, input.tenant_id.as_deref(), Scope::UsageWrite)?;
    let cost = input.cost.unwrap_or(1);
    if cost > 1_000_000_000 {
        return Err(
            ValidationError::new("cost", "out_of_range", "must be at most 1000000000").into(),
        );
    }
    if let Some(key) = &input.key_id
        && (key.is_empty()
            || key.len() > 64
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(ValidationError::new(
            "key_id",
            "invalid_value",
            "must be a key id such as key_…",
        )
        .into());
    }
    let config = crate::limits::service::effective_config_of(&state, &tenant)
        .await
        .map_err(or_tenant_not_found)?;
    let Some(rate) = config.rate_limit(&input.limit) else {
        return Err(ValidationError::new(
            "limit",
            "unknown_limit",
            "the tenant's configuration has no rate limit of this name",
        )
        .into());
    };
    if cost > rate.limit {
        return Err(ValidationError::new(
            "cost",
            "over_limit",
            "is more than the limit allows at once; it could never be admitted",
        )
        .into());
    }
    // Every bucket is the tenant's own: a key id names a key of this tenant,
    // so tenant A draining `user_42` leaves tenant B's `user_42` untouched.
    // (Tenant ids have no ':', key ids neither: the names cannot collide.)
    let bucket = match &input.key_id {
        Some(key) => format!("t:{tenant}:k:{key}:{}", input.limit),
        None => format!("t:{tenant}:{}", input.limit),
    };
    let policy = crate::limits::ratelimit::Policy {
        limit: rate.limit,
        period: std::time::Duration::from_secs(rate.period_seconds),
    };
    let d = state.rate_limiter.check(&bucket, policy, cost).await;
    Ok(Json(RateLimitOut {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        reset_after_ms: d.reset_after_ms,
        retry_after_ms: d.retry_after_ms,
    }))
}
