//! Local doubles of Meta's Graph API and Genesys Cloud that speak their
//! documented protocols (paths, auth headers, bodies, error shapes), for
//! the provisioning tests (tests/provisioning.rs, tests/client_operations.rs).
#![allow(dead_code)]

use crate::common::{ROOT_KEY, TestDb, TestServer};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ACCESS_TOKEN: &str = "EAAprovisioning-access-token-9f8e7d6c5b4a";
pub const APP_SECRET: &str = "prov-app-secret-00112233445566778899";
pub const VERIFY_TOKEN: &str = "prov-verify-token-aabbccddeeff";
pub const CLIENT_ID: &str = "7de3af06-prov-client-id-0d2b";
pub const CLIENT_SECRET: &str = "prov-genesys-client-secret-QWERTY123456";
pub const GENESYS_TOKEN: &str = "genesys-access-token-from-the-double-5566";
pub const PHONE_ID: &str = "106540352242922";

/// What a double answers next (a scripted status and body), else its
/// default success.
#[derive(Default)]
pub struct Script {
    pub meta: VecDeque<(u16, Value, Option<u64>)>,
    pub genesys_token: VecDeque<(u16, Value, Option<u64>)>,
    /// Hold Meta requests (answer nothing) while set.
    pub hold_meta: bool,
    pub hold_genesys: bool,
    /// Delay of every Meta answer.
    pub meta_delay: Option<Duration>,
    /// The client secret the login service accepts.
    pub accepted_secret: String,
    pub meta_calls: usize,
    pub token_calls: usize,
    pub org_calls: usize,
    pub regions: Vec<String>,
}

#[derive(Clone)]
pub struct Double {
    pub script: Arc<Mutex<Script>>,
    pub base: String,
}

fn answer(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    let mut response = (
        AxStatus::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(s) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    response
}

pub fn meta_error(code: i64, subcode: Option<i64>, message: &str) -> Value {
    let mut error = json!({
        "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123",
    });
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    json!({ "error": error })
}

async fn meta_phone(
    State(d): State<Double>,
    Path((version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (hold, delay, scripted) = {
        let mut s = d.script.lock().unwrap();
        s.meta_calls += 1;
        (s.hold_meta, s.meta_delay, s.meta.pop_front())
    };
    if hold {
        // Until the test kills the server (or releases the hold).
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !d.script.lock().unwrap().hold_meta {
                break;
            }
        }
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    assert_eq!(version, "v24.0");
    assert!(
        q.get("fields").is_some_and(|f| f.contains("verified_name")),
        "{q:?}"
    );
    if let Some((status, body, retry)) = scripted {
        return answer(status, body, retry);
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return answer(
            401,
            meta_error(
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            ),
            None,
        );
    }
    // The numbers this Meta knows: PHONE_ID and the one of every tenant
    // `request` makes (a number belongs to one tenant only).
    if !phone.starts_with(PHONE_ID) {
        return answer(
            400,
            meta_error(
                100,
                Some(33),
                &format!(
                    "Unsupported get request. Object with ID '{phone}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
                ),
            ),
            None,
        );
    }
    answer(
        200,
        json!({
            "id": phone, "display_phone_number": "+1 555-0100", "verified_name": "Acme Support",
            "quality_rating": "GREEN", "code_verification_status": "VERIFIED", "name_status": "APPROVED",
            "platform_type": "CLOUD_API", "status": "CONNECTED",
        }),
        None,
    )
}

async fn genesys_token(
    State(d): State<Double>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (hold, scripted, accepted) = {
        let mut s = d.script.lock().unwrap();
        s.token_calls += 1;
        s.regions.push(region);
        (
            s.hold_genesys,
            s.genesys_token.pop_front(),
            s.accepted_secret.clone(),
        )
    };
    if hold {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !d.script.lock().unwrap().hold_genesys {
                break;
            }
        }
    }
    assert_eq!(body, "grant_type=client_credentials");
    if let Some((status, body, retry)) = scripted {
        return answer(status, body, retry);
    }
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{accepted}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return answer(
            400,
            json!({ "error": "invalid_client", "description": "client not found", "error_description": "client not found" }),
            None,
        );
    }
    answer(
        200,
        json!({ "access_token": GENESYS_TOKEN, "token_type": "bearer", "expires_in": 86399 }),
        None,
    )
}

async fn genesys_org(State(d): State<Double>, headers: HeaderMap) -> Response {
    d.script.lock().unwrap().org_calls += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {GENESYS_TOKEN}"))
    {
        return answer(
            401,
            json!({ "message": "Invalid login credentials.", "code": "authentication.required", "status": 401 }),
            None,
        );
    }
    answer(
        200,
        json!({
            "id": "f3b1c2d4-0000-4000-8000-000000000001", "name": "acme-cx", "defaultLanguage": "en",
            "thirdPartyOrgName": "acme-cx-org", "state": "active", "version": 12,
        }),
        None,
    )
}

impl Double {
    pub async fn start() -> Double {
        let script = Arc::new(Mutex::new(Script {
            accepted_secret: CLIENT_SECRET.into(),
            ..Script::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let double = Double { script, base };
        let app = axum::Router::new()
            .route("/meta/{version}/{phone}", get(meta_phone))
            .route("/genesys/login/{region}/oauth/token", post(genesys_token))
            // The webhook receiver of the endpoint a workflow registers.
            .route("/hook", post(|| async { AxStatus::NO_CONTENT }))
            .route(
                "/genesys/api/{region}/api/v2/organizations/me",
                get(genesys_org),
            )
            .with_state(double.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        double
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Script) -> R) -> R {
        f(&mut self.script.lock().unwrap())
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TENANTRY_ROOT_KEY".into(), ROOT_KEY.into()),
            ("TENANTRY_OUTBOUND_ALLOWLIST".into(), "127.0.0.1/32".into()),
            (
                "TENANTRY_META_GRAPH_URL".into(),
                format!("{}/meta", self.base),
            ),
            (
                "TENANTRY_GENESYS_LOGIN_URL".into(),
                format!("{}/genesys/login/{{region}}", self.base),
            ),
            (
                "TENANTRY_GENESYS_API_URL".into(),
                format!("{}/genesys/api/{{region}}", self.base),
            ),
            ("TENANTRY_PROVISIONING_BACKOFF".into(), "50ms".into()),
            ("TENANTRY_PROVISIONING_POLL_INTERVAL".into(), "100ms".into()),
            ("TENANTRY_PROVISIONING_LEASE".into(), "3s".into()),
            ("TENANTRY_PROVISIONING_PROVIDER_TIMEOUT".into(), "5s".into()),
        ]
    }

    pub async fn server(&self, db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
        let mut env = self.env();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).into(), (*v).into()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        TestServer::start_with(db, &env).await
    }
}

pub fn request(tenant: &str) -> Value {
    // Each tenant its own WhatsApp number and account (another tenant's
    // is refused: whatsapp_id_taken).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let phone_id = format!("{PHONE_ID}{n}");
    let account_id = format!("102290129340398{n}");
    json!({
        "tenant": { "id": tenant, "name": format!("Tenant {tenant}") },
        "whatsapp": {
            "phone_number_id": phone_id, "business_account_id": account_id,
            "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
        },
        "genesys": { "region": "sae1.pure.cloud", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET },
        "api_keys": [ { "name": "bridge", "scopes": ["tenant:read", "credentials:read"] } ],
        "config": { "retention_policy": { "message_retention_days": 30 }, "branding": { "company_name": "Acme" } },
    })
}
