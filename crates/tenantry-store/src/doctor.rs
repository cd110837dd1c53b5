//! The isolation checker behind `tenantry doctor`: it reads the database
//! catalog and proves, table by table, that tenant isolation holds.

use crate::backend::Backend;
use crate::scope::{Conn, OperatorTx};
use crate::{Result, Store};

/// The tables that have a `tenant_id` column, read from the catalog.
pub(crate) async fn tenant_tables(conn: &mut Conn) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(
                "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name = 'tenant_id' ORDER BY m.name",
            )
            .fetch_all(&mut **c)
            .await?
        }
        Conn::Postgres(c) => {
            sqlx::query_as(
                "SELECT c.relname::text FROM pg_class c \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                   JOIN pg_attribute a ON a.attrelid = c.oid \
                  WHERE a.attname = 'tenant_id' AND NOT a.attisdropped \
                    AND c.relkind IN ('r', 'p') AND n.nspname = current_schema() \
                  ORDER BY c.relname",
            )
            .fetch_all(&mut **c)
            .await?
        }
    };
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

#[derive(Debug, Clone)]
pub struct Check {
    pub ok: bool,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub backend: &'static str,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn check(&mut self, ok: bool, subject: impl Into<String>, detail: impl Into<String>) {
        self.checks.push(Check {
            ok,
            subject: subject.into(),
            detail: detail.into(),
        });
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tenantry doctor: {} database", self.backend)?;
        for note in &self.notes {
            writeln!(f, "  note  {note}")?;
        }
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            writeln!(f, "  {mark}  {}: {}", c.subject, c.detail)?;
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            write!(f, "all {} checks passed", self.checks.len())
        } else {
            write!(f, "{failed} of {} checks failed", self.checks.len())
        }
    }
}

impl Store {
    /// Inspects the database and reports every isolation finding.
    pub async fn doctor(&self) -> Result<Report> {
        let mut report = Report {
            backend: self.backend_name(),
            ..Report::default()
        };
        #[allow(clippy::disallowed_methods)] // the store checking itself: no grant applies
        let mut tx = self.operator_read().await?;
        let (tables, lookups): (Vec<String>, Vec<String>) = tenant_tables(&mut tx.conn)
            .await?
            .into_iter()
            .partition(|t| !crate::citus::is_unscoped_lookup(t));
        for table in &lookups {
            report.notes.push(format!(
                "{table} is a global lookup (hashes and ids, no secrets): not under row-level security"
            ));
        }
        report.check(
            !tables.is_empty(),
            "tenant tables",
            format!(
                "{} tables have a tenant_id column: {}",
                tables.len(),
                tables.join(", ")
            ),
        );
        match &self.backend {
            Backend::Sqlite { .. } => {
                report.notes.push(
                    "SQLite has no row-level security: isolation is enforced by the store's \
                     tenant-bound transactions"
                        .into(),
                );
                for table in &tables {
                    let leads = sqlite_tenant_index(&mut tx, table).await?;
                    report.check(leads, table.as_str(), index_detail(leads));
                }
            }
            Backend::Postgres { .. } => {
                postgres_checks(self, &mut tx, &tables, &mut report).await?;
            }
        }
        Ok(report)
    }
}

fn index_detail(leads: bool) -> &'static str {
    if leads {
        "an index leads with tenant_id"
    } else {
        "no index leads with tenant_id: every tenant query scans the table"
    }
}

async fn sqlite_tenant_index(tx: &mut OperatorTx, table: &str) -> Result<bool> {
    let Conn::Sqlite(c) = &mut tx.conn else {
        return Ok(false);
    };
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pragma_index_list($1) l, pragma_index_info(l.name) i \
         WHERE i.seqno = 0 AND i.name = 'tenant_id'",
    )
    .bind(table)
    .fetch_one(&mut **c)
    .await?;
    Ok(count > 0)
}

