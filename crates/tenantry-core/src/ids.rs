//! Identifiers. The tenant id is its slug; every other id is a prefixed
//! random string (`key_…`, `evt_…`).

use crate::error::ValidationError;
use serde::{Serialize, Serializer};
use std::fmt;

/// Names a tenant may not take, as id or subdomain: they collide with the
/// product's own hosts and paths.
pub const RESERVED_NAMES: &[&str] = &[
    "admin",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "console",
    "dashboard",
    "default",
    "dev",
    "docs",
    "ftp",
    "help",
    "internal",
    "localhost",
    "login",
    "mail",
    "metrics",
    "null",
    "operator",
    "root",
    "smtp",
    "static",
    "status",
    "support",
    "system",
    "tenantry",
    "test",
    "undefined",
    "www",
];

/// The length of a slug, in characters (all ASCII).
pub const SLUG_MIN: usize = 3;
pub const SLUG_MAX: usize = 63;

/// Checks the shared slug rules (also used for subdomains): 3–63 characters of
/// `[a-z0-9]` with inner `-`, and not a reserved name.
pub fn check_slug(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let len = value.len();
    if !(SLUG_MIN..=SLUG_MAX).contains(&len) {
        return Err(ValidationError::new(
            field,
            "invalid_length",
            "must be 3 to 63 characters long",
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ValidationError::new(
            field,
            "invalid_characters",
            "may contain only lowercase letters a-z, digits and '-'",
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(ValidationError::new(
            field,
            "invalid_format",
            "may not start or end with '-'",
        ));
    }
    if RESERVED_NAMES.contains(&value) {
        return Err(ValidationError::new(
            field,
            "reserved_name",
            format!("'{value}' is reserved"),
        ));
    }
    Ok(())
}

/// A tenant's id: its slug. Only [`TenantId::parse`] makes one, so holding a
/// `TenantId` means the value is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_slug("id", value)?;
        Ok(Self(value.to_owned()))
    }

    /// Rebuilds an id read back from storage, where it was validated on the
    /// way in. Not for input from callers.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A random, prefixed identifier such as `evt_3kTMd9Qv…`: the prefix names the
/// kind of thing, the rest is 128 bits from the caller's CSPRNG in base62.
pub fn prefixed_id(prefix: &str, random: u128) -> String {
    format!("{prefix}_{}", base62(random))
}

/// Like [`prefixed_id`], but ids made later sort after ids made earlier:
/// the high 48 bits are the time in milliseconds, the low 80 bits random.
pub fn sortable_id(prefix: &str, unix_millis: u64, random: u128) -> String {
    let time = u128::from(unix_millis & ((1 << 48) - 1)) << 80;
    let random = random & ((1u128 << 80) - 1);
    prefixed_id(prefix, time | random)
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of a 128-bit number, fixed width (22 characters) so ids sort and
/// compare by length consistently.
pub fn base62(mut n: u128) -> String {
    let mut out = [b'0'; 22];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "a-b", "abc", "x1-2-3", &"a".repeat(63)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "ABC",
            "a_b",
            "a b",
            "www",
            "api",
            "admin",
            "app",
            "console",
            "",
            "é-abc",
            &"a".repeat(64),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sortable_ids_sort_by_time() {
        let a = sortable_id("evt", 1_000, u128::MAX);
        let b = sortable_id("evt", 1_001, 0);
        assert!(a < b);
    }

    #[test]
    fn base62_is_fixed_width() {
        assert_eq!(base62(0).len(), 22);
        assert_eq!(base62(u128::MAX).len(), 22);
        assert_ne!(base62(1), base62(2));
    }
}
