//! Provisioning workflows (`provisioning_workflows`). A row is written on
//! the operator path before its tenant exists, leased to one worker at a
//! time, and updated by each step in the same transaction as the step's
//! effect (a [`TenantTx`] of the workflow's tenant, or an [`OperatorTx`]
//! before the tenant exists). The JSON columns are opaque here.

use crate::Result;
use crate::error::{Conflict, StoreError, unique_violation};
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};

/// A stored workflow.
#[derive(Clone)]
pub struct WorkflowRow {
    pub tenant_id: String,
    pub id: String,
    pub status: String,
    /// The request, secrets left out (JSON).
    pub spec: String,
    /// The steps and their outcomes (JSON).
    pub steps: String,
    /// The request's secrets, sealed by the caller.
    pub secrets: Option<String>,
    /// Keys the workflow generated, sealed, until they are shown once.
    pub issued_keys: Option<String>,
    /// The audit id of the principal that started the workflow.
    pub created_by: String,
    pub next_run_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl std::fmt::Debug for WorkflowRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowRow")
            .field("tenant_id", &self.tenant_id)
            .field("id", &self.id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "tenant_id, id, status, spec, steps, secrets, issued_keys, created_by, \
                       next_run_ms, lease_owner, lease_expires_ms, created_ms, updated_ms";

type Row = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
);

fn from_row(r: Row) -> WorkflowRow {
    WorkflowRow {
        tenant_id: r.0,
        id: r.1,
        status: r.2,
        spec: r.3,
        steps: r.4,
        secrets: r.5,
        issued_keys: r.6,
        created_by: r.7,
        next_run_ms: r.8,
        lease_owner: r.9,
        lease_expires_ms: r.10,
        created_ms: r.11,
        updated_ms: r.12,
    }
}

/// Statuses a worker picks up.
const RUNNABLE: &str = "('pending', 'running', 'compensating')";

/// One page of workflows.
#[derive(Debug)]
pub struct WorkflowPage {
    pub workflows: Vec<WorkflowRow>,
    pub next_after: Option<String>,
}

async fn load(
    conn: &mut Conn,
    tenant: Option<&str>,
    id: &str,
    lock: bool,
) -> Result<Option<WorkflowRow>> {
    let lock = match (&*conn, lock) {
        (Conn::Postgres(_), true) => " FOR UPDATE",
        _ => "",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM provisioning_workflows WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2){lock}"
    );
    let row: Option<Row> = on_conn!(conn, |c| sqlx::query_as(sql.as_str())
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut **c)
        .await?);
    Ok(row.map(from_row))
}

