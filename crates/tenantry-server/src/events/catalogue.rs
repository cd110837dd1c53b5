//! The event catalogue: every event type Tenantry emits, with the JSON
//! Schema of its `data` (served at `GET /v1/event-types`; the `type` of a
//! tenant event and of a webhook). One table: a new kind of event is a row
//! here and a variant of `TenantEventKind`, and a unit test keeps the two
//! in step.

/// One event type: name, description, and the JSON Schema of `data` as
/// (properties, required).
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
    properties: &'static str,
    required: &'static [&'static str],
}

impl EventType {
    /// The JSON Schema (2020-12) of this type's `data`.
    pub fn schema(&self) -> serde_json::Value {
        let properties: serde_json::Value =
            serde_json::from_str(self.properties).unwrap_or_else(|_| serde_json::json!({}));
        serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": self.required,
        })
    }
}

#[rustfmt::skip]
pub const CATALOGUE: &[EventType] = &[
    EventType { name: "tenant.created", description: "A tenant was created.", properties: r#"{"name":{"type":"string"},"subdomain":{"type":"string"},"plan":{"type":"string"},"region":{"type":"string"}}"#, required: &["name", "subdomain", "plan", "region"] },
    EventType { name: "tenant.updated", description: "A tenant's descriptive fields changed (a metadata change shows only that it changed).", properties: r#"{"changes":{"type":"object"}}"#, required: &["changes"] },
    EventType { name: "tenant.suspended", description: "A tenant was suspended.", properties: r#"{}"#, required: &[] },
    EventType { name: "tenant.reactivated", description: "A suspended or deleted tenant was reactivated.", properties: r#"{"from":{"type":"string","enum":["suspended","deleted"]}}"#, required: &["from"] },
    EventType { name: "tenant.deleted", description: "A tenant was soft-deleted; its rows are purged after the grace period.", properties: r#"{"purge_after":{"type":["string","null"],"format":"date-time"}}"#, required: &["purge_after"] },
    EventType { name: "domain.added", description: "A custom domain was claimed (pending verification).", properties: r#"{"domain":{"type":"string"}}"#, required: &["domain"] },
    EventType { name: "domain.removed", description: "A custom domain was removed.", properties: r#"{"domain":{"type":"string"},"reason":{"type":"string"}}"#, required: &["domain"] },
    EventType { name: "domain.verified", description: "A custom domain's ownership was proven.", properties: r#"{"domain":{"type":"string"},"forced":{"type":"boolean"}}"#, required: &["domain"] },
    EventType { name: "api_key.created", description: "An API key was created.", properties: r#"{"key_id":{"type":"string"},"name":{"type":"string"}}"#, required: &["key_id"] },
    EventType { name: "api_key.updated", description: "An API key's name, scopes or expiry changed.", properties: r#"{"key_id":{"type":"string"}}"#, required: &["key_id"] },
    EventType { name: "api_key.revoked", description: "An API key was revoked.", properties: r#"{"key_id":{"type":"string"}}"#, required: &["key_id"] },
    EventType { name: "api_key.rotated", description: "An API key was replaced by a new one; the old one expires at old_key_expires_at.", properties: r#"{"key_id":{"type":"string"},"new_key_id":{"type":"string"},"old_key_expires_at":{"type":["string","null"],"format":"date-time"}}"#, required: &["key_id", "new_key_id"] },
    EventType { name: "credential.created", description: "A credential was stored in the vault.", properties: r#"{"credential_id":{"type":"string"},"kind":{"type":"string"}}"#, required: &["credential_id"] },
    EventType { name: "credential.updated", description: "A credential changed.", properties: r#"{"credential_id":{"type":"string"}}"#, required: &["credential_id"] },
    EventType { name: "credential.deleted", description: "A credential was deleted.", properties: r#"{"credential_id":{"type":"string"}}"#, required: &["credential_id"] },
    EventType { name: "settings.updated", description: "A settings category was written.", properties: r#"{"category":{"type":"string"}}"#, required: &["category"] },
    EventType { name: "keyring.rotated", description: "The tenant's data key was rotated (its secrets are re-sealed under the new one).", properties: r#"{"data_key_id":{"type":"string"}}"#, required: &["data_key_id"] },
    EventType { name: "config.updated", description: "A tenant's configuration overrides changed (a new version).", properties: r#"{"version":{"type":"integer"},"patch":{"type":"object"}}"#, required: &["version"] },
    EventType { name: "quota.threshold_reached", description: "A quota's consumption crossed an alert threshold.", properties: r#"{"meter":{"type":"string"},"threshold_percent":{"type":"integer"},"used":{"type":"number"},"limit":{"type":"number"},"period_start":{"type":"string"}}"#, required: &["meter", "threshold_percent", "used", "limit"] },
    EventType { name: "tenant.purged", description: "Operator-level: every row of a tenant was deleted.", properties: r#"{"tenant_id":{"type":"string"}}"#, required: &["tenant_id"] },
    EventType { name: "api_key.expired", description: "An API key reached its expiry.", properties: r#"{"key_id":{"type":"string"}}"#, required: &["key_id"] },
    EventType { name: "credential.revealed", description: "A credential's secret fields were revealed.", properties: r#"{"credential_id":{"type":"string"}}"#, required: &["credential_id"] },
    EventType { name: "plan.updated", description: "Operator-level: a plan of the catalog changed.", properties: r#"{"plan":{"type":"string"}}"#, required: &["plan"] },
    EventType { name: "quota.exceeded", description: "A quota's consumption exceeded its limit.", properties: r#"{"meter":{"type":"string"},"used":{"type":"number"},"limit":{"type":"number"}}"#, required: &["meter", "used", "limit"] },
    EventType { name: "webhook_endpoint.created", description: "A webhook endpoint was registered.", properties: r#"{"endpoint_id":{"type":"string"},"url":{"type":"string"}}"#, required: &["endpoint_id", "url"] },
    EventType { name: "webhook_endpoint.updated", description: "A webhook endpoint changed.", properties: r#"{"endpoint_id":{"type":"string"}}"#, required: &["endpoint_id"] },
    EventType { name: "webhook_endpoint.deleted", description: "A webhook endpoint was deleted.", properties: r#"{"endpoint_id":{"type":"string"}}"#, required: &["endpoint_id"] },
    EventType { name: "webhook_endpoint.disabled", description: "Operator-level: delivery disabled an endpoint (410 Gone, or failing for too long).", properties: r#"{"endpoint_id":{"type":"string"},"owner_tenant_id":{"type":["string","null"]},"reason":{"type":"string"}}"#, required: &["endpoint_id", "reason"] },
    EventType { name: "webhook_endpoint.secret_rotated", description: "A webhook endpoint's signing secret was replaced; the old one also signs until previous_secret_expires_at.", properties: r#"{"endpoint_id":{"type":"string"},"previous_secret_expires_at":{"type":"string","format":"date-time"}}"#, required: &["endpoint_id"] },
    EventType { name: "message.received", description: "An inbound message was received on a channel.", properties: r#"{"message_id":{"type":"string"},"conversation_id":{"type":"string"},"channel":{"type":"string","enum":["whatsapp"]},"provider_message_id":{"type":"string"},"type":{"type":"string"},"from":{"type":"string"},"received_at":{"type":"string","format":"date-time"}}"#, required: &["message_id", "conversation_id", "channel", "provider_message_id", "type", "from", "received_at"] },
    EventType { name: "message.status_updated", description: "A message's delivery status changed at the provider.", properties: r#"{"message_id":{"type":"string"},"channel":{"type":"string"},"provider":{"type":"string"},"provider_message_id":{"type":"string"},"status":{"type":"string"},"previous_status":{"type":["string","null"]},"error":{"type":["object","null"],"properties":{"code":{"type":["string","integer"]},"title":{"type":"string"}}}}"#, required: &["message_id", "channel", "provider", "provider_message_id", "status", "previous_status", "error"] },
    EventType { name: "provisioning.started", description: "A provisioning workflow started.", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"}}"#, required: &["workflow_id", "tenant_id"] },
    EventType { name: "provisioning.step_succeeded", description: "A provisioning step succeeded.", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"},"step":{"type":"string"}}"#, required: &["workflow_id", "tenant_id", "step"] },
    EventType { name: "provisioning.step_failed", description: "A provisioning step failed (permanent: it will not be retried).", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"},"step":{"type":"string"},"error":{"type":"object","properties":{"code":{"type":"string"},"message":{"type":"string"}},"required":["code","message"]},"permanent":{"type":"boolean"}}"#, required: &["workflow_id", "tenant_id", "step", "error", "permanent"] },
    EventType { name: "provisioning.completed", description: "A provisioning workflow completed.", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"}}"#, required: &["workflow_id", "tenant_id"] },
    EventType { name: "provisioning.failed", description: "A provisioning workflow failed.", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"},"step":{"type":"string"},"error":{"type":"object"}}"#, required: &["workflow_id", "tenant_id", "step", "error"] },
    EventType { name: "provisioning.compensated", description: "A failed workflow's completed steps were undone.", properties: r#"{"workflow_id":{"type":"string"},"tenant_id":{"type":"string"},"steps":{"type":"array","items":{"type":"string"}}}"#, required: &["workflow_id", "tenant_id", "steps"] },
];

pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::tenant::TenantEventKind;

    #[test]
    fn every_kind_is_in_the_catalogue_and_every_schema_parses() {
        for kind in TenantEventKind::ALL {
            assert!(
                find(kind.as_str()).is_some(),
                "{} is not in the catalogue",
                kind.as_str()
            );
        }
        assert_eq!(CATALOGUE.len(), TenantEventKind::ALL.len());
        for t in CATALOGUE {
            assert!(
                serde_json::from_str::<serde_json::Value>(t.properties).is_ok(),
                "{}",
                t.name
            );
            assert!(t.name.parse::<TenantEventKind>().is_ok(), "{}", t.name);
        }
    }
}
