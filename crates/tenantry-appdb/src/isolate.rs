//! `tenantry app-db isolate`: installs row-level security on the app's
//! tables, all of it in one transaction (a failure leaves nothing changed),
//! idempotently (a second run changes nothing and says so).

use super::sql::{self, POLICY, TableInfo, ident};
use super::{IsolateArgs, names};
use anyhow::{Context, bail};
use sqlx::PgConnection;
use std::process::ExitCode;

/// How long a run waits for a table lock before it gives up (and rolls
/// back), rather than queueing the app's queries behind it indefinitely.
const LOCK_TIMEOUT: &str = "10s";

pub async fn run(args: IsolateArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let mut conn = sql::connect(&target.database_url).await?;
    sqlx::query("BEGIN").execute(&mut conn).await?;
    let outcome = plan_and_apply(&mut conn, &args).await;
    match outcome {
        Ok(Outcome::Done {
            lines,
            warnings,
            statements,
        }) => {
            if args.dry_run {
                sqlx::query("ROLLBACK").execute(&mut conn).await?;
                println!("-- dry run: nothing was changed; this is what isolate would run:");
                if statements.is_empty() {
                    println!("-- (nothing: every table is already isolated)");
                } else {
                    println!("BEGIN;");
                    for s in &statements {
                        println!("{s};");
                    }
                    println!("COMMIT;");
                }
            } else {
                sqlx::query("COMMIT")
                    .execute(&mut conn)
                    .await
                    .context("cannot commit: nothing was changed")?;
            }
            for line in &lines {
                if args.dry_run {
                    println!("-- would do: {line}");
                } else {
                    println!("{line}");
                }
            }
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Refused(why)) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            eprintln!("tenantry app-db isolate: refused, nothing was changed: {why}");
            Ok(ExitCode::from(2))
        }
        Err(err) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            Err(err.context("nothing was changed"))
        }
    }
}

enum Outcome {
    Done {
        /// One line per table: what was done, or "already isolated".
        lines: Vec<String>,
        warnings: Vec<String>,
        /// Every statement that changed (or, dry, would change) something.
        statements: Vec<String>,
    },
    Refused(String),
}

async fn plan_and_apply(conn: &mut PgConnection, args: &IsolateArgs) -> anyhow::Result<Outcome> {
    let target = &args.target;
    let column = target.column.as_str();
    sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(&mut *conn)
        .await?;
    // Two runs at once: the second waits for the first, then finds
    // everything done (instead of failing on a duplicate policy).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry app-db isolate'))")
        .execute(&mut *conn)
        .await?;
    let schemas = sql::schemas(conn, &target.schemas).await?;

    let mut warnings = Vec::new();
    match &target.role {
        Some(role) => match sql::role(conn, role).await? {
            None => bail!(
                "the role '{role}' (--role) does not exist:\n{}",
                sql::proper_role_sql(role, &schemas)
            ),
            Some(info) if info.superuser || info.bypassrls => {
                let what = if info.superuser {
                    "is a superuser"
                } else {
                    "has BYPASSRLS"
                };
                return Ok(Outcome::Refused(format!(
                    "the app's request role '{role}' {what}: row-level security never applies \
                     to it, so these policies would isolate nothing. Run the app's requests as \
                     an ordinary role:\n{}",
                    sql::proper_role_sql(role, &schemas)
                )));
            }
            Some(_) => {}
        },
        None => warnings.push(
            "no --role given: the role the app's requests run as was not checked (a superuser \
             or BYPASSRLS role ignores every policy)"
                .to_owned(),
        ),
    }

    // The tables: every one with the column (--all), or those named.
    let mut lookup = schemas.clone();
    for arg in &args.tables {
        if let Some((schema, _)) = arg.split_once('.')
            && !lookup.iter().any(|s| s == schema)
        {
            lookup.push(schema.to_owned());
        }
    }
    let catalog = sql::tables(conn, &lookup, column).await?;
    let chosen: Vec<TableInfo> = if args.all {
        let with: Vec<_> = catalog
            .into_iter()
            .filter(|t| schemas.contains(&t.table.schema) && t.column.is_some())
            .collect();
        if with.is_empty() {
            bail!(
                "no table in schema {} has a column '{column}'",
                schemas.join(", ")
            );
        }
        with
    } else {
        let mut chosen: Vec<TableInfo> = Vec::new();
        for arg in &args.tables {
            let found = catalog
                .iter()
                .find(|t| t.table.name == *arg && schemas.contains(&t.table.schema))
                .or_else(|| catalog.iter().find(|t| names(arg, &t.table, &[])));
            let Some(info) = found else {
                bail!(
                    "no table '{arg}' in schema {} (names are matched exactly, case included; \
                     qualify them as schema.name)",
                    schemas.join(", ")
                );
            };
            if info.column.is_none() {
                bail!("table {} has no column '{column}' (--column)", info.table);
            }
            if !chosen.iter().any(|c| c.oid == info.oid) {
                chosen.push(info.clone());
            }
        }
        chosen
    };

    let mut lines = Vec::new();
    let mut statements = Vec::new();
    for info in &chosen {
        let Some((attnum, column_type)) = &info.column else {
            continue;
        };
        let (done, mut sql) =
            isolate_table(conn, info, column, column_type, *attnum, args.dry_run).await?;
        lines.push(if done.is_empty() {
            format!("{}: already isolated", info.table)
        } else {
            format!("{}: {}", info.table, done.join(", "))
        });
        statements.append(&mut sql);

        for policy in sql::policies(conn, info.oid, target.role.as_deref()).await? {
            if policy.permissive && policy.name != POLICY && policy.applies {
                warnings.push(format!(
                    "{}: the permissive policy '{}' ({} TO {}) is OR-ed with the tenant policy \
                     and may widen access; make it AS RESTRICTIVE or drop it \
                     (tenantry app-db doctor reports it)",
                    info.table,
                    policy.name,
                    policy.command_name(),
                    policy.roles.join(", ")
                ));
            }
        }
        if let Some(role) = &target.role
            && sql::owns(conn, role, info.oid).await?
        {
            warnings.push(format!(
                "{}: the request role '{role}' owns it (as owner '{}' or a member of it). \
                 Owners bypass row-level security unless it is FORCEd, which isolate sets; \
                 but an owner can ALTER TABLE … NO FORCE ROW LEVEL SECURITY or drop the \
                 policy: run requests as a role that owns nothing",
                info.table, info.owner
            ));
        }
    }
    Ok(Outcome::Done {
        lines,
        warnings,
        statements,
    })
}

