//! `GET /v1/changes`: the server-sent event stream of committed changes.
//! Authenticated (anonymous 401), tenant streams carry only their tenant's
//! changes, resumable with `Last-Event-ID` (or an explicit `reset`), bounded
//! per caller, ended when the stream's own credential is revoked; on
//! PostgreSQL a change committed on one node reaches another node's stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    anonymous_and_bad_credentials_are_refused,
    a_tenant_stream_never_carries_another_tenants_changes,
    resumes_after_last_event_id_or_says_reset,
    streams_per_caller_are_limited,
    a_revoked_keys_stream_ends,
    idle_streams_get_keep_alive_comments,
    a_stream_ends_when_its_key_expires,
    a_tenants_replay_counts_only_its_own_changes,
);

/// One server-sent event (or a comment).
#[derive(Debug)]
struct Event {
    id: Option<String>,
    name: String,
    data: Value,
}

/// A `GET /v1/changes` response being read.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    /// Everything received, for assertions on what never appeared.
    raw: String,
}

/// How long any one event may take to arrive before the test fails.
const WAIT: Duration = Duration::from_secs(20);

fn stream_client() -> reqwest::Client {
    // No overall timeout: the body is endless.
    reqwest::Client::builder().build().expect("client")
}

async fn open(server: &TestServer, key: Option<&str>, last: Option<&str>) -> reqwest::Response {
    let mut req = stream_client()
        .get(server.url("/v1/changes"))
        .header("accept", "text/event-stream");
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    req.send().await.expect("request")
}

impl Stream {
    async fn open(server: &TestServer, key: &str, last: Option<&str>) -> Stream {
        let response = open(server, Some(key), last).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            response,
            buffer: String::new(),
            raw: String::new(),
        }
    }

    /// The next event or comment (`name` `":"` for a comment); `None` when
    /// the server ended the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    name: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if line.starts_with(':') {
                        event.name = ":".into();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).expect("data is JSON");
                    }
                }
                if event.name.is_empty() {
                    continue; // `retry:`
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event within the wait")
                .ok()??;
            let text = String::from_utf8(chunk.to_vec()).expect("UTF-8");
            self.raw.push_str(&text);
            self.buffer.push_str(&text);
        }
    }

    /// Events up to and including the first that `until` accepts.
    async fn until(&mut self, until: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await.expect("the stream ended early");
            let done = until(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    async fn ready(&mut self) -> Event {
        self.until(|e| e.name == "ready")
            .await
            .pop()
            .expect("ready")
    }
}

fn is_tenant_change(tenant: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| e.name == "change" && e.data["tenant_id"] == tenant
}

async fn create_key(server: &TestServer, tenant: &str) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "svc", "scopes": ["tenant:read"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["key"].as_str().unwrap().to_owned(),
        reply.body["id"].as_str().unwrap().to_owned(),
    )
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn anonymous_and_bad_credentials_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for key in [None, Some("tnt_sk_live_made-up"), Some("not a key at all")] {
        let reply = common::Reply::from(open(&server, key, None).await).await;
        reply.assert_problem(401, "unauthorized");
    }
    // Resuming is no way in either.
    let reply = common::Reply::from(open(&server, None, Some("n_x.1")).await).await;
    reply.assert_problem(401, "unauthorized");
}

