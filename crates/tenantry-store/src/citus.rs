//! The Citus check behind `tenantry doctor --citus`: every table of the
//! schema is classified (distributed by `tenant_id`, a global lookup
//! distributed by its own key, or a reference table), and the catalogue is
//! read to prove that each unique index and foreign key can be enforced by
//! Citus, so the schema stays distributable. docs/citus.md mirrors the lists.

use crate::backend::Backend;
use crate::scope::Conn;
use crate::{Result, Store};
use std::fmt::Write as _;

/// A table looked up by a globally unique value rather than by tenant:
/// distributed by that value, so the lookup is a single-shard query.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    pub table: &'static str,
    pub column: &'static str,
    /// Whether the table is under row-level security like a tenant table
    /// (false: global, and it holds only hashes and ids).
    pub rls: bool,
    pub why: &'static str,
}

/// The global lookup tables. They have a `tenant_id` column (the tenant a
/// value belongs to) but are not distributed by it.
pub const LOOKUP_TABLES: &[Lookup] = &[
    Lookup {
        table: "api_key_lookup",
        column: "key_hash",
        rls: false,
        why: "key hash -> tenant and key: verification by hash alone; hashes unique across tenants",
    },
    Lookup {
        table: "tenant_domains",
        column: "domain",
        rls: true,
        why: "custom domain -> tenant: resolution by host; a domain verified by one tenant only",
    },
    Lookup {
        table: "whatsapp_routes",
        column: "external_id",
        rls: true,
        why: "WhatsApp account or phone id -> tenant: inbound webhooks; an id routed to one tenant only",
    },
    Lookup {
        table: "message_routes",
        column: "provider_message_id",
        rls: true,
        why: "provider message id -> tenant: status callbacks; an id registered by one tenant only",
    },
];

/// Tables without `tenant_id`, replicated to every worker by Citus. The
/// tenant registry is one: every tenant table's foreign key points at it,
/// and its subdomains are unique across tenants.
pub const REFERENCE_TABLES: &[(&str, &str)] = &[
    (
        "tenants",
        "the tenant registry: ids and unique subdomains, read on every resolution",
    ),
    ("plans", "plan catalogue"),
    ("meters", "meter catalogue"),
    ("operator_keys", "operator API keys (hashes)"),
    (
        "operator_idempotency_keys",
        "operators' idempotent responses",
    ),
    ("operator_events", "operator webhook events"),
    ("identity_providers", "trusted token issuers"),
    ("signing_keys", "access-token signing keys"),
    ("audit_signing_keys", "audit checkpoint signing keys"),
    ("tenantry_secrets", "the invalidation secret (owner only)"),
    (
        "region_directory",
        "which region each tenant lives in (no keys, hashes or subdomains)",
    ),
];

/// Tables that stay on the coordinator, outside Citus.
pub const LOCAL_TABLES: &[(&str, &str)] = &[("_sqlx_migrations", "the migration ledger")];

/// What a table becomes on Citus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Distributed by `tenant_id`, colocated with the other tenant tables.
    Tenant,
    Lookup(Lookup),
    Reference,
    Local,
    /// No `tenant_id` and on no list: a finding.
    Unclassified,
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}
impl Eq for Lookup {}

impl Class {
    fn of(table: &str, has_tenant_id: bool) -> Class {
        if let Some(l) = LOOKUP_TABLES.iter().find(|l| l.table == table) {
            Class::Lookup(*l)
        } else if REFERENCE_TABLES.iter().any(|(t, _)| *t == table) {
            Class::Reference
        } else if LOCAL_TABLES.iter().any(|(t, _)| *t == table) {
            Class::Local
        } else if has_tenant_id {
            Class::Tenant
        } else {
            Class::Unclassified
        }
    }

    /// The distribution column, for distributed tables.
    fn column(&self) -> Option<&'static str> {
        match self {
            Class::Tenant => Some("tenant_id"),
            Class::Lookup(l) => Some(l.column),
            _ => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Class::Tenant => "tenant (tenant_id)".into(),
            Class::Lookup(l) => format!("lookup ({})", l.column),
            Class::Reference => "reference".into(),
            Class::Local => "local".into(),
            Class::Unclassified => "unclassified".into(),
        }
    }
}

