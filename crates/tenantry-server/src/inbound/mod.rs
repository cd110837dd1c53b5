//! Inbound traffic that carries no API key: WhatsApp Cloud API webhooks
//! (see [`whatsapp`]), stored under the tenant whose own secret
//! authenticated them, on the change path (every stored message and status
//! has its audit entry and its event).
//!
//! The raw delivery is stored, parsed, and its messages, statuses, events,
//! audit entries and usage written in one transaction; the provider is
//! answered `200` only after it commits. A crash before the commit stores
//! nothing (the provider retries); after it, everything is stored. No
//! payload is ever left stored but unparsed, so no worker is needed.

pub mod callbacks;
pub mod messages;
pub mod whatsapp;

use crate::app::AppState;
use crate::resolution::cache::Invalidation;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::TenantId;

/// The unsealed webhook secrets of tenants, kept briefly in memory so that
/// a delivery costs no decryption. Dropped by the change path's
/// invalidations: a tenant's (its credentials changing, it being
/// suspended or deleted), or everything.
pub struct InboundCache {
    whatsapp: Cache<TenantId, Arc<whatsapp::Secrets>>,
}

impl Default for InboundCache {
    fn default() -> Self {
        InboundCache {
            whatsapp: Cache::builder()
                .max_capacity(100_000)
                // A safety net only: changes invalidate entries explicitly.
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl InboundCache {
    pub fn apply(&self, change: &Invalidation) {
        match change {
            Invalidation::Tenant(id) => self.whatsapp.invalidate(id),
            Invalidation::All => self.whatsapp.invalidate_all(),
            _ => {}
        }
    }

    /// A tenant's cached WhatsApp secrets.
    pub(crate) fn whatsapp(&self, tenant: &TenantId) -> Option<Arc<whatsapp::Secrets>> {
        self.whatsapp.get(tenant)
    }

    /// Caches a tenant's WhatsApp secrets, loaded when the caches' generation
    /// was `generation`: not if an invalidation happened since.
    pub(crate) fn keep_whatsapp(
        &self,
        state: &AppState,
        generation: u64,
        tenant: TenantId,
        secrets: Arc<whatsapp::Secrets>,
    ) {
        if state.caches.generation() == generation {
            self.whatsapp.insert(tenant, secrets);
        }
    }
}
