//! WhatsApp Cloud API webhooks: Meta's verification handshake, signed
//! deliveries (`X-Hub-Signature-256` over the raw request bytes, with the
//! tenant's app secret), and the parsing of `entry[].changes[].value` into
//! conversations, messages and statuses.
//!
//! The secrets come from the tenant's active WhatsApp credentials in the
//! vault. Reading them to check a signature is not a reveal (no person sees
//! them; nothing is recorded per delivery): they are unsealed on a cache
//! miss and kept in [`super::InboundCache`] until a change invalidates them.

use super::messages::{self, Inbound, Outcome, Status};
use crate::app::AppState;
use crate::change::TenantChange;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tenantry_core::TenantId;
use tenantry_core::audit::AuditTarget;
use tenantry_core::credentials::CredentialKind;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::StoreError;

pub const CHANNEL: &str = "whatsapp";
pub const PROVIDER: &str = "meta";
/// The audit actor and payload source of these webhooks.
pub const SOURCE: &str = "whatsapp";

/// One active WhatsApp credential's webhook secrets.
pub struct Account {
    pub business_account_id: String,
    pub phone_number_id: String,
    app_secret: Vec<u8>,
    verify_token: Vec<u8>,
}

/// A tenant's WhatsApp webhook secrets (never printed).
#[derive(Default)]
pub struct Secrets {
    pub accounts: Vec<Account>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Whether `presented` is one of the verify tokens, compared in
    /// constant time (over digests, so lengths leak nothing either).
    pub fn verify_token_matches(&self, presented: &str) -> bool {
        let presented = Sha256::digest(presented.as_bytes());
        let mut matched = subtle::Choice::from(0);
        for account in &self.accounts {
            let expected = Sha256::digest(&account.verify_token);
            matched |= expected.ct_eq(&presented);
        }
        bool::from(matched)
    }

    /// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with
    /// one of the app secrets (compared in constant time by `hmac`).
    pub fn signature_matches(&self, header: Option<&str>, body: &[u8]) -> bool {
        let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
            return false;
        };
        let Ok(signature) = hex::decode(hex_sig) else {
            return false;
        };
        self.accounts.iter().any(|account| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&account.app_secret) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&signature).is_ok()
        })
    }
}

/// The routing ids a WhatsApp credential registers: its WhatsApp Business
/// Account and its phone number id.
pub fn routes_of(fields: &serde_json::Map<String, Value>) -> Vec<(&'static str, String)> {
    let mut routes = Vec::new();
    if let Some(waba) = fields.get("business_account_id").and_then(Value::as_str) {
        routes.push(("waba", waba.to_owned()));
    }
    if let Some(phone) = fields.get("phone_number_id").and_then(Value::as_str) {
        routes.push(("phone", phone.to_owned()));
    }
    routes
}

/// Rebuilds the tenant's routing ids from its WhatsApp credentials, in the
/// change that altered one: `409 whatsapp_id_taken` if another tenant
/// registered one of them (nobody can take over another tenant's number).
pub async fn sync_routes(change: &mut TenantChange) -> Result<(), ApiError> {
    let credentials = change.tx().list_credentials().await?;
    let mut routes: Vec<(&'static str, String)> = credentials
        .iter()
        .filter(|c| c.kind == CredentialKind::Whatsapp.as_str())
        .flat_map(|c| routes_of(&c.fields))
        .collect();
    routes.sort();
    routes.dedup();
    let pairs: Vec<(&str, &str)> = routes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    change
        .tx()
        .replace_whatsapp_routes(&pairs)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                code: crate::http::codes::Code::WhatsappIdTaken,
                detail:
                    "another tenant registered this WhatsApp Business Account or phone number id"
                        .into(),
                field: Some("data.phone_number_id"),
            },
            other => other.into(),
        })?;
    let tenant = change.tenant_id().clone();
    change.invalidate(crate::resolution::cache::Invalidation::Tenant(tenant));
    Ok(())
}

