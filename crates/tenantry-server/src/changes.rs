//! The change hub: every committed cache invalidation of every node, in
//! order, for the `GET /v1/changes` streams (see `api::changes`).
//!
//! It is fed by the cross-node invalidation mechanism itself: on
//! PostgreSQL, by the LISTEN worker (`workers::invalidation`), which hears
//! every node's NOTIFY, this node's included; on SQLite (one process), by the
//! unit of work right after its commit (`change.rs`). Each change is
//! published with the tenant it belongs to, so a tenant's stream carries its
//! own changes only.
//!
//! Events are numbered per process; a client sees each number only sealed
//! (`<instance>.<cursor>`, [`CursorCipher`]), so the ids of a tenant's own
//! events do not tell it how many other tenants' changes came between. The
//! last [`REPLAY`] are kept so a client that reconnects with `Last-Event-ID` gets
//! what it missed. An id this process cannot replay from (another node's,
//! one from before a restart, one too old) is answered with a `reset`.

use crate::resolution::cache::Invalidation;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tenantry_core::TenantId;
use tenantry_crypto::cursor::CursorCipher;
use tokio::sync::{broadcast, watch};

/// Events kept for replay after a reconnection.
pub const REPLAY: usize = 4096;

/// Events a stream may fall behind the newest before it is sent a `reset`
/// (the broadcast ring is shared: memory is bounded by this, whatever the
/// number or speed of the clients).
pub const BUFFER: usize = 1024;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Invalidated(Invalidation),
    /// Changes may have been missed (a purge, a lost database listener):
    /// clients drop everything they cached.
    Reset,
}

/// One numbered change.
#[derive(Debug)]
pub struct ChangeEvent {
    pub seq: u64,
    /// The tenant whose change it is, when it has one.
    pub tenant: Option<TenantId>,
    pub change: Change,
}

struct Log {
    seq: u64,
    recent: VecDeque<Arc<ChangeEvent>>,
}

/// Where a new stream starts.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<ChangeEvent>>,
    /// Missed events to send first (a resumed stream).
    pub replay: Vec<Arc<ChangeEvent>>,
    /// `Last-Event-ID` was given but cannot be replayed from.
    pub reset: bool,
    /// The id of the newest event at subscription time.
    pub position: String,
}

pub struct ChangeHub {
    instance: String,
    ids: CursorCipher,
    log: Mutex<Log>,
    sender: broadcast::Sender<Arc<ChangeEvent>>,
    /// PostgreSQL: the LISTEN worker publishes, commits do not.
    remote: AtomicBool,
    /// Open streams per caller.
    streams: Mutex<HashMap<String, usize>>,
    closed: watch::Sender<bool>,
}

impl Default for ChangeHub {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(BUFFER);
        let (closed, _) = watch::channel(false);
        ChangeHub {
            instance: crate::ids::IdGenerator::default().random("n"),
            ids: CursorCipher::random(),
            log: Mutex::new(Log {
                seq: 0,
                recent: VecDeque::with_capacity(REPLAY),
            }),
            sender,
            remote: AtomicBool::new(false),
            streams: Mutex::new(HashMap::new()),
            closed,
        }
    }
}

impl ChangeHub {
    /// Whether changes arrive through the database listener (PostgreSQL).
    pub fn set_remote(&self, remote: bool) {
        self.remote.store(remote, Ordering::Release);
    }

    /// The id a client sees for event `seq`.
    pub fn id_of(&self, seq: u64) -> String {
        format!("{}.{}", self.instance, self.ids.seal(seq))
    }

    /// After a local commit: published here unless the listener will.
    pub fn committed(&self, tenant: Option<&TenantId>, invalidations: &[Invalidation]) {
        if !self.remote.load(Ordering::Acquire) {
            self.publish(tenant, invalidations);
        }
    }

    /// Publishes changes (`Invalidation::All` becomes a reset).
    pub fn publish(&self, tenant: Option<&TenantId>, invalidations: &[Invalidation]) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        for invalidation in invalidations {
            let (tenant, change) = match invalidation {
                Invalidation::All => (None, Change::Reset),
                Invalidation::Tenant(id) => {
                    (Some(id.clone()), Change::Invalidated(invalidation.clone()))
                }
                other => (tenant.cloned(), Change::Invalidated(other.clone())),
            };
            log.seq += 1;
            let event = Arc::new(ChangeEvent {
                seq: log.seq,
                tenant,
                change,
            });
            if log.recent.len() >= REPLAY {
                log.recent.pop_front();
            }
            log.recent.push_back(Arc::clone(&event));
            // No receivers is not an error: nobody is streaming.
            let _ = self.sender.send(event);
        }
    }

    /// Everything may have been missed: every stream is told to reset.
    pub fn reset(&self) {
        self.publish(None, &[Invalidation::All]);
    }

    /// A new stream, resumed after `last_event_id` when that can be done.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let receiver = self.sender.subscribe();
        let position = self.id_of(log.seq);
        let Some(last) = last_event_id else {
            return Subscription {
                receiver,
                replay: Vec::new(),
                reset: false,
                position,
            };
        };
        let resumable = last
            .rsplit_once('.')
            .filter(|(instance, _)| *instance == self.instance)
            .and_then(|(_, cursor)| self.ids.open(cursor))
            .filter(|seq| *seq <= log.seq)
            .filter(|seq| {
                // Every event after `seq` is still kept.
                let oldest = log.recent.front().map_or(log.seq + 1, |e| e.seq);
                *seq + 1 >= oldest
            });
        match resumable {
            Some(seq) => Subscription {
                receiver,
                replay: log.recent.iter().filter(|e| e.seq > seq).cloned().collect(),
                reset: false,
                position,
            },
            None => Subscription {
                receiver,
                replay: Vec::new(),
                reset: true,
                position,
            },
        }
    }

    /// Counts a new stream of `caller`, unless it already holds `limit`.
    pub fn open_stream(self: &Arc<Self>, caller: &str, limit: usize) -> Option<StreamGuard> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let open = streams.entry(caller.to_owned()).or_insert(0);
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(StreamGuard {
            hub: Arc::clone(self),
            caller: caller.to_owned(),
        })
    }

    /// Ends every stream (server shutdown), so graceful shutdown need not
    /// wait for them.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// Ends every stream when the server stops.
