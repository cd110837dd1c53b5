//! Regions: the directory of where each tenant lives (`region_directory`),
//! and the copy of one tenant's rows from one region's database to another's
//! that moving a tenant rests on (PostgreSQL only). See docs/regions.md.
//!
//! The move's functions open their own transactions on two stores: the
//! server calls them from its move workflow, which audits every step.
#![allow(clippy::disallowed_methods)] // the store moving a tenant: no grant spans two databases

use crate::scope::{Conn, OperatorTx, on_conn};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;

/// One row of the region directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub tenant: String,
    /// The tenant's home region.
    pub region: String,
    /// Set while the tenant is being moved out of this database's region.
    pub moving_to: Option<String>,
    pub move_state: Option<String>,
    pub move_report: Option<String>,
    pub updated_at: DateTime<Utc>,
}

type EntryRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

fn from_row(
    (tenant, region, moving_to, move_state, move_report, updated_at): EntryRow,
) -> DirectoryEntry {
    DirectoryEntry {
        tenant,
        region,
        moving_to,
        move_state,
        move_report,
        updated_at,
    }
}

const COLUMNS: &str = "tenant, region, moving_to, move_state, move_report, updated_at";

/// How many rows of one tenant one table holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: i64,
}

impl OperatorTx {
    /// Every entry of the directory.
    pub async fn region_directory(&mut self) -> Result<Vec<DirectoryEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM region_directory ORDER BY tenant");
        let rows: Vec<EntryRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// One tenant's entry.
    pub async fn region_entry(&mut self, tenant: &TenantId) -> Result<Option<DirectoryEntry>> {
        self.select_entry(tenant, "").await
    }

    /// One tenant's entry, locked until the transaction ends (PostgreSQL;
    /// SQLite has a single writer anyway).
    pub async fn region_entry_for_update(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Option<DirectoryEntry>> {
        let lock = match self.conn {
            Conn::Postgres(_) => " FOR UPDATE",
            Conn::Sqlite(_) => "",
        };
        self.select_entry(tenant, lock).await
    }

    async fn select_entry(
        &mut self,
        tenant: &TenantId,
        lock: &str,
    ) -> Result<Option<DirectoryEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM region_directory WHERE tenant = $1{lock}");
        let row: Option<EntryRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(from_row))
    }

    /// Writes (inserts or replaces) one tenant's entry.
    pub async fn put_region_entry(&mut self, entry: &DirectoryEntry) -> Result<()> {
        let sql = "INSERT INTO region_directory (tenant, region, moving_to, move_state, move_report, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (tenant) DO UPDATE SET region = excluded.region, moving_to = excluded.moving_to, \
                   move_state = excluded.move_state, move_report = excluded.move_report, updated_at = excluded.updated_at";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(&entry.tenant)
            .bind(&entry.region)
            .bind(&entry.moving_to)
            .bind(&entry.move_state)
            .bind(&entry.move_report)
            .bind(entry.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }
}

/// The tenant tables in an order where every table comes after the tables
/// its foreign keys point to (parents first), read from the catalog, so a
/// table added later is copied too. `tenants` itself is not among them.
async fn tables_in_dependency_order(conn: &mut Conn) -> Result<Vec<String>> {
    let tables = crate::doctor::tenant_tables(conn).await?;
    let Conn::Postgres(c) = conn else {
        return Err(StoreError::Setup(
            "moving tenants between regions needs PostgreSQL".into(),
        ));
    };
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT child.relname::text, parent.relname::text FROM pg_constraint k \
           JOIN pg_class child ON child.oid = k.conrelid \
           JOIN pg_class parent ON parent.oid = k.confrelid \
           JOIN pg_namespace n ON n.oid = child.relnamespace \
          WHERE k.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut **c)
    .await?;
    let mut ordered: Vec<String> = Vec::with_capacity(tables.len());
    let mut left = tables;
    while !left.is_empty() {
        let (ready, waiting): (Vec<String>, Vec<String>) = left.iter().cloned().partition(|t| {
            edges.iter().all(|(child, parent)| {
                child != t || parent == t || !left.contains(parent) || ordered.contains(parent)
            })
        });
        if ready.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "foreign keys between tenant tables form a cycle: {}",
                waiting.join(", ")
            )));
        }
        ordered.extend(ready);
        left = waiting;
    }
    Ok(ordered)
}

/// The global hash → key lookup (docs/citus.md): rebuilt, not copied.
const KEY_LOOKUP: &str = "api_key_lookup";

/// A table name from the catalog, quoted for SQL.
fn quoted(table: &str) -> String {
    format!("\"{}\"", table.replace('"', ""))
}

/// Counts one tenant's rows in every tenant table (and its `tenants` row).
pub async fn tenant_row_counts(store: &Store, tenant: &TenantId) -> Result<Vec<TableCount>> {
    let mut tx = store.tenant_read(tenant).await?;
    let tables = tables_in_dependency_order(&mut tx.conn).await?;
    let Conn::Postgres(c) = &mut tx.conn else {
        unreachable!("tables_in_dependency_order refuses SQLite");
    };
    let mut counts = Vec::with_capacity(tables.len() + 1);
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_one(&mut **c)
        .await?;
    counts.push(TableCount {
        table: "tenants".into(),
        rows,
    });
    for table in tables {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE tenant_id = $1",
            quoted(&table)
        );
        let (rows,): (i64,) = sqlx::query_as(sql.as_str())
            .bind(tenant.as_str())
            .fetch_one(&mut **c)
            .await?;
        counts.push(TableCount { table, rows });
    }
    tx.commit().await?;
    Ok(counts)
}

