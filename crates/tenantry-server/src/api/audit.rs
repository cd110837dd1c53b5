//! `/v1/tenants/{id}/audit…` and `/v1/operator/audit…`: reading, verifying
//! and exporting the audit chains, their signed checkpoints, and the
//! checkpoint keys (`/v1/audit/keys`, rotation).
//!
//! Tenant keys need `audit:read` (granted by `tenant:admin` too) and reach
//! their own tenant's chain only; operators reach every chain.

use super::{MAX_PAGE, Page, cursor};
use crate::app::AppState;
use crate::audit::export::{Export, Format};
use crate::audit::keys::PublicKeyOut;
use crate::audit::verify::VerifyReport;
use crate::audit::{ChainTx, origin};
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiPath, ApiQuery, TenantPathChecked};
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
pub use tenantry_api::audit::{
    AuditEntryOut, AuditKeyRotatedOut, AuditQuery, CheckpointOut, CheckpointQuery, ExportQuery,
};
use tenantry_core::ValidationError;
use tenantry_core::audit::{Chain, Outcome};
use tenantry_core::keys::Scope;
use tenantry_store::{AuditFilter, StoredCheckpoint};

fn checkpoint_out(chain: &Chain, cp: StoredCheckpoint) -> CheckpointOut {
    CheckpointOut {
        origin: origin(chain),
        size: cp.size,
        head_hash: cp.head_hash,
        created_at: cp.created_at,
        key_id: cp.key_id,
        note: cp.note,
    }
}

fn invalid(field: &str, code: &'static str, detail: &'static str) -> ValidationError {
    ValidationError::new(field.to_owned(), code, detail)
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ValidationError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    invalid(
                        field,
                        "invalid_time",
                        "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
                    )
                })
        })
        .transpose()
}

fn plain(field: &str, value: &str, max: usize) -> Result<String, ValidationError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "invalid_value",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(value.to_owned())
}

fn time_range(
    checks: &mut super::Checks,
    from: Option<&str>,
    to: Option<&str>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let from = checks.check(parse_time("from", from)).flatten();
    let to = checks.check(parse_time("to", to)).flatten();
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        checks.check::<()>(Err(invalid(
            "to",
            "invalid_range",
            "must be later than from",
        )));
    }
    (from, to)
}

fn audit_filter(q: &AuditQuery) -> Result<(AuditFilter, u32, Option<u64>), ApiError> {
    let mut checks = super::Checks::default();
    let action = q.action.as_deref().and_then(|a| {
        checks.check(
            if !a.is_empty()
                && a.len() <= 100
                && a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
            {
                Ok(a.to_owned())
            } else {
                Err(invalid(
                    "action",
                    "invalid_value",
                    "must be a dotted action such as api_key.created",
                ))
            },
        )
    });
    let actor = q
        .actor
        .as_deref()
        .and_then(|a| checks.check(plain("actor", a, 200)));
    let target = q.target.as_deref().and_then(|t| {
        checks.check(match t.split_once(':') {
            Some((kind, id))
                if !kind.is_empty()
                    && kind.len() <= 50
                    && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && plain("target", id, 200).is_ok() =>
            {
                Ok((kind.to_owned(), id.to_owned()))
            }
            _ => Err(invalid(
                "target",
                "invalid_value",
                "must be type:id, e.g. api_key:key_123",
            )),
        })
    });
    let outcome = q.outcome.as_deref().and_then(|o| {
        checks.check(
            o.parse::<Outcome>()
                .map(|o| o.as_str().to_owned())
                .map_err(|()| {
                    invalid(
                        "outcome",
                        "invalid_value",
                        "must be success, denied or error",
                    )
                }),
        )
    });
    let (from, to) = time_range(&mut checks, q.from.as_deref(), q.to.as_deref());
    let limit = match q.limit {
        None => Some(super::DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Some(n),
        Some(_) => checks.check(Err(invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        ))),
    };
    let page = super::PageParams {
        limit: None,
        cursor: q.cursor.clone(),
    };
    let before = match page.after("audit") {
        Ok(None) => None,
        Ok(Some(p)) => checks
            .check(p.parse::<u64>().map_err(|_| {
                invalid("cursor", "invalid_cursor", "is not a cursor from this list")
            })),
        Err(ApiError::Validation(mut errs)) => {
            if let Some(e) = errs.pop() {
                checks.check::<()>(Err(e));
            }
            None
        }
        Err(e) => return Err(e),
    };
    checks.finish()?;
    Ok((
        AuditFilter {
            action,
            actor,
            target,
            outcome,
            from,
            to,
        },
        limit.unwrap_or(super::DEFAULT_PAGE),
        before,
    ))
}