async fn postgres_checks(
    store: &Store,
    tx: &mut OperatorTx,
    tables: &[String],
    report: &mut Report,
) -> Result<()> {
    let Conn::Postgres(c) = &mut tx.conn else {
        return Ok(());
    };
    // The roles transactions run as, and whether they bypass RLS.
    let mut roles = Vec::new();
    for role in [store.request_role(), store.operator_role()] {
        match role {
            Some(role) => roles.push(role.to_owned()),
            None => {
                let (user,): (String,) = sqlx::query_as("SELECT session_user::text")
                    .fetch_one(&mut **c)
                    .await?;
                roles.push(user);
            }
        }
    }
    if let Some(role) = roles.first() {
        report
            .notes
            .push(format!("request transactions run as role '{role}'"));
    }
    if let Some(role) = roles.get(1) {
        report
            .notes
            .push(format!("operator transactions run as role '{role}'"));
    }
    roles.dedup();
    for role in &roles {
        let (superuser, bypass): (bool, bool) =
            sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_one(&mut **c)
                .await?;
        report.check(
            !superuser && !bypass,
            format!("role {role}"),
            if superuser {
                "is a superuser: row-level security does not apply to it"
            } else if bypass {
                "has BYPASSRLS: row-level security does not apply to it"
            } else {
                "is subject to row-level security"
            },
        );
    }

    // The invalidation secret is the owner's alone: a role that can read
    // it can forge cache invalidations.
    for role in &roles {
        let (readable,): (bool,) = sqlx::query_as(
            "SELECT to_regclass('tenantry_secrets') IS NOT NULL \
                AND has_table_privilege($1, 'tenantry_secrets', 'SELECT')",
        )
        .bind(role)
        .fetch_one(&mut **c)
        .await?;
        if readable {
            report.check(
                false,
                "tenantry_secrets",
                format!("role {role} can read the invalidation secret (only the owner may)"),
            );
        }
    }

    // What tenant transactions must not read: the operators' idempotency
    // keys (the responses operators were given), and the hashes in the
    // global key lookup, which has no row-level security (tenant
    // transactions write it, but must not list every tenant's keys).
    if let Some(request_role) = store.request_role() {
        let private = [
            (
                "operator_idempotency_keys",
                "has_table_privilege($1, 'operator_idempotency_keys', 'SELECT')",
                "the operators' idempotency keys",
            ),
            (
                "api_key_lookup",
                "has_column_privilege($1, 'api_key_lookup', 'key_hash', 'SELECT')",
                "every tenant's key hashes",
            ),
        ];
        for (table, privilege, what) in private {
            let sql = format!("SELECT to_regclass('{table}') IS NOT NULL AND {privilege}");
            let (readable,): (bool,) = sqlx::query_as(sql.as_str())
                .bind(request_role)
                .fetch_one(&mut **c)
                .await?;
            report.check(
                !readable,
                table,
                if readable {
                    format!("role {request_role} (tenant transactions) can read {what}")
                } else {
                    format!("not readable by role {request_role} (tenant transactions)")
                },
            );
        }
    }

    // Tables that hold tenant data without a tenant_id column: the
    // registry itself, and any table that points at it.
    let linked: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT c.relname::text FROM pg_constraint k \
           JOIN pg_class c ON c.oid = k.conrelid \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE k.contype = 'f' AND k.confrelid = to_regclass('tenants') \
            AND n.nspname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut **c)
    .await?;
    let mut tables: Vec<String> = tables.to_vec();
    for (name,) in linked {
        if !tables.contains(&name) && !crate::citus::is_unscoped_lookup(&name) {
            tables.push(name);
        }
    }
    if !tables.iter().any(|t| t == "tenants") {
        tables.insert(0, "tenants".to_owned());
    }
    for table in &tables {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = to_regclass(quote_ident($1))",
        )
        .bind(table)
        .fetch_one(&mut **c)
        .await?;
        report.check(
            enabled,
            table.to_string(),
            if enabled {
                "row-level security enabled"
            } else {
                "row-level security is NOT enabled"
            },
        );
        report.check(
            forced,
            table.to_string(),
            if forced {
                "row-level security forced (applies to the table owner)"
            } else {
                "row-level security is NOT forced: the table owner bypasses it"
            },
        );
        let (policies,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_policy \
              WHERE polrelid = to_regclass(quote_ident($1)) AND polcmd = '*' AND polpermissive \
                AND pg_get_expr(polqual, polrelid) LIKE '%app.tenant_id%' \
                AND pg_get_expr(polwithcheck, polrelid) LIKE '%app.tenant_id%'",
        )
        .bind(table)
        .fetch_one(&mut **c)
        .await?;
        report.check(
            policies > 0,
            table.to_string(),
            if policies > 0 {
                "a policy restricts reads and writes to app.tenant_id"
            } else {
                "no policy restricts reads and writes to app.tenant_id"
            },
        );
        extra_policies(c, table, report).await?;
        if table == "tenants" {
            continue; // its key is the tenant id itself
        }
        let (leads,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
                    ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
              WHERE i.indrelid = to_regclass(quote_ident($1)) AND a.attname = 'tenant_id')",
        )
        .bind(table)
        .fetch_one(&mut **c)
        .await?;
        report.check(leads, table.to_string(), index_detail(leads));
    }
    Ok(())
}