/// Copies every row of `tenant` (its `tenants` row, then every tenant
/// table, parents first) from `source` into `target`, in one transaction of
/// each, both scoped to the tenant (row-level security holds on both sides).
/// A copy left in `target` by an earlier attempt is deleted first, in the
/// same transaction, so a retry starts clean. Values travel as each row's
/// JSON (`json_populate_recordset`), so every column type round-trips and
/// sealed values stay sealed. Returns the rows copied per table.
pub async fn copy_tenant(
    source: &Store,
    target: &Store,
    tenant: &TenantId,
) -> Result<Vec<TableCount>> {
    let mut from = source.tenant_read(tenant).await?;
    let tables = tables_in_dependency_order(&mut from.conn).await?;
    let mut into = target.tenant_write(tenant).await?;
    let (Conn::Postgres(src), Conn::Postgres(dst)) = (&mut from.conn, &mut into.conn) else {
        return Err(StoreError::Setup(
            "moving tenants between regions needs PostgreSQL".into(),
        ));
    };
    // An earlier attempt's copy: children first, then the tenant.
    for table in tables.iter().rev() {
        let sql = format!("DELETE FROM {} WHERE tenant_id = $1", quoted(table));
        sqlx::query(sql.as_str())
            .bind(tenant.as_str())
            .execute(&mut **dst)
            .await?;
    }
    sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .execute(&mut **dst)
        .await?;

    let mut copied = Vec::with_capacity(tables.len() + 1);
    let all = std::iter::once(("tenants".to_owned(), "id"))
        .chain(tables.into_iter().map(|t| (t, "tenant_id")));
    for (table, column) in all {
        if table == KEY_LOOKUP {
            // Rebuilt below, once the keys are there; counted in place.
            copied.push(TableCount { table, rows: 0 });
            continue;
        }
        let read = format!(
            "SELECT count(*), coalesce(json_agg(t), '[]')::text FROM {} t WHERE {column} = $1",
            quoted(&table)
        );
        let (rows, json): (i64, String) = sqlx::query_as(read.as_str())
            .bind(tenant.as_str())
            .fetch_one(&mut **src)
            .await?;
        if rows > 0 {
            let write = format!(
                "INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, $1::json)",
                t = quoted(&table)
            );
            let written = sqlx::query(write.as_str())
                .bind(json)
                .execute(&mut **dst)
                .await?
                .rows_affected();
            if written != rows as u64 {
                return Err(StoreError::Corrupt(format!(
                    "{table}: {rows} rows read, {written} written"
                )));
            }
        }
        copied.push(TableCount { table, rows });
    }
    // The global key lookup: the server's role may not read its hashes
    // (docs/citus.md), so the target's rows are rebuilt from the keys just
    // copied, exactly as `insert_keys` writes them.
    let (rows,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM api_key_lookup WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(&mut **src)
            .await?;
    let written = sqlx::query(
        "INSERT INTO api_key_lookup (key_hash, tenant_id, key_id) \
         SELECT key_hash, tenant_id, id FROM api_keys WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .execute(&mut **dst)
    .await?
    .rows_affected();
    if written != rows as u64 {
        return Err(StoreError::Corrupt(format!(
            "{KEY_LOOKUP}: {rows} rows in the source, {written} rebuilt"
        )));
    }
    if let Some(lookup) = copied.iter_mut().find(|c| c.table == KEY_LOOKUP) {
        lookup.rows = rows;
    }
    into.commit().await?;
    from.commit().await?;
    Ok(copied)
}

/// Deletes every row of `tenant` from `store` (a copy made by an aborted
/// move), recording nothing: the caller audits.
pub async fn delete_tenant_copy(store: &Store, tenant: &TenantId) -> Result<()> {
    store
        .tenant_write(tenant)
        .await?
        .purge()
        .await?
        .commit()
        .await
}

/// Makes the checkpoint signatures of `source` verifiable in `target`: the
/// public halves of every audit checkpoint key of `source`, added to
/// `target` as retired keys without a seed (they verify, never sign).
/// Returns how many were new there.
pub async fn copy_checkpoint_verifiers(source: &Store, target: &Store) -> Result<u64> {
    type KeyRow = (
        String,
        String,
        Vec<u8>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let mut from = source.operator_read().await?;
    let keys: Vec<KeyRow> = on_conn!(&mut from.conn, |c| sqlx::query_as(
        "SELECT key_id, name, public_key, created_at, retired_at FROM audit_signing_keys"
    )
    .fetch_all(&mut **c)
    .await?);
    from.commit().await?;
    let now = Utc::now();
    let mut into = target.operator_write().await?;
    let mut added = 0;
    for (key_id, name, public_key, created_at, retired_at) in keys {
        added += on_conn!(&mut into.conn, |c| sqlx::query(
            "INSERT INTO audit_signing_keys (key_id, name, public_key, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING"
        )
        .bind(&key_id)
        .bind(&name)
        .bind(&public_key)
        .bind(created_at)
        .bind(retired_at.unwrap_or(now).min(now))
        .execute(&mut **c)
        .await?
        .rows_affected());
    }
    into.commit().await?;
    Ok(added)
}