async fn list_chain(
    state: &AppState,
    access: Access<'_>,
    query: &AuditQuery,
) -> Result<Json<Page<AuditEntryOut>>, ApiError> {
    let (filter, limit, before) = audit_filter(query)?;
    let mut tx = open(state, &access).await?;
    let entries = tx.list(&filter, before, limit).await?;
    tx.commit().await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| {
            entries
                .last()
                .map(|e| cursor("audit", &e.sequence.to_string()))
        })
        .flatten();
    Ok(Json(Page {
        data: entries.into_iter().map(AuditEntryOut::from).collect(),
        next_cursor,
    }))
}

/// The permission check of every tenant audit route: the grant (proof the
/// caller may read this tenant's audit log) and its chain.
fn tenant_chain(caller: &Caller, id: &str) -> Result<(Chain, TenantGrant), ApiError> {
    let grant = caller.grant(id, Scope::AuditRead)?;
    Ok((Chain::Tenant(grant.tenant().clone()), grant))
}

/// A read transaction on a chain, opened from the caller's grant.
async fn open(state: &AppState, access: &Access<'_>) -> Result<ChainTx, ApiError> {
    Ok(match access {
        Access::Tenant(grant) => ChainTx::Tenant(grant.read(state).await?),
        Access::Operator(grant) => ChainTx::Operator(grant.read(state).await?),
    })
}

enum Access<'a> {
    Tenant(&'a TenantGrant),
    Operator(&'a OperatorGrant),
}

/// A tenant's audit entries, newest first (highest sequence first).
#[utoipa::path(get, path = "/v1/tenants/{id}/audit", tag = "audit", params(("id" = String, Path), AuditQuery),
    responses((status = 200, body = Page<AuditEntryOut>), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntryOut>>, ApiError> {
    let (_, grant) = tenant_chain(&caller, &id)?;
    list_chain(&state, Access::Tenant(&grant), &query).await
}

/// The operator chain's entries (changes that belong to no tenant), newest first.
#[utoipa::path(get, path = "/v1/operator/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntryOut>), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntryOut>>, ApiError> {
    list_chain(&state, Access::Operator(operator.grant()), &query).await
}

async fn checkpoints_of(
    state: &AppState,
    chain: &Chain,
    access: Access<'_>,
    query: CheckpointQuery,
) -> Result<Json<Page<CheckpointOut>>, ApiError> {
    let page = super::PageParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let before = match page.after("checkpoints")? {
        None => None,
        Some(p) => Some(p.parse::<i64>().map_err(|_| {
            ApiError::invalid(invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor from this list",
            ))
        })?),
    };
    let mut tx = open(state, &access).await?;
    let found = tx.checkpoints(before, limit).await?;
    tx.commit().await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| {
            found
                .last()
                .map(|c| cursor("checkpoints", &c.slot.to_string()))
        })
        .flatten();
    Ok(Json(Page {
        data: found
            .into_iter()
            .map(|c| checkpoint_out(chain, c))
            .collect(),
        next_cursor,
    }))
}

/// A tenant chain's signed checkpoints, newest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/audit/checkpoints", tag = "audit", params(("id" = String, Path), CheckpointQuery),
    responses((status = 200, body = Page<CheckpointOut>), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CheckpointQuery>,
) -> Result<Json<Page<CheckpointOut>>, ApiError> {
    let (chain, grant) = tenant_chain(&caller, &id)?;
    checkpoints_of(&state, &chain, Access::Tenant(&grant), query).await
}

