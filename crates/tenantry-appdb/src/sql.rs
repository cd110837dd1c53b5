//! SQL helpers shared by `isolate` and `doctor`: identifier quoting, the
//! tenant expression, and the catalog reads (every value bound as a
//! parameter; identifiers only ever reach SQL text through [`ident`]).

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use std::fmt;

/// The setting apps put the tenant in, once per transaction.
pub const SETTING: &str = "app.tenant_id";
/// The name of the policy `isolate` installs.
pub const POLICY: &str = "tenantry_tenant";

/// Quotes an identifier for PostgreSQL: always in double quotes, with any
/// double quote doubled, so no name can end the identifier early.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table, schema-qualified, as stored in the catalog (case and all).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// The table as SQL: `"schema"."name"`.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }
}

impl fmt::Display for Table {
    /// As a person writes it: `schema.name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What `app.tenant_id` holds, as the column's type: NULL (so `=` matches
/// nothing, and no cast error) when it is unset, or set to '' (what a
/// transaction-local setting leaves behind in the session once its
/// transaction is over). The type comes from `format_type(oid, NULL)`,
/// without a length, so a long setting is never truncated into a match.
pub fn tenant_value(column_type: &str) -> String {
    format!("NULLIF(current_setting('{SETTING}', true), '')::{column_type}")
}

/// `column = tenant_value`, the policy's USING and WITH CHECK.
pub fn tenant_predicate(column: &str, column_type: &str) -> String {
    format!("{} = {}", ident(column), tenant_value(column_type))
}

/// Connects to the app's database (one connection: these are short
/// administrative runs).
pub async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("{}", redact(&e.to_string(), url)))
        .context("--database-url is not a valid PostgreSQL URL")?
        .application_name("tenantry app-db");
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| anyhow::anyhow!("{}", redact(&e.to_string(), url)))
        .context("cannot connect to the app's database")
}

/// Removes the URL's password from a message, should a driver quote it.
pub fn redact(message: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => message.replace(p, "***"),
        None => message.to_owned(),
    }
}

/// One table of the chosen schemas, with the tenant column if it has it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub oid: u32,
    pub table: Table,
    pub owner: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// The tenant column: its number and its type (`format_type`, no length).
    pub column: Option<(i16, String)>,
}

/// A catalog row of [`tables`].
type TableRow = (
    i64,
    String,
    String,
    String,
    bool,
    bool,
    Option<i16>,
    Option<String>,
);

/// Every ordinary and partitioned table of these schemas.
pub async fn tables(
    conn: &mut PgConnection,
    schemas: &[String],
    column: &str,
) -> anyhow::Result<Vec<TableInfo>> {
    let rows: Vec<TableRow> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, \
                    pg_get_userbyid(c.relowner)::text, c.relrowsecurity, c.relforcerowsecurity, \
                    a.attnum, format_type(a.atttypid, NULL) \
               FROM pg_class c \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
               LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 \
                    AND a.attnum > 0 AND NOT a.attisdropped \
              WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) \
              ORDER BY n.nspname, c.relname",
    )
    .bind(schemas)
    .bind(column)
    .fetch_all(&mut *conn)
    .await
    .context("cannot read the catalog")?;
    Ok(rows
        .into_iter()
        .map(
            |(oid, schema, name, owner, rls_enabled, rls_forced, attnum, ty)| TableInfo {
                oid: u32::try_from(oid).unwrap_or_default(),
                table: Table { schema, name },
                owner,
                rls_enabled,
                rls_forced,
                column: attnum.zip(ty),
            },
        )
        .collect())
}

/// The schemas to look in: those given, else the connection's current one.
pub async fn schemas(conn: &mut PgConnection, given: &[String]) -> anyhow::Result<Vec<String>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let (schema,): (Option<String>,) = sqlx::query_as("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await?;
    schema
        .map(|s| vec![s])
        .context("the connection has no current schema (empty search_path): pass --schema")
}

/// A row-level security policy on a table.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub permissive: bool,
    /// `*` (ALL), `r` (SELECT), `a` (INSERT), `w` (UPDATE), `d` (DELETE).
    pub command: String,
    /// Role names; `public` for PUBLIC.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
    /// Whether it applies to the role being checked (PUBLIC, the role, or
    /// one it is a member of); true when no role is checked.
    pub applies: bool,
}

impl Policy {
    pub fn command_name(&self) -> &'static str {
        match self.command.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        }
    }
}

/// A catalog row of [`policies`].
type PolicyRow = (
    String,
    bool,
    String,
    Vec<String>,
    Option<String>,
    Option<String>,
    bool,
);

