//! Short-lived access tokens: JWTs signed with Ed25519 (`alg: EdDSA`).
//!
//! Written on `ed25519-dalek` rather than a general JWT crate because we
//! accept exactly one algorithm: verification refuses any header whose `alg`
//! is not `EdDSA` (so `none`, HS256-with-the-public-key and friends never
//! reach a verifier), requires a `kid` we issued, and checks `exp`. Issuing
//! tokens and rotating the signing keys are changes: [`crate::keys`].

use crate::app::AppState;
use crate::vault::{Vault, VaultError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::RwLock;
use tenantry_core::TenantId;
use tenantry_core::keys::{ApiKey, Scopes};
use tenantry_crypto::WrappedKey;
use tenantry_store::{Store, StoreError};
use zeroize::Zeroizing;

/// The longest lifetime a token may have; a retired signing key verifies for
/// this long after its retirement.
pub const MAX_TTL_SECONDS: i64 = 3600;

struct Key {
    kid: String,
    signing: SigningKey,
    verifying: VerifyingKey,
    retired_at: Option<DateTime<Utc>>,
}

/// The signing keys, newest (active) first.
#[derive(Default)]
pub struct TokenKeys {
    keys: RwLock<Vec<Key>>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys([REDACTED])")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub tenant_id: String,
    pub key_id: String,
    pub scopes: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused (kept for logs and tests; callers see 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub scopes: Scopes,
    pub expires_at: DateTime<Utc>,
}

impl TokenKeys {
    /// Loads the keys from the database, creating the first one if none.
    /// Seeds are stored sealed by the vault's KEK; a plaintext seed left by
    /// an older version is sealed here (and the SQLite log checkpointed so
    /// the plaintext does not linger in it). Creation runs under a lock
    /// across processes and re-reads, so two nodes starting at once on an
    /// empty database agree on one key.
    pub async fn load(
        &self,
        store: &Store,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<(), VaultError> {
        // Untracked: sealing a seed an older version left in clear, and
        // making the very first signing key, are the server's own start-up
        // bookkeeping, not a change anyone made (rotations are recorded:
        // `keys::signing::rotate`). Takes a `Store` because it also runs
        // before any request, beside `AppState::new`.
        #[allow(clippy::disallowed_methods)] // untracked write: start-up bookkeeping (see above)
        let mut op = store.operator_write().await?;
        op.lock_signing_keys().await?;
        let mut rows = op.signing_keys().await?;
        let mut sealed_plaintext = false;
        for row in &rows {
            if row.sealed_seed.is_none() {
                let seed =
                    Zeroizing::new(<[u8; 32]>::try_from(row.plaintext_seed.as_slice()).map_err(
                        |_| StoreError::Corrupt(format!("signing key {} is malformed", row.kid)),
                    )?);
                let wrapped = vault.wrap_signing_seed(&row.kid, &seed)?;
                op.seal_signing_key(&row.kid, &wrapped.kek_id, &wrapped.ciphertext)
                    .await?;
                sealed_plaintext = true;
            }
        }
        if rows.iter().all(|r| r.retired_at.is_some()) {
            let (kid, seed, public) = new_signing_key();
            let wrapped = vault.wrap_signing_seed(&kid, &seed)?;
            op.add_signing_key(&kid, &wrapped.kek_id, &wrapped.ciphertext, &public, now)
                .await?;
            rows = op.signing_keys().await?;
        } else if sealed_plaintext {
            rows = op.signing_keys().await?;
        }
        op.commit().await?;
        if sealed_plaintext {
            tracing::info!("token signing seeds sealed with the key-encryption key");
            store.shred_checkpoint().await?;
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let Some((kek_id, ciphertext)) = row.sealed_seed else {
                return Err(
                    StoreError::Corrupt(format!("signing key {} is not sealed", row.kid)).into(),
                );
            };
            // A seed whose KEK is not in this keyring (a wrong or incomplete
            // keyring) is left out: the server still starts (so the operator
            // can see `/v1/operator/keyring`), tokens it signed do not verify
            // here, and signing answers 503 until the keyring is fixed; no
            // replacement key is made that other nodes could not open.
            let seed = match vault.unwrap_signing_seed(
                &row.kid,
                &WrappedKey {
                    kek_id: kek_id.clone(),
                    ciphertext,
                },
            ) {
                Ok(seed) => seed,
                Err(err) => {
                    tracing::error!(kid = %row.kid, kek_id, error = %err, "cannot open a token signing key");
                    continue;
                }
            };
            let signing = SigningKey::from_bytes(&seed);
            let verifying = signing.verifying_key();
            keys.push(Key {
                kid: row.kid,
                signing,
                verifying,
                retired_at: row.retired_at,
            });
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    pub fn sign(&self, claims: &Claims) -> Option<String> {
        self.sign_typed("JWT", claims)
    }

    /// Signs `claims` with the active key, under the JWT header `typ`
    /// (`JWT` for access tokens; other kinds of token have their own, so
    /// that one kind is never accepted as another).
    pub fn sign_typed(&self, typ: &str, claims: &impl Serialize) -> Option<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let key = keys.iter().find(|k| k.retired_at.is_none())?;
        let header = Header {
            alg: "EdDSA".into(),
            typ: Some(typ.into()),
            kid: Some(key.kid.clone()),
        };
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).ok()?);
        let signing_input = format!("{header}.{payload}");
        let signature = key.signing.sign(signing_input.as_bytes());
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }

    /// The payload of a token whose header is `alg: EdDSA`, `typ` (absent
    /// counts as `JWT`) and the `kid` of one of our keys (a retired one for
    /// [`MAX_TTL_SECONDS`] after it retired), and whose signature verifies.
    /// Expiry is the caller's to check.
    pub fn open(&self, typ: &str, token: &str, now: DateTime<Utc>) -> Result<Vec<u8>, TokenError> {
        if token.len() > 8192 {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::Algorithm);
        }
        if header.typ.as_deref().unwrap_or("JWT") != typ {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
            .map(|bytes| Signature::from_bytes(&bytes))
            .ok_or(TokenError::Malformed)?;
        {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            let key = keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or(TokenError::UnknownKey)?;
            if key
                .retired_at
                .is_some_and(|at| at + chrono::Duration::seconds(MAX_TTL_SECONDS) < now)
            {
                return Err(TokenError::UnknownKey);
            }
            let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
            key.verifying
                .verify_strict(signing_input.as_bytes(), &signature)
                .map_err(|_| TokenError::Signature)?;
        }
        URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, TokenError> {
        let payload = self.open("JWT", token, now)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(TokenError::Malformed)?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        let tenant_id = TenantId::parse(&claims.tenant_id).map_err(|_| TokenError::Malformed)?;
        Ok(VerifiedToken {
            tenant_id,
            key_id: claims.key_id,
            scopes: Scopes::from_trusted(claims.scopes.iter().map(String::as_str)),
            expires_at,
        })
    }

    /// The public keys, as a JSON Web Key Set.
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(k.verifying.as_bytes()),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// A fresh signing key: its `kid`, seed and public key.
pub(crate) fn new_signing_key() -> (String, Zeroizing<[u8; 32]>, [u8; 32]) {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut seed[..]);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let kid = tenantry_core::ids::prefixed_id("sig", rand::random());
    (kid, seed, public)
}

/// Looks a token's key up and checks it is still good: a revoked, disabled
/// or expired key's tokens die with it. `Some` with the key (whose current
/// scopes and expiry bound the token's), `None` when it is not good.
pub async fn live_key(
    state: &AppState,
    token: &VerifiedToken,
) -> Result<Option<std::sync::Arc<ApiKey>>, StoreError> {
    let hash = match state.caches.key_ids.get(&token.key_id) {
        Some(hash) => hash,
        None => {
            let mut tx = super::resolver()
                .on_tenant(token.tenant_id.clone())
                .read(state)
                .await?;
            let key = match tx.get_key(&token.key_id).await {
                Ok(k) => k,
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            tx.commit().await?;
            state
                .caches
                .key_ids
                .insert(token.key_id.clone(), key.key_hash);
            key.key_hash
        }
    };
    let Some(key) = super::keys::load_key(state, &hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let live = key.tenant_id == token.tenant_id
        && key.id == token.key_id
        && key.revoked_at.is_none()
        && key.enabled
        && key.expires_at.is_none_or(|at| at > now);
    Ok(live.then_some(key))
}

impl VerifiedToken {
    /// What the token may do now: its own scopes narrowed to what its key
    /// still grants (a key whose scopes were narrowed narrows its live
    /// tokens at once).
    pub fn effective_scopes(&self, key: &ApiKey) -> Scopes {
        self.scopes.intersect(&key.scopes)
    }
}
