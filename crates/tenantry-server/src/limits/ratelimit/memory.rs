//! The in-process backend: exact within one server process.

use super::gcra::{Outcome, Params, gcra};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most buckets kept in memory; the least used are dropped beyond it.
const MEMORY_CAPACITY: u64 = 1_000_000;

/// One bucket: its TAT in µs since [`Memory::epoch`], updated by
/// compare-and-swap, so concurrent checks on one key are atomic without a lock.
pub(super) struct Bucket {
    tat: AtomicU64,
    /// How long the bucket may stay unused before it is dropped (µs): after
    /// its burst window it is full again, the same as absent.
    idle_us: AtomicU64,
}

impl Bucket {
    fn idle(&self) -> Duration {
        Duration::from_micros(self.idle_us.load(Ordering::Relaxed))
    }
}

/// Drops each bucket once unused for its own burst window.
struct BucketExpiry;

impl moka::Expiry<String, Arc<Bucket>> for BucketExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }

    fn expire_after_read(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _read_at: Instant,
        _duration_until_expiry: Option<Duration>,
        _last_modified_at: Instant,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }

    fn expire_after_update(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }
}

pub(super) struct Memory {
    /// The monotonic clock's zero.
    epoch: Instant,
    pub(super) buckets: moka::sync::Cache<String, Arc<Bucket>>,
}

impl Memory {
    pub(super) fn new() -> Memory {
        Memory {
            epoch: Instant::now(),
            buckets: moka::sync::Cache::builder()
                .max_capacity(MEMORY_CAPACITY)
                .expire_after(BucketExpiry)
                .build(),
        }
    }

    pub(super) fn check(&self, key: &str, params: Params, cost: u64) -> Outcome {
        // A second of slack beyond the burst window covers the moment between
        // the cache's read and the TAT's update.
        let idle_us = params.tau.saturating_add(1_000_000);
        let bucket = self
            .buckets
            .entry_by_ref(key)
            .or_insert_with(|| {
                Arc::new(Bucket {
                    tat: AtomicU64::new(0),
                    idle_us: AtomicU64::new(idle_us),
                })
            })
            .into_value();
        if bucket.idle_us.fetch_max(idle_us, Ordering::Relaxed) < idle_us {
            // The policy's window grew: re-arm the expiry with the new one.
            self.buckets.insert(key.to_owned(), bucket.clone());
        }
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut stored = bucket.tat.load(Ordering::Acquire);
        loop {
            let outcome = gcra(now, stored, params, cost);
            if !outcome.allowed || cost == 0 {
                return outcome;
            }
            match bucket.tat.compare_exchange_weak(
                stored,
                outcome.tat,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(current) => stored = current,
            }
        }
    }
}
