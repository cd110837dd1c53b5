//! API keys: their format, scopes and the outcome of verifying one.
//!
//! A key looks like `tnt_sk_live_<32 base62><6 base62>`:
//! - `tnt` — the product prefix, so secret scanners can find keys;
//! - `sk` (a tenant's secret key) or `op` (an operator key);
//! - `live` or `test` — the environment;
//! - 32 base62 characters from the OS CSPRNG (≈190 bits of entropy);
//! - a 6-character base62 CRC32 of everything before it, so a mistyped or
//!   made-up key is rejected without any database access.
//!
//! Regex for scanners: `\btnt_(?:sk|op)_(?:live|test)_[0-9A-Za-z]{38}\b`

use crate::error::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub const PREFIX: &str = "tnt";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// Characters of a key kept for display (`tnt_sk_live_AbCd`).
pub const START_LEN: usize = 16;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A tenant's secret key (`sk`).
    Tenant,
    /// An operator key (`op`).
    Operator,
}

impl KeyKind {
    fn code(self) -> &'static str {
        match self {
            KeyKind::Tenant => "sk",
            KeyKind::Operator => "op",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            _ => Err(ValidationError::new(
                field,
                "invalid_value",
                "must be 'live' or 'test'",
            )),
        }
    }
}

/// The parts of a well-formed key. Holding one means the checksum matched.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub kind: KeyKind,
    pub environment: Environment,
    pub full: &'a str,
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ParsedKey({:?}, {:?}, [REDACTED])",
            self.kind, self.environment
        )
    }
}

impl ParsedKey<'_> {
    /// The first characters, safe to show and store for display.
    pub fn start(&self) -> &str {
        self.full.get(..START_LEN).unwrap_or(self.full)
    }
}

fn base62_fixed(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.into_iter().map(char::from).collect()
}

fn checksum(body: &str) -> String {
    base62_fixed(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_LEN)
}

/// Makes a new key from `random_bytes` (which must come from a CSPRNG; 32
/// bytes are mapped to 32 base62 characters by rejection sampling upstream).
pub fn format_key(kind: KeyKind, environment: Environment, random: &[u8; RANDOM_LEN]) -> String {
    let mut body = format!("{PREFIX}_{}_{}_", kind.code(), environment.as_str());
    body.extend(
        random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % 62])),
    );
    let sum = checksum(&body);
    body.push_str(&sum);
    body
}

/// Fills 32 base62 digits without modulo bias: bytes ≥ 248 are redrawn.
pub fn random_digits(mut next_byte: impl FnMut() -> u8) -> [u8; RANDOM_LEN] {
    let mut out = [0u8; RANDOM_LEN];
    for slot in out.iter_mut() {
        let mut b = next_byte();
        while b >= 248 {
            b = next_byte();
        }
        *slot = b % 62;
    }
    out
}

/// Checks a presented key's shape and checksum. `None` for anything that is
/// not a well-formed Tenantry key: no lookup is needed to reject it.
pub fn parse_key(key: &str) -> Option<ParsedKey<'_>> {
    let expected_len = PREFIX.len() + 1 + 2 + 1 + 4 + 1 + RANDOM_LEN + CHECKSUM_LEN;
    if key.len() != expected_len || !key.is_ascii() {
        return None;
    }
    let mut parts = key.splitn(4, '_');
    let (prefix, kind, env, tail) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != PREFIX {
        return None;
    }
    let kind = match kind {
        "sk" => KeyKind::Tenant,
        "op" => KeyKind::Operator,
        _ => return None,
    };
    let environment = match env {
        "live" => Environment::Live,
        "test" => Environment::Test,
        _ => return None,
    };
    if tail.len() != RANDOM_LEN + CHECKSUM_LEN || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (body, sum) = key.split_at(key.len() - CHECKSUM_LEN);
    if checksum(body) != sum {
        return None;
    }
    Some(ParsedKey {
        kind,
        environment,
        full: key,
    })
}

