//! `/v1/usage/events`, `/v1/tenants/{id}/usage` and `/v1/tenants/{id}/stats`:
//! usage metering and what it adds up to. Recording usage is metering, not
//! a change: it records no audit entry.

use super::Checks;
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::limits::service::{Aggregation, meters};
use crate::limits::usage::{
    self, CheckedEvent, Ingested, MAX_BATCH, MAX_FUTURE, Outcome, next_period, period_start,
};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
pub use tenantry_api::usage::{
    EventResult, IngestOut, StatsOut, UsageOut, UsageParams, UsagePoint,
};
use tenantry_core::ValidationError;
use tenantry_core::keys::Scope;

/// The grant a body-addressed request needs: on the tenant implied by a
/// tenant key (another tenant's id is not found), required from operators.
pub(super) fn body_grant(
    caller: &Caller,
    tenant_id: Option<&str>,
    scope: Scope,
) -> Result<TenantGrant, ApiError> {
    match (caller, tenant_id) {
        (Caller::Tenant { tenant, .. }, None) => caller.grant(tenant.id.as_str(), scope),
        (_, Some(id)) => caller.grant(id, scope),
        (Caller::Operator { .. }, None) => {
            Err(
                ValidationError::new("tenant_id", "required", "is required with an operator key")
                    .into(),
            )
        }
    }
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
/// the answer, so an accepted event survives a crash. Concurrent requests
/// for one tenant share transactions (`limits::group_commit`).
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
    let mut by_tenant: BTreeMap<String, (TenantGrant, Vec<(usize, CheckedEvent)>)> =
        BTreeMap::new();
    for (i, raw) in items.iter().enumerate() {
        let Some(slot) = results.get_mut(i) else {
            continue;
        };
        match check_event(raw, &meters, now) {
            Err(result) => *slot = Some(result),
            Ok((tenant, event)) => {
                match body_grant(&caller, tenant.as_deref(), Scope::UsageWrite) {
                    Ok(grant) => by_tenant
                        .entry(grant.tenant().to_string())
                        .or_insert_with(|| (grant, Vec::new()))
                        .1
                        .push((i, event)),
                    Err(ApiError::Forbidden {
                        code: crate::http::codes::Code::InsufficientScope,
                        ..
                    }) => {
                        return Err(crate::http::auth::insufficient_scope(Scope::UsageWrite));
                    }
                    Err(ApiError::Validation(_)) => {
                        *slot = Some(rejected(
                            Some(event.id),
                            "tenant_id",
                            "tenant_id is required with an operator key",
                        ))
                    }
                    Err(_) => *slot = Some(rejected(Some(event.id), "tenant_id", "no such tenant")),
                }
            }
        }
    }
    for (grant, events) in by_tenant.into_values() {
        // The events move to the recorder; their ids and places stay for
        // the answer.
        let (places, batch): (Vec<(usize, String)>, Vec<CheckedEvent>) = events
            .into_iter()
            .map(|(i, e)| ((i, e.id.clone()), e))
            .unzip();
        let ingested = state
            .usage_group_commit
            .ingest(&state, &grant, batch, now)
            .await?;
        for ((i, id), ingested) in places.into_iter().zip(ingested) {
            let result = match ingested {
                Ingested::Counted(outcome) => EventResult {
                    id: Some(id),
                    original: matches!(outcome, Outcome::Duplicate).then_some(Outcome::Accepted),
                    status: outcome,
                    reason: None,
                    field: None,
                },
                Ingested::Refused { field, reason } => rejected(Some(id), field, reason),
            };
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(result);
            }
        }
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
    let grant = caller.grant(&id, Scope::UsageRead)?;
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
    let rows = usage::series(
        &state,
        &grant,
        &params.meter,
        &granularity,
        period_start(&granularity, from),
        to,
    )
    .await?;
    let total = match aggregation {
        Aggregation::Last => rows.last().map(|(_, v)| *v).unwrap_or(0),
        _ => rows.iter().map(|(_, v)| v).sum(),
    };
    Ok(Json(UsageOut {
        tenant_id: grant.tenant().to_string(),
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

/// Totals, today's counts, active conversations and quota use.
#[utoipa::path(get, path = "/v1/tenants/{id}/stats", tag = "usage", params(("id" = String, Path)),
    responses((status = 200, body = StatsOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<StatsOut>, ApiError> {
    let grant = caller.grant(&id, Scope::UsageRead)?;
    let now = state.clock.now();
    let month_start = period_start("month", now);
    let (month, today, config) = usage::totals(&state, &grant, now).await?;
    let month: Map<String, Value> = month.into_iter().map(|(m, v)| (m, json!(v))).collect();
    let today: Map<String, Value> = today.into_iter().map(|(m, v)| (m, json!(v))).collect();
    let quotas = config
        .quotas
        .iter()
        .map(|(meter, q)| {
            let used = month.get(meter).and_then(Value::as_i64).unwrap_or(0);
            (meter.clone(), json!({"limit": q.quota.limit, "used": used, "remaining": q.quota.limit.map(|l| (l - used).max(0)), "resets_at": next_period("month", now)}))
        })
        .collect();
    let messages = crate::inbound::messages::counts(&state, &grant).await?;
    Ok(Json(StatsOut {
        messages,
        tenant_id: grant.tenant().to_string(),
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
