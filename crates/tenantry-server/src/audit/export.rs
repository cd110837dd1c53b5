//! Export of a chain's entries in a time range, streamed page by page (never
//! the whole log in memory), with the checkpoints covering the range and the
//! public keys that verify them.
//!
//! NDJSON: one JSON object per line with a `kind`: `header` (chain, origin,
//! range), `key` (each checkpoint key: name, key_id, vkey), `entry` (the
//! entry's fields), `checkpoint` (size, head_hash, created_at, key_id, note),
//! then `end` (counts). `tenantry audit verify --file` checks it offline.
//!
//! CSV: the columns of [`CSV_COLUMNS`]; entry rows first (`kind` = `entry`),
//! then `checkpoint` rows (sequence = size, occurred_at = time, actor_id =
//! key id, hash = head hash, metadata = the signed note) and `key` rows (id =
//! key id, actor_name = key name, occurred_at = created, metadata = vkey).
//! Every field is quoted; a field that starts with `=`, `+`, `-`, `@`, tab or
//! carriage return is prefixed with `'` so spreadsheets do not run it as a
//! formula (CSV is for reading; verify the NDJSON export).
#![allow(clippy::disallowed_methods)] // The audit log's own bookkeeping (checkpoints, their key, retention, verification and export reads), run by the worker and the CLI on the server's authority and by handlers after their grant check; it records no change. Key rotation goes through the change path.

use super::keys::PublicKeyOut;
use super::{ChainTx, chain_name, origin};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;
use tenantry_core::audit::{AuditEntry, Chain};
use tenantry_store::{Store, StoreError, StoredCheckpoint};

const PAGE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

pub const CSV_COLUMNS: &[&str] = &[
    "kind",
    "sequence",
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "targets",
    "outcome",
    "request_id",
    "request_ip",
    "request_user_agent",
    "changes",
    "metadata",
    "prev_hash",
    "hash",
];

fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn csv_row(fields: &[&str]) -> String {
    let mut row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    row.resize(CSV_COLUMNS.len(), "\"\"".to_owned());
    let mut line = row.join(",");
    line.push_str("\r\n");
    line
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn entry_line(format: Format, e: &AuditEntry) -> String {
    match format {
        Format::Ndjson => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("kind".into(), json!("entry"));
            }
            format!("{v}\n")
        }
        Format::Csv => {
            let targets = serde_json::to_string(&e.targets).unwrap_or_default();
            csv_row(&[
                "entry",
                &e.sequence.to_string(),
                &e.id,
                &time(e.occurred_at),
                e.actor.kind.as_str(),
                &e.actor.id,
                e.actor.name.as_deref().unwrap_or(""),
                &e.action,
                &targets,
                e.outcome.as_str(),
                e.request.id.as_deref().unwrap_or(""),
                e.request.ip.as_deref().unwrap_or(""),
                e.request.user_agent.as_deref().unwrap_or(""),
                &e.changes.to_string(),
                &e.metadata.to_string(),
                &e.prev_hash,
                &e.hash,
            ])
        }
    }
}

fn checkpoint_line(format: Format, cp: &StoredCheckpoint) -> String {
    match format {
        Format::Ndjson => format!(
            "{}\n",
            json!({"kind": "checkpoint", "size": cp.size, "head_hash": cp.head_hash,
                   "created_at": time(cp.created_at), "key_id": cp.key_id, "note": cp.note})
        ),
        Format::Csv => csv_row(&[
            "checkpoint",
            &cp.size.to_string(),
            "",
            &time(cp.created_at),
            "",
            &cp.key_id,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            &cp.note,
            "",
            &cp.head_hash,
        ]),
    }
}

fn key_line(format: Format, k: &PublicKeyOut) -> String {
    match format {
        Format::Ndjson => {
            let mut v = serde_json::to_value(k).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("kind".into(), json!("key"));
            }
            format!("{v}\n")
        }
        Format::Csv => csv_row(&[
            "key",
            "",
            &k.key_id,
            &time(k.created_at),
            "",
            "",
            &k.name,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            &k.vkey,
        ]),
    }
}

