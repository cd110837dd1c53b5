//! A small leads service, as a SaaS product would write it: agencies
//! (tenants) with campaigns, leads and calls. Tenant resolution is
//! `tenantry-layer`; every database access goes through
//! `tenantry_layer::db::begin_tenant_tx`, and the tables are under row-level
//! security (installed by `tenantry app-db isolate`), so even a query that forgets its
//! `WHERE tenant_id` (see [`buggy_list_leads`]) sees only the caller's rows.

// Handlers and their input checks answer `Result<Response, Response>`: an
// error is already the finished answer, and boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_layer::db::begin_tenant_tx;
use tenantry_layer::{TenantContext, TenantryLayer};

/// How requests get their tenant.
#[derive(Clone)]
pub enum Auth {
    /// Through Tenantry (the real thing).
    Tenantry(TenantryLayer),
    /// Benchmark baseline only: the tenant named by `X-Tenant-ID`, trusted
    /// blindly. Never for production.
    TrustedHeader,
    /// Benchmark baseline only: `X-Tenant-ID` must name this tenant, whose
    /// context (as Tenantry resolved it) every request then gets, so the
    /// app's answers are the same as with the layer, byte for byte. Never
    /// for production.
    TrustedContext(TenantContext),
}

/// The tenant-scoped tables, isolated by `tenantry app-db isolate`.
pub const TABLES: [&str; 3] = ["campaigns", "leads", "calls"];

/// Installs the schema as an administrator (`admin_url`: a role that owns
/// the tables), granting row access to `app_role`, then puts the tables
/// under row-level security with `tenantry app-db isolate` itself: the same
/// code as the command, refusing an `app_role` that would bypass it.
pub async fn setup(admin_url: &str, app_role: &str) -> anyhow::Result<()> {
    let admin = PgPool::connect(admin_url).await?;
    let sql = include_str!("../migrations/setup.sql").replace("{app_role}", &quote_ident(app_role));
    let installed = sqlx::raw_sql(&sql).execute(&admin).await;
    admin.close().await;
    installed?;
    let code = tenantry_appdb::isolate::run(tenantry_appdb::IsolateArgs {
        target: target(admin_url, app_role),
        tables: TABLES.iter().map(|t| (*t).to_owned()).collect(),
        all: false,
        dry_run: false,
    })
    .await?;
    anyhow::ensure!(
        code == std::process::ExitCode::SUCCESS,
        "tenantry app-db isolate refused (see its message above)"
    );
    Ok(())
}

/// `tenantry app-db doctor` on the example's tables: `true` when it finds
/// nothing (every table isolated, `app_role` bypasses nothing).
pub async fn isolation_is_sound(admin_url: &str, app_role: &str) -> anyhow::Result<bool> {
    let code = tenantry_appdb::doctor::run(tenantry_appdb::DoctorArgs {
        target: target(admin_url, app_role),
        exempt: Vec::new(),
        json: false,
    })
    .await?;
    Ok(code == std::process::ExitCode::SUCCESS)
}

