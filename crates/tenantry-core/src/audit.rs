//! The audit log's domain: who did what to which resources, with what
//! outcome, and the hash chain that makes each log tamper-evident.
//!
//! Every tenant has one append-only chain, and the operator one more (for
//! changes that belong to no tenant: operator keys, plans, meters, keyring
//! rotations). Entry `n` of a chain commits to entry `n - 1` through
//! `prev_hash`, so editing, deleting, inserting or reordering entries breaks
//! the chain at the first entry touched; deleting the newest entries is
//! caught by the signed checkpoints, which commit to a chain's size and head.

use crate::ids::TenantId;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The chain an entry belongs to: a tenant's, or the operator's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Chain {
    Tenant(TenantId),
    Operator,
}

impl Chain {
    /// How the chain is stored in the `tenant_id` column: the operator chain
    /// is the empty string, which no tenant id can be.
    pub fn key(&self) -> &str {
        match self {
            Chain::Tenant(id) => id.as_str(),
            Chain::Operator => "",
        }
    }

    pub fn from_key(key: &str) -> Option<Chain> {
        if key.is_empty() {
            Some(Chain::Operator)
        } else {
            TenantId::parse(key).ok().map(Chain::Tenant)
        }
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Chain::Tenant(id) => Some(id),
            Chain::Operator => None,
        }
    }
}

/// The kind of party that acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    Operator,
    ApiKey,
    Token,
    System,
    Webhook,
    /// A user of an external identity provider (`idp_…:subject`).
    User,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::ApiKey => "api_key",
            Self::Token => "token",
            Self::System => "system",
            Self::Webhook => "webhook",
            Self::User => "user",
        }
    }
}

impl FromStr for ActorType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "operator" => Self::Operator,
            "api_key" => Self::ApiKey,
            "token" => Self::Token,
            "system" => Self::System,
            "webhook" => Self::Webhook,
            "user" => Self::User,
            _ => return Err(()),
        })
    }
}

/// Who acted: `{type, id, name}`. `id` is an identifier (a key id, `root`,
/// a worker's name), never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditActor {
    #[serde(rename = "type")]
    pub kind: ActorType,
    pub id: String,
    pub name: Option<String>,
}

impl AuditActor {
    pub fn new(kind: ActorType, id: impl Into<String>, name: Option<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            name,
        }
    }

    pub fn root() -> Self {
        Self::new(ActorType::Operator, "root", Some("root key".into()))
    }

    /// A background worker or command acting on its own authority.
    pub fn system(name: &str) -> Self {
        Self::new(ActorType::System, name, None)
    }
}

/// A resource an entry is about: `{type, id}` (e.g. `{"type": "api_key",
/// "id": "key_…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditTarget {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl AuditTarget {
    pub fn new(kind: &str, id: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AuditOutcome)]
pub enum Outcome {
    Success,
    Denied,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

impl FromStr for Outcome {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "success" => Self::Success,
            "denied" => Self::Denied,
            "error" => Self::Error,
            _ => return Err(()),
        })
    }
}

/// The request that caused an entry (all absent for workers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestInfo {
    pub id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An entry before it takes its place in a chain.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub actor: AuditActor,
    /// Dotted: `credential.revealed`, `api_key.created`.
    pub action: String,
    pub targets: Vec<AuditTarget>,
    pub outcome: Outcome,
    pub request: RequestInfo,
    /// Before/after of what changed; sealed values appear as `"[sealed]"`,
    /// never in clear.
    pub changes: Value,
    pub metadata: Value,
}

/// An entry of a chain, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    /// `None` for the operator chain.
    pub tenant_id: Option<String>,
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub actor: AuditActor,
    pub action: String,
    pub targets: Vec<AuditTarget>,
    pub outcome: Outcome,
    pub request: RequestInfo,
    pub changes: Value,
    pub metadata: Value,
    /// Hex SHA-256 of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry (see [`AuditEntry::compute_hash`]).
    pub hash: String,
}