/// What a key may do. `tenant:admin` implies every tenant scope, but not the
/// operator-issued ones (see [`Scope::operator_issued`]).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "tenant:read")]
    TenantRead,
    #[serde(rename = "tenant:admin")]
    TenantAdmin,
    #[serde(rename = "keys:read")]
    KeysRead,
    #[serde(rename = "keys:write")]
    KeysWrite,
    #[serde(rename = "credentials:read")]
    CredentialsRead,
    #[serde(rename = "credentials:write")]
    CredentialsWrite,
    #[serde(rename = "credentials:reveal")]
    CredentialsReveal,
    #[serde(rename = "usage:read")]
    UsageRead,
    #[serde(rename = "usage:write")]
    UsageWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "resolve:trusted")]
    ResolveTrusted,
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "widgets:issue")]
    WidgetsIssue,
}

impl Scope {
    pub const ALL: [Scope; 14] = [
        Scope::TenantRead,
        Scope::TenantAdmin,
        Scope::KeysRead,
        Scope::KeysWrite,
        Scope::CredentialsRead,
        Scope::CredentialsWrite,
        Scope::CredentialsReveal,
        Scope::UsageRead,
        Scope::UsageWrite,
        Scope::AuditRead,
        Scope::ResolveTrusted,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::WidgetsIssue,
    ];

    /// Scopes that reach beyond the key's own tenant, so only an operator
    /// may put them on a key: never implied by `tenant:admin`, never granted
    /// by a tenant key. `resolve:trusted` lets its holder name any tenant in
    /// `/v1/resolve`.
    pub fn operator_issued(self) -> bool {
        matches!(self, Scope::ResolveTrusted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TenantRead => "tenant:read",
            Scope::TenantAdmin => "tenant:admin",
            Scope::KeysRead => "keys:read",
            Scope::KeysWrite => "keys:write",
            Scope::CredentialsRead => "credentials:read",
            Scope::CredentialsWrite => "credentials:write",
            Scope::CredentialsReveal => "credentials:reveal",
            Scope::UsageRead => "usage:read",
            Scope::UsageWrite => "usage:write",
            Scope::AuditRead => "audit:read",
            Scope::ResolveTrusted => "resolve:trusted",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::WidgetsIssue => "widgets:issue",
        }
    }
}