/// A tenant's WhatsApp secrets: cached, or unsealed from its active
/// WhatsApp credentials.
pub async fn secrets(state: &AppState, tenant: &TenantId) -> Result<Arc<Secrets>, ApiError> {
    if let Some(found) = state.inbound.whatsapp(tenant) {
        return Ok(found);
    }
    let generation = state.caches.generation();
    // Reading the tenant's own secrets to check a delivery addressed to it;
    // nothing is written.
    #[allow(clippy::disallowed_methods)]
    // system grant: a webhook reads the secret that authenticates it
    let grant = TenantGrant::system(tenant.clone(), "whatsapp-webhook");
    let mut tx = grant.read(state).await?;
    let mut secrets = Secrets::default();
    for stored in tx.list_credentials().await? {
        if stored.kind != CredentialKind::Whatsapp.as_str() || !stored.is_active {
            continue;
        }
        let keys = crate::vault::credentials::keys_for(state, &mut tx, &stored).await?;
        let data = crate::vault::credentials::open_fields(&keys, tenant.as_str(), &stored)?;
        let text = |name: &str| {
            data.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        secrets.accounts.push(Account {
            business_account_id: text("business_account_id"),
            phone_number_id: text("phone_number_id"),
            app_secret: text("app_secret").into_bytes(),
            verify_token: text("verify_token").into_bytes(),
        });
    }
    tx.commit().await?;
    let secrets = Arc::new(secrets);
    state
        .inbound
        .keep_whatsapp(state, generation, tenant.clone(), secrets.clone());
    Ok(secrets)
}

/// A tenant able to receive webhooks: it exists, is not deleted (`404`
/// otherwise), and its status.
pub async fn live_tenant(
    state: &AppState,
    tenant: &str,
) -> Result<(TenantId, TenantStatus), ApiError> {
    let Ok(id) = TenantId::parse(tenant) else {
        return Err(ApiError::tenant_not_found());
    };
    match crate::resolution::keys::load_tenant(state, &id).await? {
        Some(t) if t.status != TenantStatus::Deleted => Ok((id, t.status)),
        _ => Err(ApiError::tenant_not_found()),
    }
}

/// Stores a verified delivery for `tenant`: the raw bytes, and what they
/// say, in one change. `false` if byte for byte the same delivery was
/// stored before (nothing changes).
pub async fn store_delivery(
    state: &AppState,
    tenant: &TenantId,
    body: &[u8],
) -> Result<bool, ApiError> {
    let now = state.clock.now();
    #[allow(clippy::disallowed_methods)]
    // webhook grant: the delivery's signature verified with this tenant's app secret
    let grant = TenantGrant::webhook(tenant.clone(), SOURCE);
    let mut change = grant.change(state).await?;
    let payload_id = state.ids.sortable("inb", messages::millis(now));
    let digest = hex::encode(Sha256::digest(body));
    if !change
        .tx()
        .insert_inbound_payload(&payload_id, SOURCE, &digest, body, now)
        .await?
    {
        return Ok(false);
    }
    let mut outcome = Outcome::default();
    let parsed = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match parse_inner(state, &mut change, &value, &mut outcome).await {
            Ok(()) => Ok(()),
            Err(Step::Parse(e)) => Err(e),
            Err(Step::Store(e)) => return Err(e.into()),
        },
        Err(err) => Err(ParseError(format!("not JSON: {err}"))),
    };
    match parsed {
        Ok(()) => {}
        Err(ParseError(reason)) => {
            tracing::warn!(tenant_id = %tenant, payload_id, reason, "a WhatsApp delivery could not be parsed; stored raw");
            change
                .tx()
                .mark_payload_unparsed(&payload_id, &reason)
                .await?;
        }
    }
    messages::count_usage(state, &mut change, &outcome).await?;
    if outcome.messages + outcome.statuses == 0 {
        // Nothing else to record: the stored delivery is the change.
        change.audit_with(
            "inbound.payload_stored",
            vec![AuditTarget::new("inbound_payload", &payload_id)],
            json!({}),
            json!({ "source": SOURCE, "bytes": body.len() }),
        );
    }
    change.commit().await?;
    Ok(true)
}

/// Why a delivery's content could not be understood (it is still stored).
#[derive(Debug)]
pub struct ParseError(pub String);

/// Store errors fail the delivery (the provider retries); content that
/// cannot be understood is stored raw, marked unparsed.
enum Step {
    Store(StoreError),
    Parse(ParseError),
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let raw = value.get("timestamp")?;
    let secs = match raw {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_opt(secs, 0).single()
}

async fn parse_inner(
    state: &AppState,
    change: &mut TenantChange,
    root: &Value,
    outcome: &mut Outcome,
) -> Result<(), Step> {
    let bad = |m: &str| Step::Parse(ParseError(m.to_owned()));
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no entry[]"))?;
    for entry in entries {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            continue;
        };
        for item in changes {
            let Some(value) = item.get("value") else {
                continue;
            };
            let account = value
                .get("metadata")
                .and_then(|m| text(m, "phone_number_id"))
                .unwrap_or_default();
            if let Some(errors) = value.get("errors").and_then(Value::as_array) {
                for error in errors {
                    tracing::warn!(phone_number_id = account, code = ?error.get("code"), title = ?error.get("title"), "WhatsApp reported an error");
                }
            }
            let contacts = value
                .get("contacts")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for message in value
                .get("messages")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                store_message(state, change, account, contacts, message, outcome).await?;
            }
            for status in value
                .get("statuses")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                store_status(state, change, account, status, outcome).await?;
            }
        }
    }
    Ok(())
}

