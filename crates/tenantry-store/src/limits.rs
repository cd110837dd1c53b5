//! Plans and meters (operator-wide), and each tenant's configuration
//! versions, usage events, usage counters and quota alerts.

use crate::Result;
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;

/// A stored plan: its name, JSON definition and last change.
pub type PlanRow = (String, Json<serde_json::Value>, DateTime<Utc>);
/// A meter: name, aggregation (`sum`, `last`, `distinct`), description, built in.
pub type MeterRow = (String, String, String, bool);
/// A configuration version: number, overrides, actor, time.
pub type ConfigVersionRow = (i64, Json<serde_json::Value>, String, DateTime<Utc>);

/// An accepted usage event.
#[derive(Debug, Clone)]
pub struct NewUsageEvent<'a> {
    pub id: &'a str,
    pub meter: &'a str,
    pub quantity: i64,
    pub occurred_at: DateTime<Utc>,
    pub subject: Option<&'a str>,
    pub properties: &'a serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// An amount to add to one usage counter.
#[derive(Debug, Clone)]
pub struct CounterAdd<'a> {
    pub meter: &'a str,
    pub granularity: &'a str,
    pub period_start: DateTime<Utc>,
    pub quantity: i64,
}

impl OperatorTx {
    pub async fn list_plans(&mut self) -> Result<Vec<PlanRow>> {
        Ok(on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT name, definition, updated_at FROM plans ORDER BY name"
        )
        .fetch_all(&mut **c)
        .await?))
    }

    pub async fn get_plan(&mut self, name: &str) -> Result<Option<PlanRow>> {
        Ok(on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT name, definition, updated_at FROM plans WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(&mut **c)
        .await?))
    }

    /// [`Self::get_plan`], the row locked until the transaction ends
    /// (PostgreSQL; SQLite's write transactions are serialised already), so
    /// that concurrent changes to one plan each see the one before.
    pub async fn plan_for_update(&mut self, name: &str) -> Result<Option<PlanRow>> {
        let sql = match &self.conn {
            crate::scope::Conn::Postgres(_) => {
                "SELECT name, definition, updated_at FROM plans WHERE name = $1 FOR UPDATE"
            }
            _ => "SELECT name, definition, updated_at FROM plans WHERE name = $1",
        };
        Ok(on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(&mut **c)
            .await?))
    }

    pub async fn put_plan(
        &mut self,
        name: &str,
        definition: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO plans (name, definition, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at"
        )
        .bind(name)
        .bind(Json(definition))
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn list_meters(&mut self) -> Result<Vec<MeterRow>> {
        Ok(on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT name, aggregation, description, builtin FROM meters ORDER BY name"
        )
        .fetch_all(&mut **c)
        .await?))
    }

    /// Registers a meter; `false` if the name is taken.
    pub async fn insert_meter(
        &mut self,
        name: &str,
        aggregation: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO meters (name, aggregation, description, builtin, created_at) VALUES ($1, $2, $3, FALSE, $4) \
             ON CONFLICT (name) DO NOTHING"
        )
        .bind(name)
        .bind(aggregation)
        .bind(description)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }
}

impl TenantTx {
    /// A plan's definition (plans are not tenant-scoped), read in this
    /// transaction rather than on a second connection.
    pub async fn plan_definition(&mut self, name: &str) -> Result<Option<Json<serde_json::Value>>> {
        let row: Option<(Json<serde_json::Value>,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT definition FROM plans WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(&mut **c)
        .await?);
        Ok(row.map(|(d,)| d))
    }

