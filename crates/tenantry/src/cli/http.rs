//! The one HTTP module every remote command goes through: JSON in and out
//! as `serde_json::Value`, problems mapped to [`CliError`]. When the typed
//! `tenantry-client` crate lands, this is the file to swap for it.

use super::error::{CliError, CliResult, Exit};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

pub struct Http {
    base: String,
    key: Option<String>,
    client: reqwest::Client,
}

/// Query parameters; `None` values are left out.
pub type Query<'a> = &'a [(&'a str, Option<String>)];

impl Http {
    pub fn new(base: &str, key: Option<String>) -> CliResult<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!(
                "server URL {base:?} must start with http:// or https://"
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("tenantry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::generic(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http { base, key, client })
    }

    fn request(&self, method: Method, path: &str, query: Query<'_>) -> reqwest::RequestBuilder {
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
            .collect();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .query(&pairs);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        req
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> CliResult<reqwest::Response> {
        let response = req.send().await.map_err(|e| {
            // reqwest's error names the URL, never the key.
            CliError::new(Exit::Unavailable, format!("cannot reach the server: {e}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(CliError::from_response(status.as_u16(), &body))
    }

    /// Sends one request; answers the JSON body (`null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let mut req = self.request(method, path, query);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = self.send(req).await?;
        let text = response
            .text()
            .await
            .map_err(|e| CliError::generic(format!("cannot read the answer: {e}")))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| CliError::generic(format!("the server's answer is not JSON: {e}")))
    }

    pub async fn get(&self, path: &str, query: Query<'_>) -> CliResult<Value> {
        self.call(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.call(Method::PATCH, path, &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, query: Query<'_>) -> CliResult<Value> {
        self.call(Method::DELETE, path, query, None).await
    }

    /// A GET whose body is read as a stream (exports).
    pub async fn stream(&self, path: &str, query: Query<'_>) -> CliResult<reqwest::Response> {
        self.send(self.request(Method::GET, path, query)).await
    }

    /// Follows `next_cursor` from `first` (a page with `data`), collecting
    /// every item.
    pub async fn all_pages(
        &self,
        path: &str,
        query: Query<'_>,
        mut page: Value,
    ) -> CliResult<Value> {
        let mut items = page["data"].as_array().cloned().unwrap_or_default();
        while let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) {
            let mut q: Vec<(&str, Option<String>)> = query
                .iter()
                .filter(|(k, _)| *k != "cursor")
                .cloned()
                .collect();
            q.push(("cursor", Some(cursor)));
            page = self.get(path, &q).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
        }
        Ok(serde_json::json!({ "data": items, "next_cursor": null }))
    }
}

/// Percent-encodes one path segment (ids are slugs, but a domain or a
/// subject may hold other characters).
pub fn seg(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
