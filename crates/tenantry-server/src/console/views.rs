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
                                a href="/console/provisioning" { "Provisioning" }
                                a href="/console/meters" { "Meters" }
                                a href="/console/identity-providers" { "Identity providers" }
                                a href="/console/audit" { "Audit" }
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
        ("/settings", "Settings"),
        ("/members", "Members"),
        ("/widgets", "Widgets"),
        ("/audit", "Audit"),
        ("/events", "Events"),
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

/// `422` when a form comes back with errors, else `200`.
pub fn status_of(errors: &[(String, String)]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// Whether a refused form is shown again with its errors (rather than as an
/// error page): invalid input, a conflict, or a change this caller may not
/// make. A foreign tenant stays a 404 page.
pub fn is_form_error(reply: &ApiReply) -> bool {
    matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::CONFLICT
            | StatusCode::BAD_REQUEST
            | StatusCode::FORBIDDEN
    )
}

/// The page for an operator-only route reached by a tenant admin: the same
/// `404` as any page that does not exist.
pub fn operators_only(ctx: &Ctx) -> Option<Response> {
    (!ctx.is_operator()).then(|| {
        error_page(
            Some(ctx),
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page.",
        )
    })
}

/// Whether a destructive form was confirmed (`confirm=yes`, sent only by
/// the confirmation step's button).
pub fn confirmed(form: &super::Form) -> bool {
    form.get("confirm") == Some("yes")
}

/// The confirmation step of a destructive action: the question, and the
/// same form again (its `fields` as hidden inputs) with `confirm=yes`.
pub fn confirm_page(
    ctx: &Ctx,
    question: Markup,
    action: &str,
    fields: &[(&str, &str)],
    cancel: &str,
) -> Response {
    page_with(
        ctx,
        StatusCode::OK,
        "Confirm",
        html! {
            section {
                div.secret id="confirm" {
                    p { (question) }
                    form.inline method="post" action=(action) {
                        (csrf(ctx))
                        @for (name, value) in fields {
                            input type="hidden" name=(name) value=(value);
                        }
                        input type="hidden" name="confirm" value="yes";
                        button.danger type="submit" id="confirm-action" { "Yes, do it" }
                    }
                    " "
                    a href=(cancel) id="confirm-cancel" { "Cancel" }
                }
            }
        },
    )
}

/// A form field's value to show again after a refused submit.
pub fn kept(form: Option<&super::Form>, name: &str) -> String {
    form.and_then(|f| f.get(name))
        .unwrap_or_default()
        .to_owned()
}

/// Parses an optional RFC 3339 field; `Err` names the field for the form.
pub fn rfc3339(
    form: &super::Form,
    field: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, (String, String)> {
    match form.get(field) {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|at| Some(at.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                (
                    field.to_owned(),
                    "must be an RFC 3339 time such as 2027-01-01T00:00:00Z".to_owned(),
                )
            }),
    }
}

/// Parses a JSON-object field; `Err` names the field for the form.
pub fn json_object(form: &super::Form, field: &str) -> Result<Value, (String, String)> {
    match serde_json::from_str(form.get(field).unwrap_or("{}")) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err((field.to_owned(), "must be a JSON object".to_owned())),
    }
}

/// A `true`/`false` field; `Err` names the field for the form.
pub fn bool_field(form: &super::Form, field: &str) -> Result<bool, (String, String)> {
    match form.get(field) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err((field.to_owned(), "must be true or false".to_owned())),
    }
}

/// A list of strings as `a, b, c`.
pub fn joined(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}
