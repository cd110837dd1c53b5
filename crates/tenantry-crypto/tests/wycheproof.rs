//! Conformance: the AEAD layer that seals every tenant secret passes Project
//! Wycheproof's AES-GCM vectors (every group with a 256-bit key, 96-bit nonce
//! and 128-bit tag — the only parameters this crate uses).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tenantry_crypto::aead;
use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

#[test]
fn aes_256_gcm_passes_wycheproof() {
    let set = TestSet::load(TestName::AesGcm).expect("the AES-GCM vectors load");
    let (mut valid, mut invalid, mut acceptable, mut skipped) = (0usize, 0usize, 0usize, 0usize);
    for group in &set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            skipped += group.tests.len();
            continue;
        }
        for test in &group.tests {
            let key: &[u8; 32] = test.key.as_slice().try_into().expect("256-bit key");
            let nonce: &[u8; 12] = test.nonce.as_slice().try_into().expect("96-bit nonce");
            let expected = [test.ct.as_slice(), test.tag.as_slice()].concat();
            let label = format!(
                "tcId {} ({}, flags {:?})",
                test.tc_id, test.comment, test.flags
            );
            match test.result {
                TestResult::Valid => {
                    valid += 1;
                    let sealed = aead::encrypt(key, nonce, &test.aad, &test.pt)
                        .unwrap_or_else(|e| panic!("{label}: encrypt failed: {e}"));
                    assert_eq!(sealed, expected, "{label}: wrong ciphertext||tag");
                    let opened = aead::decrypt(key, nonce, &test.aad, &expected)
                        .unwrap_or_else(|e| panic!("{label}: decrypt failed: {e}"));
                    assert_eq!(opened, test.pt.as_slice(), "{label}: wrong plaintext");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        aead::decrypt(key, nonce, &test.aad, &expected).is_err(),
                        "{label}: an invalid vector decrypted"
                    );
                }
                TestResult::Acceptable => {
                    // None exist for these parameters today; if some appear, a
                    // decryption must at least never return a wrong plaintext.
                    acceptable += 1;
                    if let Ok(pt) = aead::decrypt(key, nonce, &test.aad, &expected) {
                        assert_eq!(pt, test.pt.as_slice(), "{label}");
                    }
                }
            }
        }
    }
    let run = valid + invalid + acceptable;
    println!(
        "wycheproof AES-GCM: {run} vectors run with 256-bit key / 96-bit nonce / 128-bit tag \
         ({valid} valid, {invalid} invalid, {acceptable} acceptable); {skipped} with other sizes skipped"
    );
    assert!(run > 0, "no Wycheproof vector matched AES-256-GCM/96/128");
    assert!(
        valid > 0 && invalid > 0,
        "expected both valid and invalid vectors"
    );
}
