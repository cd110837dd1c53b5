//! In-memory caches of the hot path: key hash → key, tenant id → tenant
//! snapshot, host → tenant id. Bounded, with short negative entries for
//! unknown keys and hosts. Every change that could make an entry wrong
//! invalidates it: locally at once, and on other server processes through
//! PostgreSQL NOTIFY (see `workers::invalidation`).

use moka::Expiry;
use moka::sync::Cache;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantry_core::TenantId;
use tenantry_core::keys::{ApiKey, OperatorKey};
use tenantry_core::tenant::TenantStatus;

/// What resolution needs to know of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSnapshot {
    pub id: TenantId,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
    pub plan: String,
    pub region: String,
}

/// A cached lookup: found, or known not to exist (negative entry).
#[derive(Debug)]
pub enum Entry<T> {
    Found(Arc<T>),
    Missing,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        match self {
            Entry::Found(value) => Entry::Found(Arc::clone(value)),
            Entry::Missing => Entry::Missing,
        }
    }
}

struct ExpireBy {
    found: Duration,
    missing: Duration,
}

impl<K, T> Expiry<K, Entry<T>> for ExpireBy {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Entry<T>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Entry::Found(_) => self.found,
            Entry::Missing => self.missing,
        })
    }
}

fn cache<K, T>(capacity: u64) -> Cache<K, Entry<T>>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .expire_after(ExpireBy {
            // A safety net only: changes invalidate entries explicitly.
            found: Duration::from_secs(300),
            // Every creation (tenant, domain, key) invalidates its entry, so
            // negative entries need not be short; a minute bounds the cost of
            // a missed notification.
            missing: Duration::from_secs(60),
        })
        .build()
}

/// A change that makes cached entries wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A tenant key (by its hash).
    Key([u8; 32]),
    /// An operator key (by its hash).
    OperatorKey([u8; 32]),
    Tenant(TenantId),
    /// A custom domain or a subdomain label.
    Host(String),
    /// Token signing keys were rotated: reload them.
    SigningKeys,
    /// Everything (e.g. after a purge, or when notifications may have been missed).
    All,
}

impl Invalidation {
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Key(h) => format!("k:{}", hex::encode(h)),
            Invalidation::OperatorKey(h) => format!("o:{}", hex::encode(h)),
            Invalidation::Tenant(id) => format!("t:{id}"),
            Invalidation::Host(h) => format!("h:{h}"),
            Invalidation::SigningKeys => "signing".to_owned(),
            Invalidation::All => "*".to_owned(),
        }
    }

    pub fn decode(text: &str) -> Option<Invalidation> {
        let hash =
            |hex_text: &str| -> Option<[u8; 32]> { hex::decode(hex_text).ok()?.try_into().ok() };
        match text.split_once(':') {
            Some(("k", h)) => hash(h).map(Invalidation::Key),
            Some(("o", h)) => hash(h).map(Invalidation::OperatorKey),
            Some(("t", id)) => Some(Invalidation::Tenant(TenantId::from_trusted(id.to_owned()))),
            Some(("h", host)) => Some(Invalidation::Host(host.to_owned())),
            _ if text == "*" => Some(Invalidation::All),
            _ if text == "signing" => Some(Invalidation::SigningKeys),
            _ => None,
        }
    }
}

pub struct Caches {
    pub keys: Cache<[u8; 32], Entry<ApiKey>>,
    pub operator_keys: Cache<[u8; 32], Entry<OperatorKey>>,
    pub tenants: Cache<TenantId, Entry<TenantSnapshot>>,
    /// `d:<domain>` for custom domains, `s:<label>` for subdomains.
    pub hosts: Cache<String, Entry<TenantId>>,
    /// Key id → key hash, for tokens (which name their key by id). The
    /// mapping never changes, so it needs no invalidation.
    pub key_ids: Cache<String, [u8; 32]>,
    /// Effective configurations, by tenant.
    pub configs: Cache<TenantId, Entry<crate::limits::config::EffectiveConfig>>,
    /// Plans, by name (all dropped when any plan changes: `All`).
    pub plans: Cache<String, Entry<crate::limits::config::Plan>>,
    /// The meter catalog (one entry).
    pub meters:
        Cache<(), Entry<std::collections::HashMap<String, crate::limits::service::Aggregation>>>,
    /// Bumped by every invalidation: a loader that read the database before
    /// an invalidation must not store what it read.
    generation: AtomicU64,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            keys: cache(1_000_000),
            operator_keys: cache(10_000),
            tenants: cache(200_000),
            hosts: cache(200_000),
            key_ids: Cache::new(100_000),
            configs: cache(200_000),
            plans: cache(1_000),
            meters: cache(1),
            generation: AtomicU64::new(0),
        }
    }
}

impl Caches {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a loaded value unless an invalidation happened since
    /// `generation` was read.
    pub fn store<K, T>(&self, cache: &Cache<K, Entry<T>>, generation: u64, key: K, value: Entry<T>)
    where
        K: Hash + Eq + Send + Sync + 'static,
        T: Send + Sync + 'static,
    {
        if self.generation() == generation {
            cache.insert(key, value);
        }
    }

    pub fn apply(&self, change: &Invalidation) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match change {
            Invalidation::Key(h) => self.keys.invalidate(h),
            Invalidation::OperatorKey(h) => self.operator_keys.invalidate(h),
            Invalidation::Tenant(id) => {
                self.tenants.invalidate(id);
                self.configs.invalidate(id);
            }
            Invalidation::Host(host) => self.hosts.invalidate(host),
            // Reloaded by the invalidation worker, which owns the store.
            Invalidation::SigningKeys => {}
            Invalidation::All => {
                self.keys.invalidate_all();
                self.operator_keys.invalidate_all();
                self.tenants.invalidate_all();
                self.hosts.invalidate_all();
                self.configs.invalidate_all();
                self.plans.invalidate_all();
                self.meters.invalidate_all();
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

pub fn domain_key(domain: &str) -> String {
    format!("d:{domain}")
}

pub fn subdomain_key(label: &str) -> String {
    format!("s:{label}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_round_trip() {
        for change in [
            Invalidation::Key([7; 32]),
            Invalidation::OperatorKey([1; 32]),
            Invalidation::Tenant(TenantId::from_trusted("acme".into())),
            Invalidation::Host("d:acme.com".into()),
            Invalidation::SigningKeys,
            Invalidation::All,
        ] {
            assert_eq!(Invalidation::decode(&change.encode()), Some(change));
        }
        assert_eq!(Invalidation::decode("garbage"), None);
    }

    #[test]
    fn a_load_racing_an_invalidation_is_not_stored() {
        let caches = Caches::default();
        let generation = caches.generation();
        caches.apply(&Invalidation::Host("d:x.com".into()));
        caches.store(&caches.hosts, generation, "d:x.com".into(), Entry::Missing);
        assert!(caches.hosts.get("d:x.com").is_none());
    }
}
