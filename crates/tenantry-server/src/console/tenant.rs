//! A tenant's own pages: overview (details, status actions with
//! confirmation, custom domains with their DNS instructions), API keys
//! (create, shown once; revoke; rotate), the configuration editor, and
//! credentials (masked, with an audited reveal).

use super::views::{self, csrf, enc, errors_block, is_form_error, notice, pretty, status_of, text};
use super::{ApiReply, Ctx, Posted};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use tenantry_core::keys::Scope;

/// The tenant itself, read first on every tenant page: a tenant the caller
/// may not see answers the 404 page before anything else is read.
pub async fn load(ctx: &Ctx, id: &str) -> Result<Value, Response> {
    let reply = ctx.get(&format!("/v1/tenants/{}", enc(id))).await;
    if reply.ok() {
        Ok(reply.body)
    } else {
        Err(views::failed(ctx, &reply))
    }
}

/// A tenant page: the tabs, then `content`.
pub fn frame(
    ctx: &Ctx,
    id: &str,
    current: &str,
    status: StatusCode,
    title: &str,
    content: Markup,
) -> Response {
    views::page_with(
        ctx,
        status,
        &format!("{title} · {id}"),
        html! { (views::tenant_tabs(id, current)) (content) },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    created: Option<String>,
    done: Option<String>,
}

pub async fn overview(ctx: Ctx, Path(id): Path<String>, Query(flash): Query<Flash>) -> Response {
    let message = match (flash.created.as_deref(), flash.done.as_deref()) {
        (Some(_), _) => Some("Tenant created.".to_owned()),
        (_, Some(done)) => Some(format!("Done: {done}.")),
        _ => None,
    };
    render_overview(&ctx, &id, &[], message.as_deref(), None).await
}

async fn render_overview(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    message: Option<&str>,
    confirm: Option<&str>,
) -> Response {
    let tenant = match load(ctx, id).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let domains = ctx
        .get(&format!("/v1/tenants/{}/domains", enc(id)))
        .await
        .data();
    let plans = if ctx.is_operator() {
        ctx.get("/v1/plans").await.data()
    } else {
        Vec::new()
    };
    let status = text(&tenant["status"]);
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        (errors_block(errors))
        section {
            h2 { "Details" }
            dl.facts id="tenant-details" {
                dt { "Name" } dd id="tenant-name" { (text(&tenant["name"])) }
                dt { "Status" } dd id="tenant-status" { (views::badge(&tenant["status"])) }
                dt { "Plan" } dd id="tenant-plan" { (text(&tenant["plan"])) }
                dt { "Subdomain" } dd { (text(&tenant["subdomain"])) }
                dt { "Region" } dd { (text(&tenant["region"])) }
                dt { "Created" } dd { (text(&tenant["created_at"])) }
                @if !tenant["deleted_at"].is_null() { dt { "Deleted" } dd { (text(&tenant["deleted_at"])) } }
                dt { "Metadata" } dd { code { (text(&tenant["metadata"])) } }
            }
        }
        @if ctx.is_operator() {
            section {
                h2 { "Edit" }
                form.stack method="post" action={ "/console/tenants/" (enc(id)) } id="edit-tenant" {
                    (csrf(ctx))
                    label for="edit-name" { "Name" }
                    input #edit-name name="name" value=(text(&tenant["name"]));
                    label for="edit-plan" { "Plan" }
                    select #edit-plan name="plan" {
                        @for plan in &plans {
                            @let name = text(&plan["name"]);
                            option value=(name) selected[name == text(&tenant["plan"])] { (name) }
                        }
                    }
                    label for="edit-subdomain" { "Subdomain" }
                    input #edit-subdomain name="subdomain" value=(text(&tenant["subdomain"]));
                    p { button type="submit" { "Save" } }
                }
            }
            section {
                h2 { "Status" }
                @if let Some(action) = confirm {
                    div.secret id="confirm" {
                        p { "Really " strong { (action) } " tenant " code { (id) } "?"
                            @if action == "delete" { " Its data is purged after the grace period." } }
                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/status" } {
                            (csrf(ctx))
                            input type="hidden" name="action" value=(action);
                            input type="hidden" name="confirm" value="yes";
                            button.danger type="submit" id="confirm-action" { "Yes, " (action) }
                        }
                        " "
                        a href={ "/console/tenants/" (enc(id)) } { "Cancel" }
                    }
                } @else {
                    @for action in actions_for(&status) {
                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/status" } {
                            (csrf(ctx))
                            input type="hidden" name="action" value=(action);
                            button.danger[*action != "reactivate"] type="submit" id={ "action-" (action) } { (action) }
                        }
                        " "
                    }
                }
            }
        }
        section {
            h2 { "Custom domains" }
            p.muted { "A domain resolves to this tenant only once its ownership is verified: create the DNS TXT record shown, then verify." }
            @if domains.is_empty() {
                p.muted id="domains-empty" { "No custom domains." }
            } @else {
                table id="domains" {
                    thead { tr { th { "Domain" } th { "Status" } th { "DNS record to create" } th {} } }
                    tbody {
                        @for d in &domains {
                            tr {
                                td { (text(&d["domain"])) }
                                td { (views::badge(&d["status"])) }
                                td.instructions {
                                    @if text(&d["status"]) != "verified" {
                                        code { (text(&d["dns_record"]["type"])) " " (text(&d["dns_record"]["name"])) " \"" (text(&d["dns_record"]["value"])) "\"" }
                                    } @else { span.muted { "verified " (text(&d["verified_at"])) } }
                                }
                                td {
                                    @if text(&d["status"]) != "verified" {
                                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/domains/verify" } {
                                            (csrf(ctx))
                                            input type="hidden" name="domain" value=(text(&d["domain"]));
                                            button type="submit" { "Verify now" }
                                        }
                                        " "
                                    }
                                    form.inline.remove-domain method="post" action={ "/console/tenants/" (enc(id)) "/domains/remove" } {
                                        (csrf(ctx))
                                        input type="hidden" name="domain" value=(text(&d["domain"]));
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.filters method="post" action={ "/console/tenants/" (enc(id)) "/domains" } id="add-domain" {
                (csrf(ctx))
                label { "Domain " input name="domain" placeholder="support.example.com"; }
                button type="submit" { "Add domain" }
            }
        }
    };
    let code = if confirm.is_some() {
        StatusCode::OK
    } else {
        status_of(errors)
    };
    frame(ctx, id, "", code, "Overview", content)
}

fn actions_for(status: &str) -> &'static [&'static str] {
    match status {
        "active" => &["suspend", "delete"],
        "suspended" => &["reactivate", "delete"],
        "deleted" => &["reactivate"],
        _ => &["delete"],
    }
}

pub async fn update(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut patch = json!({});
    for field in ["name", "plan", "subdomain"] {
        if let Some(v) = form.get(field) {
            patch[field] = json!(v);
        }
    }
    let reply = ctx
        .api(
            Method::PATCH,
            &format!("/v1/tenants/{}", enc(&id)),
            Some(&patch),
        )
        .await;
    done(&ctx, &id, reply, "saved").await
}

/// After a change on the overview: back to it, or the form's errors.
async fn done(ctx: &Ctx, id: &str, reply: ApiReply, what: &str) -> Response {
    if reply.ok() {
        return Redirect::to(&format!("/console/tenants/{}?done={}", enc(id), enc(what)))
            .into_response();
    }
    if is_form_error(&reply) {
        return render_overview(ctx, id, &views::field_errors(&reply), None, None).await;
    }
    views::failed(ctx, &reply)
}

pub async fn status(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let action = form.get("action").unwrap_or_default();
    if !matches!(action, "suspend" | "reactivate" | "delete") {
        let errors = vec![(
            "action".to_owned(),
            "must be suspend, reactivate or delete".to_owned(),
        )];
        return render_overview(&ctx, &id, &errors, None, None).await;
    }
    if form.get("confirm") != Some("yes") {
        return render_overview(&ctx, &id, &[], None, Some(action)).await;
    }
    let path = format!("/v1/tenants/{}", enc(&id));
    let reply = match action {
        "delete" => ctx.api(Method::DELETE, &path, None).await,
        other => ctx.post(&format!("{path}/{other}"), &json!({})).await,
    };
    done(&ctx, &id, reply, action).await
}

pub async fn add_domain(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let body = json!({ "domain": form.get("domain").unwrap_or_default() });
    let reply = ctx
        .post(&format!("/v1/tenants/{}/domains", enc(&id)), &body)
        .await;
    done(&ctx, &id, reply, "domain added").await
}

/// Removes a custom domain, after a confirmation: the domain stops
/// resolving to the tenant at once.
pub async fn remove_domain(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let domain = form.get("domain").unwrap_or_default();
    if !views::confirmed(&form) {
        if let Err(page) = load(&ctx, &id).await {
            return page;
        }
        return views::confirm_page(
            &ctx,
            html! { "Really remove the custom domain " code { (domain) } " of tenant " code { (id) } "? It stops resolving to the tenant." },
            &format!("/console/tenants/{}/domains/remove", enc(&id)),
            &[("domain", domain)],
            &format!("/console/tenants/{}", enc(&id)),
        );
    }
    let reply = ctx
        .api(
            Method::DELETE,
            &format!("/v1/tenants/{}/domains/{}", enc(&id), enc(domain)),
            None,
        )
        .await;
    done(&ctx, &id, reply, "domain removed").await
}

pub async fn verify_domain(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let domain = form.get("domain").unwrap_or_default();
    let reply = ctx
        .post(
            &format!("/v1/tenants/{}/domains/{}/verify", enc(&id), enc(domain)),
            &json!({}),
        )
        .await;
    done(&ctx, &id, reply, "domain verified").await
}

// ---- API keys ----

/// Scopes a console form offers for a tenant key.
pub const KEY_SCOPES: &[Scope] = &[
    Scope::TenantRead,
    Scope::TenantAdmin,
    Scope::KeysRead,
    Scope::KeysWrite,
    Scope::CredentialsRead,
    Scope::CredentialsWrite,
    Scope::CredentialsReveal,
    Scope::UsageRead,
    Scope::UsageWrite,
    Scope::AuditRead,
    Scope::WebhooksRead,
    Scope::WebhooksWrite,
    Scope::WidgetsIssue,
    Scope::ResolveTrusted,
];

pub async fn keys(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_keys(&ctx, &id, &[], None, None).await
}

pub async fn render_keys(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    secret: Option<&Value>,
    message: Option<&str>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx
        .get(&format!("/v1/tenants/{}/api-keys?limit=100", enc(id)))
        .await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let keys = reply.data();
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        @if let Some(new) = secret {
            div.secret id="new-key" {
                p { strong { "Copy this key now: it is shown only once." } }
                p { code id="new-key-value" { (text(&new["key"])) } }
                p.muted { "Key " (text(&new["id"])) " · " (text(&new["name"])) }
            }
        }
        (errors_block(errors))
        section {
            h2 { "Keys" }
            @if keys.is_empty() { p.muted { "No keys." } } @else {
                table id="keys" {
                    thead { tr { th { "Id" } th { "Name" } th { "Start" } th { "Scopes" } th { "Env" } th { "State" } th { "Last used" } th {} } }
                    tbody {
                        @for k in &keys {
                            @let key_id = text(&k["id"]);
                            @let revoked = !k["revoked_at"].is_null();
                            tr data-key=(key_id) {
                                td { code { (key_id) } }
                                td { (text(&k["name"])) }
                                td { code { (text(&k["start"])) "…" } }
                                td { (k["scopes"].as_array().map(|s| s.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                td { (text(&k["environment"])) }
                                td {
                                    @if revoked { span.badge.revoked { "revoked" } }
                                    @else if k["enabled"] == json!(false) { span.badge.suspended { "disabled" } }
                                    @else { span.badge.active { "active" } }
                                    @if !k["expires_at"].is_null() { " " span.muted { "expires " (text(&k["expires_at"])) } }
                                }
                                td { (text(&k["last_used_at"])) }
                                td {
                                    @if !revoked {
                                        a href={ "/console/tenants/" (enc(id)) "/keys/" (enc(&key_id)) } { "Edit" }
                                        " "
                                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/keys/" (enc(&key_id)) "/enabled" } {
                                            (csrf(ctx))
                                            @if k["enabled"] == json!(false) {
                                                input type="hidden" name="enabled" value="true";
                                                button.quiet type="submit" { "Enable" }
                                            } @else {
                                                input type="hidden" name="enabled" value="false";
                                                button.quiet type="submit" { "Disable" }
                                            }
                                        }
                                        " "
                                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/keys/" (enc(&key_id)) "/rotate" } {
                                            (csrf(ctx))
                                            input type="number" name="overlap_seconds" value="0" min="0" aria-label="overlap seconds";
                                            button.quiet type="submit" { "Rotate" }
                                        }
                                        " "
                                        form.inline method="post" action={ "/console/tenants/" (enc(id)) "/keys/" (enc(&key_id)) "/revoke" } {
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
        }
        section {
            h2 { "Create a key" }
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/keys" } id="create-key" {
                (csrf(ctx))
                label for="key-name" { "Name" }
                input #key-name name="name";
                label { "Scopes" }
                @for scope in KEY_SCOPES {
                    label.muted { input type="checkbox" name="scopes" value=(scope.to_string()); " " (scope.to_string()) }
                }
                label for="key-env" { "Environment" }
                select #key-env name="environment" { option value="live" { "live" } option value="test" { "test" } }
                label for="key-expires" { "Expires at (RFC 3339, optional)" }
                input #key-expires name="expires_at" placeholder="2027-01-01T00:00:00Z";
                p { button type="submit" { "Create key" } }
            }
        }
    };
    frame(ctx, id, "/keys", status_of(errors), "API keys", content)
}

pub async fn create_key(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut body = json!({
        "name": form.get("name").unwrap_or_default(),
        "scopes": form.all("scopes"),
        "environment": form.get("environment").unwrap_or("live"),
    });
    if let Some(expires) = form.get("expires_at") {
        match chrono::DateTime::parse_from_rfc3339(expires) {
            Ok(at) => body["expires_at"] = json!(at.with_timezone(&chrono::Utc)),
            Err(_) => {
                let errors = vec![(
                    "expires_at".to_owned(),
                    "must be an RFC 3339 time such as 2027-01-01T00:00:00Z".to_owned(),
                )];
                return render_keys(&ctx, &id, &errors, None, None).await;
            }
        }
    }
    let reply = ctx
        .post(&format!("/v1/tenants/{}/api-keys", enc(&id)), &body)
        .await;
    key_made(&ctx, &id, reply, "Key created.").await
}

async fn key_made(ctx: &Ctx, id: &str, reply: ApiReply, message: &str) -> Response {
    if reply.ok() {
        return render_keys(ctx, id, &[], Some(&reply.body), Some(message)).await;
    }
    if is_form_error(&reply) {
        return render_keys(ctx, id, &views::field_errors(&reply), None, None).await;
    }
    views::failed(ctx, &reply)
}

pub async fn rotate_key(Path((id, key_id)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let overlap = match form.get("overlap_seconds").map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            let errors = vec![(
                "overlap_seconds".to_owned(),
                "must be a whole number of seconds".to_owned(),
            )];
            return render_keys(&ctx, &id, &errors, None, None).await;
        }
    };
    let reply = ctx
        .post(
            &format!("/v1/tenants/{}/api-keys/{}/rotate", enc(&id), enc(&key_id)),
            &json!({ "overlap_seconds": overlap }),
        )
        .await;
    key_made(
        &ctx,
        &id,
        reply,
        "Key rotated: the new key copies the old one's settings.",
    )
    .await
}

pub async fn revoke_key(Path((id, key_id)): Path<(String, String)>, posted: Posted) -> Response {
    let ctx = posted.ctx;
    let reply = ctx
        .post(
            &format!("/v1/tenants/{}/api-keys/{}/revoke", enc(&id), enc(&key_id)),
            &json!({}),
        )
        .await;
    if reply.ok() {
        return render_keys(&ctx, &id, &[], None, Some("Key revoked.")).await;
    }
    if is_form_error(&reply) {
        return render_keys(&ctx, &id, &views::field_errors(&reply), None, None).await;
    }
    views::failed(&ctx, &reply)
}

// ---- Configuration ----

pub async fn config(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_config(&ctx, &id, &[], None, None).await
}

async fn render_config(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    draft: Option<&str>,
    message: Option<&str>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx.get(&format!("/v1/tenants/{}/config", enc(id))).await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let versions = ctx
        .get(&format!("/v1/tenants/{}/config/versions?limit=20", enc(id)))
        .await
        .data();
    let current = versions
        .first()
        .map(|v| v["overrides"].clone())
        .unwrap_or_else(|| json!({}));
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Edit the overrides" }
            p.muted { "A JSON merge patch of this tenant's overrides of its plan (" code { "null" } " removes one). Tenant admins may change branding and retention_policy; rate limits, quotas and features need an operator." }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/config" } id="config-form" {
                (csrf(ctx))
                label for="config-patch" { "Patch" }
                textarea #config-patch name="patch" { (draft.map(str::to_owned).unwrap_or_else(|| pretty(&current))) }
                p { button type="submit" { "Apply" } }
            }
        }
        section {
            h2 { "Effective configuration" }
            pre id="effective-config" { (pretty(&reply.body)) }
        }
        section {
            h2 { "Versions" }
            (views::table("config-versions", &versions, &[("Version", "version"), ("Actor", "actor"), ("At", "created_at"), ("Overrides", "overrides")]))
        }
    };
    frame(
        ctx,
        id,
        "/config",
        status_of(errors),
        "Configuration",
        content,
    )
}

pub async fn patch_config(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let draft = form.get("patch").unwrap_or("{}");
    let patch: Value = match serde_json::from_str(draft) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let errors = vec![("patch".to_owned(), "must be a JSON object".to_owned())];
            return render_config(&ctx, &id, &errors, Some(draft), None).await;
        }
    };
    let reply = ctx
        .api(
            Method::PATCH,
            &format!("/v1/tenants/{}/config", enc(&id)),
            Some(&patch),
        )
        .await;
    if reply.ok() {
        return render_config(&ctx, &id, &[], None, Some("Configuration saved.")).await;
    }
    if is_form_error(&reply) {
        return render_config(&ctx, &id, &views::field_errors(&reply), Some(draft), None).await;
    }
    views::failed(&ctx, &reply)
}

// ---- Credentials ----

pub async fn credentials(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_credentials(&ctx, &id, &[], None, None, None).await
}

pub async fn render_credentials(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    revealed: Option<&Value>,
    message: Option<&str>,
    form: Option<&super::Form>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx
        .get(&format!("/v1/tenants/{}/credentials", enc(id)))
        .await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let credentials = reply.data();
    let keep = |name: &str| views::kept(form, name);
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        @if let Some(revealed) = revealed {
            div.secret id="revealed" {
                p { strong { "Plaintext of " (text(&revealed["name"])) } " — this reveal is recorded in the tenant's audit log." }
                pre id="revealed-data" { (pretty(&revealed["data"])) }
            }
        }
        section {
            h2 { "Credentials" }
            @if credentials.is_empty() { p.muted id="credentials-empty" { "No credentials." } } @else {
                table id="credentials" {
                    thead { tr { th { "Id" } th { "Kind" } th { "Name" } th { "Fields (secrets masked)" } th { "Last revealed" } th {} } }
                    tbody {
                        @for c in &credentials {
                            @let cred_id = text(&c["id"]);
                            tr {
                                td { a href={ "/console/tenants/" (enc(id)) "/credentials/" (enc(&cred_id)) } { code { (cred_id) } } }
                                td { (text(&c["kind"])) }
                                td { (text(&c["name"])) }
                                td { code.masked { (text(&c["data"])) } }
                                td { (text(&c["last_revealed_at"])) }
                                td {
                                    form.inline method="post" action={ "/console/tenants/" (enc(id)) "/credentials/" (enc(&cred_id)) "/reveal" } {
                                        (csrf(ctx))
                                        button.quiet type="submit" { "Reveal" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if ctx.is_operator() {
            section {
                h2 { "Data key" }
                p.muted { "Gives the tenant a new data key and re-encrypts its credentials and settings with it (operators)." }
                form method="post" action={ "/console/tenants/" (enc(id)) "/data-key/rotate" } id="rotate-data-key" {
                    (csrf(ctx))
                    button.danger type="submit" { "Rotate the tenant's data key" }
                }
            }
        }
        section {
            h2 { "Add a credential" }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/credentials" } id="create-credential" {
                (csrf(ctx))
                label for="cred-kind" { "Kind" }
                select #cred-kind name="kind" {
                    @for kind in ["generic", "whatsapp", "genesys", "smtp", "oauth_client"] {
                        option value=(kind) selected[keep("kind") == kind] { (kind) }
                    }
                }
                label for="cred-name" { "Name" }
                input #cred-name name="name" value=(keep("name"));
                label for="cred-data" { "Fields (JSON object; secret fields are sealed)" }
                textarea #cred-data name="data" { (keep("data")) }
                p { button type="submit" { "Save credential" } }
            }
        }
    };
    frame(
        ctx,
        id,
        "/credentials",
        status_of(errors),
        "Credentials",
        content,
    )
}

pub async fn create_credential(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let data: Value = match serde_json::from_str(form.get("data").unwrap_or("{}")) {
        Ok(v) => v,
        Err(_) => {
            let errors = vec![("data".to_owned(), "must be a JSON object".to_owned())];
            return render_credentials(&ctx, &id, &errors, None, None, Some(&form)).await;
        }
    };
    let body = json!({
        "kind": form.get("kind").unwrap_or_default(),
        "name": form.get("name").unwrap_or_default(),
        "data": data,
    });
    let reply = ctx
        .post(&format!("/v1/tenants/{}/credentials", enc(&id)), &body)
        .await;
    if reply.ok() {
        return render_credentials(
            &ctx,
            &id,
            &[],
            None,
            Some("Credential saved; its secret fields are sealed."),
            None,
        )
        .await;
    }
    if is_form_error(&reply) {
        return render_credentials(
            &ctx,
            &id,
            &views::field_errors(&reply),
            None,
            None,
            Some(&form),
        )
        .await;
    }
    views::failed(&ctx, &reply)
}

pub async fn reveal_credential(
    Path((id, cred_id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let ctx = posted.ctx;
    let reply = ctx
        .api(
            Method::POST,
            &format!(
                "/v1/tenants/{}/credentials/{}/reveal",
                enc(&id),
                enc(&cred_id)
            ),
            None,
        )
        .await;
    if reply.ok() {
        return render_credentials(&ctx, &id, &[], Some(&reply.body), None, None).await;
    }
    if is_form_error(&reply) {
        return render_credentials(&ctx, &id, &views::field_errors(&reply), None, None, None).await;
    }
    views::failed(&ctx, &reply)
}
