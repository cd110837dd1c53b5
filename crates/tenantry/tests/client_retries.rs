//! How `tenantry-client` retries, against the real server on both
//! backends: a real `429` of the server's own rate limiter (retried after
//! its `Retry-After`, or surfaced as `Error::Api` once retries are off or
//! used up), and answers lost on the way back (a proxy that lets the server
//! do the work, then drops the connection before passing a byte on): a
//! keyed POST is sent again with the same `Idempotency-Key` and has one
//! effect; a POST without one is not sent again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;

use client_kit::{key_in, quick_retries, root, tenant_in};
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantry_client::api::quotas::QuotaCheckIn;
use tenantry_client::api::widgets::WidgetIn;
use tenantry_client::{Client, Error, ListParams, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

on_both_backends!(
    a_rate_limited_call_is_retried_after_retry_after,
    a_rate_limit_surfaces_when_retries_are_off_or_used_up,
    a_lost_answer_to_a_keyed_post_is_replayed_once,
    a_post_without_a_key_is_not_sent_twice,
);

/// One request and its answer as the proxy passed them (or swallowed them).
#[derive(Debug, Clone)]
struct Exchange {
    request_head: String,
    status: u16,
    response_head: String,
    response_body: Vec<u8>,
    /// The answer was dropped: the client never saw a byte of it.
    dropped: bool,
}

impl Exchange {
    fn request_header(&self, name: &str) -> Option<String> {
        header(&self.request_head, name)
    }

    fn response_header(&self, name: &str) -> Option<String> {
        header(&self.response_head, name)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.response_body).unwrap()
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A TCP proxy in front of the server that forwards each request whole and
/// reads the server's whole answer, then drops the connection without
/// passing the answer on for the first `drop_first` requests (the server
/// did the work; the client saw nothing), and passes every later one on.
struct LossyProxy {
    url: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl LossyProxy {
    async fn start(server: &TestServer, drop_first: usize) -> LossyProxy {
        let upstream = server
            .base
            .strip_prefix("http://")
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let log = exchanges.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, log, seen) = (upstream.clone(), log.clone(), seen.clone());
                tokio::spawn(async move {
                    relay(client, &upstream, &log, &seen, drop_first).await;
                });
            }
        });
        LossyProxy { url, exchanges }
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// A client of the server through this proxy.
    fn client(&self, key: &str, policy: RetryPolicy) -> Client {
        Client::builder(&self.url)
            .key(key)
            .retry_policy(policy)
            .build()
            .unwrap()
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: &str,
    log: &Mutex<Vec<Exchange>>,
    seen: &AtomicUsize,
    drop_first: usize,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // One exchange after another on the same (keep-alive) connection.
    while let Some((request_head, request_body)) = read_message(&mut client).await {
        server.write_all(request_head.as_bytes()).await.unwrap();
        server.write_all(&request_body).await.unwrap();
        let (response_head, response_body) = read_message(&mut server).await.unwrap();
        let status = response_head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let dropped = seen.fetch_add(1, Ordering::SeqCst) < drop_first;
        log.lock().unwrap().push(Exchange {
            request_head,
            status,
            response_head: response_head.clone(),
            response_body: response_body.clone(),
            dropped,
        });
        if dropped {
            // Closing both sides: the client gets an empty answer.
            return;
        }
        if client.write_all(response_head.as_bytes()).await.is_err()
            || client.write_all(&response_body).await.is_err()
        {
            return;
        }
    }
}

/// One HTTP/1.1 message: its head (through the blank line) and its body
/// (by `Content-Length`, or chunked through the last chunk), as sent.
async fn read_message(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf.split_off(head_end);
    let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let complete = |body: &[u8]| match header(&head, "content-length") {
        Some(len) => body.len() >= len.parse::<usize>().unwrap(),
        None if chunked => body.ends_with(b"0\r\n\r\n"),
        None => true,
    };
    while !complete(&body) {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Tenant `tenant` with an API budget of `limit` calls per `period_seconds`,
/// and a client acting as a key of it.
async fn limited_tenant(root: &Client, tenant: &str, limit: u64, period_seconds: u64) -> String {
    root.tenants().create(&tenant_in(tenant)).await.unwrap();
    root.config(tenant)
        .patch(&json!({"rate_limits": {"api_calls_per_hour": {"limit": limit, "period_seconds": period_seconds}}}))
        .await
        .unwrap();
    root.keys(tenant)
        .create(&key_in("limited", &["tenant:read"]))
        .await
        .unwrap()
        .key
}

async fn a_rate_limited_call_is_retried_after_retry_after(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    // Two calls per two seconds: a GCRA cell of one second.
    let key = limited_tenant(&root, "acme", 2, 2).await;
    let proxy = LossyProxy::start(&server, 0).await;
    let client = proxy.client(&key, quick_retries(3, Duration::from_secs(5)));

    for _ in 0..3 {
        let t = client.tenants().get("acme").await.unwrap();
        assert_eq!(t.id, "acme");
    }
    // The third call was refused by the server with 429 and Retry-After,
    // then retried once the window passed, and answered.
    let statuses: Vec<u16> = proxy.exchanges().iter().map(|e| e.status).collect();
    assert!(
        statuses.starts_with(&[200, 200, 429]) && statuses.last() == Some(&200),
        "{statuses:?}"
    );
    let refused = proxy.exchanges()[2].clone();
    assert_eq!(refused.json()["code"], "rate_limited");
    let wait: u64 = refused
        .response_header("retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(refused.response_header("ratelimit-remaining").unwrap(), "0");
}

async fn a_rate_limit_surfaces_when_retries_are_off_or_used_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    // One call an hour: the second waits for most of an hour.
    let key = limited_tenant(&root, "acme", 1, 3600).await;
    let proxy = LossyProxy::start(&server, 0).await;

    let no_retries = proxy.client(&key, quick_retries(0, Duration::from_secs(60)));
    no_retries.tenants().get("acme").await.unwrap();
    let err = no_retries.tenants().get("acme").await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.code.as_str()), (429, "rate_limited"));
    let wait = api.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(60) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
    assert!(api.request_id.is_some());
    assert_eq!(proxy.exchanges().len(), 2, "retries off: sent once");

    // Retries on, but the server's wait is longer than the client waits
    // for (cut to 50 ms here): two retries, then the same error.
    let impatient = proxy.client(&key, quick_retries(2, Duration::from_millis(50)));
    let err = impatient.tenants().get("acme").await.unwrap_err();
    assert!(matches!(&err, Error::Api(e) if e.status == 429 && e.code == "rate_limited"));
    assert!(err.api().unwrap().retry_after.unwrap() > Duration::from_secs(60));
    let statuses: Vec<u16> = proxy.exchanges().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [200, 429, 429, 429, 429]);
    // Operators are not held to the tenant's budget.
    assert_eq!(root.tenants().get("acme").await.unwrap().id, "acme");
}

