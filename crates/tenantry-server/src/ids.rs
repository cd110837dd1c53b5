//! Id generation for records made by this process.

use std::sync::Mutex;
use tenantry_core::ids::{prefixed_id, sortable_id};

/// Makes time-sortable ids that are also strictly increasing within this
/// process, so events recorded in the same millisecond keep their order.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: Mutex<(u64, u128)>,
}

impl IdGenerator {
    pub fn sortable(&self, prefix: &str, unix_millis: u64) -> String {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let random: u128 = rand::random::<u128>() >> 48;
        let next = if unix_millis > last.0 {
            (unix_millis, random)
        } else {
            // Same (or an earlier) millisecond: count up from the last id.
            (last.0, last.1.wrapping_add(1 + (random & 0xffff)))
        };
        *last = next;
        sortable_id(prefix, next.0, next.1)
    }

    pub fn random(&self, prefix: &str) -> String {
        prefixed_id(prefix, rand::random::<u128>())
    }
}
