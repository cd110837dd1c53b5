//! One credential of a tenant: edit (rename, replace a secret or other
//! fields, activate), its access log, deletion behind a confirmation; and
//! the tenant's data-key rotation (operators).

use super::tenant::{frame, load, render_credentials};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, status_of, text};
use super::{Ctx, Posted};
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

fn api_path(id: &str, cred_id: &str) -> String {
    format!("/v1/tenants/{}/credentials/{}", enc(id), enc(cred_id))
}

pub async fn page(ctx: Ctx, Path((id, cred_id)): Path<(String, String)>) -> Response {
    render(&ctx, &id, &cred_id, &[], None, None).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    cred_id: &str,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&super::Form>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx.get(&api_path(id, cred_id)).await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let log = ctx
        .get(&format!("{}/access-log?limit=50", api_path(id, cred_id)))
        .await;
    if !log.ok() {
        return views::failed(ctx, &log);
    }
    let cred = &reply.body;
    let action = format!("/console/tenants/{}/credentials/{}", enc(id), enc(cred_id));
    let name = form
        .and_then(|f| f.get("name"))
        .map_or_else(|| text(&cred["name"]), str::to_owned);
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Credential " code { (cred_id) } }
            dl.facts id="credential-details" {
                dt { "Kind" } dd { (text(&cred["kind"])) }
                dt { "Name" } dd id="credential-name" { (text(&cred["name"])) }
                dt { "Active" } dd id="credential-active" { (text(&cred["is_active"])) }
                dt { "Fields (secrets masked)" } dd { code.masked id="credential-data" { (text(&cred["data"])) } }
                dt { "Sealed fields" } dd { (views::joined(&cred["sealed_fields"])) }
                dt { "Updated" } dd { (text(&cred["updated_at"])) }
            }
        }
        section {
            h2 { "Edit" }
            p.muted { "Fields holds only what changes: a sealed field left out keeps its value, " code { "null" } " removes an optional field. A new secret is sealed like the old one." }
            (errors_block(errors))
            form.stack method="post" action=(action) id="edit-credential" {
                (csrf(ctx))
                label for="edit-cred-name" { "Name" }
                input #edit-cred-name name="name" value=(name);
                label for="edit-cred-data" { "Fields to change (JSON object)" }
                textarea #edit-cred-data name="data" { (views::kept(form, "data")) }
                label.muted { input type="checkbox" name="is_active" value="true" checked[cred["is_active"] != json!(false)]; " active" }
                p { button type="submit" { "Save" } }
            }
        }
        section {
            h2 { "Access log" }
            p.muted { "Every reveal of this credential's plaintext." }
            (views::table("access-log", &log.data(), &[("When", "created_at"), ("Action", "action"), ("Actor", "actor"), ("Source", "source_ip"), ("Request", "request_id")]))
        }
        section {
            h2 { "Delete" }
            form method="post" action={ (action) "/delete" } id="delete-credential" {
                (csrf(ctx))
                button.danger type="submit" { "Delete this credential" }
            }
        }
    };
    frame(
        ctx,
        id,
        "/credentials",
        status_of(errors),
        "Credential",
        content,
    )
}

pub async fn save(Path((id, cred_id)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut body = json!({ "is_active": form.get("is_active") == Some("true") });
    if let Some(name) = form.get("name") {
        body["name"] = json!(name);
    }
    if form.get("data").is_some() {
        match views::json_object(&form, "data") {
            Ok(data) => body["data"] = data,
            Err(error) => return render(&ctx, &id, &cred_id, &[error], None, Some(&form)).await,
        }
    }
    let reply = ctx
        .api(Method::PATCH, &api_path(&id, &cred_id), Some(&body))
        .await;
    if reply.ok() {
        return render(&ctx, &id, &cred_id, &[], Some("Credential saved."), None).await;
    }
    if is_form_error(&reply) {
        let errors = views::field_errors(&reply);
        return render(&ctx, &id, &cred_id, &errors, None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn delete(Path((id, cred_id)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if !views::confirmed(&form) {
        // Read it first: a foreign or unknown credential is a 404, not a
        // question.
        let reply = ctx.get(&api_path(&id, &cred_id)).await;
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        return views::confirm_page(
            &ctx,
            html! { "Really delete the credential " strong { (text(&reply.body["name"])) } " (" code { (cred_id) } ")? This cannot be undone." },
            &format!(
                "/console/tenants/{}/credentials/{}/delete",
                enc(&id),
                enc(&cred_id)
            ),
            &[],
            &format!(
                "/console/tenants/{}/credentials/{}",
                enc(&id),
                enc(&cred_id)
            ),
        );
    }
    let reply = ctx
        .api(Method::DELETE, &api_path(&id, &cred_id), None)
        .await;
    if reply.ok() {
        return render_credentials(&ctx, &id, &[], None, Some("Credential deleted."), None).await;
    }
    views::failed(&ctx, &reply)
}

/// A new data key for the tenant (operators); its secrets are re-encrypted.
pub async fn rotate_data_key(Path(id): Path<String>, posted: Posted) -> Response {
    let ctx = posted.ctx;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let reply = ctx
        .post(
            &format!("/v1/operator/tenants/{}/data-key/rotate", enc(&id)),
            &json!({}),
        )
        .await;
    if reply.ok() {
        let message = format!(
            "New data key {} active; the tenant's secrets are re-encrypted with it.",
            text(&reply.body["data_key_id"])
        );
        return render_credentials(&ctx, &id, &[], None::<&Value>, Some(&message), None).await;
    }
    views::failed(&ctx, &reply)
}