/// The message types Meta documents; anything else is stored as
/// `unsupported`.
const TYPES: [&str; 14] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "unsupported",
];

async fn store_message(
    state: &AppState,
    change: &mut TenantChange,
    account: &str,
    contacts: &[Value],
    message: &Value,
    outcome: &mut Outcome,
) -> Result<(), Step> {
    let Some(id) = text(message, "id").filter(|id| !id.is_empty()) else {
        tracing::warn!(
            phone_number_id = account,
            "a WhatsApp message without an id was skipped"
        );
        return Ok(());
    };
    let kind = text(message, "type")
        .filter(|t| TYPES.contains(t))
        .unwrap_or("unsupported");
    // The sender: its phone number (`from`, the wa_id), or since 2026 only
    // its business-scoped user id.
    let from_wa = text(message, "from");
    let from_user = text(message, "from_user_id");
    let contact = contacts
        .iter()
        .find(|c| {
            (from_wa.is_some() && text(c, "wa_id") == from_wa)
                || (from_user.is_some() && text(c, "user_id") == from_user)
        })
        .or(if contacts.len() == 1 {
            contacts.first()
        } else {
            None
        });
    let wa_id = from_wa.or_else(|| contact.and_then(|c| text(c, "wa_id")));
    let user_id = from_user.or_else(|| contact.and_then(|c| text(c, "user_id")));
    let profile_name = contact
        .and_then(|c| c.get("profile"))
        .and_then(|p| text(p, "name"));
    let contact_key = match (wa_id, user_id) {
        (Some(wa), _) => wa.to_owned(),
        (None, Some(user)) => format!("user:{user}"),
        (None, None) => {
            tracing::warn!(
                phone_number_id = account,
                "a WhatsApp message without a sender was skipped"
            );
            return Ok(());
        }
    };
    let from = wa_id.or(user_id).unwrap_or_default();
    let sent_at = timestamp(message).unwrap_or_else(|| state.clock.now());
    let inbound = Inbound {
        channel: CHANNEL,
        provider: PROVIDER,
        account_id: account,
        provider_message_id: id,
        kind,
        from,
        contact_key: &contact_key,
        wa_id,
        user_id,
        profile_name,
        sent_at,
        body: message,
    };
    messages::store_inbound(state, change, &inbound, outcome)
        .await
        .map_err(Step::Store)
}

async fn store_status(
    state: &AppState,
    change: &mut TenantChange,
    account: &str,
    status: &Value,
    outcome: &mut Outcome,
) -> Result<(), Step> {
    let (Some(id), Some(name)) = (text(status, "id"), text(status, "status")) else {
        tracing::warn!(
            phone_number_id = account,
            "a WhatsApp status without an id or a status was skipped"
        );
        return Ok(());
    };
    if !messages::STATUSES.contains(&name) {
        tracing::info!(
            phone_number_id = account,
            status = name,
            "an unknown WhatsApp status was skipped"
        );
        return Ok(());
    }
    let now = state.clock.now();
    let message = match change
        .tx()
        .message_by_provider_id(CHANNEL, account, id)
        .await
        .map_err(Step::Store)?
    {
        Some(found) => found,
        None => {
            // A message the business sent through the Cloud API, first
            // heard of by its status: stored as outbound, under this tenant
            // (whose secret signed the delivery).
            let recipient = text(status, "recipient_id")
                .or_else(|| text(status, "recipient_user_id"))
                .map(str::to_owned);
            let m = tenantry_store::StoredInboundMessage {
                id: state.ids.sortable("msg", messages::millis(now)),
                conversation_id: None,
                direction: "outbound".into(),
                channel: CHANNEL.into(),
                provider: PROVIDER.into(),
                account_id: account.into(),
                provider_message_id: id.into(),
                kind: "unknown".into(),
                sender: Some(account.into()),
                recipient,
                campaign_id: None,
                body: json!({}),
                status: None,
                sent_at: None,
                created_at: now,
                updated_at: now,
            };
            change.tx().insert_message(&m).await.map_err(Step::Store)?;
            match change
                .tx()
                .message_by_provider_id(CHANNEL, account, id)
                .await
                .map_err(Step::Store)?
            {
                Some(found) => found,
                None => return Ok(()),
            }
        }
    };
    let error = status
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(|e| json!({ "code": e.get("code"), "title": e.get("title") }));
    let detail = json!({
        "conversation": status.get("conversation"),
        "pricing": status.get("pricing"),
        "errors": status.get("errors"),
    });
    let report = Status {
        status: name,
        occurred_at: timestamp(status).unwrap_or(now),
        error,
        detail: &detail,
    };
    messages::apply_status(state, change, &message, &report, outcome)
        .await
        .map_err(Step::Store)
}
