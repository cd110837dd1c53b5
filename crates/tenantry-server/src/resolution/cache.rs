//! In-memory caches of the hot path: key hash → key, tenant id → tenant
//! snapshot, host → tenant id. Bounded, with shorter negative entries for
//! unknown keys and hosts, kept apart from the positive ones so that made-up
//! keys or hosts can only ever evict each other, never a real entry. Every change that could make an entry wrong
//! invalidates it: locally at once, and on other server processes through
//! PostgreSQL NOTIFY (see `workers::invalidation`).

use moka::sync::Cache;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
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

/// A cache of lookups: what was found, and, apart from it, what is known not
/// to exist. Each half has its own bound, so a flood of lookups for things
/// that do not exist (made-up keys, random hosts) evicts only negative
/// entries.
pub struct Lookup<K, T> {
    found: Cache<K, Arc<T>>,
    missing: Cache<K, ()>,
    /// Lookups answered from the cache (found or known missing), and not
    /// (for `/metrics`).
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K, T> Lookup<K, T>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    fn new(found: u64, missing: u64) -> Self {
        Lookup {
            found: Cache::builder()
                .max_capacity(found)
                // A safety net only: changes invalidate entries explicitly.
                .time_to_live(Duration::from_secs(300))
                .build(),
            missing: Cache::builder()
                .max_capacity(missing)
                // Every creation (tenant, domain, key) invalidates its entry,
                // so negative entries need not be short; a minute bounds the
                // cost of a missed notification.
                .time_to_live(Duration::from_secs(60))
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Lookups answered from the cache, and lookups that had to load.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    pub fn get<Q>(&self, key: &Q) -> Option<Entry<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(value) = self.found.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(Entry::Found(value));
        }
        let known_missing = self.missing.contains_key(key);
        let counter = if known_missing {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        known_missing.then_some(Entry::Missing)
    }

    fn insert(&self, key: K, entry: Entry<T>) {
        match entry {
            Entry::Found(value) => {
                self.missing.invalidate(&key);
                self.found.insert(key, value);
            }
            Entry::Missing => {
                self.found.invalidate(&key);
                self.missing.insert(key, ());
            }
        }
    }

    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.found.invalidate(key);
        self.missing.invalidate(key);
    }

    pub fn invalidate_all(&self) {
        self.found.invalidate_all();
        self.missing.invalidate_all();
    }

    /// Entries held (approximate, as moka counts them): found, missing.
    pub fn entry_counts(&self) -> (u64, u64) {
        self.found.run_pending_tasks();
        self.missing.run_pending_tasks();
        (self.found.entry_count(), self.missing.entry_count())
    }
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
    /// The identity providers changed: reload them.
    IdentityProviders,
    /// A user's memberships (`idp_…:subject`).
    Member(String),
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
            Invalidation::IdentityProviders => "idp".to_owned(),
            Invalidation::Member(key) => format!("m:{key}"),
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
            Some(("m", key)) => Some(Invalidation::Member(key.to_owned())),
            _ if text == "idp" => Some(Invalidation::IdentityProviders),
            _ if text == "*" => Some(Invalidation::All),
            _ if text == "signing" => Some(Invalidation::SigningKeys),
            _ => None,
        }
    }
}

pub struct Caches {
    pub keys: Lookup<[u8; 32], ApiKey>,
    pub operator_keys: Lookup<[u8; 32], OperatorKey>,
    pub tenants: Lookup<TenantId, TenantSnapshot>,
    /// `d:<domain>` for custom domains, `s:<label>` for subdomains.
    pub hosts: Lookup<String, TenantId>,
    /// Key id → key hash, for tokens (which name their key by id). The
    /// mapping never changes, so it needs no invalidation.
    pub key_ids: Cache<String, [u8; 32]>,
    /// Effective configurations, by tenant.
    pub configs: Lookup<TenantId, crate::limits::config::EffectiveConfig>,
    /// Plans, by name (all dropped when any plan changes: `All`).
    pub plans: Lookup<String, crate::limits::config::Plan>,
    /// The meter catalog (one entry).
    pub meters: Lookup<(), std::collections::HashMap<String, crate::limits::service::Aggregation>>,
    /// The identity providers (one entry).
    pub identity_providers: Lookup<(), crate::identity::Registry>,
    /// A user's memberships, by `idp_…:subject`.
    pub memberships: Lookup<String, Vec<crate::identity::Membership>>,
    /// Bumped by every invalidation: a loader that read the database before
    /// an invalidation must not store what it read.
    generation: AtomicU64,
    /// Makes "check the generation, then insert" atomic with respect to an
    /// invalidation: stores share it, [`Caches::apply`] takes it alone, so no
    /// invalidation can fall between a loader's check and its insert.
    gate: RwLock<()>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            keys: Lookup::new(1_000_000, 100_000),
            operator_keys: Lookup::new(10_000, 10_000),
            tenants: Lookup::new(200_000, 100_000),
            hosts: Lookup::new(200_000, 100_000),
            key_ids: Cache::new(100_000),
            configs: Lookup::new(200_000, 10_000),
            plans: Lookup::new(1_000, 1_000),
            meters: Lookup::new(1, 1),
            identity_providers: Lookup::new(1, 1),
            memberships: Lookup::new(200_000, 1),
            generation: AtomicU64::new(0),
            gate: RwLock::new(()),
        }
    }
}

