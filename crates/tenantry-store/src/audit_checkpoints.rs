//! Reading the audit chains (filtered pages, ranges for export), their
//! signed checkpoints (table `audit_checkpoints`), the keys that sign them
//! (`audit_signing_keys`, operator-level) and retention (pruning a prefix
//! that a checkpoint vouches for).

use crate::Result;
use crate::audit::{ENTRY_COLUMNS, EntryTuple, entry_from_row};
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;
use tenantry_core::audit::{AuditEntry, Chain};

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub slot: i64,
    pub size: u64,
    /// Hex SHA-256, as in `audit_entries.hash`.
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    /// Hex id of the key that signed it.
    pub key_id: String,
    /// The whole signed note.
    pub note: String,
}

type CheckpointRow = (i64, i64, String, DateTime<Utc>, String, String);

fn checkpoint_from_row(
    (slot, size, head_hash, created_at, key_id, note): CheckpointRow,
) -> StoredCheckpoint {
    StoredCheckpoint {
        slot,
        size: size.max(0) as u64,
        head_hash,
        created_at,
        key_id,
        note,
    }
}

const CHECKPOINT_COLUMNS: &str = "slot, size, head_hash, created_at, key_id, note";

/// Which entries a listing wants. Every field narrows; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// The actor's id (`root`, a key id, a worker's name).
    pub actor: Option<String>,
    /// A target `(type, id)`.
    pub target: Option<(String, String)>,
    pub outcome: Option<String>,
    /// `occurred_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `occurred_at < to`.
    pub to: Option<DateTime<Utc>>,
}

