//! Console sessions: sign-in with a key, a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS), the session
//! itself in this node's memory under the SHA-256 of its id. A session
//! remembers who signed in (the key's id and hash, never the key) and ends
//! after `console_session_idle` without a request, `console_session_max`
//! in all, on sign-out, or as soon as its key stops verifying.

use super::{Posted, Shared, csrf, views};
use crate::app::AppState;
use crate::http::auth::{Caller, authenticate};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use maud::html;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantry_core::TenantId;
use tenantry_core::keys::{Scope, Scopes, VerifyCode};
use tenantry_core::tenant::Actor;

/// The session cookie.
pub const COOKIE: &str = "tenantry_console";
/// The sign-in form's token cookie (CSRF on the sign-in form itself).
pub const SIGN_IN_COOKIE: &str = "tenantry_console_signin";
/// Ends the session cookie in the browser.
pub const CLEAR_COOKIE: &str =
    "tenantry_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0";

/// Sessions held at most by one node; past that, sign-in answers 503.
const MAX_SESSIONS: usize = 100_000;

/// Who a session stands for. The hash identifies the key without being it.
#[derive(Clone)]
pub enum Identity {
    Root,
    Operator {
        key_id: String,
        hash: [u8; 32],
    },
    Tenant {
        tenant: TenantId,
        key_id: String,
        hash: [u8; 32],
    },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Root => f.write_str("Root"),
            Identity::Operator { key_id, .. } => write!(f, "Operator({key_id})"),
            Identity::Tenant { tenant, key_id, .. } => write!(f, "Tenant({tenant}, {key_id})"),
        }
    }
}

#[derive(Debug)]
pub struct Session {
    pub identity: Identity,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Who is signed in, as the header shows it.
    pub label: String,
    created: DateTime<Utc>,
    last_seen: Mutex<DateTime<Utc>>,
}

/// This node's console sessions, by the SHA-256 of their id.
pub struct Sessions {
    idle: chrono::Duration,
    max: chrono::Duration,
    map: Mutex<HashMap<[u8; 32], Arc<Session>>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        let convert = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Sessions {
            idle: convert(idle),
            max: convert(max),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, session: &Session, now: DateTime<Utc>) -> bool {
        let last = *session.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        now - session.created < self.max && now - last < self.idle
    }

    /// A new session; its id (for the cookie) is returned once.
    pub fn create(&self, identity: Identity, label: String, now: DateTime<Utc>) -> Option<String> {
        let id = random_token();
        let session = Arc::new(Session {
            identity,
            csrf: random_token(),
            label,
            created: now,
            last_seen: Mutex::new(now),
        });
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS / 2 {
            map.retain(|_, s| self.live(s, now));
        }
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(digest(&id), session);
        Some(id)
    }

