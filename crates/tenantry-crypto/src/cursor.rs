//! Opaque cursors over a counter: a number a client hands back later (an
//! SSE `Last-Event-ID`, say) without learning anything from it.
//!
//! A plain counter tells whoever sees two of its values how many events
//! happened in between, other tenants' included. [`CursorCipher`] encrypts the
//! counter as one AES-256 block (a pseudorandom permutation under a key drawn
//! per process), with eight zero bytes beside it as an integrity check: two
//! cursors reveal nothing about the distance between them, and a made-up or
//! foreign cursor opens to `None` except with probability 2⁻⁶⁴.

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Seals and opens counter values; the key lives only in this process.
pub struct CursorCipher {
    cipher: Aes256,
}

impl std::fmt::Debug for CursorCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCipher(..)")
    }
}

impl CursorCipher {
    /// A cipher under a fresh random key.
    pub fn random() -> CursorCipher {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        CursorCipher {
            cipher: Aes256::new(GenericArray::from_slice(key.as_ref())),
        }
    }

    /// The cursor of `value`: 22 URL-safe base64 characters.
    pub fn seal(&self, value: u64) -> String {
        let mut block = GenericArray::from([0u8; 16]);
        block[8..].copy_from_slice(&value.to_be_bytes());
        self.cipher.encrypt_block(&mut block);
        URL_SAFE_NO_PAD.encode(block)
    }

    /// The value sealed in `cursor`, or `None` for anything this cipher did
    /// not produce.
    pub fn open(&self, cursor: &str) -> Option<u64> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let mut block = GenericArray::from(bytes);
        self.cipher.decrypt_block(&mut block);
        if block[..8].iter().any(|b| *b != 0) {
            return None;
        }
        let mut value = [0u8; 8];
        value.copy_from_slice(&block[8..]);
        Some(u64::from_be_bytes(value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_order() {
        let cipher = CursorCipher::random();
        let cursors: Vec<String> = (1..=50).map(|n| cipher.seal(n)).collect();
        for (n, cursor) in (1..=50).zip(&cursors) {
            assert_eq!(cursor.len(), 22);
            assert_eq!(cipher.open(cursor), Some(n));
        }
        // Neighbouring values share no visible structure.
        let mut sorted = cursors.clone();
        sorted.sort();
        assert_ne!(sorted, cursors);
    }

    #[test]
    fn refuses_foreign_and_forged_cursors() {
        let ours = CursorCipher::random();
        let theirs = CursorCipher::random();
        assert_eq!(ours.open(&theirs.seal(7)), None);
        assert_eq!(ours.open("garbage"), None);
        assert_eq!(ours.open(""), None);
        assert_eq!(ours.open("AAAAAAAAAAAAAAAAAAAAAA"), None);
        let mut flipped = ours.seal(7).into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(ours.open(std::str::from_utf8(&flipped).unwrap()), None);
        assert!(!format!("{ours:?}").contains('['));
    }
}
