//! The change-stream task: follows Tenantry's `GET /v1/changes` and evicts
//! what each change makes wrong. Live only while connected: on a `ready`
//! event caching starts, on disconnect (an error, the end of the stream, no
//! byte for `stream_idle_timeout`) or a `reset` everything cached is
//! dropped; it reconnects with exponential backoff and jitter, and stops
//! once every clone of the layer is gone.

use crate::cache::Eviction;
use crate::shared::Shared;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub(crate) async fn run(shared: Weak<Shared>, http: reqwest::Client) {
    let mut pause = None::<Duration>;
    loop {
        if let Some(pause) = pause {
            tokio::time::sleep(jitter(pause)).await;
        }
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let (min, max) = (strong.config.reconnect_min, strong.config.reconnect_max);
        let request = http
            .get(format!("{}/v1/changes", strong.config.tenantry_url))
            .bearer_auth(strong.config.service_key.expose())
            .header("accept", "text/event-stream")
            .send();
        let idle = strong.config.stream_idle_timeout;
        drop(strong);
        let went_live = match tokio::time::timeout(idle, request).await {
            Ok(Ok(response)) if response.status().is_success() => {
                follow(&shared, response, idle).await
            }
            Ok(Ok(response)) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    "Tenantry refused the change stream"
                );
                false
            }
            Ok(Err(err)) => {
                tracing::debug!(error = %err.without_url(), "cannot reach Tenantry's change stream");
                false
            }
            Err(_) => false,
        };
        let Some(strong) = shared.upgrade() else {
            return;
        };
        strong.cache.set_connected(false);
        drop(strong);
        pause = Some(match (went_live, pause) {
            (true, _) | (_, None) => min,
            (false, Some(p)) => (p * 2).min(max),
        });
    }
}

/// Up to a quarter more, so instances do not reconnect in lockstep.
fn jitter(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    pause + pause.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// Reads events until the stream ends; whether it went live.
async fn follow(shared: &Weak<Shared>, mut response: reqwest::Response, idle: Duration) -> bool {
    let mut parser = Parser::default();
    let mut live = false;
    loop {
        let chunk = match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return live,
        };
        let Some(shared) = shared.upgrade() else {
            return live;
        };
        for event in parser.feed(&chunk) {
            match event.name.as_str() {
                "ready" => {
                    shared.cache.set_connected(true);
                    live = true;
                }
                "reset" => shared.cache.evict(&Eviction::All),
                "change" => match eviction(&event.data) {
                    Some(eviction) => shared.cache.evict(&eviction),
                    None => shared.cache.evict(&Eviction::All),
                },
                // Our credential stopped verifying: the stream ends.
                "closed" => return live,
                _ => {}
            }
        }
        if parser.overflowed() {
            // A line longer than any event Tenantry sends: not our peer.
            return live;
        }
    }
}

/// What a `change` event makes wrong.
fn eviction(data: &str) -> Option<Eviction> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    match value.get("type")?.as_str()? {
        "key" => {
            let hash = hex::decode(value.get("key_hash")?.as_str()?).ok()?;
            Some(Eviction::Key(hash.try_into().ok()?))
        }
        "tenant" => Some(Eviction::Tenant(
            value.get("tenant_id")?.as_str()?.to_owned(),
        )),
        "host" => Some(Eviction::Host),
        "member" | "signing_keys" | "identity_providers" => Some(Eviction::Tokens),
        _ => None,
    }
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Event {
    pub name: String,
    pub data: String,
}

/// An incremental `text/event-stream` parser (bounded buffer).
#[derive(Default)]
pub(crate) struct Parser {
    buffer: Vec<u8>,
    overflow: bool,
}

const MAX_BUFFER: usize = 1 << 20;

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = find_blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end.0).collect();
            self.buffer.drain(..end.1);
            let text = String::from_utf8_lossy(&block);
            let mut event = Event::default();
            let mut data = Vec::new();
            for line in text.lines() {
                let line = line.trim_end_matches('\r');
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event.name = value.to_owned(),
                    "data" => data.push(value.to_owned()),
                    _ => {}
                }
            }
            if event.name.is_empty() && data.is_empty() {
                continue; // a comment (keep-alive) or a bare `retry:`
            }
            if event.name.is_empty() {
                event.name = "message".to_owned();
            }
            event.data = data.join("\n");
            events.push(event);
        }
        if self.buffer.len() > MAX_BUFFER {
            self.overflow = true;
            self.buffer.clear();
        }
        events
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// The end of the first block: (where it ends, length of the separator).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

pub(crate) fn spawn(shared: &Arc<Shared>, http: reqwest::Client) {
    tokio::spawn(run(Arc::downgrade(shared), http));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks_and_skips_comments() {
        let mut p = Parser::default();
        assert!(
            p.feed(b"retry: 1000\n\n: keep-alive\n\nid: n.1\nevent: cha")
                .is_empty()
        );
        let events = p.feed(b"nge\ndata: {\"type\":\"tenant\",\"tenant_id\":\"acme\"}\n\nevent: ready\r\ndata: {}\r\n\r\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].name, "change");
        assert_eq!(
            eviction(&events[0].data),
            Some(Eviction::Tenant("acme".into()))
        );
        assert_eq!(events[1].name, "ready");
    }

    #[test]
    fn key_events_carry_the_key_hash() {
        let hex = "ab".repeat(32);
        assert_eq!(
            eviction(&format!("{{\"type\":\"key\",\"key_hash\":\"{hex}\"}}")),
            Some(Eviction::Key([0xab; 32]))
        );
        assert_eq!(eviction("{\"type\":\"key\",\"key_hash\":\"zz\"}"), None);
        assert_eq!(eviction("not json"), None);
    }
}
