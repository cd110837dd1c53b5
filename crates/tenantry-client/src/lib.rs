//! A typed async client for the Tenantry `/v1` API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tenantry_client::Error> {
//! use futures_util::TryStreamExt;
//! use tenantry_client::{Client, api::tenants::TenantIn};
//!
//! let client = Client::new("http://127.0.0.1:3007", "tk_root_…")?;
//! let tenant = client
//!     .tenants()
//!     .create(&TenantIn::new("acme", "Acme Insurance"))
//!     .await?;
//! let all: Vec<_> = client.tenants().list(Default::default()).try_collect().await?;
//! # let _ = (tenant, all); Ok(()) }
//! ```
//!
//! Every operation of the API is a method, grouped by resource
//! (`client.tenants()`, `client.keys("acme")`, `client.webhooks()`, …).
//! Lists return a [`Stream`](futures_util::Stream) that follows
//! `next_cursor` page by page. Creating POSTs send an `Idempotency-Key`
//! (generated per call unless one is given with `.idempotency_key(..)`),
//! reused across the call's own retries, so a retried create returns the
//! first response. `429` is retried on every call (the server refused it
//! before doing anything), `503`, `409 idempotency_key_in_progress` and
//! transport failures only on calls that are safe to repeat (GET, PUT,
//! DELETE, or a POST carrying an idempotency key), with exponential
//! backoff and jitter, honouring `Retry-After`.

mod error;
mod page;
mod request;
pub mod resources;
mod retry;

pub use error::{ApiError, Error};
pub use page::{ItemStream, ListParams};
pub use request::new_idempotency_key;
pub use retry::{RetryPolicy, parse_retry_after};
/// The wire types, re-exported.
pub use tenantry_api as api;

use reqwest::header::{HeaderValue, USER_AGENT};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// A Tenantry API client. Cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// `Bearer <key>`, marked sensitive.
    auth: Option<HeaderValue>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("key", &self.inner.auth.as_ref().map(|_| "[redacted]"))
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:3007`)
    /// calling with `key` (a root, operator or tenant API key, or an access
    /// token), with the default timeout (30 s) and retry policy.
    pub fn new(base_url: &str, key: impl Into<String>) -> Result<Client, Error> {
        Client::builder(base_url).key(key).build()
    }

    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            key: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("tenantry-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
        }
    }

    /// The same client calling with another key (sharing the connection pool).
    pub fn with_key(&self, key: impl Into<String>) -> Result<Client, Error> {
        Ok(Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                auth: Some(bearer(key.into())?),
                retry: self.inner.retry,
            }),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }
}

fn bearer(key: String) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| Error::InvalidHeader("API key"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Options of a [`Client`].
pub struct ClientBuilder {
    base_url: String,
    key: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The key sent as `Authorization: Bearer`. Without one, calls are
    /// anonymous (health, widget verification, inbound webhooks).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The whole-request timeout of each attempt (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Retries after the first attempt (default 3; 0 disables retries).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base_url)
            .map_err(|e| Error::BaseUrl(format!("{}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::BaseUrl(format!(
                "{}: not an http(s) URL",
                self.base_url
            )));
        }
        // Segments are appended to the base path: drop a trailing '/'.
        if base.path().ends_with('/') {
            let trimmed = base.path().trim_end_matches('/').to_owned();
            base.set_path(&trimmed);
        }
        base.set_query(None);
        base.set_fragment(None);
        let auth = self.key.map(bearer).transpose()?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&self.user_agent)
                .map_err(|_| Error::InvalidHeader("user agent"))?,
        );
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport(e.without_url()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                retry: self.retry,
            }),
        })
    }
}
