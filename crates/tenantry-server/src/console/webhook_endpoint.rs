//! One outbound webhook endpoint of a tenant: its settings (edit), its
//! signing secret (rotation, the new one shown once), its delivery log
//! (replay of one message or of a time range), and its deletion behind a
//! confirmation.

use super::tenant::{frame, load};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, status_of, text};
use super::{Ctx, Form, Posted};
use axum::extract::{Path, Query};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

fn api_path(id: &str, eid: &str) -> String {
    format!("/v1/tenants/{}/webhook-endpoints/{}", enc(id), enc(eid))
}

fn page_path(id: &str, eid: &str) -> String {
    format!("/console/tenants/{}/webhooks/{}", enc(id), enc(eid))
}

#[derive(Debug, Default, Deserialize)]
pub struct Replayed {
    replayed: Option<String>,
}

/// What a page shows above the endpoint besides errors.
#[derive(Default)]
struct Shown<'a> {
    message: Option<String>,
    secret: Option<&'a Value>,
    form: Option<&'a Form>,
}

pub async fn page(
    ctx: Ctx,
    Path((id, eid)): Path<(String, String)>,
    Query(flash): Query<Replayed>,
) -> Response {
    let shown = Shown {
        message: flash
            .replayed
            .map(|m| format!("Message {m} queued for redelivery.")),
        ..Shown::default()
    };
    render(&ctx, &id, &eid, &[], shown).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    eid: &str,
    errors: &[(String, String)],
    shown: Shown<'_>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    let base = api_path(id, eid);
    let endpoint = ctx.get(&base).await;
    if !endpoint.ok() {
        return views::failed(ctx, &endpoint);
    }
    let messages = ctx.get(&format!("{base}/messages?limit=100")).await;
    if !messages.ok() {
        return views::failed(ctx, &messages);
    }
    let messages = messages.data();
    let types = ctx.get("/v1/event-types").await.data();
    let e = &endpoint.body;
    let subscribed = |name: &str| {
        e["event_types"]
            .as_array()
            .is_some_and(|t| t.iter().any(|v| v == name))
    };
    let action = page_path(id, eid);
    let keep = |name: &str, current: &Value| {
        shown
            .form
            .and_then(|f| f.get(name))
            .map_or_else(|| text(current), str::to_owned)
    };
    let content = html! {
        @if let Some(message) = &shown.message { (notice(message)) }
        @if let Some(secret) = shown.secret {
            div.secret id="new-secret" {
                p { strong { "New signing secret, shown only once:" } }
                p { code id="new-secret-value" { (text(&secret["secret"])) } }
                @if !secret["endpoint"]["previous_secret_expires_at"].is_null() {
                    p.muted { "The previous secret also signs until " (text(&secret["endpoint"]["previous_secret_expires_at"])) "." }
                }
            }
        }
        (errors_block(errors))
        section {
            h2 { "Endpoint " code { (eid) } }
            dl.facts {
                dt { "URL" } dd id="endpoint-url" { (text(&e["url"])) }
                dt { "Description" } dd id="endpoint-description" { (text(&e["description"])) }
                dt { "Events" } dd id="endpoint-events" { (views::joined(&e["event_types"])) }
                dt { "Enabled" } dd id="endpoint-enabled" { (text(&e["enabled"])) " " span.muted { (text(&e["disabled_reason"])) } }
            }
        }
        section {
            h2 { "Edit" }
            form.stack method="post" action=(action) id="edit-endpoint" {
                (csrf(ctx))
                label for="edit-endpoint-url" { "URL (https)" }
                input #edit-endpoint-url name="url" value=(keep("url", &e["url"]));
                label for="edit-endpoint-description" { "Description" }
                input #edit-endpoint-description name="description" value=(keep("description", &e["description"]));
                label { "Event types (none: all)" }
                @for t in &types {
                    @let name = text(&t["name"]);
                    label.muted { input type="checkbox" name="event_types" value=(name) checked[subscribed(&name)]; " " (name) }
                }
                label.muted { input type="checkbox" name="enabled" value="true" checked[e["enabled"] == json!(true)]; " enabled" }
                p { button type="submit" { "Save" } }
            }
        }
        section {
            h2 { "Signing secret" }
            form.filters method="post" action={ (action) "/rotate" } id="rotate-secret" {
                (csrf(ctx))
                label { "Old secret keeps signing for (seconds) " input type="number" name="overlap_seconds" min="0" placeholder="default"; }
                button.danger type="submit" { "Rotate the secret" }
            }
        }
        section {
            h2 { "Delivery log" }
            form.filters method="post" action={ (action) "/replay" } id="replay-range" {
                (csrf(ctx))
                label { "Replay every message since (RFC 3339) " input name="since" placeholder="2027-01-01T00:00:00Z"; }
                label { "until (optional) " input name="until"; }
                button type="submit" { "Replay the range" }
            }
            @if messages.is_empty() { p.muted id="deliveries-empty" { "Nothing delivered yet." } } @else {
                table id="deliveries" {
                    thead { tr { th { "Message" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last HTTP status" } th { "Last error" } th {} } }
                    tbody {
                        @for m in &messages {
                            tr {
                                td { code { (text(&m["id"])) } }
                                td { (text(&m["type"])) }
                                td { (views::badge(&m["status"])) }
                                td { (text(&m["attempts"])) }
                                td { (text(&m["last_status"])) }
                                td { (text(&m["last_error"])) }
                                td {
                                    form.inline method="post" action={ (action) "/messages/" (enc(&text(&m["id"]))) "/replay" } {
                                        (csrf(ctx))
                                        button.quiet type="submit" { "Replay" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Delete" }
            form method="post" action={ (action) "/delete" } id="delete-endpoint" {
                (csrf(ctx))
                button.danger type="submit" { "Delete this endpoint" }
            }
        }
    };
    frame(
        ctx,
        id,
        "/webhooks",
        status_of(errors),
        "Webhook endpoint",
        content,
    )
}

/// After a change: the endpoint page with a notice (and a new secret), or
/// the form's errors, or the error page.
async fn after(
    ctx: &Ctx,
    id: &str,
    eid: &str,
    reply: &super::ApiReply,
    message: String,
    form: &Form,
) -> Response {
    if reply.ok() {
        let secret = reply.body.get("secret").map(|_| &reply.body);
        let shown = Shown {
            message: Some(message),
            secret,
            form: None,
        };
        return render(ctx, id, eid, &[], shown).await;
    }
    if is_form_error(reply) {
        let shown = Shown {
            form: Some(form),
            ..Shown::default()
        };
        return render(ctx, id, eid, &views::field_errors(reply), shown).await;
    }
    views::failed(ctx, reply)
}

pub async fn save(Path((id, eid)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let body = json!({
        "url": form.get("url").unwrap_or_default(),
        "description": form.get("description").unwrap_or_default(),
        "event_types": form.all("event_types"),
        "enabled": form.get("enabled") == Some("true"),
    });
    let reply = ctx
        .api(Method::PATCH, &api_path(&id, &eid), Some(&body))
        .await;
    after(&ctx, &id, &eid, &reply, "Endpoint saved.".to_owned(), &form).await
}

pub async fn rotate(Path((id, eid)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut body = json!({});
    if let Some(overlap) = form.get("overlap_seconds") {
        match overlap.parse::<u64>() {
            Ok(n) => body["overlap_seconds"] = json!(n),
            Err(_) => {
                let errors = vec![(
                    "overlap_seconds".to_owned(),
                    "must be a whole number of seconds".to_owned(),
                )];
                return render(&ctx, &id, &eid, &errors, Shown::default()).await;
            }
        }
    }
    let reply = ctx
        .post(&format!("{}/secret/rotate", api_path(&id, &eid)), &body)
        .await;
    after(&ctx, &id, &eid, &reply, "Secret rotated.".to_owned(), &form).await
}

/// Replays every message of the endpoint in a time range.
pub async fn replay_range(Path((id, eid)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let mut errors = Vec::new();
    let since = views::rfc3339(&form, "since").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let until = views::rfc3339(&form, "until").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if since.is_none() && errors.is_empty() {
        errors.push(("since".to_owned(), "is required".to_owned()));
    }
    if !errors.is_empty() {
        return render(&ctx, &id, &eid, &errors, Shown::default()).await;
    }
    let mut body = json!({ "since": since });
    if let Some(until) = until {
        body["until"] = json!(until);
    }
    let reply = ctx
        .post(&format!("{}/replay", api_path(&id, &eid)), &body)
        .await;
    let message = format!(
        "{} messages queued for redelivery.",
        text(&reply.body["replayed"])
    );
    after(&ctx, &id, &eid, &reply, message, &form).await
}

pub async fn replay(
    Path((id, eid, mid)): Path<(String, String, String)>,
    posted: Posted,
) -> Response {
    let ctx = posted.ctx;
    let reply = ctx
        .post(
            &format!("{}/messages/{}/replay", api_path(&id, &eid), enc(&mid)),
            &json!({}),
        )
        .await;
    if reply.ok() {
        return Redirect::to(&format!("{}?replayed={}", page_path(&id, &eid), enc(&mid)))
            .into_response();
    }
    views::failed(&ctx, &reply)
}

pub async fn delete(Path((id, eid)): Path<(String, String)>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    if !views::confirmed(&form) {
        let reply = ctx.get(&api_path(&id, &eid)).await;
        if !reply.ok() {
            return views::failed(&ctx, &reply);
        }
        return views::confirm_page(
            &ctx,
            html! { "Really delete the endpoint " code { (text(&reply.body["url"])) } "? Nothing more is delivered to it." },
            &format!("{}/delete", page_path(&id, &eid)),
            &[],
            &page_path(&id, &eid),
        );
    }
    let reply = ctx.api(Method::DELETE, &api_path(&id, &eid), None).await;
    if reply.ok() {
        return Redirect::to(&format!("/console/tenants/{}/webhooks", enc(&id))).into_response();
    }
    views::failed(&ctx, &reply)
}
