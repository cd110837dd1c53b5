//! Provider status callbacks (Twilio SMS and voice, SendGrid email, a
//! generic HMAC-signed JSON format) about outbound messages a tenant
//! registered (`POST /v1/tenants/{id}/messages`).
//!
//! A callback arrives at one URL per provider, without a tenant in it: the
//! message id it names finds the tenant through `message_routes` (unique
//! across tenants), then that tenant's credential for the provider checks
//! the signature, and only then is the status applied, inside that tenant.
//! An id no tenant registered is acknowledged, logged and counted, never
//! attributed by guess.
//!
//! The provider secrets are `generic` credentials with a field `provider`
//! (`twilio`, `sendgrid` or `generic`) and the secret field: `auth_token`
//! (Twilio), `public_key` (SendGrid, base64 SPKI DER of the P-256 key) or
//! `secret` (generic).

use super::messages::{self, Outcome, Status};
use crate::app::AppState;
use crate::grant::{Principal, TenantGrant};
use crate::http::problem::ApiError;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tenantry_core::TenantId;
use tenantry_core::ValidationError;
use tenantry_core::credentials::CredentialKind;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::StoredInboundMessage;

pub const CHANNELS: [&str; 4] = ["email", "sms", "voice", "whatsapp"];
pub const PROVIDERS: [&str; 3] = ["twilio", "sendgrid", "generic"];

/// Callbacks naming a message id no tenant registered, since start.
static UNKNOWN: AtomicU64 = AtomicU64::new(0);

/// How many callbacks named an unknown message id since this process
/// started (also in each such log line).
pub fn unknown_count() -> u64 {
    UNKNOWN.load(Ordering::Relaxed)
}

/// An outbound message to register.
pub struct NewMessage<'a> {
    pub channel: &'a str,
    pub provider: &'a str,
    pub provider_message_id: &'a str,
    pub campaign_id: Option<&'a str>,
    pub recipient: Option<&'a str>,
}

fn check(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(ValidationError::new(
            field,
            "invalid",
            "too long, empty, or has control characters",
        )));
    }
    Ok(())
}

/// Registers an outbound message: `409` when any tenant registered its
/// `(provider, provider_message_id)` before.
pub async fn register(
    state: &AppState,
    grant: &TenantGrant,
    m: &NewMessage<'_>,
) -> Result<StoredInboundMessage, ApiError> {
    if !CHANNELS.contains(&m.channel) {
        return Err(ApiError::invalid(ValidationError::new(
            "channel",
            "unknown_channel",
            "must be one of email, sms, voice, whatsapp",
        )));
    }
    if !PROVIDERS.contains(&m.provider) {
        return Err(ApiError::invalid(ValidationError::new(
            "provider",
            "unknown_provider",
            "must be one of twilio, sendgrid, generic",
        )));
    }
    check("provider_message_id", m.provider_message_id, 200)?;
    if m.provider == "sendgrid" && m.provider_message_id.contains('.') {
        return Err(ApiError::invalid(ValidationError::new(
            "provider_message_id",
            "invalid",
            "SendGrid's X-Message-Id has no '.' (callbacks are matched on the part of sg_message_id before the first '.')",
        )));
    }
    if let Some(c) = m.campaign_id {
        check("campaign_id", c, 200)?;
    }
    if let Some(r) = m.recipient {
        check("recipient", r, 320)?;
    }
    let now = state.clock.now();
    let mut change = grant.change(state).await?;
    change
        .tx()
        .tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let message = StoredInboundMessage {
        id: state.ids.sortable("msg", messages::millis(now)),
        conversation_id: None,
        direction: "outbound".into(),
        channel: m.channel.into(),
        provider: m.provider.into(),
        account_id: m.provider.into(),
        provider_message_id: m.provider_message_id.into(),
        kind: m.channel.into(),
        sender: None,
        recipient: m.recipient.map(Into::into),
        campaign_id: m.campaign_id.map(Into::into),
        body: json!({}),
        status: Some("registered".into()),
        sent_at: Some(now),
        created_at: now,
        updated_at: now,
    };
    if !change
        .tx()
        .insert_message_route(m.provider, m.provider_message_id, &message.id)
        .await?
        || !change.tx().insert_message(&message).await?
    {
        return Err(ApiError::Conflict {
            code: crate::http::codes::Code::MessageExists,
            detail: "this provider message id is registered already".into(),
            field: Some("provider_message_id"),
        });
    }
    change.audit(
        "message.registered",
        vec![messages::target(&message.id)],
        json!({ "after": {
            "channel": m.channel,
            "provider": m.provider,
            "provider_message_id": m.provider_message_id,
            "campaign_id": m.campaign_id,
        } }),
    );
    change.commit().await?;
    Ok(message)
}

