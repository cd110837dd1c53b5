//! The configuration document: plans and each tenant's effective
//! configuration, with the types both are made of. No I/O here: parsing and
//! validation are in [`super::validate`], the plan-plus-overrides merge in
//! [`super::effective`].

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::DEFAULT_MESSAGE_RETENTION_DAYS;
pub use tenantry_api::quotas::QuotaMode;

/// A rate limit: `limit` units per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub period_seconds: u64,
}

/// A quota on a meter per calendar month (UTC). `limit: None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub limit: Option<i64>,
    pub mode: QuotaMode,
    pub grace_percent: i64,
}

impl Quota {
    /// The most usage a consumer may reach: the limit, plus the grace for soft quotas.
    pub fn ceiling(&self) -> Option<i64> {
        self.limit.map(|limit| match self.mode {
            QuotaMode::Hard => limit,
            QuotaMode::Soft => limit.saturating_add(limit.saturating_mul(self.grace_percent) / 100),
        })
    }
}

/// A plan of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub quotas: BTreeMap<String, Option<i64>>,
    pub limits: BTreeMap<String, Option<i64>>,
    pub rate_limits: BTreeMap<String, RateLimit>,
    pub features: BTreeMap<String, bool>,
}

impl Plan {
    pub fn to_json(&self) -> Value {
        json!({
            "description": self.description,
            "quotas": self.quotas,
            "limits": self.limits,
            "rate_limits": self.rate_limits.iter().map(|(k, v)| (k.clone(), json!({"limit": v.limit, "period_seconds": v.period_seconds}))).collect::<Map<_, _>>(),
            "features": self.features,
        })
    }
}

/// A value of the effective configuration and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    /// `plan`, `tenant` or `default`.
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcedQuota {
    #[serde(flatten)]
    pub quota: Quota,
    pub period: &'static str,
    pub source: &'static str,
}

/// What is in force for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveConfig {
    pub plan: String,
    /// The configuration version in force (0: none stored yet).
    pub version: i64,
    pub rate_limits: BTreeMap<String, Sourced<RateLimit>>,
    pub retention_policy: BTreeMap<String, Sourced<i64>>,
    pub features: BTreeMap<String, Sourced<bool>>,
    pub branding: BTreeMap<String, Sourced<Option<String>>>,
    pub limits: BTreeMap<String, Sourced<Option<i64>>>,
    pub quotas: BTreeMap<String, SourcedQuota>,
    /// `summary()`, computed once: resolution answers carry it on every request.
    #[serde(skip)]
    pub summary: Value,
}

impl EffectiveConfig {
    pub fn quota(&self, meter: &str) -> Option<Quota> {
        self.quotas.get(meter).map(|q| q.quota)
    }

    pub fn rate_limit(&self, name: &str) -> Option<RateLimit> {
        self.rate_limits.get(name).map(|r| r.value)
    }

    pub fn retention_days(&self) -> i64 {
        self.retention_policy
            .get("message_retention_days")
            .map(|r| r.value)
            .unwrap_or(DEFAULT_MESSAGE_RETENTION_DAYS)
    }

    /// The tenant's own audit retention (`retention_policy.audit_retention_days`),
    /// if it sets one; otherwise the operator default applies.
    pub fn audit_retention_days(&self) -> Option<i64> {
        self.retention_policy
            .get("audit_retention_days")
            .map(|r| r.value)
    }

    /// The features and limits, as the resolution snapshot carries them.
    pub fn summary(&self) -> Value {
        self.summary.clone()
    }

    pub(super) fn compute_summary(&self) -> Value {
        json!({
            "features": self.features.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect::<Map<_, _>>(),
            "limits": self.limits.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect::<Map<_, _>>(),
            "rate_limits": self.rate_limits.iter().map(|(k, v)| (k.clone(), json!({"limit": v.value.limit, "period_seconds": v.value.period_seconds}))).collect::<Map<_, _>>(),
            "quotas": self.quotas.iter().map(|(k, v)| (k.clone(), json!(v.quota.limit))).collect::<Map<_, _>>(),
        })
    }
}
