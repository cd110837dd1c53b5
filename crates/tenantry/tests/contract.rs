//! The API's contract as a whole, on both backends: the published document
//! matches the routes, no string anywhere may carry a NUL character, and on
//! every tenant path the tenant access check comes before validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    every_documented_operation_is_routed,
    nul_in_any_string_is_refused,
    tenant_access_is_checked_before_validation,
);

/// Every (method, path) the committed document lists.
fn documented_operations() -> Vec<(Method, String)> {
    let doc: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            ops.push((method, path.clone()));
        }
    }
    ops.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    ops
}

/// Every (method, path) the router registers, read from its source: each
/// `.route("path", get(…).post(…))` call.
fn routed_operations() -> Vec<(Method, String)> {
    let source = include_str!("../../tenantry-server/src/http/router.rs");
    let mut ops = Vec::new();
    for call in source.split(".route(").skip(1) {
        // The call's text up to its closing parenthesis.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap();
        let call = &call[..end];
        let path = call.split('"').nth(1).unwrap().to_owned();
        let handlers = &call[call.find(',').unwrap()..];
        for (name, method) in [
            ("get(", Method::GET),
            ("post(", Method::POST),
            ("put(", Method::PUT),
            ("patch(", Method::PATCH),
            ("delete(", Method::DELETE),
        ] {
            let registered = handlers.match_indices(name).any(|(at, _)| {
                // `get(`, `.get(` or `routing::get(`, not `budget(`.
                at == 0
                    || !handlers[..at]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if registered {
                ops.push((method, path.clone()));
            }
        }
    }
    ops.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    ops
}

async fn every_documented_operation_is_routed(backend: Backend) {
    let documented = documented_operations();
    let routed = routed_operations();
    assert!(
        routed.len() >= 50,
        "the router's source was read: {routed:?}"
    );
    // The document does not describe itself.
    let missing: Vec<_> = routed
        .iter()
        .filter(|op| !documented.contains(op) && op.1 != "/openapi.json")
        .collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
    let unrouted: Vec<_> = documented
        .iter()
        .filter(|op| !routed.contains(op))
        .collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    // And the running server answers each documented operation itself, not
    // with its fallbacks for unknown routes and methods.
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x-y-z"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let reply = server.call_as(None, method.clone(), &concrete, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {reply:?}"
        );
        assert!(
            !(reply.status == StatusCode::NOT_FOUND && reply.body["detail"] == "no such route"),
            "{method} {path} is not routed: {reply:?}"
        );
    }
}

/// A small deterministic generator (xorshift), so a failure is replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The path of every string in `value` (serde_path_to_error's notation),
/// object keys of free-form objects included as `path.<key>`.
fn string_paths(value: &Value, path: &str, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(_) => out.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_paths(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                string_paths(item, &join(key), out);
            }
        }
        _ => {}
    }
}

/// `value` with the string at `path` given a NUL at a random position.
fn with_nul(value: &Value, path: &str, rng: &mut Rng) -> Value {
    let mut value = value.clone();
    let mut at = &mut value;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (index, tail) = after.split_once(']').unwrap();
            at = &mut at[index.parse::<usize>().unwrap()];
            rest = tail.strip_prefix('.').unwrap_or(tail);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (key, tail) = rest.split_at(end);
            at = &mut at[key];
            rest = tail.strip_prefix('.').unwrap_or(tail);
        }
    }
    let text = at.as_str().unwrap().to_owned();
    let chars: Vec<char> = text.chars().collect();
    let cut = rng.below(chars.len() + 1);
    let mut poisoned: String = chars[..cut].iter().collect();
    poisoned.push('\0');
    poisoned.extend(&chars[cut..]);
    *at = Value::String(poisoned);
    value
}