impl FromStr for Scope {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn parse(field: &'static str, values: &[String]) -> Result<Scopes, ValidationError> {
        let mut scopes = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let scope = value.parse::<Scope>().map_err(|()| {
                ValidationError::new(
                    format!("{field}[{i}]"),
                    "unknown_scope",
                    format!(
                        "unknown scope '{}'; known scopes: {}",
                        value.chars().take(64).collect::<String>(),
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ),
                )
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    /// Scopes read back from storage; unknown names are dropped.
    pub fn from_trusted<'a>(values: impl IntoIterator<Item = &'a str>) -> Scopes {
        let mut scopes: Vec<Scope> = values.into_iter().filter_map(|v| v.parse().ok()).collect();
        scopes.sort();
        scopes.dedup();
        Scopes(scopes)
    }

    pub fn all() -> Scopes {
        Scopes(Scope::ALL.to_vec())
    }

    /// Whether these scopes grant `scope` (directly, or through
    /// `tenant:admin` for a scope that is not operator-issued).
    pub fn grants(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
            || (!scope.operator_issued() && self.0.contains(&Scope::TenantAdmin))
    }

    /// What both grant: the scopes of either that the other grants too
    /// (`tenant:admin` ∩ `keys:read` is `keys:read`). A token is worth the
    /// intersection of its own scopes and its key's current ones.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        let mut scopes: Vec<Scope> = self
            .iter()
            .filter(|s| other.grants(*s))
            .chain(other.iter().filter(|s| self.grants(*s)))
            .collect();
        scopes.sort();
        scopes.dedup();
        Scopes(scopes)
    }

    /// The first operator-issued scope among these, if any.
    pub fn operator_issued(&self) -> Option<Scope> {
        self.iter().find(|s| s.operator_issued())
    }

    /// The first of `required` these scopes do not grant.
    pub fn missing(&self, required: &Scopes) -> Option<Scope> {
        required.0.iter().copied().find(|s| !self.grants(*s))
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The outcome of verifying a key, as `POST /v1/keys/verify` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    Valid,
    NotFound,
    Expired,
    Revoked,
    Disabled,
    InsufficientScopes,
    TenantSuspended,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(seed: u8) -> String {
        let mut n = seed;
        let digits = random_digits(|| {
            n = n.wrapping_mul(31).wrapping_add(7);
            n
        });
        format_key(KeyKind::Tenant, Environment::Live, &digits)
    }

    #[test]
    fn format_round_trips_and_matches_the_scanner_regex() {
        let k = key(1);
        assert!(k.starts_with("tnt_sk_live_"));
        assert_eq!(k.len(), 12 + 38);
        let parsed = parse_key(&k).expect("well formed");
        assert_eq!(parsed.kind, KeyKind::Tenant);
        assert_eq!(parsed.environment, Environment::Live);
        assert_eq!(parsed.start(), &k[..16]);
        assert!(!format!("{parsed:?}").contains(&k[12..]));
    }

    #[test]
    fn any_single_character_change_is_rejected() {
        let k = key(2);
        for i in 12..k.len() {
            let mut bytes = k.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(parse_key(&changed).is_none(), "position {i}");
        }
        assert!(parse_key("").is_none());
        assert!(parse_key("tnt_sk_live_").is_none());
        assert!(parse_key(&k.replace("tnt_", "xyz_")).is_none());
        assert!(parse_key(&format!("{k}x")).is_none());
        assert!(parse_key(&"é".repeat(25)).is_none());
    }

    #[test]
    fn scopes() {
        let s = Scopes::parse(
            "scopes",
            &[
                "keys:write".into(),
                "tenant:read".into(),
                "keys:write".into(),
            ],
        )
        .expect("valid");
        assert_eq!(s.names(), ["tenant:read", "keys:write"]);
        assert!(s.grants(Scope::KeysWrite));
        assert!(!s.grants(Scope::CredentialsReveal));
        let admin = Scopes::parse("scopes", &["tenant:admin".into()]).expect("valid");
        assert!(admin.grants(Scope::CredentialsReveal));
        // Operator-issued scopes are never implied by tenant:admin.
        assert!(!admin.grants(Scope::ResolveTrusted));
        assert_eq!(admin.missing(&Scopes::all()), Some(Scope::ResolveTrusted));
        let trusted = Scopes::parse("scopes", &["resolve:trusted".into()]).expect("valid");
        assert!(trusted.grants(Scope::ResolveTrusted));
        assert_eq!(trusted.operator_issued(), Some(Scope::ResolveTrusted));
        assert_eq!(admin.operator_issued(), None);
        // Intersections honour implication both ways.
        let read =
            Scopes::parse("scopes", &["keys:read".into(), "usage:read".into()]).expect("valid");
        assert_eq!(admin.intersect(&read), read);
        assert_eq!(read.intersect(&admin), read);
        assert!(admin.intersect(&trusted).is_empty());
        assert_eq!(admin.intersect(&admin), admin);
        let err =
            Scopes::parse("scopes", &["tenant:read".into(), "root".into()]).expect_err("unknown");
        assert_eq!(err.field, "scopes[1]");
    }
}

/// A stored tenant API key (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: crate::TenantId,
    pub key_hash: [u8; 32],
    pub start: String,
    pub name: String,
    pub scopes: Scopes,
    pub environment: Environment,
    pub enabled: bool,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub metadata: crate::values::Metadata,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rotated_from: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A stored operator key.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorKey {
    pub id: String,
    pub key_hash: [u8; 32],
    pub start: String,
    pub name: String,
    pub environment: Environment,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Changes to a key; `None` leaves a field as it is. `expires_at:
/// Some(None)` removes the expiry.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyPatch {
    pub name: Option<String>,
    pub scopes: Option<Scopes>,
    pub enabled: Option<bool>,
    pub expires_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
    pub metadata: Option<crate::values::Metadata>,
}
