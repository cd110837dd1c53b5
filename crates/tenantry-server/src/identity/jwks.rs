//! Issuers' key sets, fetched through the SSRF-safe outbound client and
//! cached per provider.
//!
//! - A set is fresh for its `Cache-Control: max-age` (clamped to 1 minute –
//!   1 day; 5 minutes without one). A stale set keeps verifying while one
//!   background refresh runs, so an issuer outage keeps the cached keys.
//! - A token naming a `kid` the set lacks triggers one refetch, at most once
//!   per `identity_jwks_refetch_interval` per provider: forged `kid`s cannot
//!   make Tenantry hammer the issuer. Concurrent fetches of one set are one.
//! - With no keys at all (never fetched, issuer down) a token cannot be
//!   checked: `503`, and fetches are retried at most once per interval.

use super::jwt::Jwk;
use crate::outbound::Outbound;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest key set read (bytes).
const MAX_BODY: usize = 256 * 1024;
const DEFAULT_FRESH: Duration = Duration::from_secs(300);
const MIN_FRESH: Duration = Duration::from_secs(60);
const MAX_FRESH: Duration = Duration::from_secs(86_400);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct SlotState {
    keys: Option<Arc<Vec<Jwk>>>,
    fresh_until: Option<Instant>,
    /// The last fetch made because of a `kid` the set lacked, or after a
    /// failure: the next such one waits for the interval.
    last_forced: Option<Instant>,
    refreshing: bool,
}

struct Slot {
    url: String,
    state: Mutex<SlotState>,
    /// Held while fetching, so concurrent requests make one fetch.
    fetching: tokio::sync::Mutex<()>,
}

/// Why no keys could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysUnavailable;

/// The key sets of every provider with a `jwks_url`, by provider id.
#[derive(Default)]
pub struct KeySets {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Fetches made (for `/metrics`-style checks and the tests' logs).
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeySets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySets")
    }
}

/// What a caller wants of a key set.
pub enum Want<'a> {
    /// Any keys (a token without `kid`).
    Any,
    /// A set holding this `kid`.
    Kid(&'a str),
}

impl KeySets {
    fn slot(&self, provider: &str, url: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(provider) {
            Some(slot) if slot.url == url => slot.clone(),
            _ => {
                let slot = Arc::new(Slot {
                    url: url.to_owned(),
                    state: Mutex::new(SlotState::default()),
                    fetching: tokio::sync::Mutex::new(()),
                });
                slots.insert(provider.to_owned(), slot.clone());
                slot
            }
        }
    }

    /// Forgets the sets of providers that no longer exist.
    pub fn retain(&self, providers: &[&str]) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|id, _| providers.contains(&id.as_str()));
    }

    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The keys of `provider`'s set at `url`, fetched or refetched as the
    /// rules above allow.
    pub async fn keys(
        self: &Arc<Self>,
        outbound: &Outbound,
        provider: &str,
        url: &str,
        want: Want<'_>,
        interval: Duration,
    ) -> Result<Arc<Vec<Jwk>>, KeysUnavailable> {
        let slot = self.slot(provider, url);
        let now = Instant::now();
        let has = |keys: &[Jwk]| match want {
            Want::Any => true,
            Want::Kid(kid) => keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
        };
        let forced_allowed = |state: &SlotState| {
            state
                .last_forced
                .is_none_or(|at| now.duration_since(at) >= interval)
        };
        {
            let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(keys) = state.keys.clone() {
                let stale = state.fresh_until.is_none_or(|until| now >= until);
                if stale && !state.refreshing && forced_allowed(&state) {
                    state.refreshing = true;
                    let (sets, slot, outbound) = (self.clone(), slot.clone(), outbound.clone());
                    tokio::spawn(async move {
                        sets.refresh(&outbound, &slot, false).await;
                        slot.state
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .refreshing = false;
                    });
                }
                if has(&keys) || !forced_allowed(&state) {
                    return Ok(keys);
                }
            } else if !forced_allowed(&state) {
                return Err(KeysUnavailable);
            }
        }
        // No keys yet, or the wanted `kid` is missing and a forced fetch is
        // allowed: fetch once (or wait for the fetch under way).
        let _fetching = slot.fetching.lock().await;
        let forced = {
            let state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(keys) = &state.keys
                && (has(keys) || !forced_allowed(&state))
            {
                return Ok(keys.clone());
            }
            // The first fetch of a set is not a refetch.
            state.keys.is_some()
        };
        self.refresh(outbound, &slot, forced).await;
        let state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        state.keys.clone().ok_or(KeysUnavailable)
    }

    /// Fetches the set; on failure keeps what was cached. `forced`: counts
    /// against the refetch interval.
    async fn refresh(&self, outbound: &Outbound, slot: &Slot, forced: bool) {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fetched = fetch(outbound, &slot.url).await;
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match fetched {
            Ok((keys, fresh_for)) => {
                state.keys = Some(Arc::new(keys));
                state.fresh_until = Some(now + fresh_for);
                if forced {
                    state.last_forced = Some(now);
                }
            }
            Err(why) => {
                tracing::warn!(reason = %why, "cannot fetch an identity provider's key set; keeping the cached keys");
                // A failure waits for the interval before the next try.
                state.last_forced = Some(now);
            }
        }
    }
}

async fn fetch(outbound: &Outbound, url: &str) -> Result<(Vec<Jwk>, Duration), String> {
    let request = outbound
        .client()
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .header("accept", "application/json");
    let response = outbound.send(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the issuer answered {}", response.status()));
    }
    let fresh_for = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(max_age)
        .unwrap_or(DEFAULT_FRESH)
        .clamp(MIN_FRESH, MAX_FRESH);
    let body = crate::outbound::read_limited(response, MAX_BODY).await;
    let set: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| "the key set is not JSON".to_owned())?;
    let keys = Jwk::parse_set(&set).ok_or_else(|| "not a JSON Web Key Set".to_owned())?;
    Ok((keys, fresh_for))
}

/// `max-age` of a `Cache-Control` value (`no-store`/`no-cache`: zero, i.e.
/// the shortest freshness allowed).
fn max_age(value: &str) -> Duration {
    let mut age = DEFAULT_FRESH;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=")
            && let Ok(seconds) = seconds.trim_matches('"').parse::<u64>()
        {
            age = Duration::from_secs(seconds);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(max_age("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(max_age("no-store"), Duration::ZERO);
        assert_eq!(max_age("public"), DEFAULT_FRESH);
    }
}
