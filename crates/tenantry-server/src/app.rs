//! The state every request handler shares.

use crate::config::Config;
use crate::ids::IdGenerator;
use crate::resolution::cache::{Caches, Invalidation};
use crate::resolution::keys::KeyUsage;
use crate::resolution::tokens::TokenKeys;
use crate::root_key::RootKey;
use std::sync::Arc;
use tenantry_core::Clock;
use tenantry_store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    pub root_key: RootKey,
    pub ids: IdGenerator,
    pub caches: Caches,
    pub key_usage: KeyUsage,
    pub tokens: TokenKeys,
    pub vault: crate::vault::Vault,
    pub rate_limiter: crate::limits::ratelimit::RateLimiter,
    /// The HTTP client for every request Tenantry makes to another server.
    pub outbound: crate::outbound::Outbound,
    /// External login tokens: issuers' key sets, verified tokens.
    pub identity: crate::identity::Identity,
    /// This node's provisioning worker: its lease owner id and wake-up bell.
    pub provisioning: crate::provisioning::Runtime,
    /// Woken when a change committed events, so the webhook worker of this
    /// process does not wait for its next poll.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Unsealed webhook secrets, briefly (see `inbound`).
    pub inbound: crate::inbound::InboundCache,
    /// Widgets and their origins, until a change invalidates them.
    pub widgets: crate::widgets::WidgetCache,
    /// Counters behind `GET /metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Committed changes, for the `GET /v1/changes` streams.
    pub changes: Arc<crate::changes::ChangeHub>,
    /// Concurrent usage requests of one tenant, sharing transactions.
    pub usage_group_commit: crate::limits::group_commit::UsageGroupCommit,
    /// Tenants of other regions, tenants being moved out, other regions' databases.
    pub regions: crate::tenancy::regions::Regions,

    /// Blocks of tenants' quotas this process leased and consumes in memory.
    pub quota_leases: crate::limits::leases::QuotaLeases,
}

impl AppState {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: Config,
        root_key: RootKey,
        vault: crate::vault::Vault,
        rate_limiter: crate::limits::ratelimit::RateLimiter,
    ) -> anyhow::Result<Self> {
        let outbound = crate::outbound::Outbound::new(
            config.outbound_allowlist.clone(),
            config.outbound_timeout,
        )
        .map_err(anyhow::Error::msg)?;
        let metrics = crate::metrics::Metrics::new(config.metrics_tenant_labels);
        let changes = Arc::new(crate::changes::ChangeHub::default());
        let quota_leases = crate::limits::leases::QuotaLeases::new(
            config.node_id.as_deref(),
            config.quota_lease_max,
        );
        changes.set_remote(store.backend_name() == "postgres");
        Ok(Self(Arc::new(Inner {
            store,
            clock,
            config,
            root_key,
            ids: IdGenerator::default(),
            caches: Caches::default(),
            key_usage: KeyUsage::default(),
            tokens: TokenKeys::default(),
            vault,
            rate_limiter,
            outbound,
            identity: crate::identity::Identity::default(),
            provisioning: crate::provisioning::Runtime::default(),
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            inbound: Default::default(),
            widgets: Default::default(),
            metrics,
            changes,
            usage_group_commit: Default::default(),
            regions: Default::default(),

            quota_leases,
        })))
    }

    /// The state an operator command (`tenantry keys …`) runs its changes
    /// with: it serves no requests, so its root key matches nothing and its
    /// rate limiter is local.
    pub fn for_command(
        store: Store,
        config: Config,
        vault: crate::vault::Vault,
    ) -> anyhow::Result<Self> {
        let unusable =
            tenantry_core::SecretString::new(crate::ids::IdGenerator::default().random("cmd"));
        Self::new(
            store,
            Arc::new(tenantry_core::SystemClock),
            config,
            RootKey::new(&unusable),
            vault,
            crate::limits::ratelimit::RateLimiter::in_memory(),
        )
    }

    /// Drops cache entries made wrong by a committed change (on this
    /// process; other processes learn of it through the transaction's NOTIFY).
    pub fn forget(&self, changes: &[Invalidation]) {
        for change in changes {
            self.apply(change);
        }
    }

    /// Applies one invalidation to every in-memory cache of this process.
    pub fn apply(&self, change: &Invalidation) {
        self.caches.apply(change);
        if matches!(change, Invalidation::IdentityProviders | Invalidation::All) {
            self.identity.providers_changed();
        }
        self.inbound.apply(change);
        self.widgets.apply(change);
        self.quota_leases.apply(change);
        if *change == Invalidation::All {
            // After a purge: a shredded data key must not live on in memory.
            self.vault.deks.invalidate_all();
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
