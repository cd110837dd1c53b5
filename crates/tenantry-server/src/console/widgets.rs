//! A tenant's chat widgets (`/v1/tenants/{id}/widgets`): list, create,
//! and disable (which revokes every token of the widget; behind a
//! confirmation) or enable again.

use super::tenant::{frame, load};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, status_of, text};
use super::{Ctx, Form, Posted};
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

pub async fn page(ctx: Ctx, Path(id): Path<String>) -> Response {
    render(&ctx, &id, &[], None, None).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&Form>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let reply = ctx.get(&format!("/v1/tenants/{}/widgets", enc(id))).await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let widgets = reply.data();
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Widgets" }
            @if widgets.is_empty() { p.muted id="widgets-empty" { "No widgets." } } @else {
                table id="widgets" {
                    thead { tr { th { "Id" } th { "Name" } th { "Allowed origins" } th { "State" } th { "Created" } th {} } }
                    tbody {
                        @for w in &widgets {
                            @let wid = text(&w["id"]);
                            @let enabled = w["enabled"] == json!(true);
                            tr data-widget=(wid) {
                                td { code { (wid) } }
                                td { (text(&w["name"])) }
                                td { (views::joined(&w["allowed_origins"])) }
                                td { @if enabled { span.badge.active { "enabled" } } @else { span.badge.suspended { "disabled" } } }
                                td { (text(&w["created_at"])) }
                                td {
                                    form.inline method="post" action={ "/console/tenants/" (enc(id)) "/widgets/" (enc(&wid)) "/enabled" } {
                                        (csrf(ctx))
                                        input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                                        @if enabled { button.danger type="submit" { "Disable" } } @else { button.quiet type="submit" { "Enable" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Create a widget" }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/widgets" } id="create-widget" {
                (csrf(ctx))
                label for="widget-name" { "Name" }
                input #widget-name name="name" value=(views::kept(form, "name"));
                label for="widget-origins" { "Allowed origins (one per line: https://app.example.com or https://*.example.com)" }
                textarea #widget-origins name="allowed_origins" { (views::kept(form, "allowed_origins")) }
                p { button type="submit" { "Create widget" } }
            }
        }
    };
    frame(ctx, id, "/widgets", status_of(errors), "Widgets", content)
}

pub async fn create(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let origins: Vec<&str> = form
        .get("allowed_origins")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    let body = json!({
        "name": form.get("name").unwrap_or_default(),
        "allowed_origins": origins,
    });
    let reply = ctx
        .post(&format!("/v1/tenants/{}/widgets", enc(&id)), &body)
        .await;
    if reply.ok() {
        let message = format!("Widget {} created.", text(&reply.body["id"]));
        return render(&ctx, &id, &[], Some(&message), None).await;
    }
    if is_form_error(&reply) {
        return render(&ctx, &id, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn set_enabled(Path((id, wid)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let enabled = match views::bool_field(&form, "enabled") {
        Ok(enabled) => enabled,
        Err(error) => return render(&ctx, &id, &[error], None, None).await,
    };
    let action = format!(
        "/console/tenants/{}/widgets/{}/enabled",
        enc(&id),
        enc(&wid)
    );
    if !enabled && !views::confirmed(&form) {
        if let Err(page) = load(&ctx, &id).await {
            return page;
        }
        return views::confirm_page(
            &ctx,
            html! { "Really disable the widget " code { (wid) } "? Every token issued for it stops verifying at once." },
            &action,
            &[("enabled", "false")],
            &format!("/console/tenants/{}/widgets", enc(&id)),
        );
    }
    let reply = ctx
        .api(
            Method::PATCH,
            &format!("/v1/tenants/{}/widgets/{}", enc(&id), enc(&wid)),
            Some(&json!({ "enabled": enabled })),
        )
        .await;
    if reply.ok() {
        let message = if enabled {
            "Widget enabled."
        } else {
            "Widget disabled; its tokens are revoked."
        };
        return render(&ctx, &id, &[], Some(message), None).await;
    }
    if is_form_error(&reply) {
        return render(&ctx, &id, &views::field_errors(&reply), None, None).await;
    }
    views::failed(&ctx, &reply)
}