fn target(admin_url: &str, app_role: &str) -> tenantry_appdb::Target {
    tenantry_appdb::Target {
        database_url: admin_url.to_owned(),
        column: "tenant_id".to_owned(),
        schemas: Vec::new(),
        role: Some(app_role.to_owned()),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn app(pool: PgPool, auth: Auth) -> Router {
    let routes = Router::new()
        .route("/whoami", get(whoami))
        .route("/campaigns", post(create_campaign).get(list_campaigns))
        .route("/leads", post(create_lead).get(list_leads))
        .route(
            "/leads/{id}",
            get(get_lead).patch(update_lead).delete(delete_lead),
        )
        .route("/calls", post(create_call).get(list_calls))
        .route("/buggy/leads", get(buggy_list_leads))
        .route("/buggy/leads/status", patch(buggy_update_all))
        .with_state(pool);
    match auth {
        Auth::Tenantry(layer) => routes.layer(layer),
        Auth::TrustedHeader => routes.layer(axum::middleware::from_fn(trusted_header)),
        Auth::TrustedContext(tenant) => routes.layer(axum::middleware::from_fn_with_state(
            tenant,
            trusted_context,
        )),
    }
}

async fn trusted_context(
    State(tenant): State<TenantContext>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let named = req
        .headers()
        .get("x-tenant-id")
        .is_some_and(|v| v.as_bytes() == tenant.id.as_bytes());
    if !named {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", None);
    }
    req.extensions_mut().insert(tenant.clone());
    tenantry_layer::with_tenant(Some(tenant), next.run(req)).await
}

async fn trusted_header(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let Some(id) = req
        .headers()
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", None);
    };
    let tenant = TenantContext::new(tenantry_layer::TenantInfo {
        id,
        status: "active".into(),
        plan: "starter".into(),
        region: None,
        features: Default::default(),
        limits: Default::default(),
        matched_by: "header".into(),
    });
    req.extensions_mut().insert(tenant.clone());
    tenantry_layer::with_tenant(Some(tenant), next.run(req)).await
}

/// An error answer: `application/problem+json` with a stable code.
fn problem(status: StatusCode, code: &str, field: Option<&str>) -> Response {
    let mut body = json!({
        "type": format!("https://leads.example/problems/{}", code.replace('_', "-")),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
    });
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A database failure: a missing parent (another tenant's, as far as this
/// tenant can tell) is `404`, anything else an outage (`503`), never a 500
/// with the database's text.
fn db_error(err: sqlx::Error, parent: &str) -> Response {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("23503")
    {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("{parent}_not_found"),
            Some(&format!("{parent}_id")),
        );
    }
    eprintln!("leads: database error: {err}");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
        None,
    )
}

/// The request body as a JSON object, or a `422` naming the problem.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed_json",
            Some("body"),
        )),
    }
}

/// A required string field, 1 to `max` characters.
fn text(map: &serde_json::Map<String, Value>, field: &str, max: usize) -> Result<String, Response> {
    match map.get(field).and_then(Value::as_str).map(str::trim) {
        Some(v) if !v.is_empty() && v.chars().count() <= max => Ok(v.to_owned()),
        _ => Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some(field),
        )),
    }
}

fn optional_id(map: &serde_json::Map<String, Value>, field: &str) -> Result<Option<i64>, Response> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
            problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some(field),
            )
        }),
    }
}

fn path_id(raw: &str) -> Result<i64, Response> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, "lead_not_found", None))
}

type Reply = Result<Response, Response>;

#[derive(Serialize)]
struct Lead {
    id: i64,
    tenant_id: String,
    campaign_id: Option<i64>,
    name: String,
    email: String,
    status: String,
}

type LeadRow = (i64, String, Option<i64>, String, String, String);

impl From<LeadRow> for Lead {
    fn from((id, tenant_id, campaign_id, name, email, status): LeadRow) -> Lead {
        Lead {
            id,
            tenant_id,
            campaign_id,
            name,
            email,
            status,
        }
    }
}

const LEAD_COLUMNS: &str = "id, tenant_id, campaign_id, name, email, status";

/// The tenant, read from the task-local deep in the call stack (not from
/// the request): what library code of the app would do.
async fn whoami() -> Response {
    match TenantContext::current() {
        Some(t) => Json(json!({
            "id": t.id, "plan": t.plan, "region": t.region,
            "features": t.features, "limits": t.limits, "matched_by": t.matched_by,
        }))
        .into_response(),
        None => problem(StatusCode::INTERNAL_SERVER_ERROR, "no_tenant", None),
    }
}

async fn create_campaign(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    body: Bytes,
) -> Reply {
    let map = object(&body)?;
    let name = text(&map, "name", 200)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "campaign"))?;
    let (id,): (i64,) = sqlx::query_as("INSERT INTO campaigns (name) VALUES ($1) RETURNING id")
        .bind(&name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, "campaign"))?;
    tx.commit().await.map_err(|e| db_error(e, "campaign"))?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "name": name }))).into_response())
}

async fn list_campaigns(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
) -> Reply {
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "campaign"))?;
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, tenant_id, name FROM campaigns WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(&tenant.id)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| db_error(e, "campaign"))?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, tenant_id, name)| json!({ "id": id, "tenant_id": tenant_id, "name": name }))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn create_lead(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    body: Bytes,
) -> Reply {
    let map = object(&body)?;
    let name = text(&map, "name", 200)?;
    let email = text(&map, "email", 320)?;
    if !email.contains('@') {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("email"),
        ));
    }
    let campaign = optional_id(&map, "campaign_id")?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "campaign"))?;
    let lead: Lead = sqlx::query_as::<_, LeadRow>(&format!(
        "INSERT INTO leads (name, email, campaign_id) VALUES ($1, $2, $3) RETURNING {LEAD_COLUMNS}"
    ))
    .bind(&name)
    .bind(&email)
    .bind(campaign)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| db_error(e, "campaign"))?
    .into();
    tx.commit().await.map_err(|e| db_error(e, "campaign"))?;
    Ok((StatusCode::CREATED, Json(lead)).into_response())
}

