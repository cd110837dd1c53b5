//! Plans, tenant configuration, meters, usage, quotas and rate limits.

use crate::page::{ListParams, stream};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use serde_json::Value;
use tenantry_api::config::{ConfigOut, ConfigVersionOut};
use tenantry_api::meters::{MeterIn, MeterList, MeterOut};
use tenantry_api::plans::{PlanList, PlanOut};
use tenantry_api::quotas::{QuotaCheckIn, QuotaDecision};
use tenantry_api::ratelimit::{RateLimitIn, RateLimitOut};
use tenantry_api::usage::{IngestOut, StatsOut, UsageOut, UsageParams};

impl Client {
    pub fn plans(&self) -> Plans {
        Plans {
            client: self.clone(),
        }
    }

    /// The configuration of `tenant` (overrides of its plan).
    pub fn config(&self, tenant: &str) -> Config {
        Config {
            client: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// Meters, usage events, usage series and statistics, quotas, rate limits.
    pub fn usage(&self) -> Usage {
        Usage {
            client: self.clone(),
            idempotency_key: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plans {
    client: Client,
}

impl Plans {
    /// `GET /v1/plans`
    pub async fn list(&self) -> Result<PlanList, Error> {
        self.client.call(Method::GET, &["v1", "plans"]).send().await
    }

    /// `PUT /v1/plans/{name}`: creates or replaces a plan's definition.
    pub async fn put(&self, name: &str, definition: &Value) -> Result<PlanOut, Error> {
        self.client
            .call(Method::PUT, &["v1", "plans", name])
            .json(definition)
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    client: Client,
    tenant: String,
}

impl Config {
    /// `GET /v1/tenants/{id}/config`: the effective configuration.
    pub async fn get(&self) -> Result<ConfigOut, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", &self.tenant, "config"])
            .send()
            .await
    }

    /// `PATCH /v1/tenants/{id}/config` (JSON merge patch of the overrides)
    pub async fn patch(&self, patch: &Value) -> Result<ConfigOut, Error> {
        self.client
            .call(Method::PATCH, &["v1", "tenants", &self.tenant, "config"])
            .json(patch)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/config/versions`
    pub fn versions(&self, params: ListParams) -> ItemStream<ConfigVersionOut> {
        stream(
            &self.client,
            &["v1", "tenants", &self.tenant, "config", "versions"],
            Vec::new(),
            params,
        )
    }
}

#[derive(Debug, Clone)]
pub struct Usage {
    client: Client,
    idempotency_key: Option<String>,
}

impl Usage {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `GET /v1/meters`
    pub async fn meters(&self) -> Result<MeterList, Error> {
        self.client
            .call(Method::GET, &["v1", "meters"])
            .send()
            .await
    }

    /// `POST /v1/meters`: a custom meter.
    pub async fn create_meter(&self, input: &MeterIn) -> Result<MeterOut, Error> {
        self.client
            .call(Method::POST, &["v1", "meters"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `POST /v1/usage/events`: one event object, or `{"events": [..]}`.
    /// Each event's own `id` makes it idempotent; the call also carries an
    /// `Idempotency-Key`.
    pub async fn ingest(&self, events: &Value) -> Result<IngestOut, Error> {
        self.client
            .call(Method::POST, &["v1", "usage", "events"])
            .creating(self.idempotency_key.clone())
            .json(events)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/usage`: one meter's series.
    pub async fn series(&self, tenant: &str, params: &UsageParams) -> Result<UsageOut, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", tenant, "usage"])
            .query_struct(params)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/stats`
    pub async fn stats(&self, tenant: &str) -> Result<StatsOut, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", tenant, "stats"])
            .send()
            .await
    }

    /// `POST /v1/quotas/check`: whether a quantity fits (and, with
    /// `consume`, takes it atomically).
    pub async fn check_quota(&self, input: &QuotaCheckIn) -> Result<QuotaDecision, Error> {
        self.client
            .call(Method::POST, &["v1", "quotas", "check"])
            .json(input)
            .send()
            .await
    }

    /// `POST /v1/ratelimit`: one GCRA decision.
    pub async fn ratelimit(&self, input: &RateLimitIn) -> Result<RateLimitOut, Error> {
        self.client
            .call(Method::POST, &["v1", "ratelimit"])
            .json(input)
            .send()
            .await
    }
}
