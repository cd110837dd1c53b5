//! The audit log's chains (tables `audit_entries`, `audit_heads`): appends
//! that extend a chain inside the transaction of the change they record.

use crate::Result;
use crate::error::StoreError;
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use tenantry_core::audit::{
    AuditActor, AuditDraft, AuditEntry, Chain, GENESIS_HASH, canonical_json,
};

/// A chain's head: how many entries it has had, its newest hash, and where
/// its retained entries start (after pruning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub size: u64,
    pub head_hash: String,
    pub pruned_through: u64,
    pub pruned_hash: String,
}

/// `size, head_hash, pruned_through, pruned_hash`.
type HeadRow = (i64, String, i64, String);

fn head_from_row((size, head_hash, pruned_through, pruned_hash): HeadRow) -> AuditHead {
    AuditHead {
        size: size.max(0) as u64,
        head_hash,
        pruned_through: pruned_through.max(0) as u64,
        pruned_hash,
    }
}

/// The columns of [`ENTRY_COLUMNS`], in order.
pub(crate) type EntryTuple = (
    String,
    i64,
    String,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

pub(crate) const ENTRY_COLUMNS: &str = "tenant_id, sequence, id, occurred_at, actor_type, actor_id, \
     actor_name, action, targets, outcome, request, changes, metadata, prev_hash, hash";

/// A stored row (the columns of [`ENTRY_COLUMNS`]) as an entry. A row that
/// does not parse is reported as corrupt (verification names it as a break).
pub(crate) fn entry_from_row(row: EntryTuple) -> Result<AuditEntry> {
    let (
        tenant_id,
        sequence,
        id,
        occurred_at,
        actor_type,
        actor_id,
        actor_name,
        action,
        targets,
        outcome,
        request,
        changes,
        metadata,
        prev_hash,
        hash,
    ) = row;
    let corrupt = |what: &str| {
        StoreError::Corrupt(format!(
            "audit entry {sequence} of chain {tenant_id:?}: {what}"
        ))
    };
    let json = |text: &str, what: &str| {
        serde_json::from_str::<serde_json::Value>(text).map_err(|_| corrupt(what))
    };
    let targets = serde_json::from_str(&targets).map_err(|_| corrupt("targets"))?;
    let request = serde_json::from_str(&request).map_err(|_| corrupt("request"))?;
    let changes = json(&changes, "changes")?;
    let metadata = json(&metadata, "metadata")?;
    let kind = actor_type.parse().map_err(|()| corrupt("actor_type"))?;
    let outcome = outcome.parse().map_err(|()| corrupt("outcome"))?;
    Ok(AuditEntry {
        id,
        tenant_id: (!tenant_id.is_empty()).then_some(tenant_id),
        sequence: sequence.max(0) as u64,
        occurred_at,
        actor: AuditActor {
            kind,
            id: actor_id,
            name: actor_name,
        },
        action,
        targets,
        outcome,
        request,
        changes,
        metadata,
        prev_hash,
        hash,
    })
}

impl Conn {
    /// Appends `draft` to `chain`, locking the chain's head row so that
    /// concurrent appends to the same chain queue (and those to other chains
    /// do not).
    pub(crate) async fn append_audit(
        &mut self,
        chain: &Chain,
        id: String,
        draft: &AuditDraft,
        at: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        let key = chain.key();
        let head = self.lock_audit_head(key).await?;
        let mut entry = AuditEntry {
            id,
            tenant_id: chain.tenant().map(|t| t.to_string()),
            sequence: head.size + 1,
            occurred_at: AuditEntry::timestamp(at),
            actor: draft.actor.clone(),
            action: draft.action.clone(),
            targets: draft.targets.clone(),
            outcome: draft.outcome,
            request: draft.request.clone(),
            changes: draft.changes.clone(),
            metadata: draft.metadata.clone(),
            prev_hash: head.head_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        let to_text = |v: &serde_json::Value| canonical_json(v);
        let targets = serde_json::to_value(&entry.targets)
            .map(|v| to_text(&v))
            .map_err(|e| StoreError::Corrupt(format!("audit targets: {e}")))?;
        let request = serde_json::to_value(&entry.request)
            .map(|v| to_text(&v))
            .map_err(|e| StoreError::Corrupt(format!("audit request: {e}")))?;
        let sql = format!(
            "INSERT INTO audit_entries ({ENTRY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        let sequence = entry.sequence as i64;
        on_conn!(self, |c| sqlx::query(&sql)
            .bind(key)
            .bind(sequence)
            .bind(&entry.id)
            .bind(entry.occurred_at)
            .bind(entry.actor.kind.as_str())
            .bind(&entry.actor.id)
            .bind(&entry.actor.name)
            .bind(&entry.action)
            .bind(&targets)
            .bind(entry.outcome.as_str())
            .bind(&request)
            .bind(to_text(&entry.changes))
            .bind(to_text(&entry.metadata))
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut **c)
            .await?
            .rows_affected());
        on_conn!(self, |c| sqlx::query(
            "UPDATE audit_heads SET size = $2, head_hash = $3 WHERE tenant_id = $1"
        )
        .bind(key)
        .bind(sequence)
        .bind(&entry.hash)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(entry)
    }

    /// The chain's head, created empty if the chain has none yet, and
    /// locked until the transaction ends (SQLite: the write transaction
    /// already holds the database's write lock).
    async fn lock_audit_head(&mut self, key: &str) -> Result<AuditHead> {
        on_conn!(self, |c| sqlx::query(
            "INSERT INTO audit_heads (tenant_id, size, head_hash) VALUES ($1, 0, $2) \
             ON CONFLICT (tenant_id) DO NOTHING"
        )
        .bind(key)
        .bind(GENESIS_HASH)
        .execute(&mut **c)
        .await?
        .rows_affected());
        let row: HeadRow = match self {
            Conn::Postgres(c) => {
                sqlx::query_as(
                    "SELECT size, head_hash, pruned_through, pruned_hash FROM audit_heads \
                     WHERE tenant_id = $1 FOR UPDATE",
                )
                .bind(key)
                .fetch_one(&mut **c)
                .await?
            }
            Conn::Sqlite(c) => {
                sqlx::query_as(
                    "SELECT size, head_hash, pruned_through, pruned_hash FROM audit_heads \
                     WHERE tenant_id = $1",
                )
                .bind(key)
                .fetch_one(&mut **c)
                .await?
            }
        };
        Ok(head_from_row(row))
    }

    /// [`Conn::lock_audit_head`] for the checkpoint and retention paths.
    pub(crate) async fn lock_audit_head_pub(&mut self, key: &str) -> Result<AuditHead> {
        self.lock_audit_head(key).await
    }

    pub(crate) async fn audit_head(&mut self, key: &str) -> Result<Option<AuditHead>> {
        let row: Option<HeadRow> = on_conn!(self, |c| {
            sqlx::query_as(
            "SELECT size, head_hash, pruned_through, pruned_hash FROM audit_heads WHERE tenant_id = $1"
        )
        .bind(key)
        .fetch_optional(&mut **c)
        .await?
        });
        Ok(row.map(head_from_row))
    }

    /// Entries of a chain in stored sequence order, after `after`, at most
    /// `limit`.
    pub(crate) async fn audit_range(
        &mut self,
        key: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE tenant_id = $1 AND sequence > $2 \
             ORDER BY sequence LIMIT $3"
        );
        let rows: Vec<EntryTuple> = on_conn!(self, |c| sqlx::query_as(&sql)
            .bind(key)
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        rows.into_iter().map(entry_from_row).collect()
    }
}

impl TenantTx {
    /// Appends an entry to this tenant's chain.
    pub async fn append_audit(
        &mut self,
        id: String,
        draft: &AuditDraft,
        at: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        let chain = Chain::Tenant(self.tenant.clone());
        self.conn.append_audit(&chain, id, draft, at).await
    }

    pub async fn audit_head(&mut self) -> Result<Option<AuditHead>> {
        let key = self.tenant.as_str().to_owned();
        self.conn.audit_head(&key).await
    }

    /// This tenant's entries in sequence order, after `after`.
    pub async fn audit_range(&mut self, after: u64, limit: u32) -> Result<Vec<AuditEntry>> {
        let key = self.tenant.as_str().to_owned();
        self.conn.audit_range(&key, after, limit).await
    }
}

impl OperatorTx {
    /// Appends an entry to the operator chain.
    pub async fn append_operator_audit(
        &mut self,
        id: String,
        draft: &AuditDraft,
        at: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        self.conn
            .append_audit(&Chain::Operator, id, draft, at)
            .await
    }

    /// Any chain's head (the operator path reads every chain).
    pub async fn audit_head(&mut self, chain: &Chain) -> Result<Option<AuditHead>> {
        self.conn.audit_head(chain.key()).await
    }

    /// Any chain's entries in sequence order, after `after`.
    pub async fn audit_range(
        &mut self,
        chain: &Chain,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.conn.audit_range(chain.key(), after, limit).await
    }
}

impl Conn {
    /// Entries of a chain with `action` whose targets include `target`, in
    /// sequence order, after `after`, at most `limit`. The target is found
    /// by its exact canonical text inside the stored (canonical) `targets`
    /// (`instr`/`strpos`: case-sensitive on both backends, unlike `LIKE`).
    pub(crate) async fn audit_entries_about(
        &mut self,
        key: &str,
        action: &str,
        target: &tenantry_core::audit::AuditTarget,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let needle = serde_json::to_value(target)
            .map(|v| canonical_json(&v))
            .map_err(|e| StoreError::Corrupt(format!("audit target: {e}")))?;
        let contains = match self {
            Conn::Postgres(_) => "strpos(targets, $3) > 0",
            Conn::Sqlite(_) => "instr(targets, $3) > 0",
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE tenant_id = $1 AND action = $2 \
             AND {contains} AND sequence > $4 ORDER BY sequence LIMIT $5"
        );
        let rows: Vec<EntryTuple> = on_conn!(self, |c| sqlx::query_as(&sql)
            .bind(key)
            .bind(action)
            .bind(&needle)
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        let entries: Vec<AuditEntry> = rows
            .into_iter()
            .map(entry_from_row)
            .collect::<Result<_>>()?;
        Ok(entries
            .into_iter()
            .filter(|e| e.targets.contains(target))
            .collect())
    }
}

impl TenantTx {
    /// This tenant's entries with `action` about `target` (e.g. a
    /// credential's reveals), in sequence order, after `after`.
    pub async fn audit_entries_about(
        &mut self,
        action: &str,
        target: &tenantry_core::audit::AuditTarget,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let key = self.tenant.as_str().to_owned();
        self.conn
            .audit_entries_about(&key, action, target, after, limit)
            .await
    }
}
