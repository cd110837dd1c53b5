//! Provisioning workflows (operators): start one (the API's request as
//! JSON), follow them step by step, retry a failed one, cancel one (its
//! completed steps are undone; behind a confirmation).

use super::views::{self, csrf, enc, errors_block, is_form_error, notice, status_of, text};
use super::{Ctx, Form, Posted};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

const EXAMPLE: &str = r#"{
  "tenant": {"id": "new-tenant", "name": "New Tenant"},
  "api_keys": [{"name": "backend", "scopes": ["tenant:read"]}],
  "config": {"branding": {"company_name": "New Tenant"}}
}"#;

pub async fn page(ctx: Ctx) -> Response {
    render(&ctx, &[], None, None).await
}

async fn render(
    ctx: &Ctx,
    errors: &[(String, String)],
    message: Option<&str>,
    form: Option<&Form>,
) -> Response {
    if let Some(page) = views::operators_only(ctx) {
        return page;
    }
    let reply = ctx.get("/v1/provisioning?limit=100").await;
    if !reply.ok() {
        return views::failed(ctx, &reply);
    }
    let workflows = reply.data();
    let request = form
        .and_then(|f| f.get("request"))
        .map_or_else(|| EXAMPLE.to_owned(), str::to_owned);
    let content = html! {
        h1 { "Provisioning" }
        @if let Some(message) = message { (notice(message)) }
        (errors_block(errors))
        section {
            h2 { "Start a workflow" }
            p.muted { "Onboards a tenant in one go: creates it, verifies its WhatsApp number and Genesys organization when given, issues API keys, configures webhooks and its configuration. The API keys it issues are handed out once: open the workflow (its id) after they are made to see them." }
            form.stack method="post" action="/console/provisioning" id="start-workflow" {
                (csrf(ctx))
                label for="workflow-request" { "Request (JSON)" }
                textarea #workflow-request name="request" { (request) }
                p { button type="submit" { "Start" } }
            }
        }
        @if workflows.is_empty() { p.muted id="workflows-empty" { "No workflows yet." } }
        @for w in &workflows { (workflow_section(ctx, w)) }
    };
    views::page_with(ctx, status_of(errors), "Provisioning", content)
}

/// One workflow: its steps, the API keys it issued when this read is the
/// one that hands them out, and its retry and cancel buttons.
fn workflow_section(ctx: &Ctx, w: &Value) -> Markup {
    html! {
        @let wid = text(&w["id"]);
        @let status = text(&w["status"]);
        section.workflow data-workflow=(wid) {
            h2 { "Workflow " a href={ "/console/provisioning/" (enc(&wid)) } { code { (wid) } } " · tenant " a href={ "/console/tenants/" (enc(&text(&w["tenant_id"]))) } { (text(&w["tenant_id"])) } " " (views::badge(&w["status"])) }
            p.muted { "started " (text(&w["created_at"])) @if !w["next_attempt_at"].is_null() { " · next attempt " (text(&w["next_attempt_at"])) } }
            @if let Some(keys) = w["api_keys"].as_array() {
                div.secret.issued-keys {
                    p { strong { "API keys issued by this workflow, shown only this once:" } }
                    @for k in keys { p { (text(&k["name"])) ": " code { (text(&k["key"])) } } }
                }
            }
            (views::table("steps", &w["steps"].as_array().cloned().unwrap_or_default(), &[("Step", "name"), ("Status", "status"), ("Attempts", "attempts"), ("Error", "error"), ("Finished", "finished_at")]))
            @if !matches!(status.as_str(), "succeeded" | "cancelled") {
                p {
                    form.inline method="post" action={ "/console/provisioning/" (enc(&wid)) "/retry" } {
                        (csrf(ctx))
                        button.quiet type="submit" { "Retry" }
                    }
                    " "
                    form.inline method="post" action={ "/console/provisioning/" (enc(&wid)) "/cancel" } {
                        (csrf(ctx))
                        button.danger type="submit" { "Cancel" }
                    }
                }
            }
        }
    }
}

pub async fn start(posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let request = match views::json_object(&form, "request") {
        Ok(v) => v,
        Err(error) => return render(&ctx, &[error], None, Some(&form)).await,
    };
    let reply = ctx.post("/v1/provisioning", &request).await;
    if reply.ok() {
        let message = format!(
            "Workflow {} started for tenant {}.",
            text(&reply.body["id"]),
            text(&reply.body["tenant_id"])
        );
        return render(&ctx, &[], Some(&message), None).await;
    }
    if is_form_error(&reply) {
        return render(&ctx, &views::field_errors(&reply), None, Some(&form)).await;
    }
    views::failed(&ctx, &reply)
}

pub async fn retry(Path(wid): Path<String>, posted: Posted) -> Response {
    let ctx = posted.ctx;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let reply = ctx
        .post(&format!("/v1/provisioning/{}/retry", enc(&wid)), &json!({}))
        .await;
    after(&ctx, &reply, &format!("Workflow {wid} retried.")).await
}

pub async fn cancel(Path(wid): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let path = format!("/v1/provisioning/{}", enc(&wid));
    if !views::confirmed(&form) {
        let reply = ctx.get(&path).await;
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        return views::confirm_page(
            &ctx,
            html! { "Really cancel workflow " code { (wid) } " of tenant " code { (text(&reply.body["tenant_id"])) } "? Its completed steps are undone, newest first." },
            &format!("/console/provisioning/{}/cancel", enc(&wid)),
            &[],
            "/console/provisioning",
        );
    }
    let reply = ctx.post(&format!("{path}/cancel"), &json!({})).await;
    after(&ctx, &reply, &format!("Workflow {wid} is being cancelled.")).await
}

async fn after(ctx: &Ctx, reply: &super::ApiReply, message: &str) -> Response {
    if reply.ok() {
        return render(ctx, &[], Some(message), None).await;
    }
    if is_form_error(reply) {
        return render(ctx, &views::field_errors(reply), None, None).await;
    }
    views::failed(ctx, reply)
}

/// One workflow, read on its own: the read that hands out the API keys it
/// issued (once, to the principal that started it).
pub async fn workflow(ctx: Ctx, Path(wid): Path<String>) -> Response {
    if let Some(page) = views::operators_only(&ctx) {
        return page;
    }
    let reply = ctx.get(&format!("/v1/provisioning/{}", enc(&wid))).await;
    if !reply.ok() {
        return views::failed(&ctx, &reply);
    }
    let content = html! {
        h1 { "Provisioning" }
        @if reply.body["api_keys_pending"] == json!(true) {
            p.muted id="keys-pending" { "Its API keys are not made yet: open this page again once the workflow has issued them." }
        }
        (workflow_section(&ctx, &reply.body))
        p { a href="/console/provisioning" { "All workflows" } }
    };
    views::page_with(&ctx, StatusCode::OK, "Workflow", content)
}