async fn a_lost_answer_to_a_keyed_post_is_replayed_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    let proxy = LossyProxy::start(&server, 1).await;
    let through = proxy.client(ROOT_KEY, quick_retries(3, Duration::from_secs(5)));

    // A tenant: created by the first request, whose answer was lost; the
    // retry carries the same key and gets the stored answer.
    let made = through.tenants().create(&tenant_in("acme")).await.unwrap();
    let sent = proxy.exchanges();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].dropped && !sent[1].dropped);
    assert_eq!((sent[0].status, sent[1].status), (201, 201));
    let key = sent[0].request_header("idempotency-key").unwrap();
    assert_eq!(sent[1].request_header("idempotency-key"), Some(key));
    assert_eq!(
        sent[1].response_header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(sent[0].response_header("idempotent-replayed"), None);
    assert_eq!(sent[1].json(), sent[0].json());
    let first_created: chrono::DateTime<chrono::Utc> = sent[0].json()["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(made.created_at, first_created);

    // An API key: nothing natural would stop a second one being made, so
    // one key listed is the idempotency key's doing.
    let proxy = LossyProxy::start(&server, 1).await;
    let through = proxy.client(ROOT_KEY, quick_retries(3, Duration::from_secs(5)));
    let minted = through
        .keys("acme")
        .create(&key_in("svc", &["tenant:read"]))
        .await
        .unwrap();
    let sent = proxy.exchanges();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        sent[0].request_header("idempotency-key"),
        sent[1].request_header("idempotency-key")
    );
    assert_eq!(sent[0].json()["id"], minted.details.id);
    assert_eq!(sent[0].json()["key"], minted.key);
    let keys: Vec<_> = root
        .keys("acme")
        .list(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].id, minted.details.id);
    // The replayed secret is the real one.
    let as_key = root.with_key(&minted.key).unwrap();
    assert_eq!(as_key.tenants().get("acme").await.unwrap().id, "acme");
}

async fn a_post_without_a_key_is_not_sent_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let proxy = LossyProxy::start(&server, 1).await;
    let through = proxy.client(ROOT_KEY, quick_retries(3, Duration::from_secs(5)));

    // A widget (created without an Idempotency-Key): the server made it,
    // the answer was lost, and the client says so instead of making a
    // second one.
    let err = through
        .widgets("acme")
        .create(&WidgetIn {
            name: "chat".into(),
            allowed_origins: vec!["https://shop.example".into()],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(proxy.exchanges().len(), 1);
    assert_eq!(proxy.exchanges()[0].status, 201);
    assert_eq!(root.widgets("acme").list().await.unwrap().data.len(), 1);

    // A quota consumption: taken once, not twice.
    let proxy = LossyProxy::start(&server, 1).await;
    let through = proxy.client(ROOT_KEY, quick_retries(3, Duration::from_secs(5)));
    let consume = QuotaCheckIn {
        tenant_id: Some("acme".into()),
        meter: "messages_outbound".into(),
        quantity: Some(3),
        consume: Some(true),
    };
    let err = through.usage().check_quota(&consume).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(proxy.exchanges().len(), 1);
    let now = root
        .usage()
        .check_quota(&QuotaCheckIn {
            consume: Some(false),
            quantity: Some(1),
            ..consume
        })
        .await
        .unwrap();
    assert_eq!(now.used, 3);
    // A GET is safe to repeat: the lost answer is fetched again.
    let proxy = LossyProxy::start(&server, 1).await;
    let through = proxy.client(ROOT_KEY, quick_retries(3, Duration::from_secs(5)));
    assert_eq!(through.tenants().get("acme").await.unwrap().id, "acme");
    assert_eq!(proxy.exchanges().len(), 2);
}