async fn a_tenant_stream_never_carries_another_tenants_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("beta").await;
    let (beta_key, _) = create_key(&server, "beta").await;
    let mut operator = Stream::open(&server, ROOT_KEY, None).await;
    let mut beta = Stream::open(&server, &beta_key, None).await;
    operator.ready().await;
    beta.ready().await;

    // acme's changes: a key made and revoked, a suspension.
    let (acme_key, acme_key_id) = create_key(&server, "acme").await;
    let revoked = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{acme_key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    let suspended = server.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK, "{suspended:?}");
    // Then one of beta's, after them in the stream's order.
    let patched = server
        .patch("/v1/tenants/beta", json!({"name": "Beta Renamed"}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");

    // The operator sees acme's key revocation (by its hash) and suspension.
    let acme_hash = sha256_hex(&acme_key);
    let seen = operator
        .until(|e| {
            e.name == "change" && e.data["type"] == "tenant" && e.data["tenant_id"] == "acme"
        })
        .await;
    assert!(
        seen.iter()
            .any(|e| e.data["type"] == "key" && e.data["key_hash"] == acme_hash.as_str()),
        "{seen:?}"
    );
    operator.until(is_tenant_change("beta")).await;

    // beta sees its own change, and nothing of acme's before it.
    let seen = beta.until(is_tenant_change("beta")).await;
    assert!(
        seen.iter().all(|e| e.data["tenant_id"] != "acme"),
        "{seen:?}"
    );
    assert!(!beta.raw.contains("acme"), "{}", beta.raw);
    assert!(!beta.raw.contains(&acme_hash), "{}", beta.raw);
    // Every event has an id (to resume from) and the key never appears.
    assert!(seen.iter().all(|e| e.id.is_some()));
    assert!(!operator.raw.contains(&acme_key));
}

async fn resumes_after_last_event_id_or_says_reset(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let mut first = Stream::open(&server, ROOT_KEY, None).await;
    let ready = first.ready().await;
    let position = ready.id.expect("ready has an id");
    drop(first);
    // A witness stays connected, to know when both changes have reached
    // this node's hub (on PostgreSQL they come back through LISTEN).
    let mut witness = Stream::open(&server, ROOT_KEY, None).await;
    witness.ready().await;

    // Changes while disconnected.
    let suspended = server.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK);
    let reactivated = server.post("/v1/tenants/acme/reactivate", json!({})).await;
    assert_eq!(reactivated.status, StatusCode::OK, "{reactivated:?}");

    let mut seen_by_witness = 0;
    while seen_by_witness < 2 {
        witness.until(is_tenant_change("acme")).await;
        seen_by_witness += 1;
    }

    // Resumed: the missed changes come first, then `ready`.
    let mut resumed = Stream::open(&server, ROOT_KEY, Some(&position)).await;
    let seen = resumed.until(|e| e.name == "ready").await;
    let replayed: Vec<&Event> = seen
        .iter()
        .filter(|e| e.name == "change" && e.data["tenant_id"] == "acme")
        .collect();
    assert!(replayed.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|e| e.name != "reset"), "{seen:?}");
    assert_eq!(
        seen.last().unwrap().data["replayed"]
            .as_u64()
            .map(|n| n >= 2),
        Some(true)
    );
    // Resuming from the newest id replays nothing.
    let newest = seen.last().unwrap().id.clone().unwrap();
    let mut again = Stream::open(&server, ROOT_KEY, Some(&newest)).await;
    let seen = again.until(|e| e.name == "ready").await;
    assert_eq!(seen.len(), 1, "{seen:?}");

    // An id this node cannot replay from (another node's, made up,
    // malformed): an explicit reset first.
    for bad in [
        "n_someothernode.3",
        &format!("{position}999"),
        "garbage",
        "n_x.-1",
    ] {
        let mut stream = Stream::open(&server, ROOT_KEY, Some(bad)).await;
        let first = stream.next().await.expect("an event");
        assert_eq!(first.name, "reset", "{bad}: {first:?}");
        assert!(first.id.is_some());
    }
}

async fn streams_per_caller_are_limited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_CHANGES_STREAMS_PER_CALLER", "2"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    let (key, _) = create_key(&server, "acme").await;
    let mut a = Stream::open(&server, &key, None).await;
    let mut b = Stream::open(&server, &key, None).await;
    a.ready().await;
    b.ready().await;
    let third = common::Reply::from(open(&server, Some(&key), None).await).await;
    third.assert_problem(429, "too_many_streams");
    assert!(third.headers.contains_key("retry-after"));
    // Another credential has its own allowance.
    Stream::open(&server, ROOT_KEY, None).await.ready().await;
    // A closed stream frees its slot.
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = open(&server, Some(&key), None).await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_revoked_keys_stream_ends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let (key, key_id) = create_key(&server, "acme").await;
    let mut stream = Stream::open(&server, &key, None).await;
    stream.ready().await;
    let revoked = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let seen = stream.until(|e| e.name == "closed").await;
    assert!(
        seen.iter()
            .any(|e| e.data["type"] == "key" && e.data["key_hash"] == sha256_hex(&key).as_str()),
        "{seen:?}"
    );
    assert!(stream.next().await.is_none(), "the stream ends");
    let again = common::Reply::from(open(&server, Some(&key), None).await).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    // Suspending the tenant ends its streams too.
    let (key, _) = create_key(&server, "acme").await;
    let mut stream = Stream::open(&server, &key, None).await;
    stream.ready().await;
    let suspended = server.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK);
    stream.until(|e| e.name == "closed").await;
    assert!(stream.next().await.is_none());
}