    /// The live session of this id, its idle clock restarted; an expired
    /// one is removed.
    pub fn touch(&self, id: &str, now: DateTime<Utc>) -> Option<Arc<Session>> {
        let key = digest(id);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let session = map.get(&key)?.clone();
        if !self.live(&session, now) {
            map.remove(&key);
            return None;
        }
        *session.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = now;
        Some(session)
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(id));
    }
}

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(name: &str, value: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// The caller a session stands for now: its key checked again (through the
/// same caches and invalidation as every API request), `None` when it no
/// longer verifies. A tenant session needs `tenant:admin` still.
pub async fn caller_of(
    state: &AppState,
    identity: &Identity,
) -> Result<Option<Caller>, tenantry_store::StoreError> {
    use crate::resolution::keys;
    Ok(match identity {
        Identity::Root => Some(Caller::Operator {
            actor: Actor::root(),
            root: true,
            user: None,
        }),
        Identity::Operator { key_id, hash } => keys::operator_key_by_hash(state, hash)
            .await?
            .filter(|key| key.id == *key_id)
            .map(|key| Caller::Operator {
                actor: Actor::from_trusted(format!("operator:{}", key.id)),
                root: false,
                user: None,
            }),
        Identity::Tenant {
            tenant,
            key_id,
            hash,
        } => {
            crate::change::note_credential(tenant, crate::grant::Principal::api_key(key_id));
            let verified = keys::check_hash(state, hash, &Scopes::default()).await?;
            match (verified.code, verified.key, verified.tenant) {
                (VerifyCode::Valid, Some(key), Some(snapshot))
                    if key.id == *key_id
                        && snapshot.id == *tenant
                        && key.scopes.grants(Scope::TenantAdmin) =>
                {
                    keys::record_use(state, &key);
                    Some(Caller::Tenant {
                        tenant: snapshot,
                        key_id: key.id.clone(),
                        scopes: key.scopes.clone(),
                        environment: Some(key.environment),
                        via_token: false,
                        expires_at: key.expires_at,
                        user: None,
                    })
                }
                _ => None,
            }
        }
    })
}

pub async fn sign_in_page(headers: HeaderMap, State(state): State<AppState>) -> Response {
    sign_in_form(&headers, &state, StatusCode::OK, None)
}

fn sign_in_form(
    headers: &HeaderMap,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let token = random_token();
    let body = views::page(
        None,
        "Sign in",
        html! {
            section.signin {
                h1 { "Sign in to Tenantry" }
                p { "Use an operator key, or a tenant key with the " code { "tenant:admin" } " scope." }
                @if let Some(error) = error {
                    p.error role="alert" id="sign-in-error" { (error) }
                }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="csrf" value=(token);
                    label for="key" { "Key" }
                    input #key type="password" name="key" autocomplete="off" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    let mut response = (status, body).into_response();
    if let Some(cookie) = set_cookie(SIGN_IN_COOKIE, &token, csrf::is_tls(headers, state)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn sign_in(
    State(state): State<AppState>,
    Extension(console): Extension<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = super::Form::parse(&body);
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !csrf::same_origin(&headers, &state)
        || expected.is_empty()
        || !csrf::token_matches(form.get("csrf"), expected)
    {
        return sign_in_form(
            &headers,
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or was not sent from this console. Try again."),
        );
    }
    let refused = |status| {
        sign_in_form(
            &headers,
            &state,
            status,
            Some(
                "This key cannot sign in: it is unknown, revoked, expired, or lacks tenant:admin.",
            ),
        )
    };
    let Some(key) = form.get("key") else {
        return refused(StatusCode::UNPROCESSABLE_ENTITY);
    };
    // Keys only: a login token is not a console credential.
    if crate::http::auth::looks_like_token(key) {
        return refused(StatusCode::UNAUTHORIZED);
    }
    let caller = match authenticate(&state, key, None).await {
        Ok(caller) => caller,
        Err(crate::http::problem::ApiError::TenantSuspended) => {
            return sign_in_form(
                &headers,
                &state,
                StatusCode::FORBIDDEN,
                Some("This key's tenant is suspended."),
            );
        }
        Err(crate::http::problem::ApiError::Unauthorized) => {
            return refused(StatusCode::UNAUTHORIZED);
        }
        Err(_) => {
            return views::unavailable();
        }
    };
    let hash = crate::keys::hash_key(key);
    let (identity, label) = match &caller {
        Caller::Operator { root: true, .. } => (Identity::Root, "root".to_owned()),
        Caller::Operator { actor, .. } => {
            let key_id = actor
                .as_str()
                .strip_prefix("operator:")
                .unwrap_or_default()
                .to_owned();
            (
                Identity::Operator {
                    key_id: key_id.clone(),
                    hash,
                },
                format!("operator {key_id}"),
            )
        }
        Caller::Tenant {
            tenant,
            key_id,
            scopes,
            via_token: false,
            ..
        } if scopes.grants(Scope::TenantAdmin) => (
            Identity::Tenant {
                tenant: tenant.id.clone(),
                key_id: key_id.clone(),
                hash,
            },
            format!("{} admin ({key_id})", tenant.id),
        ),
        Caller::Tenant { .. } => return refused(StatusCode::FORBIDDEN),
    };
    let Some(id) = console.sessions.create(identity, label, state.clock.now()) else {
        return views::unavailable();
    };
    let secure = csrf::is_tls(&headers, &state);
    let mut response = Redirect::to("/console").into_response();
    if let Some(cookie) = set_cookie(COOKIE, &id, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    if let Ok(clear) = HeaderValue::from_str(&format!(
        "{SIGN_IN_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

pub async fn sign_out(headers: HeaderMap, posted: Posted) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        posted.ctx.console.sessions.remove(id);
    }
    super::SignInFirst.into_response()
}
