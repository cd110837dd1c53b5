//! A local webhook receiver (a plain TCP server answering a script of
//! statuses) and an independent Standard Webhooks `v1` verifier, for the
//! outbound webhook tests (tests/webhooks.rs, tests/client_webhooks.rs).
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Answered with a 2xx.
    pub ok: bool,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

/// What the receiver answers next.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16, Vec<(&'static str, String)>),
    /// Answer nothing for this long (longer than the server's timeout).
    Hang(Duration),
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    pub script: Arc<Mutex<VecDeque<Answer>>>,
    /// The answer once the script is done.
    pub default: Arc<Mutex<Answer>>,
}

impl Receiver {
    /// A receiver on 127.0.0.1 that answers its script, then 200.
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Receiver {
            url,
            hits: Arc::new(Mutex::new(Vec::new())),
            script: Arc::new(Mutex::new(script.into())),
            default: Arc::new(Mutex::new(Answer::Status(200, vec![]))),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let Some(mut hit) = read_request(&mut socket).await else {
                        return;
                    };
                    let next = r.script.lock().unwrap().pop_front();
                    let answer = next.unwrap_or_else(|| r.default.lock().unwrap().clone());
                    hit.ok = matches!(answer, Answer::Status(200..=299, _));
                    r.hits.lock().unwrap().push(hit);
                    match answer {
                        Answer::Hang(d) => tokio::time::sleep(d).await,
                        Answer::Status(code, headers) => {
                            let mut head = format!(
                                "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n"
                            );
                            for (k, v) in headers {
                                head.push_str(&format!("{k}: {v}\r\n"));
                            }
                            head.push_str("\r\nok");
                            let _ = socket.write_all(head.as_bytes()).await;
                        }
                    }
                });
            }
        });
        receiver
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..600 {
            if self.hits().len() >= n {
                return self.hits();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} deliveries, not {n}: {:?}",
            self.hits().len(),
            self.hits()
        );
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Hit> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let len: usize = header("content-length").parse().unwrap_or(0);
    while buf.len() < head_end + len {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Hit {
        ok: false,
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
    })
}

/// The Standard Webhooks `v1` signature, computed independently.
pub fn v1(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether one of the space-separated signatures is `secret`'s.
pub fn signed_with(secret: &str, hit: &Hit) -> bool {
    let expected = v1(secret, &hit.id, &hit.timestamp, &hit.body);
    hit.signature.split(' ').any(|s| s == expected)
}