enum Phase {
    Entries { after: u64 },
    Checkpoints { after: Option<(u64, i64)> },
    Trailer,
    Done,
}

/// An export in progress: each step reads one page in a short transaction.
pub struct Export {
    store: Store,
    chain: Chain,
    format: Format,
    /// First and last sequence of the range (`None`: no entries in it).
    span: Option<(u64, u64)>,
    keys: Vec<PublicKeyOut>,
    phase: Phase,
    entries: u64,
    checkpoints: u64,
}

impl Export {
    /// Prepares an export of the entries that occurred in `[from, to)`: the
    /// range becomes the contiguous sequences from the first to the last of
    /// them, so the export verifies on its own.
    pub async fn start(
        store: Store,
        chain: Chain,
        format: Format,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(Export, Bytes), StoreError> {
        let mut tx = ChainTx::read(&store, &chain).await?;
        let span = tx.span(from, to).await?;
        tx.commit().await?;
        let keys = super::keys::public_keys(&store).await?;
        let header = match format {
            Format::Ndjson => format!(
                "{}\n",
                json!({"kind": "header", "format": "tenantry-audit-export/1", "chain": chain_name(&chain),
                       "origin": origin(&chain), "from": from.map(time), "to": to.map(time),
                       "first_sequence": span.map(|s| s.0), "last_sequence": span.map(|s| s.1),
                       "exported_at": time(now)})
            ),
            Format::Csv => {
                let mut line = CSV_COLUMNS.join(",");
                line.push_str("\r\n");
                line
            }
        };
        let mut head = header;
        if format == Format::Ndjson {
            for k in &keys {
                head.push_str(&key_line(format, k));
            }
        }
        let phase = match span {
            Some((first, _)) => Phase::Entries {
                after: first.saturating_sub(1),
            },
            None => Phase::Trailer,
        };
        Ok((
            Export {
                store,
                chain,
                format,
                span,
                keys,
                phase,
                entries: 0,
                checkpoints: 0,
            },
            Bytes::from(head),
        ))
    }

    /// The next chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        let mut out = String::new();
        match self.phase {
            Phase::Entries { after } => {
                let last = self.span.map(|s| s.1).unwrap_or(0);
                let mut tx = ChainTx::read(&self.store, &self.chain).await?;
                let page = tx.range(after, PAGE).await?;
                tx.commit().await?;
                let mut next = after;
                for e in page.iter().filter(|e| e.sequence <= last) {
                    out.push_str(&entry_line(self.format, e));
                    next = e.sequence;
                    self.entries += 1;
                }
                self.phase = if next >= last || page.is_empty() || next == after {
                    Phase::Checkpoints { after: None }
                } else {
                    Phase::Entries { after: next }
                };
            }
            Phase::Checkpoints { after } => {
                let (first, last) = self.span.unwrap_or((1, 0));
                let mut tx = ChainTx::read(&self.store, &self.chain).await?;
                let page = tx
                    .checkpoints_by_size(after, first.saturating_sub(1), last, PAGE)
                    .await?;
                tx.commit().await?;
                for cp in &page {
                    out.push_str(&checkpoint_line(self.format, cp));
                    self.checkpoints += 1;
                }
                self.phase = match page.last() {
                    Some(cp) if page.len() == PAGE as usize => Phase::Checkpoints {
                        after: Some((cp.size, cp.slot)),
                    },
                    _ => Phase::Trailer,
                };
            }
            Phase::Trailer => {
                match self.format {
                    Format::Ndjson => out.push_str(&format!(
                        "{}\n",
                        json!({"kind": "end", "entries": self.entries, "checkpoints": self.checkpoints})
                    )),
                    Format::Csv => {
                        for k in &self.keys {
                            out.push_str(&key_line(self.format, k));
                        }
                    }
                }
                self.phase = Phase::Done;
            }
            Phase::Done => return Ok(None),
        }
        Ok(Some(Bytes::from(out)))
    }
}
