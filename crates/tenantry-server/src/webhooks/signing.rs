//! Standard Webhooks signatures: `v1,` base64 HMAC-SHA256 and `v1a,`
//! base64 Ed25519, both over `{webhook-id}.{webhook-timestamp}.{body}`;
//! several signatures are separated by spaces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// The text form of an HMAC secret, as shown once to its owner.
pub fn secret_text(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The text form of an Ed25519 public key.
pub fn public_key_text(key: &ed25519_dalek::VerifyingKey) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(key.as_bytes()))
}

fn signed_content(id: &str, timestamp: i64, body: &str) -> String {
    format!("{id}.{timestamp}.{body}")
}

/// `v1,<base64 HMAC-SHA256>` with the raw (decoded) secret.
pub fn sign_v1(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map(|mut mac| {
        mac.update(signed_content(id, timestamp, body).as_bytes());
        mac.finalize().into_bytes()
    });
    match mac {
        Ok(tag) => format!("v1,{}", STANDARD.encode(tag)),
        Err(_) => String::new(),
    }
}

/// `v1a,<base64 Ed25519 signature>`.
pub fn sign_v1a(key: &ed25519_dalek::SigningKey, id: &str, timestamp: i64, body: &str) -> String {
    use ed25519_dalek::Signer;
    let signature = key.sign(signed_content(id, timestamp, body).as_bytes());
    format!("v1a,{}", STANDARD.encode(signature.to_bytes()))
}

/// The decoded key of a `whsec_…` secret.
pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks spec's published test vector.
    #[test]
    fn the_spec_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_default();
        assert_eq!(
            sign_v1(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn v1a_verifies_with_the_public_key() {
        use ed25519_dalek::Verifier;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let sig = sign_v1a(&key, "msg_1", 5, "{}");
        let bytes = STANDARD
            .decode(sig.trim_start_matches("v1a,"))
            .unwrap_or_default();
        let signature = ed25519_dalek::Signature::from_slice(&bytes);
        assert!(signature.is_ok_and(|s| key.verifying_key().verify(b"msg_1.5.{}", &s).is_ok()));
    }
}
