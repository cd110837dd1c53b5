//! Envelope encryption for per-tenant secrets.
//!
//! Two layers of keys:
//!
//! - A [`Keyring`] of key-encryption keys ([`Kek`]s), held by the operator (a
//!   keyring file or `TENANTRY_MASTER_KEY`). The first key is *active*: it wraps
//!   new data keys. Every key in the ring unwraps. Rotating the master key is
//!   [`Keyring::with_active`], re-wrapping every data key ([`unwrap`] then
//!   [`wrap`]), then [`Keyring::without`] the old key.
//! - Per-tenant data-encryption keys ([`DataKey`]s), stored in the database only
//!   wrapped ([`WrappedKey`]). A data key seals field values ([`seal`]) into
//!   ASCII envelopes `tv1.<dek id>.<base64url(nonce || ciphertext || tag)>`.
//!
//! Everything is AES-256-GCM ([`aead`]) with a fresh random 96-bit nonce from
//! the OS per encryption. Every ciphertext is bound through the GCM associated
//! data to where it belongs — a wrapped key to its tenant, data key id and KEK
//! id; a sealed value to its tenant, record, kind and field ([`Binding`]) — so
//! a ciphertext copied anywhere else fails to decrypt instead of yielding
//! another tenant's secret.
//!
//! Key material is never printed: `Debug` shows key ids only, errors never
//! contain key bytes, and [`Kek`] and [`DataKey`] wipe their bytes on drop.

pub mod aead;
pub mod cursor;
pub mod note;

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::aead::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// Everything that can go wrong. No variant ever carries key material; the
/// strings are key ids, data key ids and line numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed envelope or key")]
    Malformed,
    #[error("unsupported envelope version")]
    UnsupportedVersion,
    #[error("key-encryption key {0} is not in the keyring")]
    UnknownKek(String),
    #[error("the envelope was sealed with data key {0}, not this one")]
    WrongKey(String),
    #[error(
        "decryption failed: the ciphertext was tampered with or does not belong to this tenant, record or field"
    )]
    Decrypt,
    #[error("invalid keyring: {0}")]
    Keyring(String),
}

// ---------------------------------------------------------------------------
// Key-encryption keys and the keyring
// ---------------------------------------------------------------------------

/// A 256-bit key-encryption key. Its [`id`](Kek::id) is a fingerprint of the
/// key, so a wrapped data key names the exact key that can unwrap it and a
/// wrong key is reported by id, never discovered by garbage output.
///
/// `Debug` prints only the id; the key bytes are wiped on drop.
#[derive(Clone)]
pub struct Kek {
    key: Box<[u8; KEY_LEN]>,
    id: String,
}

impl Kek {
    /// A new random key from the OS random number generator.
    pub fn generate() -> Kek {
        let mut key = Box::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut key[..]);
        Kek::from_boxed(key)
    }

    /// The key with these bytes (the argument's copy is wiped).
    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        let mut bytes = bytes;
        let key = Box::new(bytes);
        bytes.zeroize();
        Kek::from_boxed(key)
    }

    fn from_boxed(key: Box<[u8; KEY_LEN]>) -> Kek {
        let digest = Sha256::new()
            .chain_update(b"tenantry-kek-id:")
            .chain_update(&key[..])
            .finalize();
        let id = format!("kek_{}", hex::encode(&digest[..8]));
        Kek { key, id }
    }

    /// `kek_` followed by the first 16 hex characters of
    /// SHA-256(`"tenantry-kek-id:"` || key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as standard base64 (with padding), the keyring file format.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.key[..])
    }
}

impl Drop for Kek {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

/// An ordered, non-empty set of KEKs with distinct ids. The first is active
/// (it wraps); every one unwraps. `Debug` lists the ids only.
#[derive(Clone)]
pub struct Keyring {
    active: Kek,
    rest: Vec<Kek>,
}

/// Standard alphabet; padding optional, so both `openssl rand -base64 32`
/// output and unpadded keys are accepted.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Keyring {
    /// A keyring of these keys, the first active. Refuses an empty list and
    /// a key listed twice.
    pub fn new(keks: Vec<Kek>) -> Result<Keyring, CryptoError> {
        let mut seen = HashMap::new();
        for (i, kek) in keks.iter().enumerate() {
            if let Some(first) = seen.insert(kek.id.as_str(), i) {
                return Err(CryptoError::Keyring(format!(
                    "key {} is listed twice (positions {} and {})",
                    kek.id,
                    first + 1,
                    i + 1
                )));
            }
        }
        let mut keks = keks.into_iter();
        let active = keks
            .next()
            .ok_or_else(|| CryptoError::Keyring("a keyring needs at least one key".into()))?;
        Ok(Keyring {
            active,
            rest: keks.collect(),
        })
    }

