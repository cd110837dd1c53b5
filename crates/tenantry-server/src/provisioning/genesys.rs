//! Genesys Cloud: do these OAuth client credentials work, and for which
//! organization? `POST {login}/oauth/token` (HTTP Basic client id and
//! secret, `grant_type=client_credentials`), then `GET
//! {api}/api/v2/organizations/me` with the token. `invalid_client` (and any
//! other OAuth error) is permanent; 429 (honouring `Retry-After`) and 5xx
//! are retried.

use super::provider::{ProviderError, json_body, retry_after, text, transport};
use crate::app::AppState;
use serde_json::{Value, json};
use tenantry_core::credentials::GENESYS_REGIONS;

/// The region's domain (`mypurecloud.com`) for a region name (`us_east_1`)
/// or a domain.
pub fn region_domain(region: &str) -> Option<&'static str> {
    GENESYS_REGIONS
        .iter()
        .find(|(name, domain)| *name == region || *domain == region)
        .map(|(_, domain)| *domain)
}

/// The region's name (`us_east_1`) for a region name or a domain.
pub fn region_name(region: &str) -> Option<&'static str> {
    GENESYS_REGIONS
        .iter()
        .find(|(name, domain)| *name == region || *domain == region)
        .map(|(name, _)| *name)
}

fn base(template: &str, domain: &str) -> String {
    template.replace("{region}", domain)
}

/// Gets a token and reads the organization; on success, what provisioning
/// keeps of it.
pub async fn verify_client(
    state: &AppState,
    region: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<Value, ProviderError> {
    let Some(domain) = region_domain(region) else {
        return Err(ProviderError::permanent(
            "genesys_unknown_region",
            format!("'{region}' is not a Genesys Cloud region"),
        ));
    };
    let outbound = &state.outbound;
    let timeout = state.config.provisioning_provider_timeout;
    let login = base(&state.config.genesys_login_url, domain);
    let request = outbound
        .client()
        .post(format!("{login}/oauth/token"))
        .basic_auth(client_id, Some(client_secret))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body("grant_type=client_credentials")
        .timeout(timeout);
    let response = outbound
        .send(request)
        .await
        .map_err(|e| transport("Genesys Cloud", e))?;
    let status = response.status();
    let wait = retry_after(&response);
    let body = json_body(response)
        .await
        .map_err(|e| transport("Genesys Cloud", e))?;
    if !status.is_success() {
        return Err(classify(status.as_u16(), &body, wait));
    }
    let Some(token) = body.get("access_token").and_then(Value::as_str) else {
        return Err(ProviderError::transient(
            "genesys_bad_answer",
            "Genesys Cloud answered the token request without an access_token",
        ));
    };
    let api = base(&state.config.genesys_api_url, domain);
    let request = outbound
        .client()
        .get(format!("{api}/api/v2/organizations/me"))
        .bearer_auth(token)
        .timeout(timeout);
    let response = outbound
        .send(request)
        .await
        .map_err(|e| transport("Genesys Cloud", e))?;
    let status = response.status();
    let wait = retry_after(&response);
    let body = json_body(response)
        .await
        .map_err(|e| transport("Genesys Cloud", e))?;
    if !status.is_success() {
        return Err(classify(status.as_u16(), &body, wait));
    }
    Ok(json!({
        "region": region_name(region),
        "organization": {
            "id": text(&body, "id"),
            "name": text(&body, "name"),
            "thirdPartyOrgName": text(&body, "thirdPartyOrgName"),
            "state": text(&body, "state"),
        },
    }))
}

fn classify(status: u16, body: &Value, wait: Option<std::time::Duration>) -> ProviderError {
    // The login service answers OAuth errors ({error, error_description});
    // the API its own ({message, code, status}).
    let oauth = text(body, "error");
    let message = text(body, "error_description")
        .or_else(|| text(body, "message"))
        .or_else(|| oauth.clone())
        .unwrap_or_else(|| format!("Genesys Cloud answered HTTP {status}"));
    let permanent = !(status >= 500 || status == 429);
    let code = match (&oauth, text(body, "code")) {
        (Some(e), _) => format!("genesys_{e}"),
        (None, Some(c)) => format!("genesys_{c}"),
        (None, None) => format!("genesys_http_{status}"),
    };
    let code: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    ProviderError {
        code,
        message,
        permanent,
        retry_after: wait,
        details: json!({ "provider": "genesys", "status": status, "error": oauth }),
    }
}
