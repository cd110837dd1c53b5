//! The effective configuration: a plan's defaults overridden by a tenant's
//! own (validated) overrides, applied with RFC 7396 merge patches.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::document::{EffectiveConfig, Plan, Quota, QuotaMode, Sourced, SourcedQuota};
use super::validate::parse_rate_limit;
use super::{DEFAULT_CONVERSATION_RETENTION_DAYS, DEFAULT_MESSAGE_RETENTION_DAYS, FEATURES};

/// RFC 7396 JSON merge patch: `null` removes.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(patch) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(target) = target {
            for (k, v) in patch {
                if v.is_null() {
                    target.remove(k);
                } else {
                    merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// Each entry as a value from `source`.
fn sourced<T>(
    entries: impl IntoIterator<Item = (String, T)>,
    source: &'static str,
) -> BTreeMap<String, Sourced<T>> {
    entries
        .into_iter()
        .map(|(k, value)| (k, Sourced { value, source }))
        .collect()
}

/// Sets every entry of the overrides' `section` that `value` accepts, as
/// the tenant's own (entries it refuses keep what was there).
fn overlay<T>(
    target: &mut BTreeMap<String, Sourced<T>>,
    overrides: &Value,
    section: &str,
    value: impl Fn(&str, &Value) -> Option<T>,
) {
    let Some(entries) = overrides.get(section).and_then(Value::as_object) else {
        return;
    };
    for (k, v) in entries {
        if let Some(value) = value(k, v) {
            target.insert(
                k.clone(),
                Sourced {
                    value,
                    source: "tenant",
                },
            );
        }
    }
}

/// A quota override on top of `base` (the plan's, or unlimited and hard).
fn quota_override(base: Quota, q: &Value) -> Quota {
    Quota {
        limit: match q.get("limit") {
            Some(Value::Null) => None,
            Some(v) => v.as_i64().or(base.limit),
            None => base.limit,
        },
        mode: match q.get("mode").and_then(Value::as_str) {
            Some("soft") => QuotaMode::Soft,
            Some(_) => QuotaMode::Hard,
            None => base.mode,
        },
        grace_percent: q
            .get("grace_percent")
            .and_then(Value::as_i64)
            .unwrap_or(base.grace_percent),
    }
}

/// The plan's defaults overridden by the tenant's (validated) overrides.
pub fn effective(plan: &Plan, overrides: &Value, version: i64) -> EffectiveConfig {
    let unlimited = Quota {
        limit: None,
        mode: QuotaMode::Hard,
        grace_percent: 0,
    };
    let mut features = sourced(FEATURES.iter().map(|f| (f.to_string(), false)), "default");
    features.extend(sourced(plan.features.clone(), "plan"));
    let mut config = EffectiveConfig {
        summary: Value::Null,
        plan: plan.name.clone(),
        version,
        rate_limits: sourced(plan.rate_limits.clone(), "plan"),
        retention_policy: sourced(
            [
                (
                    "message_retention_days".to_owned(),
                    DEFAULT_MESSAGE_RETENTION_DAYS,
                ),
                (
                    "conversation_retention_days".to_owned(),
                    DEFAULT_CONVERSATION_RETENTION_DAYS,
                ),
            ],
            "default",
        ),
        features,
        branding: sourced(
            ["logo_url", "primary_color", "company_name"].map(|b| (b.to_owned(), None)),
            "default",
        ),
        limits: sourced(plan.limits.clone(), "plan"),
        quotas: plan
            .quotas
            .iter()
            .map(|(k, limit)| {
                (
                    k.clone(),
                    SourcedQuota {
                        quota: Quota {
                            limit: *limit,
                            ..unlimited
                        },
                        period: "month",
                        source: "plan",
                    },
                )
            })
            .collect(),
    };
    overlay(&mut config.rate_limits, overrides, "rate_limits", |k, v| {
        parse_rate_limit(String::new(), k, v).ok()
    });
    overlay(
        &mut config.retention_policy,
        overrides,
        "retention_policy",
        |_, v| v.as_i64(),
    );
    overlay(&mut config.features, overrides, "features", |_, v| {
        v.as_bool()
    });
    overlay(&mut config.branding, overrides, "branding", |_, v| {
        Some(v.as_str().map(str::to_owned))
    });
    if let Some(quotas) = overrides.get("quotas").and_then(Value::as_object) {
        for (meter, q) in quotas {
            let base = config
                .quotas
                .get(meter)
                .map(|s| s.quota)
                .unwrap_or(unlimited);
            config.quotas.insert(
                meter.clone(),
                SourcedQuota {
                    quota: quota_override(base, q),
                    period: "month",
                    source: "tenant",
                },
            );
        }
    }
    config.summary = config.compute_summary();
    config
}