    /// Parses a keyring: one standard-base64 32-byte key per line, blank lines
    /// and lines starting with `#` ignored (surrounding whitespace is
    /// trimmed); the first key is the active one. Also accepts a single base64
    /// key (the value of `TENANTRY_MASTER_KEY`). Errors name the line number,
    /// never echo key material.
    pub fn parse(text: &str) -> Result<Keyring, CryptoError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut keks: Vec<Kek> = Vec::new();
        let mut lines_of: HashMap<String, usize> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = Zeroizing::new(KEY_BASE64.decode(line).map_err(|_| {
                CryptoError::Keyring(format!(
                    "line {number}: not a standard-base64 key (expected 32 bytes in base64, 44 characters)"
                ))
            })?);
            if bytes.len() != KEY_LEN {
                return Err(CryptoError::Keyring(format!(
                    "line {number}: the key is {} bytes; a key must be 32 bytes (256 bits)",
                    bytes.len()
                )));
            }
            let mut key = Box::new([0u8; KEY_LEN]);
            key.copy_from_slice(&bytes);
            let kek = Kek::from_boxed(key);
            if let Some(first) = lines_of.insert(kek.id.clone(), number) {
                return Err(CryptoError::Keyring(format!(
                    "line {number}: the same key as line {first} ({})",
                    kek.id
                )));
            }
            keks.push(kek);
        }
        if keks.is_empty() {
            return Err(CryptoError::Keyring(
                "no keys: expected one standard-base64 32-byte key per line".into(),
            ));
        }
        Keyring::new(keks)
    }

    /// The keyring in the format [`Keyring::parse`] reads, with a short `#`
    /// header and each key's id in a comment above it.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# Tenantry keyring: one standard-base64 256-bit key per line.\n\
             # The first key is active (it encrypts); every key decrypts. Keep this file secret.\n",
        );
        for (i, kek) in self.iter().enumerate() {
            out.push_str("# ");
            out.push_str(&kek.id);
            if i == 0 {
                out.push_str(" (active)");
            }
            out.push('\n');
            out.push_str(&kek.to_base64());
            out.push('\n');
        }
        out
    }

    /// The key that wraps new data keys.
    pub fn active(&self) -> &Kek {
        &self.active
    }

    /// The key with this id, if it is in the ring.
    pub fn get(&self, id: &str) -> Option<&Kek> {
        self.iter().find(|kek| kek.id == id)
    }

    /// The ids, in order, active first.
    pub fn ids(&self) -> Vec<String> {
        self.iter().map(|kek| kek.id.clone()).collect()
    }

    /// A new keyring with `kek` active and all the others kept after it, in
    /// their order (if `kek` was already in the ring it is moved to the front).
    pub fn with_active(&self, kek: Kek) -> Keyring {
        let rest = self
            .iter()
            .filter(|other| other.id != kek.id)
            .cloned()
            .collect();
        Keyring { active: kek, rest }
    }

    /// A new keyring without the key `id`. The active key cannot be removed
    /// (make another key active first); an id not in the ring is
    /// [`CryptoError::UnknownKek`].
    pub fn without(&self, id: &str) -> Result<Keyring, CryptoError> {
        if self.active.id == id {
            return Err(CryptoError::Keyring(format!(
                "{id} is the active key; make another key active before removing it"
            )));
        }
        if !self.rest.iter().any(|kek| kek.id == id) {
            return Err(CryptoError::UnknownKek(id.to_owned()));
        }
        Ok(Keyring {
            active: self.active.clone(),
            rest: self
                .rest
                .iter()
                .filter(|kek| kek.id != id)
                .cloned()
                .collect(),
        })
    }

    fn iter(&self) -> impl Iterator<Item = &Kek> {
        std::iter::once(&self.active).chain(self.rest.iter())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids()).finish()
    }
}

