//! People: a tenant's members (add, change roles, remove behind a
//! confirmation) and, for operators, the identity providers whose users
//! they are (register, replace, remove behind a confirmation).

use super::tenant::{frame, load};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, pretty, status_of, text};
use super::{Ctx, Form, Posted};
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

// ---- Members of a tenant ----

pub async fn members(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_members(&ctx, &id, &[], None, None).await
}

async fn render_members(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&Form>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx
        .get(&format!("/v1/tenants/{}/members?limit=100", enc(id)))
        .await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let members = reply.data();
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Members" }
            p.muted { "Users of a trusted identity provider who may act on this tenant, with their roles." }
            @if members.is_empty() { p.muted id="members-empty" { "No members." } } @else {
                table id="members" {
                    thead { tr { th { "Subject" } th { "Roles" } th { "Metadata" } th { "Updated" } th {} } }
                    tbody {
                        @for m in &members {
                            @let subject = text(&m["subject"]);
                            tr data-subject=(subject) {
                                td { code { (subject) } }
                                td { (views::joined(&m["roles"])) }
                                td { code { (text(&m["metadata"])) } }
                                td { (text(&m["updated_at"])) }
                                td {
                                    form.inline method="post" action={ "/console/tenants/" (enc(id)) "/members/remove" } {
                                        (csrf(ctx))
                                        input type="hidden" name="subject" value=(subject);
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Add a member or change their roles" }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/members" } id="put-member" {
                (csrf(ctx))
                label for="member-subject" { "Subject (" code { "idp_…:user-id" } ")" }
                input #member-subject name="subject" value=(views::kept(form, "subject"));
                label for="member-roles" { "Roles (comma-separated: admin, member or a custom role)" }
                input #member-roles name="roles" value=(views::kept(form, "roles"));
                p { button type="submit" { "Save member" } }
            }
        }
    };
    frame(ctx, id, "/members", status_of(errors), "Members", content)
}

fn member_path(id: &str, subject: &str) -> String {
    format!("/v1/tenants/{}/members/{}", enc(id), enc(subject))
}

pub async fn put_member(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let Some(subject) = form.get("subject") else {
        let errors = vec![("subject".to_owned(), "is required".to_owned())];
        return render_members(&ctx, &id, &errors, None, Some(&form)).await;
    };
    let roles: Vec<&str> = form
        .get("roles")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    let reply = ctx
        .api(
            Method::PUT,
            &member_path(&id, subject),
            Some(&json!({ "roles": roles })),
        )
        .await;
    if reply.ok() {
        return render_members(&ctx, &id, &[], Some("Member saved."), None).await;
    }
    // An unknown provider is the API's 404 `identity_provider_not_found`
    // (the tenant was found): the subject field's error.
    if reply.status == axum::http::StatusCode::NOT_FOUND
        && reply.body["code"] == "identity_provider_not_found"
    {
        let errors = vec![("subject".to_owned(), text(&reply.body["detail"]))];
        return render_members(&ctx, &id, &errors, None, Some(&form)).await;
    }
    if is_form_error(&reply) {
        return render_members(&ctx, &id, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn remove_member(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let subject = form.get("subject").unwrap_or_default();
    if !views::confirmed(&form) {
        let reply = ctx.get(&member_path(&id, subject)).await;
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        return views::confirm_page(
            &ctx,
            html! { "Really remove " code { (subject) } " from tenant " code { (id) } "? Their sign-ins stop resolving to it." },
            &format!("/console/tenants/{}/members/remove", enc(&id)),
            &[("subject", subject)],
            &format!("/console/tenants/{}/members", enc(&id)),
        );
    }
    let reply = ctx
        .api(Method::DELETE, &member_path(&id, subject), None)
        .await;
    if reply.ok() {
        return render_members(&ctx, &id, &[], Some("Member removed."), None).await;
    }
    views::failed(&ctx, &reply)
}

// ---- Identity providers (operators) ----

const PROVIDER_EXAMPLE: &str = r#"{
  "issuer": "https://login.example.com/",
  "jwks_url": "https://login.example.com/.well-known/jwks.json",
  "audiences": ["tenantry"],
  "algorithms": ["RS256"],
  "tenant_claim": "org_id",
  "roles_claim": "roles",
  "role_mapping": {"org:admin": "admin"}
}"#;

pub async fn providers(ctx: Ctx) -> Response {
    render_providers(&ctx, &[], None, None).await
}

async fn render_providers(
    ctx: &Ctx,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&Form>,
) -> Response {
    if let Some(page) = views::operators_only(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/identity-providers").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let providers = reply.data();
    let settings = form
        .and_then(|f| f.get("settings"))
        .map_or_else(|| PROVIDER_EXAMPLE.to_owned(), str::to_owned);
    let content = html! {
        h1 { "Identity providers" }
        @if let Some(message) = message { (notice(message)) }
        @if providers.is_empty() { p.muted id="providers-empty" { "No identity providers." } } @else {
            table id="providers" {
                thead { tr { th { "Id" } th { "Issuer" } th { "Audiences" } th { "Algorithms" } th { "Tenant claim" } th { "Settings" } th {} } }
                tbody {
                    @for p in &providers {
                        @let pid = text(&p["id"]);
                        tr data-provider=(pid) {
                            td { code { (pid) } }
                            td { (text(&p["issuer"])) }
                            td { (views::joined(&p["audiences"])) }
                            td { (views::joined(&p["algorithms"])) }
                            td { (text(&p["tenant_claim"])) }
                            td { details { summary { "JSON" } pre { (pretty(p)) } } }
                            td {
                                form.inline method="post" action="/console/identity-providers/remove" {
                                    (csrf(ctx))
                                    input type="hidden" name="id" value=(pid);
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Register or replace a provider" }
            p.muted { "Leave the id empty to register a new provider; give one to replace its settings." }
            (errors_block(errors))
            form.stack method="post" action="/console/identity-providers" id="provider-form" {
                (csrf(ctx))
                label for="provider-id" { "Id (to replace)" }
                input #provider-id name="id" value=(views::kept(form, "id")) placeholder="idp_…";
                label for="provider-settings" { "Settings (JSON)" }
                textarea #provider-settings name="settings" { (settings) }
                p { button type="submit" { "Save provider" } }
            }
        }
    };
    views::page_with(ctx, status_of(errors), "Identity providers", content)
}

pub async fn put_provider(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let settings = match views::json_object(&form, "settings") {
        Ok(v) => v,
        Err(error) => return render_providers(&ctx, &[error], None, Some(&form)).await,
    };
    let reply = match form.get("id") {
        Some(pid) => {
            ctx.api(
                Method::PUT,
                &format!("/v1/identity-providers/{}", enc(pid)),
                Some(&settings),
            )
            .await
        }
        None => ctx.post("/v1/identity-providers", &settings).await,
    };
    if reply.ok() {
        let message = format!("Provider {} saved.", text(&reply.body["id"]));
        return render_providers(&ctx, &[], Some(&message), None).await;
    }
    if is_form_error(&reply) {
        return render_providers(&ctx, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn remove_provider(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let pid = form.get("id").unwrap_or_default();
    let path = format!("/v1/identity-providers/{}", enc(pid));
    if !views::confirmed(&form) {
        let reply = ctx.get(&path).await;
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        return views::confirm_page(
            &ctx,
            html! { "Really remove the identity provider " code { (text(&reply.body["issuer"])) } "? Its users' tokens are refused at once (their memberships stay)." },
            "/console/identity-providers/remove",
            &[("id", pid)],
            "/console/identity-providers",
        );
    }
    let reply = ctx.api(Method::DELETE, &path, None).await;
    if reply.ok() {
        return render_providers(&ctx, &[], Some("Provider removed."), None).await;
    }
    views::failed(&ctx, &reply)
}
