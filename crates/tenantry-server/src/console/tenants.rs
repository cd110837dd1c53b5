//! The tenants page (operators): search, status and plan filters, cursor
//! pagination, and the form that creates a tenant.

use super::views::{self, csrf, enc, errors_block, text};
use super::{Ctx, Posted};
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    plan: Option<String>,
    cursor: Option<String>,
}

const PAGE: usize = 25;
/// API pages a search reads at most to fill one page of matches.
const SEARCH_PAGES: usize = 40;

/// The tenant registry is the operators': a tenant admin's session does
/// not find it.
fn not_for_tenants(ctx: &Ctx) -> Option<Response> {
    views::operators_only(ctx)
}

pub async fn list(ctx: Ctx, Query(query): Query<ListQuery>) -> Response {
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    render(&ctx, &query, &[], None).await
}

async fn render(
    ctx: &Ctx,
    query: &ListQuery,
    errors: &[(String, String)],
    form: Option<&super::Form>,
) -> Response {
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let filter = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("&{name}={}", enc(v)))
            .unwrap_or_default()
    };
    let filters = format!(
        "{}{}",
        filter("status", &query.status),
        filter("plan", &query.plan)
    );
    // The API lists in id order with filters; a search reads on through its
    // pages until a page of matches (or the bounded scan) is complete.
    let mut rows: Vec<Value> = Vec::new();
    let mut cursor = query.cursor.clone().filter(|c| !c.is_empty());
    let mut next: Option<String> = None;
    let mut list_errors: Vec<(String, String)> = Vec::new();
    for _ in 0..if search.is_some() { SEARCH_PAGES } else { 1 } {
        let page_size = if search.is_some() { 100 } else { PAGE };
        let path = format!(
            "/v1/tenants?limit={page_size}{filters}{}",
            cursor
                .as_deref()
                .map(|c| format!("&cursor={}", enc(c)))
                .unwrap_or_default()
        );
        let reply = ctx.get(&path).await;
        if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
            list_errors = views::field_errors(&reply);
            break;
        }
        if !reply.ok() {
            return views::failed(ctx, &reply);
        }
        for tenant in reply.data() {
            if search.is_none_or(|q| matches(&tenant, q)) {
                rows.push(tenant);
            }
        }
        next = reply.body["next_cursor"].as_str().map(str::to_owned);
        if next.is_none() || rows.len() >= PAGE {
            break;
        }
        cursor = next.clone();
    }
    let plans = ctx.get("/v1/plans").await.data();
    let keep = |name: &str| {
        form.and_then(|f| f.get(name))
            .unwrap_or_default()
            .to_owned()
    };
    let status_options = [
        "active",
        "suspended",
        "deleted",
        "provisioning",
        "provisioning_failed",
    ];
    let content = html! {
        h1 { "Tenants" }
        (errors_block(&list_errors))
        form.filters method="get" action="/console/tenants" id="tenant-filters" {
            label { "Search " input type="search" name="q" value=[query.q.as_deref()] placeholder="id or name"; }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in status_options {
                        option value=(s) selected[query.status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label { "Plan "
                select name="plan" {
                    option value="" { "any" }
                    @for plan in &plans {
                        @let name = text(&plan["name"]);
                        option value=(name) selected[query.plan.as_deref() == Some(name.as_str())] { (name) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted id="tenants-empty" { "No tenants match." }
        } @else {
            table id="tenants" {
                thead { tr { th { "Id" } th { "Name" } th { "Status" } th { "Plan" } th { "Region" } th { "Created" } } }
                tbody {
                    @for t in &rows {
                        tr {
                            td { a href={ "/console/tenants/" (enc(&text(&t["id"]))) } { (text(&t["id"])) } }
                            td { (text(&t["name"])) }
                            td { (views::badge(&t["status"])) }
                            td { (text(&t["plan"])) }
                            td { (text(&t["region"])) }
                            td { (text(&t["created_at"])) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &next {
            p.pager {
                a id="next-page" href={ "/console/tenants?cursor=" (enc(next)) (filters)
                    @if let Some(q) = search { "&q=" (enc(q)) } } { "Next page →" }
            }
        }
        h2 { "Create a tenant" }
        section {
            (errors_block(errors))
            form.stack method="post" action="/console/tenants" id="create-tenant" {
                (csrf(ctx))
                label for="new-id" { "Id (slug)" }
                input #new-id name="id" value=(keep("id")) required;
                label for="new-name" { "Name" }
                input #new-name name="name" value=(keep("name")) required;
                label for="new-plan" { "Plan" }
                select #new-plan name="plan" {
                    option value="" { "default" }
                    @for plan in &plans {
                        @let name = text(&plan["name"]);
                        option value=(name) selected[keep("plan") == name] { (name) }
                    }
                }
                label for="new-region" { "Region (optional)" }
                input #new-region name="region" value=(keep("region"));
                p { button type="submit" { "Create tenant" } }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    views::page_with(ctx, status, "Tenants", content)
}

fn matches(tenant: &Value, q: &str) -> bool {
    let q = q.to_lowercase();
    ["id", "name", "subdomain"]
        .iter()
        .any(|f| text(&tenant[*f]).to_lowercase().contains(&q))
}

pub async fn create(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let mut body = json!({
        "id": form.get("id").unwrap_or_default(),
        "name": form.get("name").unwrap_or_default(),
    });
    for field in ["plan", "region"] {
        if let Some(v) = form.get(field) {
            body[field] = json!(v);
        }
    }
    let reply = ctx.post("/v1/tenants", &body).await;
    if reply.ok() {
        let id = text(&reply.body["id"]);
        return Redirect::to(&format!("/console/tenants/{}?created=1", enc(&id))).into_response();
    }
    if matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
    ) {
        return render(
            &ctx,
            &ListQuery::default(),
            &views::field_errors(&reply),
            Some(&form),
        )
        .await;
    }
    views::failed(&ctx, &reply)
}