pub async fn close_on_stop(hub: Arc<ChangeHub>, mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
    hub.close();
}

/// One open stream; dropping it frees its caller's slot.
pub struct StreamGuard {
    hub: Arc<ChangeHub>,
    caller: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = streams.get_mut(&self.caller) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.caller);
            }
        }
    }
}

/// The NOTIFY payload of an invalidation: its encoding, prefixed with
/// `@<tenant> ` when the change belongs to a tenant (tenant ids are slugs,
/// which hold no space; no bare encoding starts with `@`).
pub fn wire(tenant: Option<&TenantId>, invalidation: &Invalidation) -> String {
    match (tenant, invalidation) {
        (Some(tenant), inv) if *inv != Invalidation::All => {
            format!("@{tenant} {}", inv.encode())
        }
        (_, inv) => inv.encode(),
    }
}

/// Reads a NOTIFY payload written by [`wire`] (or a bare encoding).
pub fn unwire(payload: &str) -> (Option<TenantId>, &str) {
    match payload
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(' '))
    {
        Some((tenant, rest)) => (Some(TenantId::from_trusted(tenant.to_owned())), rest),
        None => (None, payload),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::from_trusted(id.to_owned())
    }

    #[test]
    fn wire_round_trips_with_and_without_a_tenant() {
        let inv = Invalidation::Key([3; 32]);
        let text = wire(Some(&tenant("acme")), &inv);
        let (t, rest) = unwire(&text);
        assert_eq!(t, Some(tenant("acme")));
        assert_eq!(Invalidation::decode(rest), Some(inv.clone()));
        let bare = inv.encode();
        let (t, rest) = unwire(&bare);
        assert_eq!(t, None);
        assert_eq!(Invalidation::decode(rest), Some(inv));
        assert_eq!(wire(Some(&tenant("acme")), &Invalidation::All), "*");
    }

    #[test]
    fn resumes_only_from_its_own_recent_ids() {
        let hub = Arc::new(ChangeHub::default());
        hub.publish(Some(&tenant("acme")), &[Invalidation::Key([1; 32])]);
        let first = hub.subscribe(None).position;
        hub.publish(Some(&tenant("acme")), &[Invalidation::Key([2; 32])]);
        hub.publish(Some(&tenant("beta")), &[Invalidation::Key([3; 32])]);
        let resumed = hub.subscribe(Some(&first));
        assert!(!resumed.reset);
        assert_eq!(resumed.replay.len(), 2);
        // Another process's id, a future id, garbage: reset.
        assert!(hub.subscribe(Some("n_other.1")).reset);
        assert!(hub.subscribe(Some(&hub.id_of(99))).reset);
        assert!(hub.subscribe(Some("garbage")).reset);
        // A cursor sealed by another process, even under this one's instance
        // name, does not open here.
        let other = ChangeHub::default();
        let (_, foreign) = other
            .id_of(1)
            .rsplit_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let (instance, _) = first.rsplit_once('.').unwrap();
        assert!(hub.subscribe(Some(&format!("{instance}.{foreign}"))).reset);
        // Too old: beyond what is kept.
        for i in 0..REPLAY {
            hub.publish(None, &[Invalidation::Host(format!("s:x{i}"))]);
        }
        assert!(hub.subscribe(Some(&first)).reset);
    }

    #[test]
    fn ids_do_not_count_other_tenants_changes() {
        let hub = ChangeHub::default();
        let ids: Vec<String> = (1..=3).map(|seq| hub.id_of(seq)).collect();
        for (seq, id) in (1..=3).zip(&ids) {
            let (_, cursor) = id.rsplit_once('.').unwrap();
            // Sealed, not the number itself.
            assert_eq!(cursor.len(), 22);
            assert_ne!(cursor, seq.to_string());
        }
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn streams_per_caller_are_bounded_and_freed() {
        let hub = Arc::new(ChangeHub::default());
        let a = hub.open_stream("k", 2);
        let b = hub.open_stream("k", 2);
        assert!(a.is_some() && b.is_some());
        assert!(hub.open_stream("k", 2).is_none());
        assert!(hub.open_stream("other", 2).is_some());
        drop(a);
        assert!(hub.open_stream("k", 2).is_some());
    }
}
