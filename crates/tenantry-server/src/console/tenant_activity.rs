//! What happens in a tenant: its audit timeline (with the chain's
//! verification), usage per meter (server-rendered SVG bar charts), quotas,
//! outbound webhook endpoints (one endpoint's page is
//! `webhook_endpoint.rs`), the tenant's events, provisioning progress and
//! inbound conversations.

use super::tenant::{frame, load};
use super::views::{self, csrf, enc, errors_block, pretty, text};
use super::{ApiReply, Ctx, Posted};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    outcome: Option<String>,
    cursor: Option<String>,
}

pub async fn audit(ctx: Ctx, Path(id): Path<String>, Query(query): Query<AuditQuery>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    let api = format!("/v1/tenants/{}/audit", enc(&id));
    let page = format!("/console/tenants/{}/audit", enc(&id));
    match audit_timeline(&ctx, &api, &page, &query).await {
        Ok((status, content)) => frame(&ctx, &id, "/audit", status, "Audit", content),
        Err(page) => page,
    }
}

/// An audit chain's page body: its verification, the filters, a page of
/// entries. `api` is the chain's list path (`…/audit`, with `/verify`
/// beside it), `page` the console page's own path.
pub async fn audit_timeline(
    ctx: &Ctx,
    api: &str,
    page: &str,
    query: &AuditQuery,
) -> Result<(StatusCode, Markup), Response> {
    let mut path = format!("{api}?limit=50");
    for (name, value) in [
        ("action", &query.action),
        ("outcome", &query.outcome),
        ("cursor", &query.cursor),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            path.push_str(&format!("&{name}={}", enc(v)));
        }
    }
    let reply = ctx.get(&path).await;
    let mut errors = Vec::new();
    if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
        errors = views::field_errors(&reply);
    } else if !reply.ok() {
        return Err(views::failed(ctx, &reply));
    }
    let verify = ctx.get(&format!("{api}/verify")).await;
    let entries = reply.data();
    let next = reply.body["next_cursor"].as_str().map(str::to_owned);
    let content = html! {
        (chain_status(&verify))
        (errors_block(&errors))
        form.filters method="get" action=(page) id="audit-filters" {
            label { "Action " input name="action" value=[query.action.as_deref()] placeholder="api_key.created"; }
            label { "Outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for o in ["success", "denied", "error"] {
                        option value=(o) selected[query.outcome.as_deref() == Some(o)] { (o) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        (audit_entries(&entries))
        @if let Some(next) = next {
            p.pager { a id="next-page" href={ (page) "?cursor=" (enc(&next)) } { "Older →" } }
        }
    };
    Ok((views::status_of(&errors), content))
}

/// A chain's verification report (`…/audit/verify`), as a status line.
fn chain_status(verify: &ApiReply) -> Markup {
    html! {
        section id="audit-verification" {
            h2 { "Chain verification" }
            @if verify.ok() {
                @if verify.body["ok"] == json!(true) {
                    p { span.badge.ok id="chain-status" { "verified" } " "
                        (text(&verify.body["size"])) " entries recomputed; head " code { (text(&verify.body["head_hash"]).chars().take(16).collect::<String>()) "…" } }
                } @else {
                    p { span.badge.broken id="chain-status" { "broken" } " at sequence "
                        (text(&verify.body["first_bad_sequence"])) ": " (text(&verify.body["reason"])) }
                }
            } @else {
                p.error { "The chain could not be verified now." }
            }
        }
    }
}

/// Audit entries as a timeline table.
fn audit_entries(entries: &[Value]) -> Markup {
    html! {
        @if entries.is_empty() { p.muted id="audit-empty" { "No entries." } } @else {
            table id="audit" {
                thead { tr { th { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Targets" } th { "Outcome" } th { "Source" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (text(&e["sequence"])) }
                            td { (text(&e["occurred_at"])) }
                            td { (text(&e["actor"]["type"])) ":" (text(&e["actor"]["id"])) }
                            td { code { (text(&e["action"])) } }
                            td { @for t in e["targets"].as_array().cloned().unwrap_or_default() { span { (text(&t["type"])) " " (text(&t["id"])) } " " } }
                            td { (views::badge(&e["outcome"])) }
                            td.muted { (text(&e["request"]["ip"])) }
                        }
                    }
                }
            }
        }
    }
}

/// A bar chart of a series, drawn on the server: no script.
fn bar_chart(series: &[Value]) -> Markup {
    const W: i64 = 600;
    const H: i64 = 140;
    let values: Vec<i64> = series
        .iter()
        .map(|p| p["value"].as_i64().unwrap_or(0))
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = i64::try_from(values.len()).unwrap_or(1).max(1);
    let slot = (W / n).max(1);
    let bar = (slot - 2).max(1);
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + 16) viewBox={ "0 0 " (W) " " (H + 16) } role="img" {
            @for (i, (point, value)) in series.iter().zip(&values).enumerate() {
                @let i = i64::try_from(i).unwrap_or(0);
                @let h = (value * H / max).max(if *value > 0 { 1 } else { 0 });
                rect x=(i * slot + 1) y=(H - h) width=(bar) height=(h) {
                    title { (text(&point["period_start"])) ": " (value) }
                }
            }
            text x="2" y=(H + 12) { (series.first().map(|p| text(&p["period_start"])).unwrap_or_default().chars().take(10).collect::<String>()) }
            text x=(W - 70) y=(H + 12) { "max " (max) }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    granularity: Option<String>,
    from: Option<String>,
}

pub async fn usage(ctx: Ctx, Path(id): Path<String>, Query(query): Query<UsageQuery>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    let stats = ctx.get(&format!("/v1/tenants/{}/stats", enc(&id))).await;
    if !stats.ok() {
        return views::failed(&ctx, &stats);
    }
    let mut meters: Vec<String> = ctx
        .get("/v1/meters")
        .await
        .data()
        .iter()
        .map(|m| text(&m["name"]))
        .collect();
    if meters.is_empty()
        && let Some(month) = stats.body["month"].as_object()
    {
        meters = month.keys().cloned().collect();
    }
    let granularity = query
        .granularity
        .clone()
        .unwrap_or_else(|| "day".to_owned());
    let mut charts = Vec::new();
    let mut errors = Vec::new();
    for meter in &meters {
        let mut path = format!(
            "/v1/tenants/{}/usage?meter={}&granularity={}",
            enc(&id),
            enc(meter),
            enc(&granularity)
        );
        if let Some(from) = query.from.as_deref().filter(|f| !f.is_empty()) {
            path.push_str(&format!("&from={}", enc(from)));
        }
        let reply = ctx.get(&path).await;
        if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
            errors = views::field_errors(&reply);
            break;
        }
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        charts.push((meter.clone(), reply.body));
    }
    let content = html! {
        (errors_block(&errors))
        form.filters method="get" action={ "/console/tenants/" (enc(&id)) "/usage" } id="usage-filters" {
            label { "Granularity "
                select name="granularity" {
                    @for g in ["hour", "day", "month"] { option value=(g) selected[granularity == g] { (g) } }
                }
            }
            label { "From (RFC 3339) " input name="from" value=[query.from.as_deref()] placeholder="start of this month"; }
            button type="submit" { "Show" }
        }
        section {
            h2 { "This month" }
            (views::table("usage-month", &stats.body["month"].as_object().map(|m| m.iter().map(|(k, v)| json!({"meter": k, "value": v})).collect::<Vec<_>>()).unwrap_or_default(), &[("Meter", "meter"), ("Total", "value")]))
        }
        @for (meter, body) in &charts {
            @let series = body["series"].as_array().cloned().unwrap_or_default();
            section.meter data-meter=(meter) {
                h2 { (meter) " " span.muted { "total " (text(&body["total"])) " · " (text(&body["aggregation"])) } }
                @if series.is_empty() { p.muted { "No usage in this period." } } @else { (bar_chart(&series)) }
            }
        }
    };
    frame(
        &ctx,
        &id,
        "/usage",
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        "Usage",
        content,
    )
}

pub async fn quotas(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    let stats = ctx.get(&format!("/v1/tenants/{}/stats", enc(&id))).await;
    if !stats.ok() {
        return views::failed(&ctx, &stats);
    }
    let config = ctx.get(&format!("/v1/tenants/{}/config", enc(&id))).await;
    let rows: Vec<Value> = stats.body["quotas"]
        .as_object()
        .map(|q| {
            q.iter()
                .map(|(meter, v)| {
                    let mut row = v.clone();
                    row["meter"] = json!(meter);
                    if row["limit"].is_null() {
                        row["limit"] = json!("unlimited");
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let content = html! {
        section {
            h2 { "Quotas this month" }
            (views::table("quotas", &rows, &[("Meter", "meter"), ("Limit", "limit"), ("Used", "used"), ("Remaining", "remaining"), ("Resets", "resets_at")]))
        }
        section {
            h2 { "Quota and rate limit settings" }
            pre id="quota-config" { (pretty(&json!({"quotas": config.body["quotas"], "rate_limits": config.body["rate_limits"]}))) }
            p.muted { "Change them on the Configuration tab (operators)." }
        }
    };
    frame(&ctx, &id, "/quotas", StatusCode::OK, "Quotas", content)
}

pub async fn webhooks(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_webhooks(&ctx, &id, &[], None, None).await
}

async fn render_webhooks(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    created: Option<&Value>,
    form: Option<&super::Form>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx
        .get(&format!(
            "/v1/tenants/{}/webhook-endpoints?limit=100",
            enc(id)
        ))
        .await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let endpoints = reply.data();
    let types = ctx.get("/v1/event-types").await.data();
    let keep = |name: &str| views::kept(form, name);
    let content = html! {
        @if let Some(created) = created {
            div.secret id="new-endpoint" {
                p { strong { "Endpoint created. Its signing secret, shown only once:" } }
                p { code id="new-endpoint-secret" { (text(&created["secret"])) } }
            }
        }
        section {
            h2 { "Endpoints" }
            @if endpoints.is_empty() { p.muted id="endpoints-empty" { "No endpoints." } } @else {
                table id="endpoints" {
                    thead { tr { th { "Id" } th { "URL" } th { "Events" } th { "State" } } }
                    tbody {
                        @for e in &endpoints {
                            tr {
                                td { a href={ "/console/tenants/" (enc(id)) "/webhooks/" (enc(&text(&e["id"]))) } { (text(&e["id"])) } }
                                td { (text(&e["url"])) }
                                td { (text(&e["event_types"])) }
                                td { @if e["enabled"] == json!(true) { span.badge.active { "enabled" } } @else { span.badge.suspended { "disabled" } " " (text(&e["disabled_reason"])) } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Add an endpoint" }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/webhooks" } id="create-endpoint" {
                (csrf(ctx))
                label for="endpoint-url" { "URL (https)" }
                input #endpoint-url name="url" value=(keep("url"));
                label for="endpoint-description" { "Description" }
                input #endpoint-description name="description" value=(keep("description"));
                label { "Event types (none: all)" }
                @for t in &types {
                    @let name = text(&t["name"]);
                    label.muted { input type="checkbox" name="event_types" value=(name); " " (name) }
                }
                p { button type="submit" { "Add endpoint" } }
            }
        }
    };
    frame(
        ctx,
        id,
        "/webhooks",
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        "Webhooks",
        content,
    )
}

pub async fn create_webhook(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut body = json!({
        "url": form.get("url").unwrap_or_default(),
        "event_types": form.all("event_types"),
    });
    if let Some(d) = form.get("description") {
        body["description"] = json!(d);
    }
    let reply = ctx
        .post(
            &format!("/v1/tenants/{}/webhook-endpoints", enc(&id)),
            &body,
        )
        .await;
    if reply.ok() {
        return render_webhooks(&ctx, &id, &[], Some(&reply.body), None).await;
    }
    if matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST
    ) {
        return render_webhooks(&ctx, &id, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

/// Workflows the provisioning page reads at most (pages of 100).
const WORKFLOW_PAGES: usize = 20;

pub async fn provisioning(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    // Workflows are an operator's (they create tenants): a tenant admin
    // sees the page without them.
    let mut workflows = Vec::new();
    if ctx.is_operator() {
        let mut cursor: Option<String> = None;
        for _ in 0..WORKFLOW_PAGES {
            let path = format!(
                "/v1/provisioning?limit=100{}",
                cursor
                    .as_deref()
                    .map(|c| format!("&cursor={}", enc(c)))
                    .unwrap_or_default()
            );
            let reply = ctx.get(&path).await;
            if !reply.ok() {
                return views::failed(&ctx, &reply);
            }
            workflows.extend(
                reply
                    .data()
                    .into_iter()
                    .filter(|w| text(&w["tenant_id"]) == id),
            );
            cursor = reply.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
    }
    let content = html! {
        @if !ctx.is_operator() {
            p.muted id="provisioning-operator-only" { "Provisioning workflows are run by operators; ask yours for this tenant's onboarding progress." }
        } @else {
            @if workflows.is_empty() {
                p.muted id="provisioning-empty" { "This tenant was not onboarded through a provisioning workflow." }
            }
            p { a href="/console/provisioning" { "Start, retry or cancel workflows on the Provisioning page." } }
        }
        @for w in &workflows {
            section.workflow {
                h2 { "Workflow " code { (text(&w["id"])) } " " (views::badge(&w["status"])) }
                p.muted { "started " (text(&w["created_at"])) @if !w["next_attempt_at"].is_null() { " · next attempt " (text(&w["next_attempt_at"])) } }
                (views::table("steps", &w["steps"].as_array().cloned().unwrap_or_default(), &[("Step", "name"), ("Status", "status"), ("Attempts", "attempts"), ("Error", "error"), ("Finished", "finished_at")]))
            }
        }
    };
    frame(
        &ctx,
        &id,
        "/provisioning",
        StatusCode::OK,
        "Provisioning",
        content,
    )
}

pub async fn conversations(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    let reply = ctx
        .get(&format!("/v1/tenants/{}/conversations?limit=50", enc(&id)))
        .await;
    if !reply.ok() {
        return views::failed(&ctx, &reply);
    }
    let conversations = reply.data();
    let mut threads = Vec::new();
    for c in conversations.iter().take(10) {
        let messages = ctx
            .get(&format!(
                "/v1/tenants/{}/conversations/{}/messages?limit=20",
                enc(&id),
                enc(&text(&c["id"]))
            ))
            .await
            .data();
        threads.push((c, messages));
    }
    let content = html! {
        @if conversations.is_empty() { p.muted id="conversations-empty" { "No conversations yet." } }
        @for (c, messages) in &threads {
            section.conversation {
                h2 { (text(&c["channel"])) " · " (text(&c["contact"]["name"])) " " span.muted { (text(&c["contact"]["wa_id"])) " · last activity " (text(&c["last_activity_at"])) } }
                (views::table("messages", messages, &[("When", "created_at"), ("Direction", "direction"), ("Kind", "kind"), ("From", "from"), ("Status", "status"), ("Body", "body")]))
            }
        }
    };
    frame(
        &ctx,
        &id,
        "/conversations",
        StatusCode::OK,
        "Conversations",
        content,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
}

/// The tenant's lifecycle, key, credential, quota and provisioning events,
/// in the order they happened, a page at a time.
pub async fn events(ctx: Ctx, Path(id): Path<String>, Query(query): Query<PageQuery>) -> Response {
    if let Err(page) = load(&ctx, &id).await {
        return page;
    }
    let mut path = format!("/v1/tenants/{}/events?limit=50", enc(&id));
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        path.push_str(&format!("&cursor={}", enc(cursor)));
    }
    let reply = ctx.get(&path).await;
    let mut errors = Vec::new();
    if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
        errors = views::field_errors(&reply);
    } else if !reply.ok() {
        return views::failed(&ctx, &reply);
    }
    let events = reply.data();
    let next = reply.body["next_cursor"].as_str().map(str::to_owned);
    let content = html! {
        (errors_block(&errors))
        section {
            h2 { "Events" }
            @if events.is_empty() { p.muted id="events-empty" { "No events yet." } } @else {
                table id="events" {
                    thead { tr { th { "When" } th { "Type" } th { "Actor" } th { "Id" } th { "Data" } } }
                    tbody {
                        @for e in &events {
                            tr {
                                td { (text(&e["created_at"])) }
                                td { code { (text(&e["type"])) } }
                                td { (text(&e["actor"])) }
                                td.muted { (text(&e["id"])) }
                                td { code { (text(&e["data"])) } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p.pager { a id="next-page" href={ "/console/tenants/" (enc(&id)) "/events?cursor=" (enc(&next)) } { "Next →" } }
            }
        }
    };
    frame(
        &ctx,
        &id,
        "/events",
        views::status_of(&errors),
        "Events",
        content,
    )
}