/// A policy: name, command, roles, USING and WITH CHECK expressions.
type PolicyRow = (String, String, String, Option<String>, Option<String>);

/// Permissive policies are OR-ed together: one extra policy (`USING (true)`,
/// or an operator policy open to every role) opens the table whatever the
/// others say. Only the shapes the migrations create are accepted: the
/// tenant policy, and the operator's read policy for `tenantry_operator`.
async fn extra_policies(
    c: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    table: &str,
    report: &mut Report,
) -> Result<()> {
    let column = if table == "tenants" {
        "id"
    } else {
        "tenant_id"
    };
    let tenant_expr = format!("({column} = current_setting('app.tenant_id'::text, true))");
    let operator_expr = "(current_setting('app.operator'::text, true) = 'on'::text)";
    let policies: Vec<PolicyRow> = sqlx::query_as(
        "SELECT polname::text AS name, polcmd::text AS command, \
                CASE WHEN polroles = '{0}' THEN 'public' ELSE array_to_string(ARRAY( \
                    SELECT rolname::text FROM pg_roles WHERE oid = ANY (polroles) ORDER BY 1), ',') END AS roles, \
                pg_get_expr(polqual, polrelid) AS using, pg_get_expr(polwithcheck, polrelid) AS check \
           FROM pg_policy WHERE polrelid = to_regclass(quote_ident($1)) AND polpermissive \
          ORDER BY polname",
    )
    .bind(table)
    .fetch_all(&mut **c)
    .await?;
    for (name, command, roles, using, check) in policies {
        let tenant_policy = command == "*"
            && (roles == "public" || roles == crate::backend::REQUEST_ROLE)
            && using.as_deref() == Some(tenant_expr.as_str())
            && check.as_deref() == Some(tenant_expr.as_str());
        let operator_policy = roles == crate::backend::OPERATOR_ROLE
            && using.as_deref() == Some(operator_expr)
            && check.as_deref().is_none_or(|c| c == operator_expr);
        if tenant_policy || operator_policy {
            continue;
        }
        let detail = if using.as_deref() == Some(operator_expr) {
            format!(
                "permissive policy '{name}' grants the operator's cross-tenant view to {roles}, \
                 not only to {}: a tenant transaction could set app.operator",
                crate::backend::OPERATOR_ROLE
            )
        } else {
            format!(
                "extra permissive policy '{name}' (for {roles}) lets rows through whatever the \
                 tenant context: USING {} WITH CHECK {}",
                using.as_deref().unwrap_or("-"),
                check.as_deref().unwrap_or("-")
            )
        };
        report.check(false, table.to_string(), detail);
    }
    Ok(())
}
