//! The local cache of resolutions: request identity (a keyed hash of the
//! presented inputs, never their plaintext; see `shared::Identity`) →
//! tenant or refusal. Tenants and
//! refusals are kept apart, each with its own bound, so a flood of made-up
//! keys only ever evicts other refusals.
//!
//! Entries are stored only while the change stream is connected, and only
//! if no change arrived since the lookup began (the `generation` check, made
//! atomic with the insert by `gate`), so a resolution that raced a
//! revocation is never left behind.

use crate::context::TenantContext;
use crate::problem::Refusal;
use moka::sync::Cache;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What an entry depends on, for eviction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Depends {
    /// SHA-256 of the API key presented (Tenantry's key hash).
    pub key_hash: Option<[u8; 32]>,
    pub token: bool,
    pub host: bool,
}

#[derive(Clone)]
pub(crate) struct Found {
    pub tenant: TenantContext,
    pub depends: Depends,
}

#[derive(Clone)]
pub(crate) struct Refused {
    pub refusal: Refusal,
    pub depends: Depends,
}

/// One change, as the layer needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Eviction {
    Key([u8; 32]),
    Tenant(String),
    Host,
    /// Tokens (signing keys, identity providers, memberships).
    Tokens,
    All,
}

pub(crate) struct ResolutionCache {
    found: Cache<u128, Found>,
    refused: Cache<u128, Refused>,
    generation: AtomicU64,
    gate: RwLock<()>,
    connected: AtomicBool,
}

pub(crate) enum Hit {
    Tenant(TenantContext),
    Refused(Refusal),
}

impl ResolutionCache {
    pub fn new(capacity: u64, ttl: Duration, refusal_ttl: Duration) -> ResolutionCache {
        ResolutionCache {
            found: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            refused: Cache::builder()
                .max_capacity(capacity / 10 + 1)
                .time_to_live(refusal_ttl)
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
            gate: RwLock::new(()),
            connected: AtomicBool::new(false),
        }
    }

    pub fn get(&self, id: &u128) -> Option<Hit> {
        if let Some(found) = self.found.get(id) {
            return Some(Hit::Tenant(found.tenant));
        }
        self.refused.get(id).map(|r| Hit::Refused(r.refusal))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Stores a resolution begun at `generation`, if still valid.
    pub fn store(
        &self,
        generation: u64,
        id: u128,
        outcome: &Result<TenantContext, Refusal>,
        depends: Depends,
    ) {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if !self.is_connected() || self.generation() != generation {
            return;
        }
        match outcome {
            Ok(tenant) => {
                self.refused.invalidate(&id);
                self.found.insert(
                    id,
                    Found {
                        tenant: tenant.clone(),
                        depends,
                    },
                );
            }
            Err(refusal) if refusal.cacheable() => {
                self.found.invalidate(&id);
                self.refused.insert(
                    id,
                    Refused {
                        refusal: refusal.clone(),
                        depends,
                    },
                );
            }
            Err(_) => {}
        }
    }

    /// The stream is live (`true`: entries may be stored from now on) or
    /// lost (`false`); either way everything cached so far is dropped.
    pub fn set_connected(&self, connected: bool) {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.connected.store(connected, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.found.invalidate_all();
        self.refused.invalidate_all();
    }

    pub fn evict(&self, eviction: &Eviction) {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        let result = match eviction {
            Eviction::All => {
                self.found.invalidate_all();
                self.refused.invalidate_all();
                Ok(())
            }
            Eviction::Key(hash) => {
                // Tokens are made from keys: they go too.
                let hash = *hash;
                let on = move |d: &Depends| d.key_hash == Some(hash) || d.token;
                self.found
                    .invalidate_entries_if(move |_, v| on(&v.depends))
                    .and(
                        self.refused
                            .invalidate_entries_if(move |_, v| on(&v.depends)),
                    )
                    .map(|_| ())
            }
            Eviction::Tenant(id) => {
                let id = id.clone();
                // A refusal does not say whose tenant it was (a suspended
                // one, say): every refusal goes.
                self.refused.invalidate_all();
                self.found
                    .invalidate_entries_if(move |_, v| v.tenant.id == id)
                    .map(|_| ())
            }
            Eviction::Host => self
                .found
                .invalidate_entries_if(|_, v| v.depends.host)
                .and(self.refused.invalidate_entries_if(|_, v| v.depends.host))
                .map(|_| ()),
            Eviction::Tokens => self
                .found
                .invalidate_entries_if(|_, v| v.depends.token)
                .and(self.refused.invalidate_entries_if(|_, v| v.depends.token))
                .map(|_| ()),
        };
        if result.is_err() {
            // Cannot happen (closures are enabled); be safe anyway.
            self.found.invalidate_all();
            self.refused.invalidate_all();
        }
    }
}
