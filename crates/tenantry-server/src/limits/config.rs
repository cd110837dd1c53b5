//! Plans and each tenant's effective configuration: the plan's defaults
//! overridden by the tenant's own settings, every value saying where it
//! came from. Overrides are validated field by field and versioned.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tenantry_core::ValidationError;

pub const FEATURES: &[&str] = &["template_messages", "media_messages", "analytics"];
pub const DEFAULT_MESSAGE_RETENTION_DAYS: i64 = 90;
pub const DEFAULT_CONVERSATION_RETENTION_DAYS: i64 = 90;
/// Quota thresholds (percent of the limit) reported once per period.
pub const ALERT_THRESHOLDS: &[i32] = &[80, 100];

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn err(field: String, code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(field, code, message)
}

/// The period of a rate limit whose name says it (`…_per_minute`).
pub fn implied_period(name: &str) -> Option<u64> {
    [
        ("_per_second", 1),
        ("_per_minute", 60),
        ("_per_hour", 3600),
        ("_per_day", 86_400),
    ]
    .iter()
    .find(|(suffix, _)| name.ends_with(suffix))
    .map(|(_, s)| *s)
}

/// A rate limit: `limit` units per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub period_seconds: u64,
}

fn parse_rate_limit(
    field: String,
    name: &str,
    value: &Value,
) -> Result<RateLimit, ValidationError> {
    let positive = |v: &Value| v.as_u64().filter(|n| *n > 0 && *n <= 1_000_000_000);
    match value {
        Value::Object(map) => {
            let limit = map.get("limit").and_then(positive).ok_or_else(|| {
                err(
                    format!("{field}.limit"),
                    "invalid_value",
                    "must be a whole number from 1 to 1000000000",
                )
            })?;
            let period = map
                .get("period_seconds")
                .and_then(|v| v.as_u64().filter(|n| *n > 0 && *n <= 31 * 86_400))
                .ok_or_else(|| {
                    err(
                        format!("{field}.period_seconds"),
                        "invalid_value",
                        "must be a whole number of seconds from 1 to 2678400",
                    )
                })?;
            if map.keys().any(|k| k != "limit" && k != "period_seconds") {
                return Err(err(
                    field,
                    "unknown_field",
                    "takes only limit and period_seconds",
                ));
            }
            Ok(RateLimit {
                limit,
                period_seconds: period,
            })
        }
        other => {
            let limit = positive(other).ok_or_else(|| {
                err(
                    field.clone(),
                    "invalid_value",
                    "must be a whole number from 1 to 1000000000, or {limit, period_seconds}",
                )
            })?;
            let period = implied_period(name).ok_or_else(|| {
                err(
                    field,
                    "period_required",
                    "name it …_per_minute/_per_hour/… or give {limit, period_seconds}",
                )
            })?;
            Ok(RateLimit {
                limit,
                period_seconds: period,
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaMode {
    Hard,
    Soft,
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

fn optional_count(field: String, value: &Value) -> Result<Option<i64>, ValidationError> {
    match value {
        Value::Null => Ok(None),
        v => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
            err(
                field,
                "invalid_value",
                "must be a whole number ≥ 0, or null for unlimited",
            )
        }),
    }
}

fn named_map<'a>(
    field: &str,
    value: Option<&'a Value>,
) -> Result<Vec<(&'a String, &'a Value)>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => {
            if let Some(bad) = map.keys().find(|k| !name_ok(k)) {
                return Err(err(
                    format!("{field}.{bad}"),
                    "invalid_name",
                    "names are 1 to 63 characters of a-z, 0-9 and '_'",
                ));
            }
            Ok(map.iter().collect())
        }
        Some(_) => Err(err(field.to_owned(), "invalid_type", "must be an object")),
    }
}

impl Plan {
    /// Parses and validates a plan definition (the body of `PUT /v1/plans/{name}`).
    pub fn parse(name: &str, definition: &Value) -> Result<Plan, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let Value::Object(map) = definition else {
            return Err(vec![err(
                "body".into(),
                "invalid_type",
                "must be a JSON object",
            )]);
        };
        for key in map.keys() {
            if !["description", "quotas", "limits", "rate_limits", "features"]
                .contains(&key.as_str())
            {
                errors.push(err(
                    key.clone(),
                    "unknown_field",
                    "plans take description, quotas, limits, rate_limits and features",
                ));
            }
        }
        let description = match map.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if s.chars().count() <= 500 => s.clone(),
            Some(_) => {
                errors.push(err(
                    "description".into(),
                    "invalid_value",
                    "must be a string of at most 500 characters",
                ));
                String::new()
            }
        };
        let mut plan = Plan {
            name: name.to_owned(),
            description,
            quotas: BTreeMap::new(),
            limits: BTreeMap::new(),
            rate_limits: BTreeMap::new(),
            features: BTreeMap::new(),
        };
        for (section, target) in [("quotas", &mut plan.quotas), ("limits", &mut plan.limits)] {
            match named_map(section, map.get(section)) {
                Ok(entries) => {
                    for (k, v) in entries {
                        match optional_count(format!("{section}.{k}"), v) {
                            Ok(n) => {
                                target.insert(k.clone(), n);
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        match named_map("rate_limits", map.get("rate_limits")) {
            Ok(entries) => {
                for (k, v) in entries {
                    match parse_rate_limit(format!("rate_limits.{k}"), k, v) {
                        Ok(rl) => {
                            plan.rate_limits.insert(k.clone(), rl);
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        match named_map("features", map.get("features")) {
            Ok(entries) => {
                for (k, v) in entries {
                    match v.as_bool() {
                        Some(b) => {
                            plan.features.insert(k.clone(), b);
                        }
                        None => errors.push(err(
                            format!("features.{k}"),
                            "invalid_type",
                            "must be true or false",
                        )),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

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

    fn compute_summary(&self) -> Value {
        json!({
            "features": self.features.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect::<Map<_, _>>(),
            "limits": self.limits.iter().map(|(k, v)| (k.clone(), json!(v.value))).collect::<Map<_, _>>(),
            "rate_limits": self.rate_limits.iter().map(|(k, v)| (k.clone(), json!({"limit": v.value.limit, "period_seconds": v.value.period_seconds}))).collect::<Map<_, _>>(),
            "quotas": self.quotas.iter().map(|(k, v)| (k.clone(), json!(v.quota.limit))).collect::<Map<_, _>>(),
        })
    }
}

/// Validates stored-or-patched overrides; errors name the field path.
pub fn validate_overrides(overrides: &Value) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    let Value::Object(map) = overrides else {
        return Err(vec![err(
            "body".into(),
            "invalid_type",
            "must be a JSON object",
        )]);
    };
    for (key, value) in map {
        match key.as_str() {
            "rate_limits" => match named_map("rate_limits", Some(value)) {
                Ok(entries) => {
                    for (k, v) in entries {
                        if let Err(e) = parse_rate_limit(format!("rate_limits.{k}"), k, v) {
                            errors.push(e);
                        }
                    }
                }
                Err(e) => errors.push(e),
            },
            "retention_policy" => match value {
                Value::Object(policy) => {
                    for (k, v) in policy {
                        if k != "message_retention_days" && k != "conversation_retention_days" && k != "audit_retention_days" {
                            errors.push(err(format!("retention_policy.{k}"), "unknown_field", "takes message_retention_days, conversation_retention_days and audit_retention_days"));
                        } else if !v.as_i64().is_some_and(|d| (1..=3650).contains(&d)) {
                            errors.push(err(format!("retention_policy.{k}"), "invalid_value", "must be a whole number of days from 1 to 3650"));
                        }
                    }
                }
                _ => errors.push(err("retention_policy".into(), "invalid_type", "must be an object")),
            },
            "features" => match named_map("features", Some(value)) {
                Ok(entries) => {
                    for (k, v) in entries {
                        if !v.is_boolean() {
                            errors.push(err(format!("features.{k}"), "invalid_type", "must be true or false"));
                        }
                    }
                }
                Err(e) => errors.push(e),
            },
            "branding" => match value {
                Value::Object(branding) => {
                    for (k, v) in branding {
                        let field = format!("branding.{k}");
                        let s = v.as_str();
                        match k.as_str() {
                            "logo_url" => {
                                let ok = s.is_some_and(|u| {
                                    u.len() <= 2048
                                        && u.strip_prefix("https://").is_some_and(|rest| {
                                            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                                            !host.is_empty() && !rest.contains(char::is_whitespace)
                                        })
                                });
                                if !ok {
                                    errors.push(err(field, "invalid_url", "must be an https:// URL"));
                                }
                            }
                            "primary_color" => {
                                let ok = s.is_some_and(|c| c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()));
                                if !ok {
                                    errors.push(err(field, "invalid_color", "must be a colour like #1a2b3c"));
                                }
                            }
                            "company_name" => {
                                if !s.is_some_and(|n| !n.trim().is_empty() && n.chars().count() <= 200 && !n.chars().any(char::is_control)) {
                                    errors.push(err(field, "invalid_value", "must be 1 to 200 printable characters"));
                                }
                            }
                            _ => errors.push(err(field, "unknown_field", "branding takes logo_url, primary_color and company_name")),
                        }
                    }
                }
                _ => errors.push(err("branding".into(), "invalid_type", "must be an object")),
            },
            "quotas" => match named_map("quotas", Some(value)) {
                Ok(entries) => {
                    for (meter, q) in entries {
                        let field = format!("quotas.{meter}");
                        let Value::Object(q) = q else {
                            errors.push(err(field, "invalid_type", "must be {limit, mode?, grace_percent?}"));
                            continue;
                        };
                        for (k, v) in q {
                            let ok = match k.as_str() {
                                "limit" => v.is_null() || v.as_i64().is_some_and(|n| n >= 0),
                                "mode" => v.as_str().is_some_and(|m| m == "hard" || m == "soft"),
                                "grace_percent" => v.as_i64().is_some_and(|n| (0..=100).contains(&n)),
                                _ => {
                                    errors.push(err(format!("{field}.{k}"), "unknown_field", "quotas take limit, mode and grace_percent"));
                                    continue;
                                }
                            };
                            if !ok {
                                errors.push(err(format!("{field}.{k}"), "invalid_value", match k.as_str() {
                                    "limit" => "must be a whole number ≥ 0, or null for unlimited",
                                    "mode" => "must be 'hard' or 'soft'",
                                    _ => "must be a whole number from 0 to 100",
                                }));
                            }
                        }
                        if !q.contains_key("limit") {
                            errors.push(err(format!("{field}.limit"), "required", "is required (null for unlimited)"));
                        }
                    }
                }
                Err(e) => errors.push(e),
            },
            other => errors.push(err(other.to_owned(), "unknown_field", "the configuration takes rate_limits, retention_policy, features, branding and quotas")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

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

/// The plan's defaults overridden by the tenant's (validated) overrides.
pub fn effective(plan: &Plan, overrides: &Value, version: i64) -> EffectiveConfig {
    let section = |name: &str| {
        overrides
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut config = EffectiveConfig {
        summary: Value::Null,
        plan: plan.name.clone(),
        version,
        rate_limits: plan
            .rate_limits
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Sourced {
                        value: *v,
                        source: "plan",
                    },
                )
            })
            .collect(),
        retention_policy: BTreeMap::from([
            (
                "message_retention_days".to_owned(),
                Sourced {
                    value: DEFAULT_MESSAGE_RETENTION_DAYS,
                    source: "default",
                },
            ),
            (
                "conversation_retention_days".to_owned(),
                Sourced {
                    value: DEFAULT_CONVERSATION_RETENTION_DAYS,
                    source: "default",
                },
            ),
        ]),
        features: FEATURES
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    Sourced {
                        value: false,
                        source: "default",
                    },
                )
            })
            .collect(),
        branding: ["logo_url", "primary_color", "company_name"]
            .iter()
            .map(|b| {
                (
                    b.to_string(),
                    Sourced {
                        value: None,
                        source: "default",
                    },
                )
            })
            .collect(),
        limits: plan
            .limits
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Sourced {
                        value: *v,
                        source: "plan",
                    },
                )
            })
            .collect(),
        quotas: plan
            .quotas
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    SourcedQuota {
                        quota: Quota {
                            limit: *v,
                            mode: QuotaMode::Hard,
                            grace_percent: 0,
                        },
                        period: "month",
                        source: "plan",
                    },
                )
            })
            .collect(),
    };
    for (k, v) in &plan.features {
        config.features.insert(
            k.clone(),
            Sourced {
                value: *v,
                source: "plan",
            },
        );
    }
    for (k, v) in section("rate_limits") {
        if let Ok(rl) = parse_rate_limit(String::new(), &k, &v) {
            config.rate_limits.insert(
                k,
                Sourced {
                    value: rl,
                    source: "tenant",
                },
            );
        }
    }
    for (k, v) in section("retention_policy") {
        if let Some(d) = v.as_i64() {
            config.retention_policy.insert(
                k,
                Sourced {
                    value: d,
                    source: "tenant",
                },
            );
        }
    }
    for (k, v) in section("features") {
        if let Some(b) = v.as_bool() {
            config.features.insert(
                k,
                Sourced {
                    value: b,
                    source: "tenant",
                },
            );
        }
    }
    for (k, v) in section("branding") {
        config.branding.insert(
            k,
            Sourced {
                value: v.as_str().map(str::to_owned),
                source: "tenant",
            },
        );
    }
    for (meter, q) in section("quotas") {
        let base = config.quotas.get(&meter).map(|s| s.quota).unwrap_or(Quota {
            limit: None,
            mode: QuotaMode::Hard,
            grace_percent: 0,
        });
        let quota = Quota {
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
        };
        config.quotas.insert(
            meter,
            SourcedQuota {
                quota,
                period: "month",
                source: "tenant",
            },
        );
    }
    config.summary = config.compute_summary();
    config
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn starter() -> Plan {
        Plan::parse(
            "starter",
            &json!({"quotas": {"messages_outbound": 1000}, "limits": {"agents": 5}, "rate_limits": {"messages_per_minute": 60, "api_calls_per_hour": 1000}, "features": {"analytics": false}}),
        )
        .expect("valid")
    }

    #[test]
    fn overrides_win_and_say_so() {
        let overrides = json!({"rate_limits": {"messages_per_minute": 120}, "features": {"analytics": true}, "quotas": {"messages_outbound": {"limit": 50, "mode": "soft", "grace_percent": 10}}});
        validate_overrides(&overrides).expect("valid");
        let c = effective(&starter(), &overrides, 2);
        assert_eq!(
            c.rate_limits["messages_per_minute"],
            Sourced {
                value: RateLimit {
                    limit: 120,
                    period_seconds: 60
                },
                source: "tenant"
            }
        );
        assert_eq!(c.rate_limits["api_calls_per_hour"].source, "plan");
        assert_eq!(
            c.features["analytics"],
            Sourced {
                value: true,
                source: "tenant"
            }
        );
        assert_eq!(
            c.retention_policy["message_retention_days"].source,
            "default"
        );
        assert_eq!(
            c.quota("messages_outbound").and_then(|q| q.ceiling()),
            Some(55)
        );
    }

    #[test]
    fn invalid_overrides_name_the_field() {
        let cases = [
            (
                json!({"branding": {"primary_color": "red"}}),
                "branding.primary_color",
            ),
            (
                json!({"branding": {"logo_url": "http://x.com/l.png"}}),
                "branding.logo_url",
            ),
            (
                json!({"retention_policy": {"message_retention_days": 0}}),
                "retention_policy.message_retention_days",
            ),
            (
                json!({"rate_limits": {"messages_per_minute": -1}}),
                "rate_limits.messages_per_minute",
            ),
            (json!({"rate_limits": {"bursts": 5}}), "rate_limits.bursts"),
            (
                json!({"quotas": {"messages_outbound": {"mode": "strict", "limit": 1}}}),
                "quotas.messages_outbound.mode",
            ),
            (json!({"colour": 1}), "colour"),
        ];
        for (value, field) in cases {
            let errors = validate_overrides(&value).expect_err("invalid");
            assert_eq!(errors[0].field, field, "{value}");
        }
    }

    #[test]
    fn merge_patch_removes_with_null() {
        let mut v = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut v, &json!({"a": {"b": null, "d": 3}}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}}));
    }
}
