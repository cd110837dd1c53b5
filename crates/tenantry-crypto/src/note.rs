//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and
//! the tlog-checkpoint body they carry (<https://c2sp.org/tlog-checkpoint>):
//! what the audit log's checkpoints are written in, so that any verifier of
//! the ecosystem (golang.org/x/mod/sumdb/note and its ports) reads them.
//!
//! A note is text (lines ending in `\n`), a blank line, then one line per
//! signature: `— <key name> <base64(key id || signature)>` where the key id is
//! the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key) and the
//! Ed25519 signature covers the text, final newline included. A verifier key
//! is written `<name>+<hex key id>+<base64(0x01 || public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The signature type byte of Ed25519 in key ids and encoded keys.
const ALG_ED25519: u8 = 0x01;
/// The line prefix of a signature: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Notes with more signatures than this are refused (as the reference does).
const MAX_SIGNATURES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed verifier key")]
    MalformedKey,
    #[error("invalid key name (empty, or holds a space or '+')")]
    InvalidName,
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 32-bit id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
    id
}

/// A public key that verifies notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub id: [u8; 4],
    pub key: VerifyingKey,
}

impl NoteVerifier {
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<NoteVerifier, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::InvalidName);
        }
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| NoteError::MalformedKey)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            id: key_id(name, public_key),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x01 || key)>`, checking the id.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey);
        };
        let id = hex::decode(id_hex).map_err(|_| NoteError::MalformedKey)?;
        let raw = STANDARD
            .decode(key_b64)
            .map_err(|_| NoteError::MalformedKey)?;
        let (Some(&ALG_ED25519), Some(public)) = (raw.first(), raw.get(1..)) else {
            return Err(NoteError::MalformedKey);
        };
        let public: [u8; 32] = public.try_into().map_err(|_| NoteError::MalformedKey)?;
        let verifier = NoteVerifier::new(name, &public)?;
        if id.as_slice() != verifier.id || id_hex.len() != 8 {
            return Err(NoteError::MalformedKey);
        }
        Ok(verifier)
    }

    /// The id as 8 hex digits.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// `<name>+<hex id>+<base64(0x01 || key)>`.
    pub fn vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, self.id_hex(), STANDARD.encode(raw))
    }
}

/// Signs `text` (which must end in a newline) as a note: the text, a blank
/// line, and the signature line of `name`'s key.
pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !valid_name(name) {
        return Err(NoteError::InvalidName);
    }
    if !text.ends_with('\n') || text.contains("\n\n") || text.starts_with('\n') {
        return Err(NoteError::Malformed(
            "the text must be non-empty lines ending in a newline",
        ));
    }
    let id = key_id(name, key.verifying_key().as_bytes());
    let signature = key.sign(text.as_bytes());
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&id);
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!(
        "{text}\n{SIG_PREFIX}{name} {}\n",
        STANDARD.encode(blob)
    ))
}

/// A parsed note: its text and its signature lines (key name, key id,
/// signature), none verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<(String, [u8; 4], [u8; 64])>,
}

impl Note {
    pub fn parse(message: &str) -> Result<Note, NoteError> {
        let split = message
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let text = message.get(..split + 1).unwrap_or_default();
        let sigs = message.get(split + 2..).unwrap_or_default();
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("the signatures must end in a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "a signature line must start with an em dash",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "a signature line needs a name and a signature",
            ))?;
            if !valid_name(name) {
                return Err(NoteError::Malformed("invalid key name in a signature line"));
            }
            let blob = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if blob.len() != 68 {
                // Another signature type: not ours to check, not an error.
                continue;
            }
            let mut id = [0u8; 4];
            let mut sig = [0u8; 64];
            id.copy_from_slice(blob.get(..4).unwrap_or(&[0; 4]));
            sig.copy_from_slice(blob.get(4..).unwrap_or(&[0; 64]));
            signatures.push((name.to_owned(), id, sig));
            if signatures.len() > MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The first of `verifiers` whose key signed this note (matched by name
    /// and key id, then the signature checked), if any.
    pub fn verified_by<'a>(&self, verifiers: &'a [NoteVerifier]) -> Option<&'a NoteVerifier> {
        self.signatures.iter().find_map(|(name, id, sig)| {
            verifiers.iter().find(|v| {
                v.name == *name
                    && v.id == *id
                    && v.key
                        .verify_strict(self.text.as_bytes(), &Signature::from_bytes(sig))
                        .is_ok()
            })
        })
    }
}

/// The body of a tlog checkpoint: origin, size, base64 root (here: the
/// chain's head hash), then extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub hash: [u8; 32],
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.hash)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.lines();
        let bad = NoteError::Malformed("not a checkpoint");
        let origin = lines.next().filter(|l| !l.is_empty()).ok_or(bad.clone())?;
        let size_text = lines.next().ok_or(bad.clone())?;
        // Decimal, no sign, no leading zeros (but "0").
        if size_text.is_empty()
            || !size_text.bytes().all(|b| b.is_ascii_digit())
            || (size_text.len() > 1 && size_text.starts_with('0'))
        {
            return Err(bad);
        }
        let size = size_text.parse().map_err(|_| bad.clone())?;
        let hash = STANDARD
            .decode(lines.next().ok_or(bad.clone())?)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .ok_or(bad.clone())?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad);
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            hash,
            extensions,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (note.go, ExampleSign).
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n\
                          \n\
                          \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn reference_key() -> SigningKey {
        let b64 = SKEY.splitn(5, '+').nth(4).unwrap();
        let raw = STANDARD.decode(b64).unwrap();
        assert_eq!(raw[0], ALG_ED25519);
        SigningKey::from_bytes(&raw[1..].try_into().unwrap())
    }

    #[test]
    fn the_reference_vector_signs_and_verifies_byte_for_byte() {
        let key = reference_key();
        let verifier = NoteVerifier::new("PeterNeumann", key.verifying_key().as_bytes()).unwrap();
        assert_eq!(verifier.vkey(), VKEY);
        assert_eq!(NoteVerifier::parse(VKEY).unwrap(), verifier);
        assert_eq!(sign(TEXT, "PeterNeumann", &key).unwrap(), SIGNED);
        let note = Note::parse(SIGNED).unwrap();
        assert_eq!(note.text, TEXT);
        assert!(note.verified_by(std::slice::from_ref(&verifier)).is_some());
        // Any change to the text breaks the signature.
        let tampered = Note::parse(&SIGNED.replace("answer", "Answer")).unwrap();
        assert!(tampered.verified_by(&[verifier]).is_none());
    }

    #[test]
    fn mangled_verifier_keys_are_refused() {
        assert!(
            NoteVerifier::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(
            NoteVerifier::parse(
                "PeterNeumann+c74f20a3+AhRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(
            NoteVerifier::parse(
                "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(NoteVerifier::parse("PeterNeumann").is_err());
    }

    #[test]
    fn checkpoints_round_trip() {
        let cp = Checkpoint {
            origin: "tenantry.audit/tenant/acme".into(),
            size: 42,
            hash: [7; 32],
            extensions: vec!["time 2026-12-01T00:00:00Z".into()],
        };
        let text = cp.to_text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
        assert!(Checkpoint::parse("o\n042\nAAAA\n").is_err());
        let signed = sign(&text, "tenantry.audit", &reference_key()).unwrap();
        assert_eq!(Note::parse(&signed).unwrap().text, text);
    }
}
