//! Row-level security for the app's own PostgreSQL database (`tenantry
//! app-db`), keyed on the tenant the gateway resolved. The app sets
//! `app.tenant_id` once per transaction (`SELECT set_config('app.tenant_id',
//! $1, true)`, from the `X-Tenant-Id` header); the policies installed here do
//! the rest. See docs/app-isolation.md.
//!
//! Exit codes: `isolate` 0 done, 2 refused or failed (nothing changed);
//! `doctor` 0 clean, 1 findings, 2 error.

pub mod doctor;
pub mod isolate;
pub mod sql;

use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AppDbCommand {
    /// Install row-level security on the app's tables, idempotently, in one
    /// transaction: RLS enabled and forced, a tenant policy for reads and
    /// writes, an index led by the tenant column.
    Isolate(IsolateArgs),
    /// Check the app's tables; exits 1 on any finding (for CI), 2 on error.
    Doctor(DoctorArgs),
}

#[derive(Args)]
pub struct Target {
    /// The app's database (a role that owns its tables, for `isolate`).
    #[arg(long, env = "APP_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The tenant column.
    #[arg(long, default_value = "tenant_id")]
    pub column: String,
    /// Schemas to look in (repeatable); default: the connection's current
    /// schema.
    #[arg(long = "schema")]
    pub schemas: Vec<String>,
    /// The role the app's requests run as: refused if it is a superuser or
    /// has BYPASSRLS, flagged if it owns the tables.
    #[arg(long)]
    pub role: Option<String>,
}

#[derive(Args)]
pub struct IsolateArgs {
    #[command(flatten)]
    pub target: Target,
    /// A table (`name` or `schema.name`, as in the catalog; repeatable).
    #[arg(long = "table", required_unless_present = "all")]
    pub tables: Vec<String>,
    /// Every table of the schemas that has the tenant column.
    #[arg(long, conflicts_with = "tables")]
    pub all: bool,
    /// Print the SQL it would run, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: Target,
    /// A table that holds no tenant data and needs no tenant column
    /// (`name` or `schema.name`; repeatable).
    #[arg(long = "exempt")]
    pub exempt: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `app-db` command on its own runtime (it needs no Tenantry
/// configuration, only the app's database).
pub fn main(command: AppDbCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("tenantry app-db: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match command {
            AppDbCommand::Isolate(args) => isolate::run(args).await,
            AppDbCommand::Doctor(args) => doctor::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tenantry app-db: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether a `--table`/`--exempt` argument names this table: `name` in one
/// of the schemas, or `schema.name` (a name that itself holds a dot matches
/// as a whole first).
pub(crate) fn names(arg: &str, table: &sql::Table, schemas: &[String]) -> bool {
    if table.name == arg && schemas.contains(&table.schema) {
        return true;
    }
    arg.split_once('.')
        .is_some_and(|(schema, name)| table.schema == schema && table.name == name)
}
