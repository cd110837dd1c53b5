//! Meta's Graph API: is this WhatsApp Business phone number reachable with
//! this access token? `GET {graph}/{version}/{phone_number_id}?fields=…`
//! with `Authorization: Bearer`. Errors come as `{"error": {"message",
//! "type", "code", "error_subcode", "fbtrace_id"}}`: code 190 (invalid or
//! expired token) and code 100 (unknown id or missing permission, subcode
//! 33) are permanent; 4, 80007 and 130429 (throttling) and 5xx are retried.

use super::provider::{ProviderError, json_body, retry_after, text, transport};
use crate::app::AppState;
use serde_json::{Value, json};

const FIELDS: &str = "id,display_phone_number,verified_name,quality_rating,code_verification_status,name_status,platform_type,status";

/// Throttling codes: application, WhatsApp Business account, and
/// WhatsApp Cloud API rate limits.
const THROTTLED: [i64; 3] = [4, 80007, 130429];

/// Checks the phone number; on success, what provisioning keeps of it.
pub async fn verify_phone_number(
    state: &AppState,
    phone_number_id: &str,
    access_token: &str,
) -> Result<Value, ProviderError> {
    let url = format!(
        "{}/{}/{}",
        state.config.meta_graph_url, state.config.meta_graph_version, phone_number_id
    );
    let outbound = &state.outbound;
    let request = outbound
        .client()
        .get(url)
        .query(&[("fields", FIELDS)])
        .bearer_auth(access_token)
        .timeout(state.config.provisioning_provider_timeout);
    let response = outbound
        .send(request)
        .await
        .map_err(|e| transport("Meta", e))?;
    let status = response.status();
    let wait = retry_after(&response);
    let body = json_body(response)
        .await
        .map_err(|e| transport("Meta", e))?;
    if status.is_success() {
        return Ok(json!({
            "phone_number_id": text(&body, "id"),
            "verified_name": text(&body, "verified_name"),
            "display_phone_number": text(&body, "display_phone_number"),
            "quality_rating": text(&body, "quality_rating"),
        }));
    }
    Err(classify(status.as_u16(), &body, wait))
}

fn classify(status: u16, body: &Value, wait: Option<std::time::Duration>) -> ProviderError {
    let error = body.get("error").cloned().unwrap_or(Value::Null);
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let message = text(&error, "message")
        .unwrap_or_else(|| format!("Meta answered HTTP {status} without an error message"));
    let permanent = match code {
        Some(c) if THROTTLED.contains(&c) => false,
        Some(190) | Some(100) => true,
        _ => !(status >= 500 || status == 429),
    };
    let code_text = match (code, subcode) {
        (Some(c), Some(s)) => format!("meta_{c}_{s}"),
        (Some(c), None) => format!("meta_{c}"),
        _ => format!("meta_http_{status}"),
    };
    ProviderError {
        code: code_text,
        message,
        permanent,
        retry_after: wait,
        details: json!({
            "provider": "meta",
            "status": status,
            "type": text(&error, "type"),
            "code": code,
            "error_subcode": subcode,
            "fbtrace_id": text(&error, "fbtrace_id"),
        }),
    }
}
