//! The app's own PostgreSQL database, for the `tenantry app-db` tests and
//! the gateway apps: a fresh database on the test cluster (TEST_PG_URL) and
//! an ordinary login role for the app's requests (no superuser, no
//! BYPASSRLS, owns nothing), so row-level security really applies.
#![allow(dead_code)]

use crate::common::{pg_admin, pg_url_for, random_suffix};
use sqlx::{Connection, Executor, PgConnection};

pub struct AppPg {
    pub name: String,
    /// The app's request role.
    pub role: String,
    /// Superuser URL of this database (what `isolate` runs as here).
    pub owner_url: String,
    /// The app role's URL.
    pub app_url: String,
}

impl AppPg {
    pub async fn new() -> AppPg {
        let suffix = random_suffix();
        let name = format!("appdb_{suffix}");
        let role = format!("app_{suffix}");
        let admin = pg_admin().await;
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create app database");
        admin
            .execute(format!("CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS").as_str())
            .await
            .expect("create app role");
        admin.close().await;
        AppPg {
            owner_url: pg_url_for(&name, None),
            app_url: pg_url_for(&name, Some(&role)),
            name,
            role,
        }
    }

    /// Runs SQL as the superuser (setup, and reading behind RLS's back).
    pub async fn exec(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.owner_url)
            .await
            .expect("connect");
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
    }

    pub async fn superuser(&self) -> PgConnection {
        PgConnection::connect(&self.owner_url)
            .await
            .expect("connect")
    }

    /// Lets the app role use every table and sequence of these schemas.
    pub async fn grant(&self, schemas: &[&str]) {
        for schema in schemas {
            let s = format!("\"{}\"", schema.replace('"', "\"\""));
            let r = &self.role;
            self.exec(&format!(
                "GRANT USAGE ON SCHEMA {s} TO \"{r}\"; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO \"{r}\"; \
                 GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO \"{r}\";"
            ))
            .await;
        }
    }

    /// A connection as the app's request role.
    pub async fn app(&self) -> PgConnection {
        PgConnection::connect(&self.app_url)
            .await
            .expect("connect as the app role")
    }

    /// `tenantry app-db ARGS --database-url <superuser URL>`: exit code,
    /// stdout, stderr.
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        run_app_db(&self.owner_url, args).await
    }
}

pub async fn run_app_db(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.arg("app-db");
    cmd.args(args.iter().take(1));
    cmd.args(["--database-url", url]);
    cmd.args(args.iter().skip(1));
    let out = cmd.output().await.expect("run tenantry app-db");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
