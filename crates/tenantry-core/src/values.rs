//! Validated values that tenants carry: names, subdomains, custom domains,
//! plans, regions and metadata.

use crate::error::ValidationError;
use crate::ids::check_slug;
use serde::Serialize;
use std::fmt;

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Rebuilds a value read back from storage (validated on the way in).
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// A display name: 1–200 characters, no control characters, trimmed.
    TenantName
);
string_value!(
    /// The tenant's label under the base domain (`acme` in `acme.example.com`).
    Subdomain
);
string_value!(
    /// A custom domain (`support.acme.com`), lowercase, without trailing dot.
    Hostname
);
string_value!(
    /// A plan name such as `starter`: `[a-z0-9_-]`, 1–63 characters.
    PlanName
);
string_value!(
    /// A region name such as `eu-west-1`: `[a-z0-9-]`, 1–63 characters.
    Region
);

/// The most characters of a display name.
pub const NAME_MAX: usize = 200;
/// The most characters of a plan or region name.
pub const SIMPLE_NAME_MAX: usize = 63;

impl TenantName {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new(field, "required", "must not be empty"));
        }
        // Counted before trimming, as a schema's maxLength counts.
        if value.chars().count() > NAME_MAX {
            return Err(ValidationError::new(
                field,
                "too_long",
                "must be at most 200 characters",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "invalid_characters",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl Subdomain {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        check_slug(field, value)?;
        Ok(Self(value.to_owned()))
    }
}

impl Hostname {
    /// Accepts a DNS hostname of at least two labels. Upper case is folded and
    /// one trailing dot dropped; IP addresses, ports, wildcards and
    /// all-numeric top-level labels are refused.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        let invalid =
            |message: &'static str| ValidationError::new(field, "invalid_hostname", message);
        let lowered = value
            .strip_suffix('.')
            .unwrap_or(value)
            .to_ascii_lowercase();
        if lowered.is_empty() || lowered.len() > 253 {
            return Err(invalid("must be a hostname of 1 to 253 characters"));
        }
        let labels: Vec<&str> = lowered.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("must have at least two labels, like example.com"));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(invalid("each label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid("labels may contain only letters, digits and '-'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("labels may not start or end with '-'"));
            }
        }
        // Every top-level domain starts with a letter (`xn--…` included);
        // this also refuses IP addresses.
        if labels
            .last()
            .is_some_and(|tld| !tld.starts_with(|c: char| c.is_ascii_lowercase()))
        {
            return Err(invalid("must be a hostname, not an IP address"));
        }
        Ok(Self(lowered))
    }
}

/// Top-level names that never belong to one tenant on the public DNS, so a
/// custom domain under them is refused: loopback (`localhost`, RFC 6761),
/// multicast DNS (`local`, RFC 6762), private networks (`internal`,
/// `localdomain`, `home.arpa` and the reverse zones under `arpa`), names
/// that cannot resolve (`invalid`, `onion`, `alt`). `test` and `example`
/// stay allowed, for staging setups with their own resolver.
pub const RESERVED_DOMAIN_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "localdomain",
    "arpa",
    "invalid",
    "onion",
    "alt",
];

impl Hostname {
    /// Whether this name is `base` itself or a name under it.
    pub fn is_within(&self, base: &Hostname) -> bool {
        self.0 == base.0
            || self
                .0
                .strip_suffix(base.0.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    }

    /// Refuses a name that may not be a tenant's custom domain: the base
    /// domain, any name under it (those are the tenants' subdomains, and
    /// `admin.<base>` and the like are the operator's), and the reserved
    /// names of [`RESERVED_DOMAIN_SUFFIXES`]. Single labels and IP literals
    /// never parse as a [`Hostname`].
    pub fn check_claimable(
        &self,
        field: &'static str,
        base_domain: Option<&Hostname>,
    ) -> Result<(), ValidationError> {
        if let Some(base) = base_domain
            && self.is_within(base)
        {
            return Err(ValidationError::new(
                field,
                "reserved_domain",
                format!("names under the base domain {base} are subdomains, not custom domains"),
            ));
        }
        let tld = self.0.rsplit('.').next().unwrap_or_default();
        if RESERVED_DOMAIN_SUFFIXES.contains(&tld) {
            return Err(ValidationError::new(
                field,
                "reserved_domain",
                format!("names under .{tld} are reserved and cannot be a custom domain"),
            ));
        }
        Ok(())
    }
}

fn simple_name(
    field: &'static str,
    value: &str,
    allowed: impl Fn(u8) -> bool,
    what: &'static str,
) -> Result<String, ValidationError> {
    if value.is_empty() || value.len() > SIMPLE_NAME_MAX {
        return Err(ValidationError::new(
            field,
            "invalid_length",
            "must be 1 to 63 characters long",
        ));
    }
    if !value.bytes().all(allowed) {
        return Err(ValidationError::new(field, "invalid_characters", what));
    }
    Ok(value.to_owned())
}

impl PlanName {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        simple_name(
            field,
            value,
            |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_',
            "may contain only a-z, 0-9, '-' and '_'",
        )
        .map(Self)
    }
}