/// One status a callback reports about the message it names.
pub struct Report {
    pub provider_message_id: String,
    /// One of [`messages::STATUSES`]; `None`: a step this history does
    /// not record (still authenticated, nothing changes).
    pub status: Option<&'static str>,
    pub occurred_at: DateTime<Utc>,
    pub error: Option<Value>,
    pub detail: Value,
}

/// What a callback did.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Statuses newly recorded.
    pub applied: usize,
    /// Reports naming an id no tenant registered.
    pub unknown: usize,
    /// Tenants whose credential verified the signature.
    pub verified: usize,
    /// Tenants whose credential did not.
    pub refused: usize,
    pub suspended: bool,
}

/// The secrets of the tenant's active credentials for `provider`: the
/// values of its `field` in `generic` credentials whose `provider` field
/// names it.
async fn secrets(
    state: &AppState,
    tenant: &TenantId,
    provider: &str,
    field: &str,
) -> Result<Vec<Vec<u8>>, ApiError> {
    // Reading the tenant's own secret to check a callback addressed to it;
    // nothing is written.
    #[allow(clippy::disallowed_methods)]
    // system grant: a callback reads the secret that authenticates it
    let grant = TenantGrant::system(tenant.clone(), "provider-callback");
    let mut tx = grant.read(state).await?;
    let mut out = Vec::new();
    for stored in tx.list_credentials().await? {
        if stored.kind != CredentialKind::Generic.as_str() || !stored.is_active {
            continue;
        }
        let keys = crate::vault::credentials::keys_for(state, &mut tx, &stored).await?;
        let data = crate::vault::credentials::open_fields(&keys, tenant.as_str(), &stored)?;
        if data.get("provider").and_then(Value::as_str) != Some(provider) {
            continue;
        }
        if let Some(secret) = data.get(field).and_then(Value::as_str) {
            out.push(secret.as_bytes().to_vec());
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Applies a callback's reports: each one's tenant is found by its message
/// id, the signature checked with that tenant's `field` secrets
/// (`verify(secret)`), and the tenant's reports applied in one change.
pub async fn deliver(
    state: &AppState,
    provider: &str,
    field: &str,
    reports: Vec<Report>,
    verify: &(dyn Fn(&[u8]) -> bool + Sync),
) -> Result<Delivered, ApiError> {
    let mut out = Delivered::default();
    let mut by_tenant: BTreeMap<TenantId, Vec<Report>> = BTreeMap::new();
    {
        let mut op = crate::resolution::resolver().read(state).await?;
        for report in reports {
            match op
                .find_message_route(provider, &report.provider_message_id)
                .await?
            {
                Some(tenant) => by_tenant.entry(tenant).or_default().push(report),
                None => {
                    out.unknown += 1;
                    let count = UNKNOWN.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(provider, provider_message_id = %report.provider_message_id, unknown_callbacks_total = count,
                        "a provider callback names a message no tenant registered; acknowledged, not stored");
                }
            }
        }
        op.commit().await?;
    }
    let source = format!("{provider}-callback");
    for (tenant, reports) in by_tenant {
        let Ok((tenant, status)) = super::whatsapp::live_tenant(state, tenant.as_str()).await
        else {
            out.unknown += reports.len();
            continue;
        };
        crate::change::note_credential(&tenant, Principal::webhook(&source));
        let secrets = secrets(state, &tenant, provider, field).await?;
        if !secrets.iter().any(|s| verify(s)) {
            tracing::warn!(tenant_id = %tenant, provider, "a provider callback's signature did not verify with the addressed tenant's credential");
            out.refused += 1;
            continue;
        }
        out.verified += 1;
        if status != TenantStatus::Active {
            out.suspended = true;
            continue;
        }
        out.applied += apply(state, &tenant, &source, &reports).await?;
    }
    Ok(out)
}

async fn apply(
    state: &AppState,
    tenant: &TenantId,
    source: &str,
    reports: &[Report],
) -> Result<usize, ApiError> {
    #[allow(clippy::disallowed_methods)]
    // webhook grant: the callback's signature verified with this tenant's credential
    let grant = TenantGrant::webhook(tenant.clone(), source);
    let mut change = grant.change(state).await?;
    let mut outcome = Outcome::default();
    for r in reports {
        let provider = source.trim_end_matches("-callback");
        // Read again for each report: an earlier one may have moved it.
        let Some(message) = change
            .tx()
            .routed_message(provider, &r.provider_message_id)
            .await?
        else {
            continue;
        };
        let Some(status) = r.status else {
            continue;
        };
        let s = Status {
            status,
            occurred_at: r.occurred_at,
            error: r.error.clone(),
            detail: &r.detail,
        };
        messages::apply_status(state, &mut change, &message, &s, &mut outcome).await?;
    }
    if outcome.statuses == 0 {
        // Every status was recorded before: nothing changes.
        return Ok(0);
    }
    change.commit().await?;
    Ok(outcome.statuses)
}

/// Twilio's message and call statuses, as [`messages::STATUSES`] (`None`:
/// not a step this history records, e.g. `queued`).
pub fn twilio_status(status: &str) -> Option<&'static str> {
    Some(match status {
        "sent" | "ringing" => "sent",
        "delivered" | "in-progress" | "answered" | "completed" => "delivered",
        "read" => "read",
        "undelivered" | "failed" | "canceled" | "busy" | "no-answer" => "failed",
        _ => return None,
    })
}

/// SendGrid's event types, as [`messages::STATUSES`].
pub fn sendgrid_status(event: &str) -> Option<&'static str> {
    Some(match event {
        "processed" => "sent",
        "delivered" => "delivered",
        "open" => "read",
        "dropped" | "bounce" => "failed",
        _ => return None,
    })
}

/// The generic format's statuses: [`messages::STATUSES`] themselves.
pub fn generic_status(status: &str) -> Option<&'static str> {
    messages::STATUSES.iter().copied().find(|s| *s == status)
}

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 with the auth token
/// over the URL, then each POST parameter's name and value, sorted by name
/// (then value).
pub fn twilio_signature_matches(
    token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let Ok(presented) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(token) else {
        return false;
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac.verify_slice(&presented).is_ok()
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo, before its 65-byte
/// uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// SendGrid's signed event webhook: `signature` (base64 DER ECDSA
/// P-256/SHA-256) over the timestamp header's bytes then the raw body,
/// with `public_key` (base64 SPKI DER, as SendGrid shows it).
pub fn sendgrid_signature_matches(
    public_key: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key: String = String::from_utf8_lossy(public_key)
        .split_whitespace()
        .collect();
    let (Ok(spki), Ok(sig)) = (b64.decode(key), b64.decode(signature.trim())) else {
        return false;
    };
    if spki.len() != 91 || !spki.starts_with(&P256_SPKI_PREFIX) {
        return false;
    }
    let Some(point) = spki.get(26..) else {
        return false;
    };
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &sig)
        .is_ok()
}

/// The generic format's `X-Tenantry-Signature: sha256=<hex>`: HMAC-SHA256
/// of the raw body with the credential's `secret`.
pub fn generic_signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some(Ok(presented)) = header.trim().strip_prefix("sha256=").map(hex::decode) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
}