impl Caches {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a loaded value unless an invalidation happened since
    /// `generation` was read.
    pub fn store<K, T>(&self, cache: &Lookup<K, T>, generation: u64, key: K, value: Entry<T>)
    where
        K: Hash + Eq + Send + Sync + 'static,
        T: Send + Sync + 'static,
    {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if self.generation() == generation {
            cache.insert(key, value);
        }
    }

    pub fn apply(&self, change: &Invalidation) {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
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
            Invalidation::IdentityProviders => self.identity_providers.invalidate_all(),
            Invalidation::Member(key) => self.memberships.invalidate(key),
            Invalidation::All => {
                self.keys.invalidate_all();
                self.operator_keys.invalidate_all();
                self.tenants.invalidate_all();
                self.hosts.invalidate_all();
                self.configs.invalidate_all();
                self.plans.invalidate_all();
                self.meters.invalidate_all();
                self.identity_providers.invalidate_all();
                self.memberships.invalidate_all();
            }
        }
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
            Invalidation::IdentityProviders,
            Invalidation::Member("idp_1:auth0|a:b".into()),
        ] {
            assert_eq!(Invalidation::decode(&change.encode()), Some(change));
        }
        assert_eq!(Invalidation::decode("garbage"), None);
    }

    #[test]
    fn negative_entries_never_evict_positive_ones() {
        let caches = Caches::default();
        let real = TenantId::from_trusted("acme".into());
        caches.store(
            &caches.hosts,
            caches.generation(),
            "s:acme".into(),
            Entry::Found(Arc::new(real.clone())),
        );
        // Far more made-up hosts than the negative half holds.
        for i in 0..150_000u32 {
            caches.store(
                &caches.hosts,
                caches.generation(),
                format!("s:made-up-{i}"),
                Entry::Missing,
            );
        }
        let (found, missing) = caches.hosts.entry_counts();
        assert_eq!(found, 1);
        assert!(
            missing <= 100_000,
            "the negative half is bounded: {missing}"
        );
        assert!(matches!(caches.hosts.get("s:acme"), Some(Entry::Found(id)) if *id == real));
        // A negative entry replaced by a found one (and back) leaves one entry.
        caches.store(
            &caches.hosts,
            caches.generation(),
            "s:acme".into(),
            Entry::Missing,
        );
        assert!(matches!(caches.hosts.get("s:acme"), Some(Entry::Missing)));
        caches.apply(&Invalidation::Host("s:acme".into()));
        assert!(caches.hosts.get("s:acme").is_none());
    }

    /// A loader that read the generation before an invalidation never leaves
    /// its (stale) value behind, however the two threads interleave.
    #[test]
    fn a_load_racing_an_invalidation_never_survives_it() {
        let caches = Arc::new(Caches::default());
        for round in 0..2_000u32 {
            let key = [u8::try_from(round % 251).unwrap_or(0); 32];
            let generation = caches.generation();
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let invalidator = {
                let caches = caches.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    caches.apply(&Invalidation::Key(key));
                })
            };
            barrier.wait();
            caches.store(&caches.keys, generation, key, Entry::Missing);
            invalidator.join().unwrap_or_default();
            assert!(caches.keys.get(&key).is_none(), "round {round}");
        }
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