impl Region {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        simple_name(
            field,
            value,
            |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-',
            "may contain only a-z, 0-9 and '-'",
        )
        .map(Self)
    }
}

/// Free-form tenant metadata: a JSON object of at most 64 keys, keys of at
/// most 64 characters, 16 KiB serialized.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Metadata(serde_json::Map<String, serde_json::Value>);

impl Metadata {
    pub const MAX_KEYS: usize = 64;
    pub const MAX_BYTES: usize = 16 * 1024;
    /// The most characters of a key.
    pub const MAX_KEY_CHARS: usize = 64;

    pub fn empty() -> Self {
        Self(serde_json::Map::new())
    }

    pub fn parse(field: &'static str, value: serde_json::Value) -> Result<Self, ValidationError> {
        let serde_json::Value::Object(map) = value else {
            return Err(ValidationError::new(
                field,
                "invalid_type",
                "must be a JSON object",
            ));
        };
        if map.len() > Self::MAX_KEYS {
            return Err(ValidationError::new(
                field,
                "too_many_keys",
                "may have at most 64 keys",
            ));
        }
        if let Some(key) = map
            .keys()
            .find(|k| k.is_empty() || k.chars().count() > Self::MAX_KEY_CHARS)
        {
            return Err(ValidationError::new(
                format!("{field}.{key}"),
                "invalid_key",
                "keys must be 1 to 64 characters",
            ));
        }
        let size = serde_json::to_vec(&map)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > Self::MAX_BYTES {
            return Err(ValidationError::new(
                field,
                "too_large",
                "must be at most 16 KiB when serialized",
            ));
        }
        Ok(Self(map))
    }

    pub fn from_trusted(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(map)
    }

    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    pub fn into_value(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            Hostname::parse("domain", "Support.Acme.COM.").map(|h| h.0),
            Ok("support.acme.com".to_owned())
        );
        for bad in [
            "",
            "localhost",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "1.2.3.4",
            "*.acme.com",
            "acme.com:80",
            "acme .com",
            "http://acme.com",
        ] {
            assert!(Hostname::parse("domain", bad).is_err(), "{bad}");
        }
        assert!(Hostname::parse("domain", &format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn claimable_domains() {
        let base = Hostname::parse("b", "example.com").ok();
        let check = |d: &str| {
            Hostname::parse("domain", d)
                .and_then(|h| h.check_claimable("domain", base.as_ref()))
                .is_ok()
        };
        for refused in [
            "example.com",
            "b.example.com",
            "admin.example.com",
            "a.b.example.com",
            "app.localhost",
            "printer.local",
            "db.internal",
            "x.home.arpa",
            "4.3.2.1.in-addr.arpa",
            "a.invalid",
            "x.onion",
        ] {
            assert!(!check(refused), "{refused}");
        }
        for allowed in [
            "support.b-corp.com",
            "notexample.com",
            "example.com.au",
            "a.test",
        ] {
            assert!(check(allowed), "{allowed}");
        }
    }

    #[test]
    fn metadata() {
        assert!(Metadata::parse("metadata", serde_json::json!({"a": 1})).is_ok());
        assert!(Metadata::parse("metadata", serde_json::json!([1])).is_err());
        let big: serde_json::Map<_, _> = (0..65)
            .map(|i| (format!("k{i}"), serde_json::json!(1)))
            .collect();
        assert!(Metadata::parse("metadata", serde_json::Value::Object(big)).is_err());
    }
}