// ---------------------------------------------------------------------------
// Data keys
// ---------------------------------------------------------------------------

/// A tenant's 256-bit data-encryption key. The id appears in every envelope
/// it seals, so it must consist of `[A-Za-z0-9_]` only ([`seal`] refuses
/// other ids with [`CryptoError::Malformed`]).
///
/// `Debug` prints only the id; the key bytes are wiped on drop.
#[derive(Clone)]
pub struct DataKey {
    key: Box<[u8; KEY_LEN]>,
    id: String,
}

impl DataKey {
    /// A new random key from the OS random number generator.
    pub fn generate(id: impl Into<String>) -> DataKey {
        let mut key = Box::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut key[..]);
        DataKey { key, id: id.into() }
    }

    /// The key with these bytes (the argument's copy is wiped). For tests and
    /// known-answer checks; real keys come from [`DataKey::generate`] or
    /// [`unwrap`].
    pub fn from_bytes(id: impl Into<String>, bytes: [u8; 32]) -> DataKey {
        let mut bytes = bytes;
        let key = Box::new(bytes);
        bytes.zeroize();
        DataKey { key, id: id.into() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish()
    }
}

/// A data key sealed under a KEK: AES-256-GCM, `ciphertext` is
/// `nonce (12) || encrypted key (32) || tag (16)`, the associated data binds
/// `"tenantry:dek:v1"`, the tenant id, the data key id and `kek_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub ciphertext: Vec<u8>,
}

/// Seals `dek` for `tenant_id` under the keyring's active KEK.
pub fn wrap(keyring: &Keyring, tenant_id: &str, dek: &DataKey) -> Result<WrappedKey, CryptoError> {
    let kek = keyring.active();
    let nonce = random_nonce();
    let aad = encode_aad(&[
        b"tenantry:dek:v1",
        tenant_id.as_bytes(),
        dek.id.as_bytes(),
        kek.id.as_bytes(),
    ]);
    let sealed = aead::encrypt(&kek.key, &nonce, &aad, &dek.key[..])?;
    Ok(WrappedKey {
        kek_id: kek.id.clone(),
        ciphertext: join_nonce(&nonce, &sealed),
    })
}

/// Opens a wrapped data key with whichever KEK of the ring wrapped it
/// ([`CryptoError::UnknownKek`] if that key is not in the ring). The tenant id
/// and data key id must be the ones it was wrapped for, else
/// [`CryptoError::Decrypt`].
pub fn unwrap(
    keyring: &Keyring,
    tenant_id: &str,
    dek_id: &str,
    wrapped: &WrappedKey,
) -> Result<DataKey, CryptoError> {
    let kek = keyring
        .get(&wrapped.kek_id)
        .ok_or_else(|| CryptoError::UnknownKek(wrapped.kek_id.clone()))?;
    let (nonce, sealed) = split_nonce(&wrapped.ciphertext)?;
    let aad = encode_aad(&[
        b"tenantry:dek:v1",
        tenant_id.as_bytes(),
        dek_id.as_bytes(),
        kek.id.as_bytes(),
    ]);
    let plain = Zeroizing::new(aead::decrypt(&kek.key, nonce, &aad, sealed)?);
    if plain.len() != KEY_LEN {
        return Err(CryptoError::Malformed);
    }
    let mut key = Box::new([0u8; KEY_LEN]);
    key.copy_from_slice(&plain);
    Ok(DataKey {
        key,
        id: dek_id.to_owned(),
    })
}

/// Seals a 32-byte secret that is not a tenant's data key (a token-signing
/// seed) under the keyring's active KEK. Same layout as [`wrap`]; the
/// associated data is `"tenantry:secret:v1"`, `purpose`, `id` and the KEK id,
/// so such a ciphertext can never be taken for a tenant's data key.
pub fn wrap_secret(
    keyring: &Keyring,
    purpose: &str,
    id: &str,
    secret: &[u8; KEY_LEN],
) -> Result<WrappedKey, CryptoError> {
    let kek = keyring.active();
    let nonce = random_nonce();
    let aad = encode_aad(&[
        b"tenantry:secret:v1",
        purpose.as_bytes(),
        id.as_bytes(),
        kek.id.as_bytes(),
    ]);
    let sealed = aead::encrypt(&kek.key, &nonce, &aad, &secret[..])?;
    Ok(WrappedKey {
        kek_id: kek.id.clone(),
        ciphertext: join_nonce(&nonce, &sealed),
    })
}

