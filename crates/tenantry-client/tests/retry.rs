//! Retries against a tiny local HTTP server that answers from a script:
//! which calls are retried, on what, with which idempotency key, and how
//! `Retry-After` reaches the error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantry_client::api::tenants::TenantIn;
use tenantry_client::{Client, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The requests the server saw (head, lower-cased).
type Seen = Arc<Mutex<Vec<String>>>;

/// Serves `script` in order, one answer per connection, then 500s.
async fn serve(script: Vec<String>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head, then as much body as Content-Length says.
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_lowercase());
            let answer = script
                .next()
                .unwrap_or_else(|| answer(500, "", PROBLEM_500));
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (base, seen)
}

const PROBLEM_500: &str =
    r#"{"type":"x","title":"Internal","status":500,"detail":"boom","code":"internal_error"}"#;
const LIMITED: &str = r#"{"type":"x","title":"Too Many Requests","status":429,"detail":"slow down","code":"rate_limited"}"#;
const UNAVAILABLE: &str = r#"{"type":"x","title":"Unavailable","status":503,"detail":"db down","code":"database_unavailable"}"#;
const TENANT: &str = r#"{"id":"acme","name":"Acme","subdomain":"acme","status":"active","plan":"starter","region":"eu","metadata":{},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","deleted_at":null}"#;

fn answer(status: u16, extra: &str, body: &str) -> String {
    let ct = if status < 300 {
        "application/json"
    } else {
        "application/problem+json"
    };
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn fast(base: &str, retries: u32) -> Client {
    Client::builder(base)
        .key("tk_test_secret")
        .retry_policy(RetryPolicy {
            max_retries: retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(10),
        })
        .build()
        .unwrap()
}

fn idempotency_key(request: &str) -> Option<String> {
    request
        .lines()
        .find_map(|l| l.strip_prefix("idempotency-key:"))
        .map(|v| v.trim().to_owned())
}

fn tenant_in() -> TenantIn {
    TenantIn {
        id: "acme".into(),
        name: "Acme".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_with_the_same_idempotency_key() {
    let (base, seen) = serve(vec![
        answer(429, "retry-after: 1\r\n", LIMITED),
        answer(
            429,
            "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
            LIMITED,
        ),
        answer(201, "", TENANT),
    ])
    .await;
    let tenant = fast(&base, 3).tenants().create(&tenant_in()).await.unwrap();
    assert_eq!(tenant.id, "acme");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let keys: Vec<_> = seen.iter().map(|r| idempotency_key(r)).collect();
    assert!(keys[0].is_some());
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert!(seen[0].starts_with("post /v1/tenants "));
    assert!(seen[0].contains("authorization: bearer tk_test_secret"));
}

#[tokio::test]
async fn an_explicit_idempotency_key_is_sent_on_every_attempt() {
    let (base, seen) = serve(vec![
        answer(503, "retry-after: 0\r\n", UNAVAILABLE),
        answer(201, "", TENANT),
    ])
    .await;
    fast(&base, 2)
        .tenants()
        .idempotency_key("mine-1")
        .create(&tenant_in())
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| idempotency_key(r).as_deref() == Some("mine-1"))
    );
}

#[tokio::test]
async fn a_503_on_a_post_without_a_key_is_not_retried() {
    let (base, seen) = serve(vec![
        answer(503, "retry-after: 7\r\n", UNAVAILABLE),
        answer(200, "", TENANT),
    ])
    .await;
    let err = fast(&base, 3).tenants().suspend("acme").await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(
        (api.status, api.code.as_str()),
        (503, "database_unavailable")
    );
    assert_eq!(api.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(api.detail, "db down");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_503_on_a_get_is_retried_until_the_budget_is_spent() {
    let (base, seen) = serve(vec![
        answer(503, "", UNAVAILABLE),
        answer(503, "", UNAVAILABLE),
        answer(503, "", UNAVAILABLE),
        answer(200, "", TENANT),
    ])
    .await;
    let err = fast(&base, 2).tenants().get("acme").await.unwrap_err();
    assert_eq!(err.code(), Some("database_unavailable"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn other_errors_are_not_retried_and_carry_their_problem() {
    let body = r#"{"type":"x","title":"Unprocessable","status":422,"detail":"bad","code":"validation_failed","field":"id","errors":[{"field":"id","code":"invalid_slug","detail":"no"}]}"#;
    let (base, seen) = serve(vec![answer(422, "x-request-id: req-1\r\n", body)]).await;
    let err = fast(&base, 3)
        .tenants()
        .create(&tenant_in())
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.field.as_deref(), Some("id"));
    assert_eq!(api.errors[0].code, "invalid_slug");
    assert_eq!(api.request_id.as_deref(), Some("req-1"));
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A body that is not a problem document still gives a stable code.
    let (base, _) = serve(vec![answer(502, "", "<html>bad gateway</html>")]).await;
    let err = fast(&base, 0).tenants().get("acme").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(502), Some("unexpected_response"))
    );
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported_without_the_url() {
    // A port with nothing listening: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = fast(&format!("http://127.0.0.1:{port}"), 2);
    let err = client.tenants().get("acme").await.unwrap_err();
    assert!(
        matches!(err, tenantry_client::Error::Transport(_)),
        "{err:?}"
    );
    assert!(!err.to_string().contains("/v1/tenants"), "{err}");
    assert!(!format!("{client:?}").contains("tk_test_secret"));
}

#[tokio::test]
async fn lists_follow_next_cursor() {
    let page = |ids: &[&str], next: Option<&str>| {
        let data: Vec<String> = ids
            .iter()
            .map(|id| TENANT.replace("\"acme\"", &format!("\"{id}\"")))
            .collect();
        let next = next.map_or("null".to_owned(), |c| format!("\"{c}\""));
        answer(
            200,
            "",
            &format!(r#"{{"data":[{}],"next_cursor":{next}}}"#, data.join(",")),
        )
    };
    let (base, seen) = serve(vec![
        page(&["a", "b"], Some("c1")),
        page(&["c"], Some("c2")),
        page(&[], None),
    ])
    .await;
    use futures_util::TryStreamExt;
    let all: Vec<_> = fast(&base, 0)
        .tenants()
        .list(tenantry_client::api::tenants::ListTenantsParams {
            status: Some("active".into()),
            limit: Some(2),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("get /v1/tenants?status=active&limit=2 "),
        "{}",
        seen[0]
    );
    assert!(seen[1].contains("cursor=c1"));
    assert!(seen[2].contains("cursor=c2"));
}