/// Everything a test could see change: the tenants, acme's keys,
/// credentials, settings, domains, config, events and usage, plans, meters.
async fn observable_state(server: &TestServer) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/v1/tenants?limit=100",
        "/v1/tenants/acme",
        "/v1/tenants/acme/api-keys",
        "/v1/tenants/acme/credentials",
        "/v1/tenants/acme/settings/mail",
        "/v1/tenants/acme/domains",
        "/v1/tenants/acme/config/versions",
        "/v1/tenants/acme/events?limit=100",
        "/v1/tenants/acme/usage?meter=messages_inbound",
        "/v1/plans",
        "/v1/meters",
        "/v1/operator-keys",
    ] {
        let mut reply = server.get(path).await.body;
        // Reading with a key updates its last use; that is not a write of
        // the refused requests.
        if let Some(usage) = reply.as_object_mut() {
            usage.remove("to");
        }
        if let Some(keys) = reply["data"].as_array_mut() {
            for key in keys {
                if let Some(key) = key.as_object_mut() {
                    key.remove("last_used_at");
                }
            }
        }
        state.push(reply);
    }
    state
}

async fn nul_in_any_string_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["tenant:admin"]}),
        )
        .await;
    let (key_id, key) = (
        key.body["id"].as_str().unwrap().to_owned(),
        key.body["key"].as_str().unwrap().to_owned(),
    );
    let cred = server
        .post(
            "/v1/tenants/acme/credentials",
            json!({"kind": "generic", "name": "api", "data": {"api_key": "secret-value-12345678"}}),
        )
        .await;
    let cred_id = cred.body["id"].as_str().unwrap().to_owned();
    server
        .put_settings("acme", "mail", json!({"host": "smtp.acme.com"}))
        .await;

    // One valid body per operation that takes one, each string of which is
    // then poisoned in turn.
    let operator = Some(ROOT_KEY);
    let tenant = Some(key.as_str());
    let bodies: Vec<(Option<&str>, Method, String, Value)> = vec![
        (
            operator,
            Method::POST,
            "/v1/tenants".into(),
            json!({"id": "globex", "name": "Globex", "subdomain": "globex", "plan": "starter", "region": "local", "metadata": {"team": "core"}}),
        ),
        (
            operator,
            Method::PATCH,
            "/v1/tenants/acme".into(),
            json!({"name": "Acme Inc", "subdomain": "acme-inc", "plan": "starter", "region": "local", "metadata": {"team": "core"}}),
        ),
        (
            operator,
            Method::POST,
            "/v1/tenants/acme/domains".into(),
            json!({"domain": "support.acme.com"}),
        ),
        (
            operator,
            Method::POST,
            "/v1/tenants/acme/api-keys".into(),
            json!({"name": "worker", "scopes": ["tenant:read"], "environment": "test", "expires_at": "2099-01-01T00:00:00Z", "metadata": {"team": "core"}}),
        ),
        (
            operator,
            Method::PATCH,
            format!("/v1/tenants/acme/api-keys/{key_id}"),
            json!({"name": "svc2", "scopes": ["tenant:admin"], "expires_at": "2099-01-01T00:00:00Z", "metadata": {"team": "core"}}),
        ),
        (
            operator,
            Method::POST,
            "/v1/keys/verify".into(),
            json!({"key": key, "scopes": ["tenant:read"]}),
        ),
        (
            operator,
            Method::POST,
            "/v1/operator-keys".into(),
            json!({"name": "ops", "environment": "live"}),
        ),
        (
            operator,
            Method::POST,
            "/v1/tenants/acme/credentials".into(),
            json!({"kind": "smtp", "name": "Mail", "data": {"host": "smtp.example.com", "port": 587, "username": "apikey", "password": "smtp-password-5678", "from": "no-reply@acme.com"}}),
        ),
        (
            operator,
            Method::POST,
            "/v1/tenants/acme/credentials".into(),
            json!({"kind": "generic", "name": "Other", "data": {"api_key": "another-secret-1234", "note": "free text"}}),
        ),
        (
            operator,
            Method::PATCH,
            format!("/v1/tenants/acme/credentials/{cred_id}"),
            json!({"name": "api2", "data": {"api_key": "new-secret-value-1234"}}),
        ),
        (
            operator,
            Method::PUT,
            "/v1/tenants/acme/settings/mail".into(),
            json!({"host": "smtp.acme.com", "password": "settings-secret-1234", "nested": {"label": "x", "list": ["a", "b"]}}),
        ),
        (
            operator,
            Method::PATCH,
            "/v1/tenants/acme/config".into(),
            json!({"branding": {"company_name": "Acme", "primary_color": "#112233", "logo_url": "https://acme.example/logo.png"}}),
        ),
        (
            operator,
            Method::PUT,
            "/v1/plans/gold".into(),
            json!({"description": "Gold", "quotas": {"messages_outbound": 50}, "features": {"analytics": true}}),
        ),
        (
            operator,
            Method::POST,
            "/v1/meters".into(),
            json!({"name": "ai_tokens", "aggregation": "sum", "description": "LLM tokens"}),
        ),
        (
            operator,
            Method::POST,
            "/v1/usage/events".into(),
            json!({"events": [{"id": "e-1", "tenant_id": "acme", "meter": "messages_inbound", "quantity": 1, "subject": "conv-1", "timestamp": "2026-01-01T00:00:00Z", "properties": {"channel": "whatsapp"}}]}),
        ),
        (
            operator,
            Method::POST,
            "/v1/quotas/check".into(),
            json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 1, "consume": true}),
        ),
        (
            operator,
            Method::POST,
            "/v1/ratelimit".into(),
            json!({"tenant_id": "acme", "key_id": "user_42", "limit": "api_calls_per_hour", "cost": 1}),
        ),
        (
            operator,
            Method::POST,
            "/v1/resolve".into(),
            json!({"host": "acme.example.com", "api_key": key, "tenant_id": "acme"}),
        ),
        (
            tenant,
            Method::POST,
            "/v1/tokens".into(),
            json!({"scopes": ["tenant:read"], "ttl_seconds": 60}),
        ),
    ];

    let before = observable_state(&server).await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0;
    for (caller, method, path, body) in &bodies {
        let mut paths = Vec::new();
        string_paths(body, "", &mut paths);
        assert!(!paths.is_empty(), "{path}");
        for field in &paths {
            for _ in 0..3 {
                let poisoned = with_nul(body, field, &mut rng);
                let reply = server
                    .call_as(*caller, method.clone(), path, Some(poisoned.clone()))
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    422,
                    "{method} {path} with a NUL in {field}: {poisoned} → {reply:?}"
                );
                let problem = reply.assert_problem(422, "validation_failed");
                assert_eq!(problem["field"], field.as_str(), "{poisoned}");
                refused += 1;
            }
        }
        // A NUL in an object key is refused too.
        if let Some(object) = body.as_object() {
            let mut keyed = object.clone();
            keyed.insert("meta\0data".into(), json!("x"));
            let reply = server
                .call_as(*caller, method.clone(), path, Some(Value::Object(keyed)))
                .await;
            reply.assert_problem(422, "validation_failed");
        }
    }
    assert!(refused > 150, "{refused} requests");
    // In query strings and paths, too: 422 naming the parameter, 404 for a
    // path (it names nothing that exists).
    server
        .get("/v1/tenants?cursor=ab%00cd")
        .await
        .assert_invalid("cursor");
    server
        .get("/v1/tenants/acme/usage?meter=messages%00inbound")
        .await
        .assert_invalid("meter");
    for path in [
        "/v1/tenants/ac%00me",
        "/v1/tenants/acme/api-keys/key_%00",
        "/v1/tenants/acme/credentials/cred_%00",
        "/v1/tenants/acme/settings/ma%00il",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }
    // Nothing was written by any refused request.
    assert_eq!(observable_state(&server).await, before);
}