/// Opens a secret sealed by [`wrap_secret`] for this `purpose` and `id`.
pub fn unwrap_secret(
    keyring: &Keyring,
    purpose: &str,
    id: &str,
    wrapped: &WrappedKey,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let kek = keyring
        .get(&wrapped.kek_id)
        .ok_or_else(|| CryptoError::UnknownKek(wrapped.kek_id.clone()))?;
    let (nonce, sealed) = split_nonce(&wrapped.ciphertext)?;
    let aad = encode_aad(&[
        b"tenantry:secret:v1",
        purpose.as_bytes(),
        id.as_bytes(),
        kek.id.as_bytes(),
    ]);
    let plain = Zeroizing::new(aead::decrypt(&kek.key, nonce, &aad, sealed)?);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(CryptoError::Malformed);
    }
    out.copy_from_slice(&plain);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Sealed values
// ---------------------------------------------------------------------------

/// What a sealed value is bound to (AES-GCM associated data), so a ciphertext
/// moved to another tenant, record, kind or field fails to open.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub tenant_id: &'a str,
    pub record_id: &'a str,
    pub kind: &'a str,
    pub field: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        encode_aad(&[
            b"tenantry:field:v1",
            self.tenant_id.as_bytes(),
            self.record_id.as_bytes(),
            self.kind.as_bytes(),
            self.field.as_bytes(),
        ])
    }
}

const ENVELOPE_VERSION: &str = "tv1";

/// Seals `plaintext` with AES-256-GCM under `dek`, a random 96-bit nonce
/// from the OS, and associated data that encodes, each part length-prefixed,
/// `("tenantry:field:v1", tenant_id, record_id, kind, field)`.
///
/// Returns the ASCII envelope `tv1.<dek id>.<base64url-no-pad(nonce ||
/// ciphertext || tag)>`. [`CryptoError::Malformed`] if the data key's id is
/// not `[A-Za-z0-9_]+`.
pub fn seal(dek: &DataKey, binding: &Binding<'_>, plaintext: &[u8]) -> Result<String, CryptoError> {
    if !is_valid_dek_id(&dek.id) {
        return Err(CryptoError::Malformed);
    }
    let nonce = random_nonce();
    let sealed = aead::encrypt(&dek.key, &nonce, &binding.aad(), plaintext)?;
    let payload = URL_SAFE_NO_PAD.encode(join_nonce(&nonce, &sealed));
    Ok(format!("{ENVELOPE_VERSION}.{}.{payload}", dek.id))
}

/// The data key id an envelope was sealed with, without decrypting it:
/// [`CryptoError::UnsupportedVersion`] for a `tv<N>.` envelope of another
/// version, [`CryptoError::Malformed`] for anything else that is not an
/// envelope.
pub fn envelope_dek_id(envelope: &str) -> Result<&str, CryptoError> {
    parse_envelope(envelope).map(|(dek_id, _)| dek_id)
}

