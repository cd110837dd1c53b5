//! Health, readiness and metrics.

use crate::{Client, Error};
use reqwest::Method;
use tenantry_api::health::Health;

impl Client {
    /// `GET /healthz`
    pub async fn healthz(&self) -> Result<Health, Error> {
        self.call(Method::GET, &["healthz"])
            .anonymous()
            .send()
            .await
    }

    /// `GET /readyz`: `503` (an [`Error::Api`]) while a dependency is down.
    pub async fn readyz(&self) -> Result<Health, Error> {
        self.call(Method::GET, &["readyz"]).anonymous().send().await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, Error> {
        self.call(Method::GET, &["metrics"]).send_text().await
    }
}
