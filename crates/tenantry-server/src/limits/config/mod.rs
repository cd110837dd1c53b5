//! Plans and each tenant's effective configuration: the plan's defaults
//! overridden by the tenant's own settings, every value saying where it
//! came from. Overrides are validated field by field and versioned.
//!
//! One module per concern: the document's types ([`document`]), parsing and
//! validation ([`validate`]), and the merge into what is in force
//! ([`effective`]).

mod document;
mod effective;
mod validate;

pub use document::{EffectiveConfig, Plan, Quota, QuotaMode, RateLimit, Sourced, SourcedQuota};
pub use effective::{effective, merge_patch};
pub use validate::{implied_period, validate_overrides};

pub const FEATURES: &[&str] = &["template_messages", "media_messages", "analytics"];
pub const DEFAULT_MESSAGE_RETENTION_DAYS: i64 = 90;
pub const DEFAULT_CONVERSATION_RETENTION_DAYS: i64 = 90;
/// Quota thresholds (percent of the limit) reported once per period.
pub const ALERT_THRESHOLDS: &[i32] = &[80, 100];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

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
