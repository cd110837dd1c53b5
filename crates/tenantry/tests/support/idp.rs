//! Tokens of an external identity provider for the identity tests: key
//! pairs and JWTs minted by PyJWT (an independent library, through
//! jwt_mint.py), and a local JWKS server that can rotate its keys, go down
//! and count its fetches (tests/identity.rs, tests/client_operations.rs).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ISSUER: &str = "https://login.example.test/";
pub const OTHER_ISSUER: &str = "https://other-idp.example.test/";

// --- Tokens, minted by PyJWT ----------------------------------------------

pub fn python(command: &str, input: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/jwt_mint.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (with PyJWT and cryptography: scripts/test installs them)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "jwt_mint.py {command} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fresh key pairs: `[(alg, kid)]` → `{kid, alg, jwk, private_pem, public_pem}`.
pub fn keys(specs: &[(&str, &str)]) -> Vec<Value> {
    let specs: Vec<Value> = specs
        .iter()
        .map(|(alg, kid)| json!({"alg": alg, "kid": kid}))
        .collect();
    python("keys", &Value::from(specs))
        .as_array()
        .unwrap()
        .clone()
}

pub fn jwks(keys: &[&Value]) -> Value {
    json!({"keys": keys.iter().map(|k| k["jwk"].clone()).collect::<Vec<_>>()})
}

/// Tokens: each spec is `{key, claims, mode?, kid?}` (see jwt_mint.py).
pub fn mint(specs: Vec<Value>) -> Vec<String> {
    python("mint", &Value::from(specs))
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": "app", "sub": sub, "iat": now(), "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

pub fn token(key: &Value, claims: Value) -> String {
    mint(vec![json!({"key": key, "claims": claims})]).remove(0)
}

// --- The issuer's key set server -------------------------------------------

/// A local HTTP server publishing a JWKS (with `Cache-Control`), that can
/// rotate its keys, go down, and count the fetches.
pub struct Issuer {
    pub url: String,
    state: Arc<Mutex<(Value, bool)>>,
    hits: Arc<AtomicU64>,
}

impl Issuer {
    pub async fn start(set: Value) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let state = Arc::new(Mutex::new((set, false)));
        let hits = Arc::new(AtomicU64::new(0));
        let (s, h) = (state.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let (s, h) = (s.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16_384 {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let (body, down) = s.lock().unwrap().clone();
                    let response = if down {
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                    } else {
                        let body = body.to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: public, max-age=600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let _ = conn.write_all(response.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Issuer { url, state, hits }
    }

    pub fn publish(&self, set: Value) {
        self.state.lock().unwrap().0 = set;
    }

    pub fn down(&self, down: bool) {
        self.state.lock().unwrap().1 = down;
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}