async fn tenant_access_is_checked_before_validation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let globex_key = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "svc", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let malformed = |server: &TestServer, key: Option<&str>, method: Method, path: String| {
        let request = server
            .client
            .request(method, server.url(&path))
            .header("content-type", "application/json")
            .body("{not json");
        let request = match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        async move { common::Reply::from(request.send().await.unwrap()).await }
    };
    // Bodies that are invalid for each operation on a tenant path.
    let invalid: Vec<(Method, &str, Value)> = vec![
        (Method::PATCH, "", json!({"name": 42})),
        (Method::POST, "/domains", json!({"domain": "not a domain"})),
        (
            Method::POST,
            "/api-keys",
            json!({"name": "x", "scopes": ["no:such"]}),
        ),
        (Method::PATCH, "/api-keys/key_x", json!({"enabled": "yes"})),
        (
            Method::POST,
            "/api-keys/key_x/rotate",
            json!({"overlap_seconds": -1}),
        ),
        (Method::POST, "/credentials", json!({"kind": "nope"})),
        (Method::PATCH, "/credentials/cred_x", json!({"name": 1})),
        (Method::PUT, "/settings/mail", json!({"a": "\u{0}"})),
        (
            Method::PATCH,
            "/config",
            json!({"branding": {"primary_color": "blue"}}),
        ),
        (
            Method::POST,
            "/domains/x.example.org/verify",
            json!({"force": "yes"}),
        ),
    ];
    for tenant in ["acme", "no-such-tenant"] {
        for (method, suffix, body) in &invalid {
            let path = format!("/v1/tenants/{tenant}{suffix}");
            // Another tenant's key: 404, whatever the body.
            let reply = server
                .call_as(Some(&globex_key), method.clone(), &path, Some(body.clone()))
                .await;
            reply.assert_problem(404, "tenant_not_found");
            let reply = malformed(&server, Some(&globex_key), method.clone(), path.clone()).await;
            reply.assert_problem(404, "tenant_not_found");
            // No key at all: 401 first.
            let reply = malformed(&server, None, method.clone(), path.clone()).await;
            reply.assert_problem(401, "unauthorized");
        }
        for query in [
            "usage?meter=nope",
            "usage?granularity=decade",
            "events?limit=0",
            "api-keys?cursor=bad",
        ] {
            let path = format!("/v1/tenants/{tenant}/{query}");
            server
                .call_as(Some(&globex_key), Method::GET, &path, None)
                .await
                .assert_problem(404, "tenant_not_found");
        }
    }
    // An operator naming a tenant that does not exist: 404 before validation
    // as well; on a tenant that exists, the validation answers.
    for (method, suffix, body) in &invalid {
        let path = format!("/v1/tenants/no-such-tenant{suffix}");
        server
            .call(method.clone(), &path, Some(body.clone()))
            .await
            .assert_problem(404, "tenant_not_found");
    }
    server
        .call(Method::PATCH, "/v1/tenants/acme", Some(json!({"name": 42})))
        .await
        .assert_invalid("name");
    // Its own tenant, with a key lacking the operation's scope: 403 before
    // the body is looked at.
    let reader = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "reader", "scopes": ["tenant:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, suffix, body) in &invalid {
        if suffix.is_empty() {
            continue; // PATCH /v1/tenants/{id} is for operators: 403 operator_required.
        }
        let path = format!("/v1/tenants/globex{suffix}");
        server
            .call_as(Some(&reader), method.clone(), &path, Some(body.clone()))
            .await
            .assert_problem(403, "insufficient_scope");
        malformed(&server, Some(&reader), method.clone(), path)
            .await
            .assert_problem(403, "insufficient_scope");
    }
    // Its own tenant: the validation (or the missing operator scope) answers.
    server
        .call_as(
            Some(&globex_key),
            Method::PATCH,
            "/v1/tenants/globex/config",
            Some(json!({"branding": {"primary_color": "blue"}})),
        )
        .await
        .assert_invalid("branding.primary_color");
    server
        .call_as(
            Some(&globex_key),
            Method::PATCH,
            "/v1/tenants/globex",
            Some(json!({"name": 42})),
        )
        .await
        .assert_problem(403, "operator_required");
    let own = malformed(
        &server,
        Some(&globex_key),
        Method::POST,
        "/v1/tenants/globex/api-keys".into(),
    )
    .await;
    own.assert_problem(400, "malformed_json");
}