async fn idle_streams_get_keep_alive_comments(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_CHANGES_KEEPALIVE", "100ms"),
        ],
    )
    .await;
    let mut stream = Stream::open(&server, ROOT_KEY, None).await;
    stream.ready().await;
    for _ in 0..2 {
        let comment = stream.next().await.expect("a comment");
        assert_eq!(comment.name, ":");
    }
}

/// An expiry sends no event: the stream checks its credential again at
/// every keep-alive, so an expired key's stream ends with `closed`.
async fn a_stream_ends_when_its_key_expires(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_CHANGES_KEEPALIVE", "200ms"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    let reply = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "short", "scopes": ["tenant:read"], "expires_at": expires.to_rfc3339()}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let key = reply.body["key"].as_str().unwrap().to_owned();
    let mut stream = Stream::open(&server, &key, None).await;
    stream.ready().await;
    let seen = stream.until(|e| e.name == "closed").await;
    assert!(
        seen.iter().all(|e| e.name == ":" || e.name == "closed"),
        "nothing but keep-alives before closed: {seen:?}"
    );
    assert!(stream.next().await.is_none(), "the stream ends");
}

/// Resuming tells a tenant how many of its own changes were replayed, never
/// how many changes other tenants made meanwhile.
async fn a_tenants_replay_counts_only_its_own_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("beta").await;
    let (beta_key, _) = create_key(&server, "beta").await;
    let mut first = Stream::open(&server, &beta_key, None).await;
    let position = first.ready().await.id.expect("ready has an id");
    drop(first);
    let mut witness = Stream::open(&server, ROOT_KEY, None).await;
    witness.ready().await;
    for action in ["suspend", "reactivate"] {
        let reply = server
            .post(&format!("/v1/tenants/acme/{action}"), json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        witness.until(is_tenant_change("acme")).await;
    }
    let mut resumed = Stream::open(&server, &beta_key, Some(&position)).await;
    let seen = resumed.until(|e| e.name == "ready").await;
    let ready = seen.last().expect("ready");
    assert_eq!(ready.data["replayed"], 0, "{seen:?}");
    assert!(
        seen.iter().all(|e| e.data["tenant_id"] != "acme"),
        "{seen:?}"
    );
}

/// Two nodes over one PostgreSQL database: a change committed through one
/// reaches a stream served by the other (through LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_change_on_one_node_reaches_another_nodes_stream() {
    let db = TestDb::new(Backend::Postgres).await;
    let one = TestServer::start(&db).await;
    let two = TestServer::start(&db).await;
    one.create_tenant("acme").await;
    one.create_tenant("beta").await;
    let (beta_key, _) = create_key(&one, "beta").await;
    let mut operator = Stream::open(&two, ROOT_KEY, None).await;
    let mut beta = Stream::open(&two, &beta_key, None).await;
    operator.ready().await;
    beta.ready().await;
    let suspended = one.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK);
    let patched = one
        .patch("/v1/tenants/beta", json!({"name": "Beta Renamed"}))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    operator.until(is_tenant_change("acme")).await;
    let seen = beta.until(is_tenant_change("beta")).await;
    assert!(
        seen.iter().all(|e| e.data["tenant_id"] != "acme"),
        "{seen:?}"
    );
    // Each change is delivered once, not once per path (local and NOTIFY).
    let mut mine = Stream::open(&one, ROOT_KEY, None).await;
    mine.ready().await;
    let renamed = one
        .patch("/v1/tenants/beta", json!({"name": "Beta Again"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    let seen = mine.until(is_tenant_change("beta")).await;
    let sentinel = one.post("/v1/tenants/acme/reactivate", json!({})).await;
    assert_eq!(sentinel.status, StatusCode::OK);
    let more = mine.until(is_tenant_change("acme")).await;
    let beta_events = seen
        .iter()
        .chain(more.iter())
        .filter(|e| is_tenant_change("beta")(e) && e.data["type"] == "tenant")
        .count();
    assert_eq!(beta_events, 1, "{seen:?} {more:?}");
}