/// Whether a tenant-scoped transaction must see the table through
/// row-level security (the isolation doctor skips global lookups).
pub fn is_unscoped_lookup(table: &str) -> bool {
    LOOKUP_TABLES.iter().any(|l| l.table == table && !l.rls)
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub ok: bool,
    pub table: String,
    pub class: String,
    /// The index or constraint (or `-` for the table itself).
    pub object: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct CitusReport {
    pub findings: Vec<Finding>,
    /// `table -> class`, in name order, for the DDL.
    tables: Vec<(String, Class)>,
}

impl CitusReport {
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }

    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.ok)
    }

    fn push(&mut self, ok: bool, table: &str, class: Class, object: &str, detail: String) {
        self.findings.push(Finding {
            ok,
            table: table.to_owned(),
            class: class.label(),
            object: object.to_owned(),
            detail,
        });
    }

    /// The Citus DDL that distributes this schema, in an order Citus
    /// accepts (reference tables first: distributed tables point at them).
    pub fn distribution_sql(&self) -> String {
        let mut sql = String::from(
            "-- Generated by `tenantry doctor --citus --print-sql` (see docs/citus.md).\n\
             -- Run on the coordinator, after `tenantry migrate`, as the owner.\n\
             BEGIN;\n",
        );
        for (table, class) in &self.tables {
            if *class == Class::Reference {
                let _ = writeln!(sql, "SELECT create_reference_table('{table}');");
            }
        }
        let mut first_tenant: Option<&str> = None;
        for (table, class) in &self.tables {
            if *class != Class::Tenant {
                continue;
            }
            let colocate = first_tenant.unwrap_or("none");
            let _ = writeln!(
                sql,
                "SELECT create_distributed_table('{table}', 'tenant_id', colocate_with => '{colocate}');"
            );
            first_tenant.get_or_insert(table);
        }
        for (table, class) in &self.tables {
            if let Class::Lookup(l) = class {
                let _ = writeln!(
                    sql,
                    "SELECT create_distributed_table('{table}', '{}', colocate_with => 'none');",
                    l.column
                );
            }
        }
        sql.push_str("COMMIT;\n");
        sql
    }
}

impl std::fmt::Display for CitusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tenantry doctor --citus: distributability by tenant_id")?;
        let width = |pick: fn(&Finding) -> &str, title: &str| {
            self.findings
                .iter()
                .map(|x| pick(x).len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (t, c, o) = (
            width(|x| &x.table, "TABLE"),
            width(|x| &x.class, "CLASS"),
            width(|x| &x.object, "OBJECT"),
        );
        writeln!(
            f,
            "  {:<4}  {:<t$}  {:<c$}  {:<o$}  DETAIL",
            "", "TABLE", "CLASS", "OBJECT"
        )?;
        for x in &self.findings {
            let mark = if x.ok { "ok" } else { "FAIL" };
            writeln!(
                f,
                "  {mark:<4}  {:<t$}  {:<c$}  {:<o$}  {}",
                x.table, x.class, x.object, x.detail
            )?;
        }
        let failed = self.violations().count();
        if failed == 0 {
            write!(f, "all {} checks passed", self.findings.len())
        } else {
            write!(f, "{failed} of {} checks failed", self.findings.len())
        }
    }
}

/// One unique index (primary keys included) from `pg_index`.
struct UniqueIndex {
    table: String,
    name: String,
    columns: Vec<String>,
    primary: bool,
}

/// (table, index, primary, columns) as read.
type UniqueRow = (String, String, bool, Vec<String>);
/// (table, constraint, target, columns, target columns) as read.
type ForeignRow = (String, String, String, Vec<String>, Vec<String>);

/// One foreign key from `pg_constraint`.
struct ForeignKey {
    table: String,
    name: String,
    columns: Vec<String>,
    target: String,
    target_columns: Vec<String>,
}

impl Store {
    /// Reads the catalogue and reports whether every table can be
    /// distributed by Citus as classified. `Ok(None)` on SQLite.
    pub async fn citus_check(&self) -> Result<Option<CitusReport>> {
        if matches!(self.backend, Backend::Sqlite { .. }) {
            return Ok(None);
        }
        #[allow(clippy::disallowed_methods)] // the store checking itself: no grant applies
        let mut tx = self.operator_read().await?;
        let Conn::Postgres(c) = &mut tx.conn else {
            return Ok(None);
        };
        let tables: Vec<(String, bool)> = sqlx::query_as(
            "SELECT c.relname::text, EXISTS (SELECT 1 FROM pg_attribute a \
                    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() \
                AND NOT c.relispartition ORDER BY 1",
        )
        .fetch_all(&mut **c)
        .await?;
        // Expression columns (attnum 0) have no name: they never count as
        // the distribution column.
        let sql = format!(
            "SELECT t.relname::text AS table, i.relname::text AS name, x.indisprimary AS primary, \
                    {} AS columns \
               FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid \
               JOIN pg_class i ON i.oid = x.indexrelid \
               JOIN pg_namespace n ON n.oid = t.relnamespace \
              WHERE x.indisunique AND n.nspname = current_schema() ORDER BY 1, 2",
            column_names("x.indkey", "x.indrelid")
        );
        let uniques: Vec<UniqueRow> = sqlx::query_as(sql.as_str()).fetch_all(&mut **c).await?;
        let sql = format!(
            "SELECT t.relname::text AS table, k.conname::text AS name, r.relname::text AS target, \
                    {} AS columns, {} AS target_columns \
               FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
               JOIN pg_class r ON r.oid = k.confrelid \
               JOIN pg_namespace n ON n.oid = t.relnamespace \
              WHERE k.contype = 'f' AND n.nspname = current_schema() ORDER BY 1, 2",
            column_names("k.conkey", "k.conrelid"),
            column_names("k.confkey", "k.confrelid")
        );
        let foreign: Vec<ForeignRow> = sqlx::query_as(sql.as_str()).fetch_all(&mut **c).await?;
        drop(tx);
        let uniques: Vec<UniqueIndex> = uniques
            .into_iter()
            .map(|(table, name, primary, columns)| UniqueIndex {
                table,
                name,
                columns,
                primary,
            })
            .collect();
        let foreign: Vec<ForeignKey> = foreign
            .into_iter()
            .map(
                |(table, name, target, columns, target_columns)| ForeignKey {
                    table,
                    name,
                    columns,
                    target,
                    target_columns,
                },
            )
            .collect();
        Ok(Some(judge(&tables, &uniques, &foreign)))
    }
}

