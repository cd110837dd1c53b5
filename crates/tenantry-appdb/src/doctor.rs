//! `tenantry app-db doctor`: reads the catalog of the app's database and
//! reports, table by table, whether row-level security isolates tenants;
//! and whether the app's role is subject to it at all. It changes nothing
//! (its one transaction is rolled back; the policy probe uses a temporary
//! table, so no lock is taken on the app's tables).

use super::sql::{self, POLICY};
use super::{DoctorArgs, names};
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Isolation does not hold, or may not: exit 1.
    Fail,
    /// Worth knowing; does not fail the run.
    Warn,
}

struct Finding {
    level: Level,
    /// `schema.table`, or `role NAME`.
    subject: String,
    check: &'static str,
    detail: String,
}

struct Row {
    table: String,
    column_type: Option<String>,
    rls_enabled: bool,
    rls_forced: bool,
    /// `ok`, `missing`, `incorrect`, `impossible`.
    policy: &'static str,
    extra: Vec<String>,
    index: bool,
    exempt: bool,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut conn = sql::connect(&args.target.database_url).await?;
    sqlx::query("BEGIN").execute(&mut conn).await?;
    let report = inspect(&mut conn, &args).await;
    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
    let (rows, findings, role) = report?;
    let failed = findings.iter().any(|f| f.level == Level::Fail);
    if args.json {
        println!("{}", to_json(&rows, &findings, &role, failed));
    } else {
        print_text(&rows, &findings, &role, &args.target.column);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

type Report = (Vec<Row>, Vec<Finding>, Value);

async fn inspect(conn: &mut PgConnection, args: &DoctorArgs) -> anyhow::Result<Report> {
    let target = &args.target;
    let column = target.column.as_str();
    sqlx::query("SET LOCAL lock_timeout = '5s'")
        .execute(&mut *conn)
        .await?;
    let schemas = sql::schemas(conn, &target.schemas).await?;
    let role_name = match &target.role {
        Some(role) => role.clone(),
        None => {
            let (user,): (String,) = sqlx::query_as("SELECT current_user::text")
                .fetch_one(&mut *conn)
                .await?;
            user
        }
    };
    let mut findings = Vec::new();
    let role_subject = format!("role {role_name}");
    let role_info = sql::role(conn, &role_name).await?;
    let role_json = match &role_info {
        None => {
            findings.push(Finding {
                level: Level::Fail,
                subject: role_subject.clone(),
                check: "role",
                detail: "does not exist".into(),
            });
            json!({"name": role_name, "exists": false})
        }
        Some(info) => {
            if info.superuser || info.bypassrls {
                findings.push(Finding {
                    level: Level::Fail,
                    subject: role_subject.clone(),
                    check: "role_bypasses_rls",
                    detail: format!(
                        "{}: row-level security never applies to it; run the app's requests \
                         as an ordinary role:\n{}",
                        if info.superuser {
                            "is a superuser"
                        } else {
                            "has BYPASSRLS"
                        },
                        sql::proper_role_sql(&role_name, &schemas)
                    ),
                });
            }
            json!({"name": role_name, "exists": true, "superuser": info.superuser,
                   "bypassrls": info.bypassrls})
        }
    };
    let checked_role = role_info.as_ref().map(|r| r.name.as_str());

    let mut rows = Vec::new();
    let mut owned = Vec::new();
    for info in sql::tables(conn, &schemas, column).await? {
        let subject = info.table.to_string();
        let exempt = args.exempt.iter().any(|e| names(e, &info.table, &schemas));
        let mut row = Row {
            table: subject.clone(),
            column_type: info.column.as_ref().map(|(_, t)| t.clone()),
            rls_enabled: info.rls_enabled,
            rls_forced: info.rls_forced,
            policy: "missing",
            extra: Vec::new(),
            index: false,
            exempt,
        };
        let mut fail = |check: &'static str, detail: String| {
            findings.push(Finding {
                level: Level::Fail,
                subject: subject.clone(),
                check,
                detail,
            })
        };
        let Some((attnum, column_type)) = &info.column else {
            if !exempt {
                fail(
                    "tenant_column",
                    format!(
                        "no column '{column}': its rows belong to no tenant (add the column, \
                         or pass --exempt {subject} if it holds no tenant data)"
                    ),
                );
            }
            rows.push(row);
            continue;
        };
        if !info.rls_enabled {
            fail(
                "rls_enabled",
                "row-level security is not enabled: every role sees every row".into(),
            );
        }
        if !info.rls_forced {
            fail(
                "rls_forced",
                format!(
                    "row-level security is not forced: its owner ('{}') bypasses it",
                    info.owner
                ),
            );
        }
        let policies = sql::policies(conn, info.oid, checked_role).await?;
        match sql::expected_predicate(conn, column, column_type).await? {
            Err(why) => {
                row.policy = "impossible";
                fail(
                    "tenant_policy",
                    format!(
                        "no tenant policy can compare a {column_type} column with the setting: {why}"
                    ),
                );
            }
            Ok(expected) => {
                let is_tenant_policy = |p: &sql::Policy| {
                    p.permissive
                        && p.command == "*"
                        && p.using.as_deref() == Some(expected.as_str())
                        && p.with_check.as_deref() == Some(expected.as_str())
                };
                if policies.iter().any(is_tenant_policy) {
                    row.policy = "ok";
                } else if let Some(p) = policies.iter().find(|p| p.name == POLICY) {
                    row.policy = "incorrect";
                    fail(
                        "tenant_policy",
                        format!(
                            "the policy '{POLICY}' is not the tenant policy: {} {} USING ({}) \
                             WITH CHECK ({}); expected AS PERMISSIVE FOR ALL USING ({expected}) \
                             WITH CHECK ({expected}) (tenantry app-db isolate replaces it)",
                            if p.permissive {
                                "PERMISSIVE"
                            } else {
                                "RESTRICTIVE"
                            },
                            p.command_name(),
                            p.using.as_deref().unwrap_or("none"),
                            p.with_check.as_deref().unwrap_or("none"),
                        ),
                    );
                } else {
                    fail(
                        "tenant_policy",
                        format!(
                            "no policy USING and WITH CHECK ({expected}) for all commands \
                             (tenantry app-db isolate creates it)"
                        ),
                    );
                }
                for p in &policies {
                    if p.permissive && p.applies && !is_tenant_policy(p) && p.name != POLICY {
                        row.extra.push(p.name.clone());
                        fail(
                            "extra_permissive_policy",
                            format!(
                                "the permissive policy '{}' ({} TO {}, USING ({}), WITH CHECK \
                                 ({})) is OR-ed with the tenant policy and widens access: make \
                                 it AS RESTRICTIVE or drop it",
                                p.name,
                                p.command_name(),
                                p.roles.join(", "),
                                p.using.as_deref().unwrap_or("none"),
                                p.with_check.as_deref().unwrap_or("none"),
                            ),
                        );
                    }
                }
            }
        }
        row.index = sql::leading_index(conn, info.oid, *attnum).await?;
        if !row.index {
            fail(
                "leading_index",
                format!(
                    "no index leads with '{column}': every tenant's query scans the whole table \
                     (CREATE INDEX CONCURRENTLY ON {} ({}))",
                    info.table.sql(),
                    sql::ident(column)
                ),
            );
        }
        if let Some(role) = checked_role
            && sql::owns(conn, role, info.oid).await?
        {
            owned.push(subject.clone());
        }
        rows.push(row);
    }
    if !owned.is_empty() {
        findings.push(Finding {
            level: Level::Warn,
            subject: role_subject,
            check: "role_owns_tables",
            detail: format!(
                "owns {}: owners bypass row-level security unless it is FORCEd (checked above), \
                 and an owner can switch FORCE off or drop the policy; run requests as a role \
                 that owns nothing",
                owned.join(", ")
            ),
        });
    }
    let mut role_json = role_json;
    role_json["owns"] = json!(owned);
    Ok((rows, findings, role_json))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Fail => "fail",
        Level::Warn => "warn",
    }
}