pub async fn policies(
    conn: &mut PgConnection,
    oid: u32,
    role: Option<&str>,
) -> anyhow::Result<Vec<Policy>> {
    let rows: Vec<PolicyRow> = sqlx::query_as(
        "SELECT p.polname::text, p.polpermissive, p.polcmd::text, \
                    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END \
                            FROM unnest(p.polroles) r), \
                    pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid), \
                    $2::text IS NULL OR EXISTS (SELECT 1 FROM unnest(p.polroles) r \
                        WHERE r = 0 OR pg_has_role($2::text, r, 'MEMBER')) \
               FROM pg_policy p WHERE p.polrelid = $1::int8::oid ORDER BY p.polname",
    )
    .bind(i64::from(oid))
    .bind(role)
    .fetch_all(&mut *conn)
    .await
    .context("cannot read the table's policies")?;
    Ok(rows
        .into_iter()
        .map(
            |(name, permissive, command, roles, using, with_check, applies)| Policy {
                name,
                permissive,
                command,
                roles,
                using,
                with_check,
                applies,
            },
        )
        .collect())
}

/// Whether a plain (not partial, not expression) index leads with the column.
pub async fn leading_index(conn: &mut PgConnection, oid: u32, attnum: i16) -> anyhow::Result<bool> {
    let (found,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_index \
          WHERE indrelid = $1::int8::oid AND indkey[0] = $2 AND indpred IS NULL)",
    )
    .bind(i64::from(oid))
    .bind(attnum)
    .fetch_one(&mut *conn)
    .await?;
    Ok(found)
}

/// How PostgreSQL itself writes the tenant predicate for this column and
/// type once stored in a policy (`pg_get_expr`), so stored policies are
/// compared exactly: a policy on a temporary table with the same column is
/// created and read back inside a savepoint, then rolled back (no lock on
/// the app's table). `Err` with PostgreSQL's reason when no such policy
/// can exist (a type without `=`, such as json).
pub async fn expected_predicate(
    conn: &mut PgConnection,
    column: &str,
    column_type: &str,
) -> anyhow::Result<Result<String, String>> {
    sqlx::query("SAVEPOINT tenantry_probe")
        .execute(&mut *conn)
        .await?;
    let probe = async {
        sqlx::query(&format!(
            "CREATE TEMPORARY TABLE tenantry_probe ({} {column_type})",
            ident(column)
        ))
        .execute(&mut *conn)
        .await?;
        sqlx::query(&format!(
            "CREATE POLICY tenantry_probe ON pg_temp.tenantry_probe USING ({})",
            tenant_predicate(column, column_type)
        ))
        .execute(&mut *conn)
        .await?;
        let (text,): (String,) = sqlx::query_as(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy \
              WHERE polrelid = 'pg_temp.tenantry_probe'::regclass AND polname = 'tenantry_probe'",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok::<_, sqlx::Error>(text)
    }
    .await;
    sqlx::query("ROLLBACK TO SAVEPOINT tenantry_probe")
        .execute(&mut *conn)
        .await?;
    match probe {
        Ok(text) => Ok(Ok(text)),
        Err(sqlx::Error::Database(e)) => Ok(Err(e.message().to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// What a role may do to row-level security.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub name: String,
    pub superuser: bool,
    pub bypassrls: bool,
}

pub async fn role(conn: &mut PgConnection, name: &str) -> anyhow::Result<Option<RoleInfo>> {
    let row: Option<(bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(superuser, bypassrls)| RoleInfo {
        name: name.to_owned(),
        superuser,
        bypassrls,
    }))
}

/// Whether `role` owns the table, directly or through a role it belongs to
/// (and so may `ALTER TABLE … NO FORCE ROW LEVEL SECURITY`, or drop the
/// policy).
pub async fn owns(conn: &mut PgConnection, role: &str, oid: u32) -> anyhow::Result<bool> {
    let (owns,): (bool,) = sqlx::query_as(
        "SELECT pg_has_role($1::text, c.relowner, 'MEMBER') FROM pg_class c WHERE c.oid = $2::int8::oid",
    )
    .bind(role)
    .bind(i64::from(oid))
    .fetch_one(&mut *conn)
    .await?;
    Ok(owns)
}

/// The SQL that gives the app an ordinary request role, for a refusal.
pub fn proper_role_sql(role: &str, schemas: &[String]) -> String {
    let mut sql = String::from(
        "  -- a new role for the app's requests:\n  \
         CREATE ROLE app_user LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS;\n",
    );
    for schema in schemas {
        let s = ident(schema);
        sql.push_str(&format!(
            "  GRANT USAGE ON SCHEMA {s} TO app_user;\n  \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO app_user;\n  \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO app_user;\n"
        ));
    }
    sql.push_str(&format!(
        "  -- or take the privilege away from this one:\n  \
         ALTER ROLE {} NOSUPERUSER NOBYPASSRLS;\n",
        ident(role)
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_cannot_escape_their_quotes() {
        assert_eq!(ident("leads"), "\"leads\"");
        assert_eq!(
            ident("x\"; DROP TABLE leads; --"),
            "\"x\"\"; DROP TABLE leads; --\""
        );
        let t = Table {
            schema: "app".into(),
            name: "le\"ads".into(),
        };
        assert_eq!(t.sql(), "\"app\".\"le\"\"ads\"");
        assert_eq!(t.to_string(), "app.le\"ads");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("bad password s3cret for u", "postgres://u:s3cret@h:5432/db"),
            "bad password *** for u"
        );
        assert_eq!(redact("x", "postgres://u@h/db"), "x");
    }
}