/// A checkpoint signing key as stored. `Debug` never shows the seed.
#[derive(Clone)]
pub struct StoredAuditKey {
    pub key_id: String,
    pub name: String,
    pub public_key: Vec<u8>,
    /// `(kek_id, wrapped seed)`: the active key only.
    pub sealed_seed: Option<(String, Vec<u8>)>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredAuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAuditKey")
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("kek_id", &self.sealed_seed.as_ref().map(|(k, _)| k))
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

type AuditKeyRow = (
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

impl Conn {
    async fn entries(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Vec<AuditEntry>> {
        let rows: Vec<EntryTuple> = on_conn!(self, |c| {
            let mut q = sqlx::query_as(sql);
            for b in &binds {
                q = match b {
                    Bind::Text(t) => q.bind(t.clone()),
                    Bind::Int(i) => q.bind(*i),
                    Bind::Time(t) => q.bind(*t),
                };
            }
            q.fetch_all(&mut **c).await?
        });
        rows.into_iter().map(entry_from_row).collect()
    }

    /// A page of a chain's entries matching `filter`, newest first, before
    /// sequence `before` (exclusive) when given.
    async fn audit_list(
        &mut self,
        key: &str,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let mut binds = vec![Bind::Text(key.to_owned())];
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE tenant_id = $1");
        let mut push = |binds: &mut Vec<Bind>, clause: &str, bind: Bind| {
            binds.push(bind);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(before) = before {
            push(&mut binds, " AND sequence < ?", Bind::Int(before as i64));
        }
        if let Some(action) = &filter.action {
            push(&mut binds, " AND action = ?", Bind::Text(action.clone()));
        }
        if let Some(actor) = &filter.actor {
            push(&mut binds, " AND actor_id = ?", Bind::Text(actor.clone()));
        }
        if let Some(outcome) = &filter.outcome {
            push(&mut binds, " AND outcome = ?", Bind::Text(outcome.clone()));
        }
        if let Some(from) = filter.from {
            push(&mut binds, " AND occurred_at >= ?", Bind::Time(from));
        }
        if let Some(to) = filter.to {
            push(&mut binds, " AND occurred_at < ?", Bind::Time(to));
        }
        if let Some((kind, id)) = &filter.target {
            // `targets` is canonical JSON: an element is exactly this text.
            let element =
                tenantry_core::audit::canonical_json(&serde_json::json!({"id": id, "type": kind}));
            let clause = match self {
                Conn::Sqlite(_) => " AND instr(targets, ?) > 0",
                Conn::Postgres(_) => " AND strpos(targets, ?) > 0",
            };
            push(&mut binds, clause, Bind::Text(element));
        }
        push(
            &mut binds,
            " ORDER BY sequence DESC LIMIT ?",
            Bind::Int(i64::from(limit)),
        );
        self.entries(&sql, binds).await
    }

    /// The first and last sequence of the entries that occurred in
    /// `[from, to)`, if any.
    async fn audit_sequence_span(
        &mut self,
        key: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<(u64, u64)>> {
        let far_past = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        // Year 9999, not DateTime::MAX_UTC: SQLite compares times as text,
        // and a year beyond 9999 is written with a sign.
        let far_future = DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or_default();
        let row: (Option<i64>, Option<i64>) = on_conn!(self, |c| sqlx::query_as(
            "SELECT min(sequence), max(sequence) FROM audit_entries \
             WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3"
        )
        .bind(key)
        .bind(from.unwrap_or(far_past))
        .bind(to.unwrap_or(far_future))
        .fetch_one(&mut **c)
        .await?);
        Ok(match row {
            (Some(a), Some(b)) => Some((a.max(0) as u64, b.max(0) as u64)),
            _ => None,
        })
    }

    /// The newest sequence of the entries that occurred before `cutoff`.
    async fn audit_last_before(&mut self, key: &str, cutoff: DateTime<Utc>) -> Result<u64> {
        let (n,): (Option<i64>,) = on_conn!(self, |c| sqlx::query_as(
            "SELECT max(sequence) FROM audit_entries WHERE tenant_id = $1 AND occurred_at < $2"
        )
        .bind(key)
        .bind(cutoff)
        .fetch_one(&mut **c)
        .await?);
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn audit_entry_at(&mut self, key: &str, sequence: u64) -> Result<Option<AuditEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE tenant_id = $1 AND sequence = $2"
        );
        Ok(self
            .entries(
                &sql,
                vec![Bind::Text(key.to_owned()), Bind::Int(sequence as i64)],
            )
            .await?
            .into_iter()
            .next())
    }

    async fn insert_checkpoint(&mut self, key: &str, cp: &StoredCheckpoint) -> Result<bool> {
        let n = on_conn!(self, |c| {
            sqlx::query(
            "INSERT INTO audit_checkpoints (tenant_id, slot, size, head_hash, created_at, key_id, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, slot) DO NOTHING"
        )
        .bind(key)
        .bind(cp.slot)
        .bind(cp.size as i64)
        .bind(&cp.head_hash)
        .bind(cp.created_at)
        .bind(&cp.key_id)
        .bind(&cp.note)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }

    /// Checkpoints in ascending `(size, slot)` order after `after`.
    async fn checkpoints_by_size(
        &mut self,
        key: &str,
        after: Option<(u64, i64)>,
        min_size: u64,
        max_size: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>> {
        let (size, slot) = after.map(|(s, l)| (s as i64, l)).unwrap_or((-1, i64::MIN));
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 \
             AND (size > $2 OR (size = $2 AND slot > $3)) AND size >= $4 AND size <= $5 \
             ORDER BY size, slot LIMIT $6"
        );
        let rows: Vec<CheckpointRow> = on_conn!(self, |c| sqlx::query_as(&sql)
            .bind(key)
            .bind(size)
            .bind(slot)
            .bind(min_size as i64)
            .bind(max_size.min(i64::MAX as u64) as i64)
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(checkpoint_from_row).collect())
    }

    /// Checkpoints newest first, before slot `before` when given.
    async fn checkpoints_newest(
        &mut self,
        key: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 \
             AND slot < $2 ORDER BY slot DESC LIMIT $3"
        );
        let rows: Vec<CheckpointRow> = on_conn!(self, |c| sqlx::query_as(&sql)
            .bind(key)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(checkpoint_from_row).collect())
    }

    /// The newest checkpoint whose size is at most `size`.
    async fn checkpoint_at_most(
        &mut self,
        key: &str,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 \
             AND size <= $2 AND size > 0 ORDER BY size DESC, slot DESC LIMIT 1"
        );
        let row: Option<CheckpointRow> = on_conn!(self, |c| sqlx::query_as(&sql)
            .bind(key)
            .bind(size as i64)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(checkpoint_from_row))
    }

    /// Removes entries up to `through` (whose hash is `hash`) and the
    /// checkpoints below it, and records the anchor in the head row.
    async fn prune_audit(&mut self, key: &str, through: u64, hash: &str) -> Result<u64> {
        let through = through as i64;
        let removed = on_conn!(self, |c| sqlx::query(
            "DELETE FROM audit_entries WHERE tenant_id = $1 AND sequence <= $2"
        )
        .bind(key)
        .bind(through)
        .execute(&mut **c)
        .await?
        .rows_affected());
        on_conn!(self, |c| sqlx::query(
            "DELETE FROM audit_checkpoints WHERE tenant_id = $1 AND size < $2"
        )
        .bind(key)
        .bind(through)
        .execute(&mut **c)
        .await?
        .rows_affected());
        on_conn!(self, |c| sqlx::query(
            "UPDATE audit_heads SET pruned_through = $2, pruned_hash = $3 \
             WHERE tenant_id = $1 AND pruned_through < $2"
        )
        .bind(key)
        .bind(through)
        .bind(hash)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(removed)
    }
}

enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// Reads of a chain, the same on a tenant's own transaction and on the
/// operator path (which reads every chain).
macro_rules! chain_reads {
    ($ty:ty, $self:ident, $chain:ident, $key:expr, $($chain_arg:tt)*) => {
        impl $ty {
            /// A page of entries matching `filter`, newest first.
            pub async fn audit_list(
                &mut $self,
                $($chain_arg)*
                filter: &AuditFilter,
                before: Option<u64>,
                limit: u32,
            ) -> Result<Vec<AuditEntry>> {
                let key = $key;
                $self.conn.audit_list(&key, filter, before, limit).await
            }

            /// The first and last sequence of the entries in `[from, to)`.
            pub async fn audit_sequence_span(
                &mut $self,
                $($chain_arg)*
                from: Option<DateTime<Utc>>,
                to: Option<DateTime<Utc>>,
            ) -> Result<Option<(u64, u64)>> {
                let key = $key;
                $self.conn.audit_sequence_span(&key, from, to).await
            }

            /// Checkpoints with `min_size <= size <= max_size`, ascending by
            /// `(size, slot)`, after `after`.
            pub async fn audit_checkpoints_by_size(
                &mut $self,
                $($chain_arg)*
                after: Option<(u64, i64)>,
                min_size: u64,
                max_size: u64,
                limit: u32,
            ) -> Result<Vec<StoredCheckpoint>> {
                let key = $key;
                $self.conn.checkpoints_by_size(&key, after, min_size, max_size, limit).await
            }

            /// Checkpoints newest first, before slot `before`.
            pub async fn audit_checkpoints(
                &mut $self,
                $($chain_arg)*
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<StoredCheckpoint>> {
                let key = $key;
                $self.conn.checkpoints_newest(&key, before, limit).await
            }
        }
    };
}

chain_reads!(TenantTx, self, chain, self.tenant.as_str().to_owned(),);
chain_reads!(OperatorTx, self, chain, chain.key().to_owned(), chain: &Chain,);

/// Writes of a chain's checkpoints and retention: on the tenant's own
/// transaction, or the operator path for the operator chain.
macro_rules! chain_writes {
    ($ty:ty, $self:ident, $key:expr) => {
        impl $ty {
            /// Locks the chain's head (creating it empty) and returns it: the
            /// state a checkpoint commits to.
            pub async fn lock_audit_chain(&mut $self) -> Result<crate::AuditHead> {
                let key = $key;
                $self.conn.lock_audit_head_pub(&key).await
            }

            /// Stores a checkpoint unless its chain already has one for its
            /// slot. Returns whether it was stored.
            pub async fn insert_audit_checkpoint(&mut $self, cp: &StoredCheckpoint) -> Result<bool> {
                let key = $key;
                $self.conn.insert_checkpoint(&key, cp).await
            }

            /// The newest sequence of the entries that occurred before `cutoff`.
            pub async fn audit_last_before(&mut $self, cutoff: DateTime<Utc>) -> Result<u64> {
                let key = $key;
                $self.conn.audit_last_before(&key, cutoff).await
            }

            pub async fn audit_entry_at(&mut $self, sequence: u64) -> Result<Option<AuditEntry>> {
                let key = $key;
                $self.conn.audit_entry_at(&key, sequence).await
            }

            /// The newest checkpoint of size at most `size` (and above 0).
            pub async fn audit_checkpoint_at_most(&mut $self, size: u64) -> Result<Option<StoredCheckpoint>> {
                let key = $key;
                $self.conn.checkpoint_at_most(&key, size).await
            }

            /// Removes the entries through `through` (hash `hash`) and the
            /// checkpoints below it; the head records the anchor. Call with
            /// the head locked. Returns how many entries went.
            pub async fn prune_audit(&mut $self, through: u64, hash: &str) -> Result<u64> {
                let key = $key;
                $self.conn.prune_audit(&key, through, hash).await
            }
        }
    };
}

chain_writes!(TenantTx, self, self.tenant.as_str().to_owned());

/// The operator chain's writes, named apart from the cross-chain reads.
pub struct OperatorChain<'a>(pub &'a mut OperatorTx);

impl OperatorChain<'_> {
    fn conn(&mut self) -> &mut Conn {
        &mut self.0.conn
    }

    pub async fn lock_audit_chain(&mut self) -> Result<crate::AuditHead> {
        self.conn().lock_audit_head_pub("").await
    }

    pub async fn insert_audit_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<bool> {
        self.conn().insert_checkpoint("", cp).await
    }

    pub async fn audit_last_before(&mut self, cutoff: DateTime<Utc>) -> Result<u64> {
        self.conn().audit_last_before("", cutoff).await
    }

    pub async fn audit_entry_at(&mut self, sequence: u64) -> Result<Option<AuditEntry>> {
        self.conn().audit_entry_at("", sequence).await
    }

    pub async fn audit_checkpoint_at_most(
        &mut self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>> {
        self.conn().checkpoint_at_most("", size).await
    }

    pub async fn prune_audit(&mut self, through: u64, hash: &str) -> Result<u64> {
        self.conn().prune_audit("", through, hash).await
    }
}

impl OperatorTx {
    /// Every tenant id (each has an audit chain, possibly still empty).
    pub async fn audit_tenant_chains(&mut self) -> Result<Vec<TenantId>> {
        let rows: Vec<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT id FROM tenants ORDER BY id"
        )
        .fetch_all(&mut **c)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id,)| TenantId::from_trusted(id))
            .collect())
    }

    /// Serializes changes to the checkpoint signing keys across server
    /// processes (PostgreSQL: an advisory lock; SQLite: the write lock).
    pub async fn lock_audit_signing_keys(&mut self) -> Result<()> {
        match &mut self.conn {
            Conn::Postgres(c) => {
                sqlx::query(
                    "SELECT pg_advisory_xact_lock(hashtext('tenantry:audit_signing_keys'))",
                )
                .execute(&mut **c)
                .await?;
            }
            Conn::Sqlite(c) => {
                sqlx::query("UPDATE audit_signing_keys SET key_id = key_id WHERE 0")
                    .execute(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every checkpoint signing key, newest first.
    pub async fn audit_signing_keys(&mut self) -> Result<Vec<StoredAuditKey>> {
        let rows: Vec<AuditKeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT key_id, name, public_key, kek_id, wrapped_seed, created_at, retired_at \
             FROM audit_signing_keys ORDER BY created_at DESC, key_id DESC"
        )
        .fetch_all(&mut **c)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(key_id, name, public_key, kek_id, wrapped_seed, created_at, retired_at)| {
                    StoredAuditKey {
                        key_id,
                        name,
                        public_key,
                        sealed_seed: kek_id.zip(wrapped_seed),
                        created_at,
                        retired_at,
                    }
                },
            )
            .collect())
    }

    /// Adds the active checkpoint signing key, its seed sealed by `kek_id`;
    /// the previous key is retired and its seed erased (its public key
    /// stays: the checkpoints it signed keep verifying).
    pub async fn add_audit_signing_key(
        &mut self,
        key: &StoredAuditKey,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| sqlx::query(
            "UPDATE audit_signing_keys SET retired_at = $1, kek_id = NULL, wrapped_seed = NULL \
             WHERE retired_at IS NULL"
        )
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected());
        let (kek_id, wrapped) = key.sealed_seed.clone().unzip();
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO audit_signing_keys (key_id, name, public_key, kek_id, wrapped_seed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&key.key_id)
        .bind(&key.name)
        .bind(&key.public_key)
        .bind(kek_id)
        .bind(wrapped)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Moves the active key's seed to another KEK if it is still under
    /// `from_kek`. Returns whether it changed.
    pub async fn rewrap_audit_signing_key(
        &mut self,
        key_id: &str,
        from_kek: &str,
        to_kek: &str,
        wrapped_seed: &[u8],
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| sqlx::query(
            "UPDATE audit_signing_keys SET kek_id = $3, wrapped_seed = $4 \
             WHERE key_id = $1 AND kek_id = $2 AND retired_at IS NULL"
        )
        .bind(key_id)
        .bind(from_kek)
        .bind(to_kek)
        .bind(wrapped_seed)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(n > 0)
    }
}
