//! The console's page frame and the pieces its pages share. maud escapes
//! every interpolated value; nothing here writes raw HTML.

use super::{ApiReply, Ctx};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// The whole page around `content`.
pub fn page(ctx: Option<&Ctx>, title: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tenantry console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/console/" { "Tenantry" }
                    @if let Some(ctx) = ctx {
                        nav {
                            @if ctx.is_operator() {
                                a href="/console/tenants" { "Tenants" }
                                a href="/console/plans" { "Plans" }
                                a href="/console/operator-keys" { "Operator keys" }
                                a href="/console/keyring" { "Keyring" }
                                a href="/console/signing-keys" { "Signing keys" }
                            } @else if let crate::http::auth::Caller::Tenant { tenant, .. } = &ctx.caller {
                                a href={ "/console/tenants/" (tenant.id) } { "My tenant" }
                            }
                        }
                        span.who id="who" { (ctx.who()) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(ctx.csrf());
                            button.quiet type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    let mut response = markup.into_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

pub fn page_with(ctx: &Ctx, status: StatusCode, title: &str, content: Markup) -> Response {
    let mut response = page(Some(ctx), title, content);
    *response.status_mut() = status;
    response
}

pub fn error_page(ctx: Option<&Ctx>, status: StatusCode, title: &str, detail: &str) -> Response {
    let mut response = page(
        ctx,
        title,
        html! {
            section {
                h1 id="error-title" { (title) }
                p id="error-detail" { (detail) }
                p { a href="/console/" { "Back to the console" } }
            }
        },
    );
    *response.status_mut() = status;
    response
}

/// A dependency is down: `503` with `Retry-After`.
pub fn unavailable() -> Response {
    let mut response = error_page(
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The server cannot reach its database right now. Try again shortly.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The page for an API answer that is not a success and is not shown as a
/// form's errors: 404 stays 404 (a foreign tenant is not found), 403 says
/// what is missing, an outage is 503.
pub fn failed(ctx: &Ctx, reply: &ApiReply) -> Response {
    match reply.status {
        StatusCode::NOT_FOUND => error_page(
            Some(ctx),
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page.",
        ),
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => error_page(
            Some(ctx),
            StatusCode::FORBIDDEN,
            "Not allowed",
            reply.body["detail"]
                .as_str()
                .unwrap_or("This needs other permissions."),
        ),
        status if status.is_server_error() => {
            let mut response = unavailable();
            if let Some(retry) = reply.headers.get(header::RETRY_AFTER) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry.clone());
            }
            response
        }
        status => error_page(
            Some(ctx),
            status,
            "Request refused",
            reply.body["detail"]
                .as_str()
                .unwrap_or("The request was refused."),
        ),
    }
}

/// A problem's errors by field: `(field, message)`.
pub fn field_errors(reply: &ApiReply) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = reply.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["detail"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        errors.push((
            reply.body["field"].as_str().unwrap_or_default().to_owned(),
            reply.body["detail"]
                .as_str()
                .unwrap_or("the request was refused")
                .to_owned(),
        ));
    }
    errors
}

/// A form's error list, each naming its field.
pub fn errors_block(errors: &[(String, String)]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.card.error role="alert" id="form-errors" {
                strong { "Please correct:" }
                ul {
                    @for (field, detail) in errors {
                        li.field-error data-field=(field) {
                            @if !field.is_empty() { code { (field) } ": " }
                            (detail)
                        }
                    }
                }
            }
        }
    }
}

pub fn notice(text: &str) -> Markup {
    html! { div.notice role="status" id="notice" { (text) } }
}

/// A scalar as text; objects and arrays as compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

pub fn badge(value: &Value) -> Markup {
    let t = text(value);
    html! { span class={ "badge " (t) } { (t) } }
}

/// A table of `rows` with the given `(heading, field)` columns.
pub fn table(id: &str, rows: &[Value], columns: &[(&str, &str)]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted id={ (id) "-empty" } { "None yet." }
        } @else {
            table id=(id) {
                thead { tr { @for (heading, _) in columns { th { (heading) } } } }
                tbody {
                    @for row in rows {
                        tr {
                            @for (_, field) in columns {
                                td {
                                    @if *field == "status" || *field == "outcome" { (badge(&row[*field])) }
                                    @else { (text(&row[*field])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The hidden CSRF field every form carries.
pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf()); }
}

/// Percent-encodes one path segment or query value.
pub fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The tabs of a tenant's pages.
pub fn tenant_tabs(tenant: &str, current: &str) -> Markup {
    const TABS: &[(&str, &str)] = &[
        ("", "Overview"),
        ("/keys", "API keys"),
        ("/config", "Configuration"),
        ("/credentials", "Credentials"),
        ("/audit", "Audit"),
        ("/usage", "Usage"),
        ("/quotas", "Quotas"),
        ("/webhooks", "Webhooks"),
        ("/provisioning", "Provisioning"),
        ("/conversations", "Conversations"),
    ];
    html! {
        h1 { "Tenant " code id="tenant-id" { (tenant) } }
        nav.tabs {
            @for (path, label) in TABS {
                a class=@if *path == current { "current" } href={ "/console/tenants/" (enc(tenant)) (path) } { (label) }
            }
        }
    }
}