/// The `prev_hash` of a chain's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEntry {
    /// The time an entry records, at the precision every backend keeps
    /// (microseconds), so the hash computed at write time is the one
    /// recomputed from the stored row.
    pub fn timestamp(at: DateTime<Utc>) -> DateTime<Utc> {
        at.trunc_subsecs(6)
    }

    /// SHA-256 over the canonical JSON of every field but `hash`: objects
    /// with their keys sorted, no insignificant whitespace, the time in
    /// RFC 3339 with microseconds. Anyone holding an export can recompute it.
    pub fn compute_hash(&self) -> String {
        let body = serde_json::json!({
            "id": self.id,
            "tenant_id": self.tenant_id,
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "actor": self.actor,
            "action": self.action,
            "targets": self.targets,
            "outcome": self.outcome,
            "request": self.request,
            "changes": self.changes,
            "metadata": self.metadata,
            "prev_hash": self.prev_hash,
        });
        hex::encode(Sha256::digest(canonical_json(&body).as_bytes()))
    }
}

/// JSON text with object keys sorted at every level (serde_json's own output
/// otherwise: minimal whitespace, shortest round-trip numbers).
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    if let Some(v) = map.get(key) {
                        out.insert(key.clone(), sorted(v));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The first entry of a chain that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainBreak {
    pub sequence: u64,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sequence {}: {}", self.sequence, self.reason)
    }
}

/// Walks entries in stored order and reports the first that breaks the
/// chain: a sequence out of place (deleted, inserted or reordered entries),
/// a `prev_hash` that is not the previous entry's hash, or a hash that does
/// not match the entry's content (an edited entry). `start` is the sequence
/// and hash the walk continues from: `(0, GENESIS_HASH)` for a whole chain,
/// or a pruned prefix's last sequence and hash.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    start: (u64, &str),
) -> Result<(u64, String), ChainBreak> {
    let (mut size, mut head) = (start.0, start.1.to_owned());
    for entry in entries {
        let expected = size + 1;
        if entry.sequence != expected {
            return Err(ChainBreak {
                sequence: expected,
                reason: format!("expected sequence {expected}, found {}", entry.sequence),
            });
        }
        if entry.prev_hash != head {
            return Err(ChainBreak {
                sequence: entry.sequence,
                reason: "prev_hash is not the previous entry's hash".into(),
            });
        }
        if entry.compute_hash() != entry.hash {
            return Err(ChainBreak {
                sequence: entry.sequence,
                reason: "the entry's content does not match its hash".into(),
            });
        }
        size = entry.sequence;
        head = entry.hash.clone();
    }
    Ok((size, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sequence: u64, prev: &str) -> AuditEntry {
        let mut e = AuditEntry {
            id: format!("aud_{sequence}"),
            tenant_id: Some("acme".into()),
            sequence,
            occurred_at: AuditEntry::timestamp(Utc::now()),
            actor: AuditActor::root(),
            action: "tenant.updated".into(),
            targets: vec![AuditTarget::new("tenant", "acme")],
            outcome: Outcome::Success,
            request: RequestInfo::default(),
            changes: serde_json::json!({"b": 1, "a": {"z": true, "y": [1, 2]}}),
            metadata: serde_json::json!({}),
            prev_hash: prev.to_owned(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"z":true,"y":[{"d":1,"c":2}]}}"#)
            .unwrap_or_default();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":[{"c":2,"d":1}],"z":true},"b":1}"#
        );
    }

    #[test]
    fn a_chain_verifies_and_each_kind_of_tampering_is_found() {
        let first = entry(1, GENESIS_HASH);
        let second = entry(2, &first.hash);
        let third = entry(3, &second.hash);
        let chain = vec![first.clone(), second.clone(), third.clone()];
        assert_eq!(
            verify_chain(&chain, (0, GENESIS_HASH)),
            Ok((3, third.hash.clone()))
        );

        let mut edited = chain.clone();
        edited[1].action = "tenant.deleted".into();
        assert_eq!(
            verify_chain(&edited, (0, GENESIS_HASH)).map_err(|b| b.sequence),
            Err(2)
        );

        let deleted = vec![first.clone(), third.clone()];
        assert_eq!(
            verify_chain(&deleted, (0, GENESIS_HASH)).map_err(|b| b.sequence),
            Err(2)
        );

        let reordered = vec![first.clone(), third.clone(), second.clone()];
        assert_eq!(
            verify_chain(&reordered, (0, GENESIS_HASH)).map_err(|b| b.sequence),
            Err(2)
        );

        // A continuation from a pruned prefix.
        assert_eq!(
            verify_chain(&chain[2..], (2, &second.hash)),
            Ok((3, third.hash))
        );
    }
}
