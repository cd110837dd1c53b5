//! Public chat widgets and their tokens.
//!
//! A widget names the origins whose pages may embed it. Origin rules: an
//! entry is `scheme://host[:port]` (`http` or `https`, lower-case, no path)
//! and matches that origin exactly (the port as written: `https://a.com`
//! is not `https://a.com:8443`); `scheme://*.example.com[:port]` matches
//! any subdomain of `example.com` (one label or more), never
//! `example.com` itself. An empty list denies every origin.
//!
//! Tokens are EdDSA JWTs (`typ: widget+jwt`, so an access token is never a
//! widget token nor the reverse) signed with the server's token signing
//! keys (`kid` in the header; rotated with overlap by
//! `POST /v1/operator/signing-keys/rotate`, a retired key verifying for an
//! hour more), bound to tenant, widget and origin, 5 minutes by default
//! and 15 at most. Every verification looks at the widget and its tenant
//! through caches that the change path invalidates on every node (a
//! disabled widget or a suspended tenant stops verifying within the
//! invalidation worker's delay).

use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use chrono::{DateTime, Utc};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantStatus;
use tenantry_core::{TenantId, ValidationError};
use tenantry_store::{StoreError, StoredWidget};

pub const TOKEN_TYPE: &str = "widget+jwt";
pub const DEFAULT_TTL_SECONDS: i64 = 300;
pub const MAX_TTL_SECONDS: i64 = 900;
pub const MAX_ORIGINS: usize = 100;

/// An allowed-origin rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scheme: String,
    /// The host, or for a wildcard the domain after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

fn parse_origin(text: &str, allow_wildcard: bool) -> Option<Rule> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)),
        None => (rest, None),
    };
    let (wildcard, host) = match host.strip_prefix("*.") {
        Some(domain) if allow_wildcard => (true, domain),
        _ => (false, host),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return None;
    }
    // A wildcard needs a registrable-looking domain under it: `*.com` no.
    if wildcard && !host.contains('.') {
        return None;
    }
    Some(Rule {
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        wildcard,
        port,
    })
}

impl Rule {
    fn matches(&self, origin: &Rule) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port || origin.wildcard {
            return false;
        }
        if self.wildcard {
            origin
                .host
                .strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            self.host == origin.host
        }
    }
}

/// Whether `origin` (as a browser sends it) is allowed by `rules`.
pub fn origin_allowed(rules: &[String], origin: &str) -> bool {
    let Some(origin) = parse_origin(origin, false) else {
        return false;
    };
    rules
        .iter()
        .filter_map(|r| parse_origin(r, true))
        .any(|rule| rule.matches(&origin))
}

