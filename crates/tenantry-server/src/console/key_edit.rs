//! One API key of a tenant: edit its name, scopes and expiry; enable or
//! disable it (`PATCH /v1/tenants/{id}/api-keys/{key_id}`).

use super::tenant::{KEY_SCOPES, frame, load, render_keys};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, status_of, text};
use super::{Ctx, Posted};
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

fn api_path(id: &str, key_id: &str) -> String {
    format!("/v1/tenants/{}/api-keys/{}", enc(id), enc(key_id))
}

pub async fn page(ctx: Ctx, Path((id, key_id)): Path<(String, String)>) -> Response {
    render(&ctx, &id, &key_id, &[], None).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    key_id: &str,
    errors: &[(String, String)],
    message: Option<&str>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx.get(&api_path(id, key_id)).await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let key = &reply.body;
    let has = |scope: &str| {
        key["scopes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == scope))
    };
    let action = format!("/console/tenants/{}/keys/{}", enc(id), enc(key_id));
    let enabled = key["enabled"] != json!(false);
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Key " code { (key_id) } }
            dl.facts id="key-details" {
                dt { "Start" } dd { code { (text(&key["start"])) "…" } }
                dt { "State" } dd id="key-state" { @if enabled { span.badge.active { "enabled" } } @else { span.badge.suspended { "disabled" } } }
                dt { "Environment" } dd { (text(&key["environment"])) }
                dt { "Scopes" } dd id="key-scopes" { (views::joined(&key["scopes"])) }
                dt { "Expires" } dd id="key-expiry" { (text(&key["expires_at"])) }
                dt { "Last used" } dd { (text(&key["last_used_at"])) }
            }
            form.inline method="post" action={ (action) "/enabled" } id="toggle-key" {
                (csrf(ctx))
                input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                input type="hidden" name="back" value="edit";
                button.quiet type="submit" { @if enabled { "Disable" } @else { "Enable" } }
            }
        }
        section {
            h2 { "Edit" }
            (errors_block(errors))
            form.stack method="post" action=(action) id="edit-key" {
                (csrf(ctx))
                label for="edit-key-name" { "Name" }
                input #edit-key-name name="name" value=(text(&key["name"]));
                label { "Scopes" }
                @for scope in KEY_SCOPES {
                    @let scope = scope.to_string();
                    label.muted { input type="checkbox" name="scopes" value=(scope) checked[has(&scope)]; " " (scope) }
                }
                label for="edit-key-expires" { "Expires at (RFC 3339; empty: never)" }
                input #edit-key-expires name="expires_at" value=(text(&key["expires_at"]));
                p { button type="submit" { "Save" } }
            }
        }
    };
    frame(ctx, id, "/keys", status_of(errors), "API key", content)
}

pub async fn save(Path((id, key_id)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let expires_at = match views::rfc3339(&form, "expires_at") {
        Ok(at) => at,
        Err(error) => return render(&ctx, &id, &key_id, &[error], None).await,
    };
    let body = json!({
        "name": form.get("name").unwrap_or_default(),
        "scopes": form.all("scopes"),
        "expires_at": expires_at,
    });
    let reply = ctx
        .api(Method::PATCH, &api_path(&id, &key_id), Some(&body))
        .await;
    if reply.ok() {
        return render(&ctx, &id, &key_id, &[], Some("Key saved.")).await;
    }
    if is_form_error(&reply) {
        return render(&ctx, &id, &key_id, &views::field_errors(&reply), None).await;
    }
    views::failed(&ctx, &reply)
}

/// Enables or disables a key: a disabled key verifies as `DISABLED` until
/// enabled again.
pub async fn set_enabled(Path((id, key_id)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let enabled = match views::bool_field(&form, "enabled") {
        Ok(enabled) => enabled,
        Err(error) => return render(&ctx, &id, &key_id, &[error], None).await,
    };
    let reply = ctx
        .api(
            Method::PATCH,
            &api_path(&id, &key_id),
            Some(&json!({ "enabled": enabled })),
        )
        .await;
    let message = if enabled {
        "Key enabled."
    } else {
        "Key disabled."
    };
    let back_to_edit = form.get("back") == Some("edit");
    match (reply.ok(), back_to_edit) {
        (true, true) => render(&ctx, &id, &key_id, &[], Some(message)).await,
        (true, false) => render_keys(&ctx, &id, &[], None::<&Value>, Some(message)).await,
        (false, _) if is_form_error(&reply) => {
            render(&ctx, &id, &key_id, &views::field_errors(&reply), None).await
        }
        (false, _) => views::failed(&ctx, &reply),
    }
}