/// The operator chain's signed checkpoints, newest first.
#[utoipa::path(get, path = "/v1/operator/audit/checkpoints", tag = "audit", params(CheckpointQuery),
    responses((status = 200, body = Page<CheckpointOut>), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_checkpoints(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(query): ApiQuery<CheckpointQuery>,
) -> Result<Json<Page<CheckpointOut>>, ApiError> {
    checkpoints_of(
        &state,
        &Chain::Operator,
        Access::Operator(operator.grant()),
        query,
    )
    .await
}

/// Recomputes a tenant's chain from its pruned anchor and checks every
/// signed checkpoint and the head: `ok`, or the first bad sequence and why.
#[utoipa::path(get, path = "/v1/tenants/{id}/audit/verify", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, body = VerifyReport), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    _checked: TenantPathChecked,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VerifyReport>, ApiError> {
    let (chain, _grant) = tenant_chain(&caller, &id)?;
    Ok(Json(
        crate::audit::verify::verify_stored(&state.store, &chain).await?,
    ))
}

/// Recomputes the operator chain and checks its checkpoints and head.
#[utoipa::path(get, path = "/v1/operator/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_verify(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(
        crate::audit::verify::verify_stored(&state.store, &Chain::Operator).await?,
    ))
}

async fn export_chain(
    state: &AppState,
    chain: Chain,
    query: ExportQuery,
) -> Result<Response, ApiError> {
    let mut checks = super::Checks::default();
    let format = match query.format.as_deref() {
        None | Some("ndjson") => Some(Format::Ndjson),
        Some("csv") => Some(Format::Csv),
        Some(_) => checks.check(Err(invalid(
            "format",
            "invalid_value",
            "must be ndjson or csv",
        ))),
    };
    let (from, to) = time_range(&mut checks, query.from.as_deref(), query.to.as_deref());
    checks.finish()?;
    let format = format.unwrap_or(Format::Ndjson);
    let name = crate::audit::chain_name(&chain);
    let (export, head) = Export::start(
        state.store.clone(),
        chain,
        format,
        from,
        to,
        state.clock.now(),
    )
    .await?;
    let rest = futures_util::stream::unfold(Some(export), |export| async move {
        let mut export = export?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(export))),
            Ok(None) => None,
            Err(err) => {
                // The response has begun: end it short (the export then
                // lacks its end line and does not verify).
                tracing::warn!(error = %err, "audit export failed part-way");
                Some((Err(std::io::Error::other("audit export failed")), None))
            }
        }
    });
    let stream =
        futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(head) }), rest);
    let mut response = Body::from_stream(stream).into_response();
    let (content_type, ext) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-{name}.{ext}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Exports a tenant's entries (in a time range) with the checkpoints that
/// cover them and the keys that verify those, streamed.
#[utoipa::path(get, path = "/v1/tenants/{id}/audit/export", tag = "audit", params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "NDJSON (`application/x-ndjson`) or CSV (`text/csv`)", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let (chain, _grant) = tenant_chain(&caller, &id)?;
    export_chain(&state, chain, query).await
}

/// Exports the operator chain, streamed.
#[utoipa::path(get, path = "/v1/operator/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "NDJSON (`application/x-ndjson`) or CSV (`text/csv`)", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_export(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    export_chain(&state, Chain::Operator, query).await
}

/// The keys that sign audit checkpoints, newest first, retired ones
/// included (the checkpoints they signed stay verifiable).
#[utoipa::path(get, path = "/v1/audit/keys", tag = "audit", security(()),
    responses((status = 200, body = Vec<PublicKeyOut>)))]
pub async fn keys(State(state): State<AppState>) -> Result<Json<Vec<PublicKeyOut>>, ApiError> {
    Ok(Json(crate::audit::keys::public_keys(&state.store).await?))
}

/// Start signing checkpoints with a new key; the previous key stays listed
/// and keeps verifying the checkpoints it signed.
#[utoipa::path(post, path = "/v1/operator/audit/signing-keys/rotate", tag = "audit",
    responses((status = 200, body = AuditKeyRotatedOut), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_key(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<AuditKeyRotatedOut>, ApiError> {
    let key_id = crate::audit::keys::rotate(&state, operator.grant()).await?;
    tracing::info!(%key_id, "audit checkpoint signing key rotated");
    Ok(Json(AuditKeyRotatedOut { key_id }))
}