/// Checks a widget's allowed origins.
pub fn parse_origins(values: &[String]) -> Result<Vec<String>, ApiError> {
    if values.len() > MAX_ORIGINS {
        return Err(
            ValidationError::new("allowed_origins", "too_many", "at most 100 origins").into(),
        );
    }
    let mut errors = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if parse_origin(value, true).is_none() {
            errors.push(ValidationError::new(
                format!("allowed_origins[{i}]"),
                "invalid_origin",
                "must be scheme://host[:port] or scheme://*.domain[:port], lower-case, http or https, no path",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut out = values.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The widgets of tenants, by tenant, and the origins any enabled widget
/// allows (for preflights), kept until a change invalidates them.
pub struct WidgetCache {
    by_tenant: Cache<TenantId, Arc<HashMap<String, StoredWidget>>>,
    preflight: Cache<String, bool>,
}

impl Default for WidgetCache {
    fn default() -> Self {
        WidgetCache {
            by_tenant: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            preflight: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl WidgetCache {
    pub fn apply(&self, change: &Invalidation) {
        match change {
            Invalidation::Tenant(id) => {
                self.by_tenant.invalidate(id);
                self.preflight.invalidate_all();
            }
            Invalidation::All => {
                self.by_tenant.invalidate_all();
                self.preflight.invalidate_all();
            }
            _ => {}
        }
    }
}

pub fn widget_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::WidgetNotFound,
        detail: "this tenant has no such widget".into(),
    }
}

fn missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => widget_not_found(),
        other => other.into(),
    }
}

pub fn target(id: &str) -> AuditTarget {
    AuditTarget::new("widget", id)
}

fn view(w: &StoredWidget) -> serde_json::Value {
    json!({ "name": w.name, "allowed_origins": w.allowed_origins, "enabled": w.enabled })
}

pub async fn create(
    state: &AppState,
    grant: &TenantGrant,
    name: String,
    allowed_origins: Vec<String>,
) -> Result<StoredWidget, ApiError> {
    let now = state.clock.now();
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let widget = StoredWidget {
        id: state.ids.random("wid"),
        name,
        allowed_origins,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    change.tx().insert_widget(&widget).await?;
    change.audit(
        "widget.created",
        vec![target(&widget.id)],
        json!({ "after": view(&widget) }),
    );
    change.invalidate(Invalidation::Tenant(grant.tenant().clone()));
    change.commit().await?;
    Ok(widget)
}

/// A change to a widget; `None` leaves a part as it is.
#[derive(Debug, Default)]
pub struct WidgetPatch {
    pub name: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Changes a widget; disabling it (or narrowing its origins) invalidates
/// its tokens on every node.
pub async fn update(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
    patch: WidgetPatch,
) -> Result<StoredWidget, ApiError> {
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let before = change.tx().widget(id).await.map_err(missing)?;
    let mut after = before.clone();
    if let Some(name) = patch.name {
        after.name = name;
    }
    if let Some(origins) = patch.allowed_origins {
        after.allowed_origins = origins;
    }
    if let Some(enabled) = patch.enabled {
        after.enabled = enabled;
    }
    if view(&before) == view(&after) {
        return Ok(before);
    }
    after.updated_at = state.clock.now();
    change.tx().update_widget(&after).await?;
    change.audit(
        "widget.updated",
        vec![target(id)],
        json!({ "before": view(&before), "after": view(&after) }),
    );
    change.invalidate(Invalidation::Tenant(grant.tenant().clone()));
    change.commit().await?;
    Ok(after)
}

pub async fn list(state: &AppState, grant: &TenantGrant) -> Result<Vec<StoredWidget>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let rows = tx.list_widgets().await?;
    tx.commit().await?;
    Ok(rows)
}

/// What a widget token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WidgetClaims {
    pub iss: String,
    pub aud: String,
    pub tenant_id: String,
    pub widget_id: String,
    pub origin: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub struct IssuedWidgetToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

fn origin_refused() -> ApiError {
    ApiError::Forbidden {
        code: crate::http::codes::Code::OriginNotAllowed,
        detail: "the widget does not allow this origin".into(),
    }
}

/// Issues a token for one of the widget's allowed origins, recorded as
/// `widget_token.issued` (never the token).
pub async fn issue(
    state: &AppState,
    grant: &TenantGrant,
    id: &str,
    origin: &str,
    ttl_seconds: Option<i64>,
) -> Result<IssuedWidgetToken, ApiError> {
    let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ValidationError::new(
            "ttl_seconds",
            "out_of_range",
            "must be between 1 and 900",
        )
        .into());
    }
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let widget = change.tx().widget(id).await.map_err(missing)?;
    if !widget.enabled {
        return Err(ApiError::Conflict {
            code: crate::http::codes::Code::WidgetDisabled,
            detail: "the widget is disabled".into(),
            field: None,
        });
    }
    if !origin_allowed(&widget.allowed_origins, origin) {
        return Err(origin_refused());
    }
    let now = state.clock.now();
    let claims = WidgetClaims {
        iss: "tenantry".into(),
        aud: "tenantry-widget".into(),
        tenant_id: grant.tenant().to_string(),
        widget_id: widget.id.clone(),
        origin: origin.to_owned(),
        iat: now.timestamp(),
        exp: now.timestamp() + ttl,
        jti: state.ids.random("wtk"),
    };
    let token = state
        .tokens
        .sign_typed(TOKEN_TYPE, &claims)
        .ok_or(ApiError::Unavailable("token signing"))?;
    change.audit_with(
        "widget_token.issued",
        vec![target(&widget.id)],
        json!({}),
        json!({ "origin": origin, "jti": claims.jti, "expires_at": claims.exp }),
    );
    change.commit().await?;
    Ok(IssuedWidgetToken {
        token,
        expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
    })
}

/// A verified widget token: the tenant context it grants.
#[derive(Debug)]
pub struct WidgetContext {
    pub tenant_id: TenantId,
    pub widget_id: String,
    pub origin: String,
    pub expires_at: DateTime<Utc>,
}

fn invalid_token() -> ApiError {
    ApiError::InvalidCredentials(tenantry_core::keys::VerifyCode::NotFound)
}

async fn tenant_widgets(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Arc<HashMap<String, StoredWidget>>, ApiError> {
    if let Some(found) = state.widgets.by_tenant.get(tenant) {
        return Ok(found);
    }
    let generation = state.caches.generation();
    #[allow(clippy::disallowed_methods)]
    // system grant: verifying a token signed for this tenant reads its widgets
    let grant = TenantGrant::system(tenant.clone(), "widget-verify");
    let mut tx = grant.read(state).await?;
    let rows = tx.list_widgets().await?;
    tx.commit().await?;
    let map: Arc<HashMap<String, StoredWidget>> =
        Arc::new(rows.into_iter().map(|w| (w.id.clone(), w)).collect());
    if state.caches.generation() == generation {
        state.widgets.by_tenant.insert(tenant.clone(), map.clone());
    }
    Ok(map)
}

/// Verifies a widget token presented from `origin`: signature (EdDSA
/// only, a `kid` we issued), expiry, the origin it was issued for (and
/// still allowed), the widget enabled and its tenant active. `401` for a
/// token that is not (or no longer) valid, `403` for the wrong origin or a
/// suspended tenant.
pub async fn verify(
    state: &AppState,
    token: &str,
    origin: &str,
) -> Result<WidgetContext, ApiError> {
    let now = state.clock.now();
    let payload = state
        .tokens
        .open(TOKEN_TYPE, token, now)
        .map_err(|_| invalid_token())?;
    let claims: WidgetClaims = serde_json::from_slice(&payload).map_err(|_| invalid_token())?;
    if claims.aud != "tenantry-widget" {
        return Err(invalid_token());
    }
    let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or_else(invalid_token)?;
    if expires_at <= now {
        return Err(ApiError::InvalidCredentials(
            tenantry_core::keys::VerifyCode::Expired,
        ));
    }
    let tenant = TenantId::parse(&claims.tenant_id).map_err(|_| invalid_token())?;
    match crate::resolution::keys::load_tenant(state, &tenant).await? {
        Some(t) if t.status == TenantStatus::Active => {}
        Some(t) if t.status == TenantStatus::Suspended => return Err(ApiError::TenantSuspended),
        _ => return Err(invalid_token()),
    }
    let widgets = tenant_widgets(state, &tenant).await?;
    let Some(widget) = widgets.get(&claims.widget_id) else {
        return Err(invalid_token());
    };
    if !widget.enabled {
        return Err(ApiError::InvalidCredentials(
            tenantry_core::keys::VerifyCode::Revoked,
        ));
    }
    if claims.origin != origin || !origin_allowed(&widget.allowed_origins, origin) {
        return Err(origin_refused());
    }
    Ok(WidgetContext {
        tenant_id: tenant,
        widget_id: claims.widget_id,
        origin: claims.origin,
        expires_at,
    })
}

/// Whether any enabled widget allows `origin` (a CORS preflight carries
/// no token, so it is answered for the origins some widget allows).
pub async fn preflight_allowed(state: &AppState, origin: &str) -> Result<bool, ApiError> {
    if let Some(found) = state.widgets.preflight.get(origin) {
        return Ok(found);
    }
    let generation = state.caches.generation();
    let mut op = crate::resolution::resolver().read(state).await?;
    let all = op.enabled_widget_origins().await?;
    op.commit().await?;
    let allowed = all.iter().any(|rules| origin_allowed(rules, origin));
    if state.caches.generation() == generation {
        state.widgets.preflight.insert(origin.to_owned(), allowed);
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origin_rules() {
        let rules = vec![
            "https://shop.example.com".to_owned(),
            "https://*.acme.io".to_owned(),
            "http://localhost:3000".to_owned(),
        ];
        for ok in [
            "https://shop.example.com",
            "https://a.acme.io",
            "https://a.b.acme.io",
            "http://localhost:3000",
        ] {
            assert!(origin_allowed(&rules, ok), "{ok}");
        }
        for bad in [
            "https://acme.io",
            "http://shop.example.com",
            "https://shop.example.com:443",
            "https://evil-acme.io",
            "https://xacme.io",
            "https://shop.example.com.evil.com",
            "http://localhost:3001",
            "http://localhost",
            "https://*.acme.io",
            "null",
            "",
        ] {
            assert!(!origin_allowed(&rules, bad), "{bad}");
        }
        assert!(!origin_allowed(&[], "https://shop.example.com"));
    }
}
