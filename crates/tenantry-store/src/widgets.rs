//! Public chat widgets (tenant-scoped table `widgets`).

use crate::Result;
use crate::error::StoreError;
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;

#[derive(Debug, Clone)]
pub struct StoredWidget {
    pub id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type WidgetRow = (
    String,
    String,
    Json<Vec<String>>,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
);
const COLUMNS: &str = "id, name, allowed_origins, enabled, created_at, updated_at";

fn widget(row: WidgetRow) -> StoredWidget {
    let (id, name, origins, enabled, created_at, updated_at) = row;
    StoredWidget {
        id,
        name,
        allowed_origins: origins.0,
        enabled,
        created_at,
        updated_at,
    }
}

impl TenantTx {
    pub async fn insert_widget(&mut self, w: &StoredWidget) -> Result<()> {
        let sql = format!(
            "INSERT INTO widgets (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        on_conn!(&mut self.conn, |c| sqlx::query(&sql)
            .bind(self.tenant.as_str())
            .bind(&w.id)
            .bind(&w.name)
            .bind(Json(&w.allowed_origins))
            .bind(w.enabled)
            .bind(w.created_at)
            .bind(w.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub async fn update_widget(&mut self, w: &StoredWidget) -> Result<()> {
        let sql = "UPDATE widgets SET name = $3, allowed_origins = $4, enabled = $5, updated_at = $6 \
                   WHERE tenant_id = $1 AND id = $2";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(&w.id)
            .bind(&w.name)
            .bind(Json(&w.allowed_origins))
            .bind(w.enabled)
            .bind(w.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn widget(&mut self, id: &str) -> Result<StoredWidget> {
        let sql = format!("SELECT {COLUMNS} FROM widgets WHERE tenant_id = $1 AND id = $2");
        let row: Option<WidgetRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        row.map(widget).ok_or(StoreError::NotFound)
    }

    pub async fn list_widgets(&mut self) -> Result<Vec<StoredWidget>> {
        let sql = format!("SELECT {COLUMNS} FROM widgets WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<WidgetRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(widget).collect())
    }
}

impl OperatorTx {
    /// The allowed origins of every enabled widget of every tenant (for
    /// CORS preflights, which carry no token): an explicit cross-tenant read.
    pub async fn enabled_widget_origins(&mut self) -> Result<Vec<Vec<String>>> {
        let sql = "SELECT allowed_origins FROM widgets WHERE enabled = $1";
        let rows: Vec<(Json<Vec<String>>,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(true)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(|(o,)| o.0).collect())
    }
}