/// Brings one table to the isolated state; returns what it did and the
/// statements (run unless `dry_run`).
async fn isolate_table(
    conn: &mut PgConnection,
    info: &TableInfo,
    column: &str,
    column_type: &str,
    attnum: i16,
    dry_run: bool,
) -> anyhow::Result<(Vec<&'static str>, Vec<String>)> {
    let table = info.table.sql();
    let mut done = Vec::new();
    let mut statements = Vec::new();
    if !info.rls_enabled {
        done.push("enabled row-level security");
        statements.push(format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"));
    }
    if !info.rls_forced {
        done.push("forced it (the owner is subject to it too)");
        statements.push(format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"));
    }

    let expected = match sql::expected_predicate(conn, column, column_type).await? {
        Ok(text) => text,
        Err(why) => bail!(
            "{}: no tenant policy can compare column '{column}' of type {column_type} \
             with the setting: {why}",
            info.table
        ),
    };
    let create = format!(
        "CREATE POLICY {} ON {table} AS PERMISSIVE FOR ALL TO PUBLIC USING ({pred}) WITH CHECK ({pred})",
        ident(POLICY),
        pred = sql::tenant_predicate(column, column_type)
    );
    let existing = sql::policies(conn, info.oid, None)
        .await?
        .into_iter()
        .find(|p| p.name == POLICY);
    match existing {
        None => {
            done.push("created the tenant policy");
            statements.push(create);
        }
        Some(p) => {
            let correct = p.permissive
                && p.command == "*"
                && p.roles == ["public"]
                && p.using.as_deref() == Some(expected.as_str())
                && p.with_check.as_deref() == Some(expected.as_str());
            if !correct {
                done.push("replaced a tenant policy that did not match");
                statements.push(format!("DROP POLICY {} ON {table}", ident(POLICY)));
                statements.push(create);
            }
        }
    }

    if !sql::leading_index(conn, info.oid, attnum).await? {
        done.push("created an index on the tenant column");
        statements.push(format!("CREATE INDEX ON {table} ({})", ident(column)));
    }

    if !dry_run {
        for statement in &statements {
            sqlx::query(statement)
                .execute(&mut *conn)
                .await
                .with_context(|| format!("{}: {statement}", info.table))?;
        }
    }
    Ok((done, statements))
}