/// Opens an envelope made by [`seal`]. [`CryptoError::WrongKey`] if it was
/// sealed with another data key; [`CryptoError::Decrypt`] if it was modified
/// or `binding` is not the one it was sealed with.
pub fn open(dek: &DataKey, binding: &Binding<'_>, envelope: &str) -> Result<Vec<u8>, CryptoError> {
    let (dek_id, payload) = parse_envelope(envelope)?;
    if dek_id != dek.id {
        return Err(CryptoError::WrongKey(dek_id.to_owned()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| CryptoError::Malformed)?;
    let (nonce, sealed) = split_nonce(&bytes)?;
    aead::decrypt(&dek.key, nonce, &binding.aad(), sealed)
}

fn parse_envelope(envelope: &str) -> Result<(&str, &str), CryptoError> {
    let (version, rest) = envelope.split_once('.').ok_or(CryptoError::Malformed)?;
    if version != ENVELOPE_VERSION {
        let other_version = version
            .strip_prefix("tv")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        return Err(if other_version {
            CryptoError::UnsupportedVersion
        } else {
            CryptoError::Malformed
        });
    }
    let (dek_id, payload) = rest.split_once('.').ok_or(CryptoError::Malformed)?;
    let payload_ok = !payload.is_empty()
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !is_valid_dek_id(dek_id) || !payload_ok {
        return Err(CryptoError::Malformed);
    }
    Ok((dek_id, payload))
}

fn is_valid_dek_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

fn join_nonce(nonce: &[u8; NONCE_LEN], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(sealed);
    out
}

/// `nonce || ciphertext || tag` → (nonce, ciphertext || tag); too short for
/// a nonce and a tag is [`CryptoError::Malformed`].
fn split_nonce(bytes: &[u8]) -> Result<(&[u8; NONCE_LEN], &[u8]), CryptoError> {
    match bytes.split_first_chunk::<NONCE_LEN>() {
        Some((nonce, sealed)) if sealed.len() >= TAG_LEN => Ok((nonce, sealed)),
        _ => Err(CryptoError::Malformed),
    }
}

/// An injective encoding of a list of byte strings: each part is preceded by
/// its length as a big-endian u64, so `("ab", "c")` and `("a", "bc")` differ.
fn encode_aad(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| 8 + p.len()).sum();
    let mut out = Vec::with_capacity(len);
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn aad_encoding_is_unambiguous() {
        assert_ne!(encode_aad(&[b"ab", b"c"]), encode_aad(&[b"a", b"bc"]));
        assert_ne!(encode_aad(&[b"", b"x"]), encode_aad(&[b"x", b""]));
        assert_ne!(encode_aad(&[b"x"]), encode_aad(&[b"x", b""]));
        assert_eq!(
            encode_aad(&[b"ab", b""]),
            [&[0, 0, 0, 0, 0, 0, 0, 2][..], b"ab", &[0; 8]].concat()
        );
    }

    #[test]
    fn binding_parts_cannot_shift() {
        let a = Binding {
            tenant_id: "ab",
            record_id: "c",
            kind: "k",
            field: "f",
        };
        let b = Binding {
            tenant_id: "a",
            record_id: "bc",
            ..a
        };
        assert_ne!(a.aad(), b.aad());
        let dek = DataKey::generate("dek_1");
        let env = seal(&dek, &a, b"secret").unwrap();
        assert_eq!(open(&dek, &b, &env), Err(CryptoError::Decrypt));
    }

    #[test]
    fn kek_id_is_the_documented_fingerprint() {
        let kek = Kek::from_bytes([7; 32]);
        let mut input = b"tenantry-kek-id:".to_vec();
        input.extend_from_slice(&[7; 32]);
        let digest = Sha256::digest(&input);
        assert_eq!(kek.id(), format!("kek_{}", &hex::encode(digest)[..16]));
        assert_eq!(kek.id().len(), 20);
    }

    #[test]
    fn wrapped_key_layout() {
        let ring = Keyring::new(vec![Kek::generate()]).unwrap();
        let w = wrap(&ring, "acme", &DataKey::generate("dek_1")).unwrap();
        assert_eq!(w.ciphertext.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
    }

    #[test]
    fn secrets_are_bound_to_purpose_and_id() {
        let ring = Keyring::new(vec![Kek::generate()]).unwrap();
        let w = wrap_secret(&ring, "signing-key", "sig_1", &[9; 32]).unwrap();
        assert_eq!(
            *unwrap_secret(&ring, "signing-key", "sig_1", &w).unwrap(),
            [9; 32]
        );
        assert_eq!(
            unwrap_secret(&ring, "signing-key", "sig_2", &w).err(),
            Some(CryptoError::Decrypt)
        );
        // Never opens as a tenant data key.
        assert_eq!(
            unwrap(&ring, "signing-key", "sig_1", &w).err(),
            Some(CryptoError::Decrypt)
        );
    }

    #[test]
    fn short_inputs_are_malformed() {
        assert_eq!(split_nonce(&[0; 27]).err(), Some(CryptoError::Malformed));
        assert!(split_nonce(&[0; 28]).is_ok());
    }
}