    /// The configuration version in force, if any.
    pub async fn latest_config(&mut self) -> Result<Option<ConfigVersionRow>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT version, overrides, actor, created_at FROM tenant_config_versions WHERE tenant_id = $1 \
             ORDER BY version DESC LIMIT 1"
        )
        .bind(self.tenant.as_str())
        .fetch_optional(&mut **c)
        .await?
        }))
    }

    /// Configuration versions, newest first.
    pub async fn config_versions(
        &mut self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ConfigVersionRow>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT version, overrides, actor, created_at FROM tenant_config_versions WHERE tenant_id = $1 \
             AND ($2 IS NULL OR version < $2) ORDER BY version DESC LIMIT $3"
        )
        .bind(self.tenant.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut **c)
        .await?
        }))
    }

    pub async fn insert_config_version(
        &mut self,
        version: i64,
        overrides: &serde_json::Value,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO tenant_config_versions (tenant_id, version, overrides, actor, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(self.tenant.as_str())
        .bind(version)
        .bind(Json(overrides))
        .bind(actor)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Stores many events in few statements; returns the ids that were new
    /// (an id seen before, or twice in `events`, is stored once).
    pub async fn insert_usage_events(
        &mut self,
        events: &[NewUsageEvent<'_>],
    ) -> Result<std::collections::HashSet<String>> {
        if let crate::scope::Conn::Postgres(c) = &mut self.conn {
            return insert_usage_events_pg(c, self.tenant.as_str(), events).await;
        }
        let mut inserted = std::collections::HashSet::new();
        for chunk in events.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO usage_events (tenant_id, id, meter, quantity, occurred_at, subject, properties, received_at) VALUES ",
            );
            crate::values::push_value_rows(&mut sql, chunk.len(), 7, "$1, ", 2);
            sql.push_str(" ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id");
            let ids: Vec<(String,)> = on_conn!(&mut self.conn, |c| {
                let mut query = sqlx::query_as(sql.as_str()).bind(self.tenant.as_str());
                for e in chunk {
                    query = query
                        .bind(e.id)
                        .bind(e.meter)
                        .bind(e.quantity)
                        .bind(e.occurred_at)
                        .bind(e.subject)
                        .bind(Json(e.properties))
                        .bind(e.received_at);
                }
                query.fetch_all(&mut **c).await?
            });
            inserted.extend(ids.into_iter().map(|(id,)| id));
        }
        Ok(inserted)
    }

    /// Records subjects of a distinct meter for one period; returns how many
    /// were new.
    pub async fn add_subjects(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
        subjects: &[&str],
    ) -> Result<i64> {
        let mut new = 0;
        for chunk in subjects.chunks(1000) {
            let mut sql = String::from(
                "INSERT INTO usage_subjects (tenant_id, meter, granularity, period_start, subject) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("($1, $2, $3, $4, ${})", i + 5));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            new += on_conn!(&mut self.conn, |c| {
                let mut query = sqlx::query(sql.as_str())
                    .bind(self.tenant.as_str())
                    .bind(meter)
                    .bind(granularity)
                    .bind(period_start);
                for subject in chunk {
                    query = query.bind(*subject);
                }
                query.execute(&mut **c).await?.rows_affected()
            }) as i64;
        }
        Ok(new)
    }

    /// Adds to a counter, creating it; returns the new value.
    pub async fn add_to_counter(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
        quantity: i64,
    ) -> Result<i64> {
        let (value,): (i64,) = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "INSERT INTO usage_counters (tenant_id, meter, granularity, period_start, value) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, meter, granularity, period_start) DO UPDATE SET value = usage_counters.value + excluded.value \
             RETURNING value"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(granularity)
        .bind(period_start)
        .bind(quantity)
        .fetch_one(&mut **c)
        .await?
        });
        Ok(value)
    }

    /// Adds to many counters in one statement (each key at most once);
    /// returns each counter's new value, in the order of `adds`.
    pub async fn add_to_counters(&mut self, adds: &[CounterAdd<'_>]) -> Result<Vec<i64>> {
        let mut values = Vec::with_capacity(adds.len());
        for chunk in adds.chunks(200) {
            let mut sql = String::from(
                "INSERT INTO usage_counters (tenant_id, meter, granularity, period_start, value) VALUES ",
            );
            crate::values::push_value_rows(&mut sql, chunk.len(), 4, "$1, ", 2);
            sql.push_str(
                " ON CONFLICT (tenant_id, meter, granularity, period_start) DO UPDATE SET value = usage_counters.value + excluded.value \
                 RETURNING meter, granularity, period_start, value",
            );
            let rows: Vec<(String, String, DateTime<Utc>, i64)> = on_conn!(&mut self.conn, |c| {
                let mut query = sqlx::query_as(sql.as_str()).bind(self.tenant.as_str());
                for add in chunk {
                    query = query
                        .bind(add.meter)
                        .bind(add.granularity)
                        .bind(add.period_start)
                        .bind(add.quantity);
                }
                query.fetch_all(&mut **c).await?
            });
            // RETURNING promises no order: match the rows to the keys.
            for add in chunk {
                let value = rows
                    .iter()
                    .find(|(m, g, p, _)| {
                        m == add.meter && g == add.granularity && *p == add.period_start
                    })
                    .map(|r| r.3)
                    .ok_or(crate::StoreError::NotFound)?;
                values.push(value);
            }
        }
        Ok(values)
    }

    /// Adds to a counter only if the result stays at or under `max`: one
    /// statement, so concurrent consumers can never pass it. `None` when
    /// refused.
    pub async fn add_to_counter_within(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
        quantity: i64,
        max: i64,
    ) -> Result<Option<i64>> {
        if quantity > max {
            return Ok(None);
        }
        let row: Option<(i64,)> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "INSERT INTO usage_counters (tenant_id, meter, granularity, period_start, value) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, meter, granularity, period_start) DO UPDATE SET value = usage_counters.value + excluded.value \
             WHERE usage_counters.value + excluded.value <= $6 \
             RETURNING value"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(granularity)
        .bind(period_start)
        .bind(quantity)
        .bind(max)
        .fetch_optional(&mut **c)
        .await?
        });
        Ok(row.map(|(v,)| v))
    }

    /// Sets a gauge counter to `value` if `at` is not older than its last value.
    pub async fn set_gauge(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
        value: i64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO usage_counters (tenant_id, meter, granularity, period_start, value, last_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, meter, granularity, period_start) DO UPDATE SET value = excluded.value, last_at = excluded.last_at \
             WHERE usage_counters.last_at IS NULL OR usage_counters.last_at <= excluded.last_at"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(granularity)
        .bind(period_start)
        .bind(value)
        .bind(at)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn counter(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
    ) -> Result<i64> {
        let row: Option<(i64,)> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT value FROM usage_counters WHERE tenant_id = $1 AND meter = $2 AND granularity = $3 AND period_start = $4"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(granularity)
        .bind(period_start)
        .fetch_optional(&mut **c)
        .await?
        });
        Ok(row.map(|(v,)| v).unwrap_or(0))
    }

    /// Counter values of a meter from `from` (inclusive) to `to` (exclusive).
    pub async fn counter_series(
        &mut self,
        meter: &str,
        granularity: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, i64)>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT period_start, value FROM usage_counters WHERE tenant_id = $1 AND meter = $2 AND granularity = $3 \
             AND period_start >= $4 AND period_start < $5 ORDER BY period_start"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(granularity)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **c)
        .await?
        }))
    }

    /// Every meter's counter for one period.
    pub async fn counters_of_period(
        &mut self,
        granularity: &str,
        period_start: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT meter, value FROM usage_counters WHERE tenant_id = $1 AND granularity = $2 AND period_start = $3 ORDER BY meter"
        )
        .bind(self.tenant.as_str())
        .bind(granularity)
        .bind(period_start)
        .fetch_all(&mut **c)
        .await?
        }))
    }

    /// Notes that a quota threshold was reached: `true` the first time per period.
    pub async fn record_quota_alert(
        &mut self,
        meter: &str,
        period_start: DateTime<Utc>,
        threshold: i32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO quota_alerts (tenant_id, meter, period_start, threshold, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING"
        )
        .bind(self.tenant.as_str())
        .bind(meter)
        .bind(period_start)
        .bind(threshold)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }
}

