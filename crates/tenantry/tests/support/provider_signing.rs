//! Provider webhook signatures computed the way the providers document
//! them, for the inbound tests (tests/inbound.rs, tests/provider_callbacks.rs,
//! tests/client_operations.rs).
#![allow(dead_code)]

use base64::Engine;
use hmac::{Hmac, Mac};

/// `sha256=<hex>`: HMAC-SHA256 of the exact bytes (Meta's
/// `X-Hub-Signature-256`, and the generic scheme's `X-Tenantry-Signature`).
pub fn sha256_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Twilio's documented algorithm: the full URL, then each parameter's name
/// and value in name order, HMAC-SHA1 with the auth token, base64.
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs each payload with a fresh P-256 key in Python's `cryptography`:
/// (base64 SPKI DER public key, base64 DER signatures).
pub fn sendgrid_keys(payloads: &[Vec<u8>]) -> (String, Vec<String>) {
    let script = r#"
import sys, json, base64
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes, serialization
k = ec.generate_private_key(ec.SECP256R1())
pub = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
sigs = [base64.b64encode(k.sign(bytes.fromhex(p), ec.ECDSA(hashes.SHA256()))).decode() for p in json.load(sys.stdin)]
print(json.dumps({"public_key": base64.b64encode(pub).decode(), "signatures": sigs}))
"#;
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hexes: Vec<String> = payloads.iter().map(hex::encode).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&hexes).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python cryptography");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["public_key"].as_str().unwrap().to_owned(),
        v["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    )
}
