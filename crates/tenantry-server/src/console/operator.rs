//! Operator pages: plans (with an editor), operator keys (create, shown
//! once; revoke), keyring status (and KEK rotation), signing keys (access
//! tokens and audit checkpoints, each with rotation), meters (list,
//! define), the operator audit chain (with its verification). A tenant
//! admin's session does not see them (404).

use super::views::{self, csrf, enc, errors_block, notice, pretty, status_of, text};
use super::{ApiReply, Ctx, Posted};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

fn not_for_tenants(ctx: &Ctx) -> Option<Response> {
    views::operators_only(ctx)
}

/// Operator forms show invalid input and conflicts on the form.
fn is_form_error(reply: &ApiReply) -> bool {
    matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST
    )
}

pub async fn plans(ctx: Ctx) -> Response {
    render_plans(&ctx, &[], None, None).await
}

async fn render_plans(
    ctx: &Ctx,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&super::Form>,
) -> Response {
    if let Some(page) = not_for_tenants(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/plans").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let plans = reply.data();
    let example = plans
        .first()
        .map(|p| {
            let mut p = p.clone();
            if let Some(o) = p.as_object_mut() {
                o.remove("name");
                o.remove("updated_at");
            }
            pretty(&p)
        })
        .unwrap_or_else(|| "{}".to_owned());
    let keep = |name: &str| form.and_then(|f| f.get(name)).map(str::to_owned);
    let content = html! {
        h1 { "Plans" }
        @if let Some(message) = message { (notice(message)) }
        table id="plans" {
            thead { tr { th { "Plan" } th { "Description" } th { "Quotas" } th { "Rate limits" } th { "Features" } th { "Updated" } } }
            tbody {
                @for p in &plans {
                    tr {
                        td { strong { (text(&p["name"])) } }
                        td { (text(&p["description"])) }
                        td { code { (text(&p["quotas"])) } }
                        td { code { (text(&p["rate_limits"])) } }
                        td { code { (text(&p["features"])) } }
                        td { (text(&p["updated_at"])) }
                    }
                }
            }
        }
        section {
            h2 { "Create or replace a plan" }
            p.muted { "The definition applies at once to every tenant on the plan." }
            (errors_block(errors))
            form.stack method="post" action="/console/plans" id="plan-form" {
                (csrf(ctx))
                label for="plan-name" { "Name" }
                input #plan-name name="name" value=[keep("name")];
                label for="plan-definition" { "Definition (JSON)" }
                textarea #plan-definition name="definition" { (keep("definition").unwrap_or(example)) }
                p { button type="submit" { "Save plan" } }
            }
        }
    };
    views::page_with(ctx, status_of(errors), "Plans", content)
}

pub async fn put_plan(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let Some(name) = form.get("name") else {
        let errors = vec![("name".to_owned(), "is required".to_owned())];
        return render_plans(&ctx, &errors, None, Some(&form)).await;
    };
    let definition: Value = match serde_json::from_str(form.get("definition").unwrap_or("{}")) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let errors = vec![("definition".to_owned(), "must be a JSON object".to_owned())];
            return render_plans(&ctx, &errors, None, Some(&form)).await;
        }
    };
    let reply = ctx
        .api(
            Method::PUT,
            &format!("/v1/plans/{}", enc(name)),
            Some(&definition),
        )
        .await;
    if reply.ok() {
        return render_plans(&ctx, &[], Some(&format!("Plan {name} saved.")), None).await;
    }
    if is_form_error(&reply) {
        return render_plans(&ctx, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn operator_keys(ctx: Ctx) -> Response {
    render_operator_keys(&ctx, &[], None, None).await
}

async fn render_operator_keys(
    ctx: &Ctx,
    errors: &[(String, String)],
    created: Option<&Value>,
    message: Option<&str>,
) -> Response {
    if let Some(page) = not_for_tenants(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/operator-keys").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let keys = reply.data();
    let content = html! {
        h1 { "Operator keys" }
        @if let Some(message) = message { (notice(message)) }
        @if let Some(created) = created {
            div.secret id="new-key" {
                p { strong { "Copy this key now: it is shown only once." } }
                p { code id="new-key-value" { (text(&created["key"])) } }
            }
        }
        @if keys.is_empty() { p.muted { "No operator keys." } } @else {
            table id="operator-keys" {
                thead { tr { th { "Id" } th { "Name" } th { "Start" } th { "Env" } th { "State" } th { "Last used" } th {} } }
                tbody {
                    @for k in &keys {
                        @let revoked = !k["revoked_at"].is_null();
                        tr {
                            td { code { (text(&k["id"])) } }
                            td { (text(&k["name"])) }
                            td { code { (text(&k["start"])) "…" } }
                            td { (text(&k["environment"])) }
                            td { @if revoked { span.badge.revoked { "revoked" } } @else { span.badge.active { "active" } } }
                            td { (text(&k["last_used_at"])) }
                            td {
                                @if !revoked {
                                    form.inline method="post" action={ "/console/operator-keys/" (enc(&text(&k["id"]))) "/revoke" } {
                                        (csrf(ctx))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Create an operator key" }
            (errors_block(errors))
            form.stack method="post" action="/console/operator-keys" id="create-operator-key" {
                (csrf(ctx))
                label for="op-key-name" { "Name" }
                input #op-key-name name="name";
                label for="op-key-env" { "Environment" }
                select #op-key-env name="environment" { option value="live" { "live" } option value="test" { "test" } }
                p { button type="submit" { "Create key" } }
            }
        }
    };
    views::page_with(ctx, status_of(errors), "Operator keys", content)
}

pub async fn create_operator_key(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let body = json!({
        "name": form.get("name").unwrap_or_default(),
        "environment": form.get("environment").unwrap_or("live"),
    });
    let reply = ctx.post("/v1/operator-keys", &body).await;
    if reply.ok() {
        return render_operator_keys(&ctx, &[], Some(&reply.body), None).await;
    }
    if is_form_error(&reply) {
        return render_operator_keys(&ctx, &views::field_errors(&reply), None, None).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn revoke_operator_key(Path(key_id): Path<String>, posted: Posted) -> Response {
    let ctx = posted.ctx;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let reply = ctx
        .post(
            &format!("/v1/operator-keys/{}/revoke", enc(&key_id)),
            &json!({}),
        )
        .await;
    if reply.ok() {
        return render_operator_keys(&ctx, &[], None, Some("Key revoked.")).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn keyring(ctx: Ctx) -> Response {
    render_keyring(&ctx, None, &[]).await
}

async fn render_keyring(ctx: &Ctx, message: Option<&str>, errors: &[(String, String)]) -> Response {
    if let Some(page) = not_for_tenants(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/operator/keyring").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let status = &reply.body;
    let content = html! {
        h1 { "Keyring" }
        @if let Some(message) = message { (notice(message)) }
        (errors_block(errors))
        section {
            dl.facts id="keyring-status" {
                dt { "Active key-encryption key" } dd id="active-kek" { code { (text(&status["active_kek"])) } }
                dt { "Data keys awaiting rewrap" } dd id="rewrap-pending" { (text(&status["rewrap_pending"])) }
                dt { "Keyring file writable" } dd { (text(&status["writable"])) }
            }
        }
        section {
            h2 { "Key-encryption keys" }
            (views::table("keks", &status["keks"].as_array().cloned().unwrap_or_default(), &[("Id", "id"), ("Active", "active"), ("Data keys", "data_keys"), ("Status", "status")]))
        }
        section {
            h2 { "Rotate" }
            p.muted { "Activates a new key-encryption key; data keys are rewrapped in the background with no failed reads." }
            form method="post" action="/console/keyring" id="rotate-keyring" {
                (csrf(ctx))
                button.danger type="submit" { "Rotate the key-encryption key" }
            }
        }
    };
    views::page_with(ctx, status_of(errors), "Keyring", content)
}

pub async fn rotate_keyring(posted: Posted) -> Response {
    let ctx = posted.ctx;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let reply = ctx.post("/v1/operator/keyring/rotate", &json!({})).await;
    if reply.ok() {
        return render_keyring(
            &ctx,
            Some("New key-encryption key active; rewrapping in the background."),
            &[],
        )
        .await;
    }
    if reply.status == StatusCode::CONFLICT {
        return render_keyring(&ctx, None, &views::field_errors(&reply)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn signing_keys(ctx: Ctx) -> Response {
    render_signing_keys(&ctx, None).await
}

async fn render_signing_keys(ctx: &Ctx, message: Option<&str>) -> Response {
    if let Some(page) = not_for_tenants(ctx) {
        return page;
    }
    let jwks = ctx.get("/.well-known/jwks.json").await;
    let audit = ctx.get("/v1/audit/keys").await;
    if !jwks.ok() {
        return views::failed(ctx, &jwks);
    }
    if !audit.ok() {
        return views::failed(ctx, &audit);
    }
    let content = html! {
        h1 { "Signing keys" }
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Access tokens (JWKS)" }
            (views::table("token-keys", &jwks.body["keys"].as_array().cloned().unwrap_or_default(), &[("Key id", "kid"), ("Type", "kty"), ("Curve", "crv"), ("Algorithm", "alg"), ("Public key", "x")]))
            form method="post" action="/console/signing-keys" id="rotate-token-key" {
                (csrf(ctx))
                input type="hidden" name="which" value="tokens";
                button.danger type="submit" { "Rotate the token signing key" }
            }
        }
        section {
            h2 { "Audit checkpoints" }
            (views::table("audit-keys", &audit.body.as_array().cloned().unwrap_or_default(), &[("Key id", "key_id"), ("Algorithm", "algorithm"), ("Public key", "public_key"), ("Created", "created_at"), ("Retired", "retired_at")]))
            form method="post" action="/console/signing-keys" id="rotate-audit-key" {
                (csrf(ctx))
                input type="hidden" name="which" value="audit";
                button.danger type="submit" { "Rotate the audit signing key" }
            }
        }
    };
    views::page_with(ctx, StatusCode::OK, "Signing keys", content)
}

pub async fn rotate_signing_key(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let (path, what) = match form.get("which") {
        Some("tokens") => ("/v1/operator/signing-keys/rotate", "token"),
        Some("audit") => ("/v1/operator/audit/signing-keys/rotate", "audit"),
        _ => {
            return views::error_page(
                Some(&ctx),
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid form",
                "which: must be tokens or audit",
            );
        }
    };
    let reply = ctx.post(path, &json!({})).await;
    if reply.ok() {
        return render_signing_keys(&ctx, Some(&format!("The {what} signing key was rotated.")))
            .await;
    }
    views::failed(&ctx, &reply)
}

// ---- Meters ----

pub async fn meters(ctx: Ctx) -> Response {
    render_meters(&ctx, &[], None, None).await
}

async fn render_meters(
    ctx: &Ctx,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&super::Form>,
) -> Response {
    if let Some(page) = not_for_tenants(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/meters").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let kept = |name: &str| views::kept(form, name);
    let content = html! {
        h1 { "Meters" }
        @if let Some(message) = message { (notice(message)) }
        (views::table("meters", &reply.data(), &[("Meter", "name"), ("Aggregation", "aggregation"), ("Built in", "builtin"), ("Description", "description")]))
        section {
            h2 { "Define a custom meter" }
            (errors_block(errors))
            form.stack method="post" action="/console/meters" id="create-meter" {
                (csrf(ctx))
                label for="meter-name" { "Name" }
                input #meter-name name="name" value=(kept("name")) placeholder="documents_processed";
                label for="meter-aggregation" { "Aggregation" }
                select #meter-aggregation name="aggregation" {
                    @for a in ["sum", "last", "distinct"] { option value=(a) selected[kept("aggregation") == a] { (a) } }
                }
                label for="meter-description" { "Description" }
                input #meter-description name="description" value=(kept("description"));
                p { button type="submit" { "Define meter" } }
            }
        }
    };
    views::page_with(ctx, status_of(errors), "Meters", content)
}

pub async fn create_meter(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    let mut body = json!({ "name": form.get("name").unwrap_or_default() });
    for field in ["aggregation", "description"] {
        if let Some(v) = form.get(field) {
            body[field] = json!(v);
        }
    }
    let reply = ctx.post("/v1/meters", &body).await;
    if reply.ok() {
        let message = format!("Meter {} defined.", text(&reply.body["name"]));
        return render_meters(&ctx, &[], Some(&message), None).await;
    }
    if is_form_error(&reply) {
        return render_meters(&ctx, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

// ---- The operator audit chain ----

/// The operators' own audit chain (changes to plans, operator keys, the
/// keyring, identity providers…), with its verification.
pub async fn audit(ctx: Ctx, Query(query): Query<super::tenant_activity::AuditQuery>) -> Response {
    if let Some(page) = not_for_tenants(&ctx) {
        return page;
    }
    match super::tenant_activity::audit_timeline(
        &ctx,
        "/v1/operator/audit",
        "/console/audit",
        &query,
    )
    .await
    {
        Ok((status, content)) => views::page_with(
            &ctx,
            status,
            "Operator audit",
            html! { h1 { "Operator audit" } (content) },
        ),
        Err(page) => page,
    }
}