/// SQL for the names of the columns numbered in `attnums` (an array of
/// attribute numbers of relation `rel`), in their order.
fn column_names(attnums: &str, rel: &str) -> String {
    format!(
        "ARRAY(SELECT a.attname::text FROM unnest({attnums}) WITH ORDINALITY u(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = u.attnum ORDER BY u.ord)"
    )
}

fn judge(
    tables: &[(String, bool)],
    uniques: &[UniqueIndex],
    foreign: &[ForeignKey],
) -> CitusReport {
    let mut report = CitusReport::default();
    let class_of = |name: &str| {
        tables
            .iter()
            .find(|(t, _)| t == name)
            .map(|(t, has)| Class::of(t, *has))
    };
    for lookup in LOOKUP_TABLES {
        if class_of(lookup.table).is_none() {
            report.push(
                false,
                lookup.table,
                Class::Lookup(*lookup),
                "-",
                "listed as a lookup table but not in the schema: the list and the schema disagree"
                    .into(),
            );
        }
    }
    for (table, has_tenant_id) in tables {
        let class = Class::of(table, *has_tenant_id);
        report.tables.push((table.clone(), class));
        match class {
            Class::Unclassified => report.push(
                false,
                table,
                class,
                "-",
                "no tenant_id column and not listed as a reference, lookup or local table \
                 (crates/tenantry-store/src/citus.rs, docs/citus.md)"
                    .into(),
            ),
            Class::Reference | Class::Local if *has_tenant_id => report.push(
                false,
                table,
                class,
                "-",
                "has a tenant_id column: a tenant table must be distributed by it".into(),
            ),
            Class::Reference | Class::Local => {
                let why = REFERENCE_TABLES
                    .iter()
                    .chain(LOCAL_TABLES)
                    .find(|(t, _)| t == table)
                    .map_or("", |(_, why)| *why);
                report.push(true, table, class, "-", why.to_owned());
            }
            Class::Lookup(l) if !*has_tenant_id => report.push(
                false,
                table,
                class,
                "-",
                format!(
                    "lookup table without tenant_id: {} must name its tenant",
                    l.column
                ),
            ),
            _ => {}
        }
        if let Some(column) = class.column() {
            let mut any = false;
            for index in uniques.iter().filter(|i| &i.table == table) {
                any = true;
                let kind = if index.primary {
                    "primary key"
                } else {
                    "unique index"
                };
                let ok = index.columns.iter().any(|c| c == column);
                let detail = if ok {
                    format!("{kind} ({}) includes {column}", index.columns.join(", "))
                } else {
                    format!(
                        "{kind} ({}) does not include {column}: Citus cannot enforce it across shards",
                        index.columns.join(", ")
                    )
                };
                report.push(ok, table, class, &index.name, detail);
            }
            if !any {
                report.push(true, table, class, "-", "no unique index".into());
            }
        }
        for key in foreign.iter().filter(|k| &k.table == table) {
            let target = class_of(&key.target).unwrap_or(Class::Unclassified);
            let (ok, detail) = foreign_key_verdict(class, target, key);
            report.push(ok, table, class, &key.name, detail);
        }
    }
    report
}

/// Citus enforces a foreign key from a distributed table to a reference
/// table, or between colocated tenant tables when it maps tenant_id to
/// tenant_id; nothing may point from a reference table into shards.
fn foreign_key_verdict(from: Class, to: Class, key: &ForeignKey) -> (bool, String) {
    let shape = format!(
        "({}) -> {}({})",
        key.columns.join(", "),
        key.target,
        key.target_columns.join(", ")
    );
    let distributed = |c: Class| matches!(c, Class::Tenant | Class::Lookup(_));
    match (from, to) {
        (_, Class::Reference) if from != Class::Local => {
            (true, format!("{shape}: to a reference table"))
        }
        (Class::Tenant, Class::Tenant) => {
            let maps = key
                .columns
                .iter()
                .zip(&key.target_columns)
                .any(|(a, b)| a == "tenant_id" && b == "tenant_id");
            if maps {
                (true, format!("{shape}: colocated, tenant_id = tenant_id"))
            } else {
                (
                    false,
                    format!(
                        "{shape}: between tenant tables but does not map tenant_id to tenant_id"
                    ),
                )
            }
        }
        (Class::Reference, t) if distributed(t) => (
            false,
            format!("{shape}: a reference table cannot point into a distributed table"),
        ),
        _ => (
            false,
            format!(
                "{shape}: Citus cannot enforce a foreign key from a {} table to a {} table",
                from.label(),
                to.label()
            ),
        ),
    }
}