async fn list_leads(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
) -> Reply {
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let leads: Vec<Lead> = sqlx::query_as::<_, LeadRow>(&format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE tenant_id = $1 ORDER BY id LIMIT 100"
    ))
    .bind(&tenant.id)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| db_error(e, "lead"))?
    .into_iter()
    .map(Lead::from)
    .collect();
    Ok(Json(json!({ "items": leads })).into_response())
}

async fn get_lead(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    Path(id): Path<String>,
) -> Reply {
    let id = path_id(&id)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let lead: Option<Lead> = sqlx::query_as::<_, LeadRow>(&format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(&tenant.id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db_error(e, "lead"))?
    .map(Lead::from);
    match lead {
        Some(lead) => Ok(Json(lead).into_response()),
        None => Err(problem(StatusCode::NOT_FOUND, "lead_not_found", None)),
    }
}

async fn update_lead(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = path_id(&id)?;
    let map = object(&body)?;
    let status = text(&map, "status", 40)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let lead: Option<Lead> = sqlx::query_as::<_, LeadRow>(&format!(
        "UPDATE leads SET status = $1 WHERE id = $2 AND tenant_id = $3 RETURNING {LEAD_COLUMNS}"
    ))
    .bind(&status)
    .bind(id)
    .bind(&tenant.id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db_error(e, "lead"))?
    .map(Lead::from);
    tx.commit().await.map_err(|e| db_error(e, "lead"))?;
    match lead {
        Some(lead) => Ok(Json(lead).into_response()),
        None => Err(problem(StatusCode::NOT_FOUND, "lead_not_found", None)),
    }
}

async fn delete_lead(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    Path(id): Path<String>,
) -> Reply {
    let id = path_id(&id)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let done = sqlx::query("DELETE FROM leads WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    tx.commit().await.map_err(|e| db_error(e, "lead"))?;
    if done.rows_affected() == 0 {
        return Err(problem(StatusCode::NOT_FOUND, "lead_not_found", None));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_call(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    body: Bytes,
) -> Reply {
    let map = object(&body)?;
    let lead = optional_id(&map, "lead_id")?.ok_or_else(|| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("lead_id"),
        )
    })?;
    let outcome = text(&map, "outcome", 200)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO calls (lead_id, outcome) VALUES ($1, $2) RETURNING id")
            .bind(lead)
            .bind(&outcome)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(e, "lead"))?;
    tx.commit().await.map_err(|e| db_error(e, "lead"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "lead_id": lead, "outcome": outcome })),
    )
        .into_response())
}

async fn list_calls(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
) -> Reply {
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT id, tenant_id, lead_id, outcome FROM calls WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(&tenant.id)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| db_error(e, "lead"))?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, tenant_id, lead_id, outcome)| {
            json!({ "id": id, "tenant_id": tenant_id, "lead_id": lead_id, "outcome": outcome })
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// A deliberately buggy handler: no `WHERE tenant_id`. Row-level security
/// still returns only the caller's rows.
pub async fn buggy_list_leads(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
) -> Reply {
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let leads: Vec<Lead> =
        sqlx::query_as::<_, LeadRow>(&format!("SELECT {LEAD_COLUMNS} FROM leads ORDER BY id"))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db_error(e, "lead"))?
            .into_iter()
            .map(Lead::from)
            .collect();
    Ok(Json(json!({ "items": leads })).into_response())
}

/// Buggy too: updates "every" lead. Only the caller's change.
async fn buggy_update_all(
    State(pool): State<PgPool>,
    Extension(tenant): Extension<TenantContext>,
    body: Bytes,
) -> Reply {
    let map = object(&body)?;
    let status = text(&map, "status", 40)?;
    let mut tx = begin_tenant_tx(&pool, &tenant)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    let done = sqlx::query("UPDATE leads SET status = $1")
        .bind(&status)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, "lead"))?;
    tx.commit().await.map_err(|e| db_error(e, "lead"))?;
    Ok(Json(json!({ "updated": done.rows_affected() })).into_response())
}
