//! Where keys are made: tenants' API keys, operator keys, access tokens and
//! the keys that sign them. Every operation that changes one is one change
//! (see [`crate::change`]) with its audit entry; the handlers in `api/`,
//! the CLI and the workers all call these. Verifying a presented key or
//! token on each request is the resolution hot path
//! ([`crate::resolution::keys`], [`crate::resolution::tokens`]).

pub mod operator_keys;
pub mod signing;
pub mod tenant_keys;
pub mod tokens;

use rand::RngCore;
use sha2::{Digest, Sha256};
use tenantry_core::SecretString;
use tenantry_core::audit::AuditTarget;
use tenantry_core::keys::{Environment, KeyKind, format_key, random_digits};

/// A new key: the secret (shown once) and what is stored of it.
pub struct MintedKey {
    pub secret: SecretString,
    pub hash: [u8; 32],
    pub start: String,
}

pub fn mint(kind: KeyKind, environment: Environment) -> MintedKey {
    let mut rng = rand::rngs::OsRng;
    let mut buf = [0u8; 64];
    let mut pos = buf.len();
    let digits = random_digits(|| {
        if pos == buf.len() {
            rng.fill_bytes(&mut buf);
            pos = 0;
        }
        pos += 1;
        buf[pos - 1]
    });
    let secret = SecretString::new(format_key(kind, environment, &digits));
    let hash = hash_key(secret.expose());
    let start = secret
        .expose()
        .chars()
        .take(tenantry_core::keys::START_LEN)
        .collect();
    MintedKey {
        secret,
        hash,
        start,
    }
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A tenant API key as an audit target.
pub fn api_key_target(id: &str) -> AuditTarget {
    AuditTarget::new("api_key", id)
}
