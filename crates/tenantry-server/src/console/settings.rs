//! A tenant's settings categories (`/v1/tenants/{id}/settings/{category}`):
//! read one (sensitive values masked) and replace it (sensitive values are
//! sealed by the API).

use super::tenant::{frame, load};
use super::views::{self, csrf, enc, errors_block, is_form_error, notice, pretty, status_of};
use super::{Ctx, Posted};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct CategoryQuery {
    category: Option<String>,
}

pub async fn page(
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<CategoryQuery>,
) -> Response {
    let category = query.category.unwrap_or_default();
    render(&ctx, &id, category.trim(), &[], None, None).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    category: &str,
    errors: &[(String, String)],
    message: Option<&str>,
    draft: Option<&str>,
) -> Response {
    if let Err(page) = load(ctx, id).await {
        return page;
    }
    // The category's current values; one never saved is simply empty.
    let current = if category.is_empty() {
        None
    } else {
        let reply = ctx
            .get(&format!(
                "/v1/tenants/{}/settings/{}",
                enc(id),
                enc(category)
            ))
            .await;
        match reply.status {
            s if s.is_success() => Some(reply.body),
            StatusCode::NOT_FOUND => None,
            _ => return views::failed(ctx, &reply),
        }
    };
    let shown = current.as_ref().map(|c| pretty(&c["data"]));
    let content = html! {
        @if let Some(message) = message { (notice(message)) }
        section {
            h2 { "Open a category" }
            form.filters method="get" action={ "/console/tenants/" (enc(id)) "/settings" } id="settings-open" {
                label { "Category " input name="category" value=(category) placeholder="smtp"; }
                button type="submit" { "Open" }
            }
        }
        @if !category.is_empty() {
            section {
                h2 { "Category " code id="settings-category" { (category) } }
                @if let Some(current) = &current {
                    p.muted { "Updated " (views::text(&current["updated_at"])) "; sensitive values masked." }
                    pre id="settings-data" { (shown.clone().unwrap_or_default()) }
                } @else {
                    p.muted id="settings-empty" { "Nothing saved in this category yet." }
                }
            }
        }
        section {
            h2 { "Replace a category" }
            p.muted { "A JSON object. Values under sensitive keys (password, secret, token, key, apiKey, clientSecret, appSecret…) are encrypted; a masked value sent back unchanged keeps its secret." }
            (errors_block(errors))
            form.stack method="post" action={ "/console/tenants/" (enc(id)) "/settings" } id="settings-form" {
                (csrf(ctx))
                label for="settings-form-category" { "Category" }
                input #settings-form-category name="category" value=(category);
                label for="settings-form-data" { "Values (JSON object)" }
                textarea #settings-form-data name="data" { (draft.map(str::to_owned).or(shown).unwrap_or_else(|| "{}".to_owned())) }
                p { button type="submit" { "Save" } }
            }
        }
    };
    frame(ctx, id, "/settings", status_of(errors), "Settings", content)
}

pub async fn save(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { ctx, form } = posted;
    let category = form.get("category").unwrap_or_default();
    let draft = form.get("data");
    if category.is_empty() {
        let errors = vec![("category".to_owned(), "is required".to_owned())];
        return render(&ctx, &id, category, &errors, None, draft).await;
    }
    let data = match views::json_object(&form, "data") {
        Ok(data) => data,
        Err(error) => return render(&ctx, &id, category, &[error], None, draft).await,
    };
    let reply = ctx
        .api(
            Method::PUT,
            &format!("/v1/tenants/{}/settings/{}", enc(&id), enc(category)),
            Some(&data),
        )
        .await;
    if reply.ok() {
        return render(&ctx, &id, category, &[], Some("Settings saved."), None).await;
    }
    // A malformed category name is the API's 404 `settings_not_found`
    // (the tenant itself was found by `load`): a form error here.
    if reply.status == StatusCode::NOT_FOUND && reply.body["code"] == "settings_not_found" {
        let errors = vec![("category".to_owned(), views::text(&reply.body["detail"]))];
        return render(&ctx, &id, "", &errors, None, draft).await;
    }
    if is_form_error(&reply) {
        return render(
            &ctx,
            &id,
            category,
            &views::field_errors(&reply),
            None,
            draft,
        )
        .await;
    }
    views::failed(&ctx, &reply)
}