/// PostgreSQL: the whole batch in one statement of eight parameters (one
/// array per column, `unnest`ed), the same prepared statement whatever the
/// batch size, instead of thousands of parameters in chunks.
async fn insert_usage_events_pg(
    c: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant: &str,
    events: &[NewUsageEvent<'_>],
) -> Result<std::collections::HashSet<String>> {
    let mut ids = Vec::with_capacity(events.len());
    let mut meters = Vec::with_capacity(events.len());
    let mut quantities = Vec::with_capacity(events.len());
    let mut occurred = Vec::with_capacity(events.len());
    let mut subjects = Vec::with_capacity(events.len());
    let mut properties = Vec::with_capacity(events.len());
    let mut received = Vec::with_capacity(events.len());
    for e in events {
        ids.push(e.id);
        meters.push(e.meter);
        quantities.push(e.quantity);
        occurred.push(e.occurred_at);
        subjects.push(e.subject);
        properties.push(Json(e.properties));
        received.push(e.received_at);
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO usage_events (tenant_id, id, meter, quantity, occurred_at, subject, properties, received_at) \
         SELECT $1, e.id, e.meter, e.quantity, e.occurred_at, e.subject, e.properties, e.received_at \
         FROM unnest($2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::text[], $7::jsonb[], $8::timestamptz[]) \
           AS e(id, meter, quantity, occurred_at, subject, properties, received_at) \
         ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id",
    )
    .bind(tenant)
    .bind(ids)
    .bind(meters)
    .bind(quantities)
    .bind(occurred)
    .bind(subjects)
    .bind(properties)
    .bind(received)
    .fetch_all(&mut **c)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
