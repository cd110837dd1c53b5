//! What the layer is told: where Tenantry is, its service key, and which
//! resolution strategies apply.

use std::fmt;
use std::time::Duration;

/// How a request names its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The request's `Host` (a custom domain or a subdomain of Tenantry's
    /// base domain).
    Host,
    /// A tenant API key in `X-API-Key` or `Authorization: Bearer`.
    ApiKey,
    /// A signed token (a JWT) in `Authorization: Bearer`.
    Token,
}

/// The key the layer authenticates to Tenantry with: an operator key, or a
/// tenant key with scope `resolve:trusted` (either gets the full context).
/// Its `Debug` never shows it.
#[derive(Clone)]
pub struct ServiceKey(String);

impl ServiceKey {
    pub fn new(key: impl Into<String>) -> ServiceKey {
        ServiceKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceKey([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct LayerConfig {
    /// Tenantry's base URL, e.g. `http://127.0.0.1:3007`.
    pub tenantry_url: String,
    pub service_key: ServiceKey,
    /// Tried by Tenantry in its own chain order (domain → subdomain → key →
    /// token); only the configured inputs are sent.
    pub strategies: Vec<Strategy>,
    /// Most resolved requests cached.
    pub capacity: u64,
    /// A safety net only: changes evict entries as they happen.
    pub ttl: Duration,
    /// Refusals (unknown key, suspended tenant) are cached apart, shorter.
    pub refusal_ttl: Duration,
    /// Timeout of one call to `/v1/resolve`.
    pub resolve_timeout: Duration,
    /// No byte (not even a keep-alive comment) on the change stream for this
    /// long: the connection is taken for dead and the cache dropped.
    pub stream_idle_timeout: Duration,
    /// Reconnection backoff of the change stream: first and longest pause.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl LayerConfig {
    /// Defaults: every strategy, 100 000 entries, 5 minutes (refusals: 10 s).
    pub fn new(tenantry_url: impl Into<String>, service_key: ServiceKey) -> LayerConfig {
        LayerConfig {
            tenantry_url: tenantry_url.into().trim_end_matches('/').to_owned(),
            service_key,
            strategies: vec![Strategy::Host, Strategy::ApiKey, Strategy::Token],
            capacity: 100_000,
            ttl: Duration::from_secs(300),
            refusal_ttl: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(5),
            stream_idle_timeout: Duration::from_secs(45),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }

    pub fn strategies(mut self, strategies: &[Strategy]) -> LayerConfig {
        self.strategies = strategies.to_vec();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_key_never_shows_in_debug() {
        let config = LayerConfig::new("http://x", ServiceKey::new("tnt_op_supersecret"));
        let text = format!("{config:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("redacted"));
    }
}