fn to_json(rows: &[Row], findings: &[Finding], role: &Value, failed: bool) -> Value {
    json!({
        "passed": !failed,
        "role": role,
        "tables": rows.iter().map(|r| json!({
            "table": r.table,
            "tenant_column": r.column_type.as_ref().map(|t| json!({"type": t})),
            "exempt": r.exempt,
            "rls_enabled": r.rls_enabled,
            "rls_forced": r.rls_forced,
            "tenant_policy": if r.column_type.is_some() { json!(r.policy) } else { Value::Null },
            "extra_permissive_policies": r.extra,
            "leading_index": r.index,
        })).collect::<Vec<_>>(),
        "findings": findings.iter().map(|f| json!({
            "level": level_name(f.level),
            "subject": f.subject,
            "check": f.check,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

fn print_text(rows: &[Row], findings: &[Finding], role: &Value, column: &str) {
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let mut grid = vec![[
        "TABLE".to_owned(),
        format!("COLUMN {column}"),
        "RLS".into(),
        "FORCED".into(),
        "POLICY".into(),
        "EXTRA PERMISSIVE".into(),
        "INDEX".into(),
    ]];
    for r in rows {
        grid.push(match &r.column_type {
            None => [
                r.table.clone(),
                if r.exempt { "exempt" } else { "NONE" }.into(),
                yes(r.rls_enabled).into(),
                yes(r.rls_forced).into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
            Some(ty) => [
                r.table.clone(),
                ty.clone(),
                yes(r.rls_enabled).into(),
                yes(r.rls_forced).into(),
                r.policy.to_ascii_uppercase().replace("OK", "ok"),
                if r.extra.is_empty() {
                    "none".into()
                } else {
                    r.extra.join(",")
                },
                yes(r.index).into(),
            ],
        });
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &grid {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    let name = role["name"].as_str().unwrap_or_default();
    println!();
    if findings.is_empty() {
        println!(
            "role {name}: subject to row-level security; {} tables checked, no findings",
            rows.len()
        );
        return;
    }
    println!("findings:");
    for f in findings {
        let mark = match f.level {
            Level::Fail => "FAIL",
            Level::Warn => "warn",
        };
        println!("  {mark}  {}  [{}]  {}", f.subject, f.check, f.detail);
    }
    let failures = findings.iter().filter(|f| f.level == Level::Fail).count();
    println!("{failures} failing findings");
}