async fn save(conn: &mut Conn, tenant: Option<&str>, w: &WorkflowRow) -> Result<()> {
    let sql = "UPDATE provisioning_workflows SET status = $3, spec = $4, steps = $5, secrets = $6, \
               issued_keys = $7, next_run_ms = $8, lease_owner = $9, lease_expires_ms = $10, updated_ms = $11 \
               WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)";
    let done = on_conn!(conn, |c| sqlx::query(sql)
        .bind(&w.id)
        .bind(tenant)
        .bind(&w.status)
        .bind(&w.spec)
        .bind(&w.steps)
        .bind(&w.secrets)
        .bind(&w.issued_keys)
        .bind(w.next_run_ms)
        .bind(&w.lease_owner)
        .bind(w.lease_expires_ms)
        .bind(w.updated_ms)
        .execute(&mut **c)
        .await?
        .rows_affected());
    if done == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

impl OperatorTx {
    /// Stores a new workflow; `Conflict::TenantId` when another workflow
    /// for the same tenant id is not finished.
    pub async fn insert_workflow(&mut self, w: &WorkflowRow) -> Result<()> {
        let sql = format!(
            "INSERT INTO provisioning_workflows ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on_conn!(&mut self.conn, |c| sqlx::query(sql.as_str())
            .bind(&w.tenant_id)
            .bind(&w.id)
            .bind(&w.status)
            .bind(&w.spec)
            .bind(&w.steps)
            .bind(&w.secrets)
            .bind(&w.issued_keys)
            .bind(&w.created_by)
            .bind(w.next_run_ms)
            .bind(&w.lease_owner)
            .bind(w.lease_expires_ms)
            .bind(w.created_ms)
            .bind(w.updated_ms)
            .execute(&mut **c)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Conflict(Conflict::TenantId),
                None => StoreError::Database(e),
            })?
            .rows_affected());
        Ok(())
    }

    pub async fn get_workflow(&mut self, id: &str) -> Result<Option<WorkflowRow>> {
        load(&mut self.conn, None, id, false).await
    }

    /// The workflow, locked until the transaction ends (PostgreSQL).
    pub async fn lock_workflow(&mut self, id: &str) -> Result<Option<WorkflowRow>> {
        load(&mut self.conn, None, id, true).await
    }

    pub async fn save_workflow(&mut self, w: &WorkflowRow) -> Result<()> {
        save(&mut self.conn, None, w).await
    }

    /// Workflows in id order after `after`, optionally of one status.
    pub async fn list_workflows(
        &mut self,
        status: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<WorkflowPage> {
        let sql = format!(
            "SELECT {COLUMNS} FROM provisioning_workflows \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<Row> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(status)
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut **c)
            .await?);
        let mut workflows: Vec<WorkflowRow> = rows.into_iter().map(from_row).collect();
        let next_after = if workflows.len() > limit as usize {
            workflows.truncate(limit as usize);
            workflows.last().map(|w| w.id.clone())
        } else {
            None
        };
        Ok(WorkflowPage {
            workflows,
            next_after,
        })
    }

    /// Whether any runnable workflow is due and unleased: the idle worker
    /// asks this in a read transaction first, so it takes SQLite's single
    /// write lock only when there is something to lease.
    pub async fn any_workflow_due(&mut self, now_ms: i64) -> Result<bool> {
        let sql = format!(
            "SELECT id FROM provisioning_workflows WHERE status IN {RUNNABLE} \
             AND next_run_ms <= $1 AND lease_expires_ms <= $1 LIMIT 1"
        );
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(now_ms)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.is_some())
    }

    /// Leases up to `limit` runnable workflows that are due and whose lease
    /// (if any) has expired to `owner` until `expires_ms`; returns their
    /// ids. In PostgreSQL rows another node is leasing right now are
    /// skipped (`FOR UPDATE SKIP LOCKED`), so two nodes never take one.
    pub async fn lease_workflows(
        &mut self,
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>> {
        let skip = match &self.conn {
            Conn::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Conn::Sqlite(_) => "",
        };
        let sql = format!(
            "SELECT id FROM provisioning_workflows WHERE status IN {RUNNABLE} \
             AND next_run_ms <= $1 AND lease_expires_ms <= $1 ORDER BY next_run_ms LIMIT $2{skip}"
        );
        let ids: Vec<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        let mut leased = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let sql = "UPDATE provisioning_workflows SET lease_owner = $2, lease_expires_ms = $3 \
                       WHERE id = $1 AND lease_expires_ms <= $4";
            let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
                .bind(&id)
                .bind(owner)
                .bind(expires_ms)
                .bind(now_ms)
                .execute(&mut **c)
                .await?
                .rows_affected());
            if n == 1 {
                leased.push(id);
            }
        }
        Ok(leased)
    }
}

impl TenantTx {
    /// This tenant's workflow, locked until the transaction ends (PostgreSQL).
    pub async fn lock_workflow(&mut self, id: &str) -> Result<Option<WorkflowRow>> {
        let tenant = self.tenant.as_str().to_owned();
        load(&mut self.conn, Some(&tenant), id, true).await
    }

    pub async fn save_workflow(&mut self, w: &WorkflowRow) -> Result<()> {
        let tenant = self.tenant.as_str().to_owned();
        save(&mut self.conn, Some(&tenant), w).await
    }
}
