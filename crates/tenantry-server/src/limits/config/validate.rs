//! Validation of plan definitions and tenant overrides: every error names
//! the field path it is about.

use serde_json::Value;
use std::collections::BTreeMap;
use tenantry_core::ValidationError;

use super::document::{Plan, RateLimit};

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

pub(super) fn parse_rate_limit(
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

/// Parses every entry of the named map `section` with `parse`, collecting
/// the errors of the map and of each entry.
fn parse_entries<T>(
    errors: &mut Vec<ValidationError>,
    section: &str,
    value: Option<&Value>,
    parse: impl Fn(&str, &Value) -> Result<T, ValidationError>,
) -> BTreeMap<String, T> {
    let mut parsed = BTreeMap::new();
    match named_map(section, value) {
        Ok(entries) => {
            for (k, v) in entries {
                match parse(k, v) {
                    Ok(value) => {
                        parsed.insert(k.clone(), value);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        Err(e) => errors.push(e),
    }
    parsed
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
        let quotas = parse_entries(&mut errors, "quotas", map.get("quotas"), |k, v| {
            optional_count(format!("quotas.{k}"), v)
        });
        let limits = parse_entries(&mut errors, "limits", map.get("limits"), |k, v| {
            optional_count(format!("limits.{k}"), v)
        });
        let rate_limits = parse_entries(
            &mut errors,
            "rate_limits",
            map.get("rate_limits"),
            |k, v| parse_rate_limit(format!("rate_limits.{k}"), k, v),
        );
        let features = parse_entries(&mut errors, "features", map.get("features"), |k, v| {
            v.as_bool().ok_or_else(|| {
                err(
                    format!("features.{k}"),
                    "invalid_type",
                    "must be true or false",
                )
            })
        });
        let plan = Plan {
            name: name.to_owned(),
            description,
            quotas,
            limits,
            rate_limits,
            features,
        };
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
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
