//! The one AEAD primitive everything in this crate is built on: AES-256-GCM
//! with a 96-bit nonce and a 128-bit tag (RustCrypto `aes-gcm`).
//!
//! [`crate::seal`], [`crate::open`], [`crate::wrap`] and [`crate::unwrap`] all
//! go through these two functions, so the Wycheproof conformance test in
//! `tests/wycheproof.rs` covers exactly the code that protects tenant secrets.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::CryptoError;

/// Key length in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (96 bits, the only size GCM handles natively).
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;

/// Encrypts `plaintext` under `key` and `nonce`, authenticating `aad` too.
/// Returns `ciphertext || tag` (`plaintext.len() + 16` bytes).
///
/// The caller must never reuse a nonce with the same key; this crate's own
/// callers draw every nonce from the OS random number generator.
pub fn encrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Only fails for plaintexts beyond GCM's limit (~64 GiB).
        .map_err(|_| CryptoError::Malformed)
}

/// Decrypts and verifies `ciphertext_and_tag` (as returned by [`encrypt`]).
/// Any authentication failure — a wrong key, nonce or `aad`, a modified
/// ciphertext or tag, or input shorter than a tag — is [`CryptoError::Decrypt`].
pub fn decrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// NIST GCM test vector (gcmEncryptExtIV256.rsp / McGrew–Viega test case
    /// 16): 256-bit key, 96-bit IV, AAD, 60-byte plaintext.
    #[test]
    fn known_answer() {
        let key: [u8; 32] =
            hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = hex::decode("cafebabefacedbaddecaf888")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        )
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let expected = hex::decode(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b",
        )
        .unwrap();
        let ct = encrypt(&key, &nonce, &aad, &pt).unwrap();
        assert_eq!(ct, expected);
        assert_eq!(decrypt(&key, &nonce, &aad, &ct).unwrap(), pt);
        assert_eq!(
            decrypt(&key, &nonce, b"other", &ct),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            decrypt(&key, &nonce, &aad, &ct[..TAG_LEN - 1]),
            Err(CryptoError::Decrypt)
        );
    }
}
