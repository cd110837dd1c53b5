//! The remote commands, one enum per resource, each verb one API call (see
//! openapi.json for the shapes). Lists take `--limit`/`--cursor` and `--all`.

use super::error::{CliError, CliResult};
use super::http::seg;
use super::{Ctx, Remote, json_arg};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// Pagination of a list.
#[derive(Args, Debug, Clone, Default)]
pub struct Page {
    /// Items per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue from this cursor (printed after a partial list).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow every page.
    #[arg(long)]
    pub all: bool,
}

impl Page {
    fn query(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("limit", self.limit.map(|l| l.to_string())),
            ("cursor", self.cursor.clone()),
        ]
    }
}

/// A list call: one page, or every page with `--all`.
async fn list(
    ctx: &Ctx,
    path: &str,
    page: &Page,
    mut query: Vec<(&'static str, Option<String>)>,
) -> CliResult<Value> {
    query.extend(page.query());
    let first = ctx.http.get(path, &query).await?;
    if page.all {
        ctx.http.all_pages(path, &query, first).await
    } else {
        Ok(first)
    }
}

/// Puts `value` in `body[name]` when set.
fn put_opt<T: serde::Serialize>(body: &mut Map<String, Value>, name: &str, value: Option<T>) {
    if let Some(v) = value {
        body.insert(name.to_owned(), json!(v));
    }
}

fn put_json(body: &mut Map<String, Value>, name: &str, text: Option<&str>) -> CliResult {
    if let Some(text) = text {
        body.insert(name.to_owned(), json_arg(name, text)?);
    }
    Ok(())
}

fn require_changes(body: &Map<String, Value>) -> CliResult {
    if body.is_empty() {
        return Err(CliError::usage(
            "nothing to change: pass at least one option",
        ));
    }
    Ok(())
}

fn enabled_flag(enable: bool, disable: bool) -> Option<bool> {
    match (enable, disable) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------- tenants

const TENANT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "status",
    "plan",
    "region",
    "subdomain",
    "created_at",
];

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// List tenants.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Show one tenant.
    Show { id: String },
    /// Create a tenant.
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        subdomain: Option<String>,
        /// JSON object (inline, @file or -).
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Change a tenant's name, plan, region, subdomain or metadata.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        subdomain: Option<String>,
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Delete a tenant (soft, with the grace period; --purge: at once).
    Delete {
        id: String,
        #[arg(long)]
        purge: bool,
    },
    /// Suspend a tenant (its requests answer 403 tenant_suspended).
    Suspend { id: String },
    /// Reactivate a suspended or deleted (within grace) tenant.
    Reactivate { id: String },
    /// Usage statistics of a tenant.
    Stats { id: String },
    /// A tenant's event log.
    Events {
        id: String,
        #[command(flatten)]
        page: Page,
    },
}

async fn tenants(ctx: &Ctx, cmd: TenantsCommand) -> CliResult {
    match cmd {
        TenantsCommand::List { status, plan, page } => {
            let v = list(
                ctx,
                "/v1/tenants",
                &page,
                vec![("status", status), ("plan", plan)],
            )
            .await?;
            ctx.out.list(&v, TENANT_COLUMNS);
        }
        TenantsCommand::Show { id } => {
            ctx.out.one(
                &ctx.http
                    .get(&format!("/v1/tenants/{}", seg(&id)), &[])
                    .await?,
            );
        }
        TenantsCommand::Create {
            id,
            name,
            plan,
            region,
            subdomain,
            metadata,
        } => {
            let mut body = Map::new();
            body.insert("id".into(), json!(id));
            body.insert("name".into(), json!(name));
            put_opt(&mut body, "plan", plan);
            put_opt(&mut body, "region", region);
            put_opt(&mut body, "subdomain", subdomain);
            put_json(&mut body, "metadata", metadata.as_deref())?;
            ctx.out
                .one(&ctx.http.post("/v1/tenants", &Value::Object(body)).await?);
        }
        TenantsCommand::Update {
            id,
            name,
            plan,
            region,
            subdomain,
            metadata,
        } => {
            let mut body = Map::new();
            put_opt(&mut body, "name", name);
            put_opt(&mut body, "plan", plan);
            put_opt(&mut body, "region", region);
            put_opt(&mut body, "subdomain", subdomain);
            put_json(&mut body, "metadata", metadata.as_deref())?;
            require_changes(&body)?;
            let path = format!("/v1/tenants/{}", seg(&id));
            ctx.out
                .one(&ctx.http.patch(&path, &Value::Object(body)).await?);
        }
        TenantsCommand::Delete { id, purge } => {
            let path = format!("/v1/tenants/{}", seg(&id));
            let q = [("purge", purge.then(|| "true".to_owned()))];
            ctx.out.one(&ctx.http.delete(&path, &q).await?);
        }
        TenantsCommand::Suspend { id } => {
            let path = format!("/v1/tenants/{}/suspend", seg(&id));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
        TenantsCommand::Reactivate { id } => {
            let path = format!("/v1/tenants/{}/reactivate", seg(&id));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
        TenantsCommand::Stats { id } => {
            ctx.out.one(
                &ctx.http
                    .get(&format!("/v1/tenants/{}/stats", seg(&id)), &[])
                    .await?,
            );
        }
        TenantsCommand::Events { id, page } => {
            let v = list(
                ctx,
                &format!("/v1/tenants/{}/events", seg(&id)),
                &page,
                vec![],
            )
            .await?;
            ctx.out.list(&v, &["id", "type", "created_at"]);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- domains

#[derive(Subcommand, Debug)]
pub enum DomainsCommand {
    /// A tenant's custom domains and their verification status.
    List { tenant: String },
    /// Attach a custom domain; prints the DNS TXT record that proves ownership.
    Add { tenant: String, domain: String },
    /// Check the domain's TXT record now.
    Verify { tenant: String, domain: String },
    /// Detach a domain.
    Remove { tenant: String, domain: String },
}

const DOMAIN_COLUMNS: &[&str] = &[
    "domain",
    "status",
    "verified_at",
    "dns_record.name",
    "dns_record.value",
];

async fn domains(ctx: &Ctx, cmd: DomainsCommand) -> CliResult {
    match cmd {
        DomainsCommand::List { tenant } => {
            let v = ctx
                .http
                .get(&format!("/v1/tenants/{}/domains", seg(&tenant)), &[])
                .await?;
            ctx.out.list(&v, DOMAIN_COLUMNS);
        }
        DomainsCommand::Add { tenant, domain } => {
            let path = format!("/v1/tenants/{}/domains", seg(&tenant));
            ctx.out
                .one(&ctx.http.post(&path, &json!({"domain": domain})).await?);
        }
        DomainsCommand::Verify { tenant, domain } => {
            let path = format!(
                "/v1/tenants/{}/domains/{}/verify",
                seg(&tenant),
                seg(&domain)
            );
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
        DomainsCommand::Remove { tenant, domain } => {
            let path = format!("/v1/tenants/{}/domains/{}", seg(&tenant), seg(&domain));
            let v = ctx.http.delete(&path, &[]).await?;
            ctx.out.done(&v, &format!("domain {domain} removed"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- api keys

const KEY_COLUMNS: &[&str] = &[
    "id",
    "name",
    "start",
    "scopes",
    "environment",
    "enabled",
    "expires_at",
    "revoked_at",
    "last_used_at",
];

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// A tenant's API keys (never their secrets).
    List {
        tenant: String,
        #[command(flatten)]
        page: Page,
    },
    Show {
        tenant: String,
        key_id: String,
    },
    /// Create a key; its secret is printed once.
    Create {
        tenant: String,
        #[arg(long)]
        name: String,
        /// A scope (repeatable), e.g. tenant:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// live or test.
        #[arg(long)]
        environment: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        metadata: Option<String>,
    },
    Update {
        tenant: String,
        key_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        metadata: Option<String>,
    },
    Revoke {
        tenant: String,
        key_id: String,
    },
    /// A new key with everything copied; the old one works for the overlap.
    Rotate {
        tenant: String,
        key_id: String,
        #[arg(long)]
        overlap_seconds: Option<i64>,
    },
    /// Verify a key (read from standard input) as a service would.
    Verify {
        /// Required scopes (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

async fn api_keys(ctx: &Ctx, cmd: ApiKeysCommand) -> CliResult {
    let base = |t: &str| format!("/v1/tenants/{}/api-keys", seg(t));
    match cmd {
        ApiKeysCommand::List { tenant, page } => {
            let v = list(ctx, &base(&tenant), &page, vec![]).await?;
            ctx.out.list(&v, KEY_COLUMNS);
        }
        ApiKeysCommand::Show { tenant, key_id } => {
            ctx.out.one(
                &ctx.http
                    .get(&format!("{}/{}", base(&tenant), seg(&key_id)), &[])
                    .await?,
            );
        }
        ApiKeysCommand::Create {
            tenant,
            name,
            scopes,
            environment,
            expires_at,
            metadata,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("scopes".into(), json!(scopes));
            put_opt(&mut body, "environment", environment);
            put_opt(&mut body, "expires_at", expires_at);
            put_json(&mut body, "metadata", metadata.as_deref())?;
            let v = ctx.http.post(&base(&tenant), &Value::Object(body)).await?;
            ctx.out.one(&v);
            if !ctx.out.json {
                eprintln!("the key is shown once: store it now");
            }
        }
        ApiKeysCommand::Update {
            tenant,
            key_id,
            name,
            scopes,
            expires_at,
            enable,
            disable,
            metadata,
        } => {
            let mut body = Map::new();
            put_opt(&mut body, "name", name);
            if !scopes.is_empty() {
                body.insert("scopes".into(), json!(scopes));
            }
            put_opt(&mut body, "expires_at", expires_at);
            put_opt(&mut body, "enabled", enabled_flag(enable, disable));
            put_json(&mut body, "metadata", metadata.as_deref())?;
            require_changes(&body)?;
            let path = format!("{}/{}", base(&tenant), seg(&key_id));
            ctx.out
                .one(&ctx.http.patch(&path, &Value::Object(body)).await?);
        }
        ApiKeysCommand::Revoke { tenant, key_id } => {
            let path = format!("{}/{}/revoke", base(&tenant), seg(&key_id));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
        ApiKeysCommand::Rotate {
            tenant,
            key_id,
            overlap_seconds,
        } => {
            let mut body = Map::new();
            put_opt(&mut body, "overlap_seconds", overlap_seconds);
            let path = format!("{}/{}/rotate", base(&tenant), seg(&key_id));
            ctx.out
                .one(&ctx.http.post(&path, &Value::Object(body)).await?);
        }
        ApiKeysCommand::Verify { scopes } => {
            let mut key = String::new();
            std::io::stdin()
                .read_line(&mut key)
                .map_err(|e| CliError::generic(format!("cannot read the key: {e}")))?;
            let mut body = Map::new();
            body.insert("key".into(), json!(key.trim()));
            if !scopes.is_empty() {
                body.insert("scopes".into(), json!(scopes));
            }
            let v = ctx
                .http
                .post("/v1/keys/verify", &Value::Object(body))
                .await?;
            ctx.out.one(&v);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum OperatorKeysCommand {
    List,
    /// Create an operator key; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        environment: Option<String>,
    },
    Revoke {
        key_id: String,
    },
}

async fn operator_keys(ctx: &Ctx, cmd: OperatorKeysCommand) -> CliResult {
    match cmd {
        OperatorKeysCommand::List => {
            let v = ctx.http.get("/v1/operator-keys", &[]).await?;
            ctx.out.list(
                &v,
                &[
                    "id",
                    "name",
                    "start",
                    "environment",
                    "created_at",
                    "last_used_at",
                    "revoked_at",
                ],
            );
        }
        OperatorKeysCommand::Create { name, environment } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            put_opt(&mut body, "environment", environment);
            ctx.out.one(
                &ctx.http
                    .post("/v1/operator-keys", &Value::Object(body))
                    .await?,
            );
        }
        OperatorKeysCommand::Revoke { key_id } => {
            let path = format!("/v1/operator-keys/{}/revoke", seg(&key_id));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- vault

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// A tenant's credentials, secret fields masked.
    List {
        tenant: String,
    },
    Show {
        tenant: String,
        cred_id: String,
    },
    Create {
        tenant: String,
        /// whatsapp, genesys, smtp, oauth_client or generic.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// The credential's fields: JSON object (inline, @file or -).
        #[arg(long)]
        data: String,
    },
    Update {
        tenant: String,
        cred_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        data: Option<String>,
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        #[arg(long)]
        inactive: bool,
    },
    Delete {
        tenant: String,
        cred_id: String,
    },
    /// Print a credential's plaintext (audited). Asks for confirmation on a
    /// terminal; without one, needs --yes.
    Reveal {
        tenant: String,
        cred_id: String,
        #[arg(long)]
        yes: bool,
    },
    /// Who revealed this credential, and when.
    AccessLog {
        tenant: String,
        cred_id: String,
        #[command(flatten)]
        page: Page,
    },
}

async fn credentials(ctx: &Ctx, cmd: CredentialsCommand) -> CliResult {
    let base = |t: &str| format!("/v1/tenants/{}/credentials", seg(t));
    let columns = &[
        "id",
        "kind",
        "name",
        "is_active",
        "sealed_fields",
        "last_revealed_at",
        "updated_at",
    ];
    match cmd {
        CredentialsCommand::List { tenant } => {
            ctx.out
                .list(&ctx.http.get(&base(&tenant), &[]).await?, columns);
        }
        CredentialsCommand::Show { tenant, cred_id } => {
            ctx.out.one(
                &ctx.http
                    .get(&format!("{}/{}", base(&tenant), seg(&cred_id)), &[])
                    .await?,
            );
        }
        CredentialsCommand::Create {
            tenant,
            kind,
            name,
            data,
        } => {
            let body = json!({"kind": kind, "name": name, "data": json_arg("data", &data)?});
            ctx.out.one(&ctx.http.post(&base(&tenant), &body).await?);
        }
        CredentialsCommand::Update {
            tenant,
            cred_id,
            name,
            data,
            active,
            inactive,
        } => {
            let mut body = Map::new();
            put_opt(&mut body, "name", name);
            put_json(&mut body, "data", data.as_deref())?;
            put_opt(&mut body, "is_active", enabled_flag(active, inactive));
            require_changes(&body)?;
            let path = format!("{}/{}", base(&tenant), seg(&cred_id));
            ctx.out
                .one(&ctx.http.patch(&path, &Value::Object(body)).await?);
        }
        CredentialsCommand::Delete { tenant, cred_id } => {
            let v = ctx
                .http
                .delete(&format!("{}/{}", base(&tenant), seg(&cred_id)), &[])
                .await?;
            ctx.out.done(&v, &format!("credential {cred_id} deleted"));
        }
        CredentialsCommand::Reveal {
            tenant,
            cred_id,
            yes,
        } => {
            super::confirm(
                yes,
                &format!(
                    "reveal the plaintext of credential {cred_id} of {tenant} (the reveal is audited)"
                ),
            )?;
            let path = format!("{}/{}/reveal", base(&tenant), seg(&cred_id));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
        CredentialsCommand::AccessLog {
            tenant,
            cred_id,
            page,
        } => {
            let path = format!("{}/{}/access-log", base(&tenant), seg(&cred_id));
            let v = list(ctx, &path, &page, vec![]).await?;
            ctx.out
                .list(&v, &["at", "actor", "action", "outcome", "request_id"]);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// A tenant's settings of one category (sensitive fields masked).
    Show { tenant: String, category: String },
    /// Replace a category's settings (sensitive fields are sealed).
    Set {
        tenant: String,
        category: String,
        /// JSON object (inline, @file or -).
        #[arg(long)]
        data: String,
    },
    /// Print the settings with sensitive fields in plaintext (audited).
    Reveal {
        tenant: String,
        category: String,
        #[arg(long)]
        yes: bool,
    },
}

async fn settings(ctx: &Ctx, cmd: SettingsCommand) -> CliResult {
    let path = |t: &str, c: &str| format!("/v1/tenants/{}/settings/{}", seg(t), seg(c));
    match cmd {
        SettingsCommand::Show { tenant, category } => {
            ctx.out
                .one(&ctx.http.get(&path(&tenant, &category), &[]).await?);
        }
        SettingsCommand::Set {
            tenant,
            category,
            data,
        } => {
            let body = json_arg("data", &data)?;
            ctx.out
                .one(&ctx.http.put(&path(&tenant, &category), &body).await?);
        }
        SettingsCommand::Reveal {
            tenant,
            category,
            yes,
        } => {
            super::confirm(
                yes,
                &format!(
                    "reveal the {category} settings of {tenant} in plaintext (the reveal is audited)"
                ),
            )?;
            let p = format!("{}/reveal", path(&tenant, &category));
            ctx.out.one(&ctx.http.post(&p, &json!({})).await?);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// The key-encryption keys, the data keys each wraps, the rewrap backlog.
    Status,
    /// Activate a new key-encryption key; data keys are rewrapped in the
    /// background. --wait follows the rewrap with a progress bar.
    Rotate {
        #[arg(long)]
        wait: bool,
    },
    /// Give one tenant a new data key and re-encrypt its secrets.
    RotateTenant { tenant: String },
}

async fn vault(ctx: &Ctx, cmd: VaultCommand) -> CliResult {
    match cmd {
        VaultCommand::Status => {
            let v = ctx.http.get("/v1/operator/keyring", &[]).await?;
            if ctx.out.json {
                ctx.out.one(&v);
            } else {
                ctx.out.list(
                    &v["keks"],
                    &["id", "active", "in_keyring", "data_keys", "retirable"],
                );
                println!("rewrap pending: {}", v["rewrap_pending"]);
            }
        }
        VaultCommand::Rotate { wait } => {
            let v = ctx
                .http
                .post("/v1/operator/keyring/rotate", &json!({}))
                .await?;
            let total = v["rewrap_pending"].as_u64().unwrap_or(0);
            if wait && total > 0 {
                let bar = progress_bar(total, "rewrapping data keys");
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    let s = ctx.http.get("/v1/operator/keyring", &[]).await?;
                    let left = s["rewrap_pending"].as_u64().unwrap_or(0);
                    bar.set_position(total.saturating_sub(left));
                    if left == 0 {
                        break;
                    }
                }
                bar.finish_and_clear();
                let s = ctx.http.get("/v1/operator/keyring", &[]).await?;
                ctx.out.done(
                    &s,
                    &format!(
                        "active key {}; every data key rewrapped",
                        s["active_kek"].as_str().unwrap_or("?")
                    ),
                );
            } else {
                ctx.out.done(
                    &v,
                    &format!(
                        "active key {}; {} data keys to rewrap in the background",
                        v["active_kek"].as_str().unwrap_or("?"),
                        total
                    ),
                );
            }
        }
        VaultCommand::RotateTenant { tenant } => {
            let path = format!("/v1/operator/tenants/{}/data-key/rotate", seg(&tenant));
            ctx.out.one(&ctx.http.post(&path, &json!({})).await?);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- limits

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// A tenant's effective configuration (plan + overrides).
    Show { tenant: String },
    /// Merge overrides into a tenant's configuration (JSON merge patch).
    Update {
        tenant: String,
        #[arg(long)]
        data: String,
    },
    /// Earlier versions of a tenant's configuration.
    Versions {
        tenant: String,
        #[command(flatten)]
        page: Page,
    },
}

async fn config(ctx: &Ctx, cmd: ConfigCommand) -> CliResult {
    let path = |t: &str| format!("/v1/tenants/{}/config", seg(t));
    match cmd {
        ConfigCommand::Show { tenant } => ctx.out.one(&ctx.http.get(&path(&tenant), &[]).await?),
        ConfigCommand::Update { tenant, data } => {
            let body = json_arg("data", &data)?;
            ctx.out.one(&ctx.http.patch(&path(&tenant), &body).await?);
        }
        ConfigCommand::Versions { tenant, page } => {
            let v = list(ctx, &format!("{}/versions", path(&tenant)), &page, vec![]).await?;
            ctx.out.list(&v, &["version", "created_at", "actor"]);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    List,
    /// Create or replace a plan (JSON: limits, rate_limits, quotas, features).
    Set {
        name: String,
        #[arg(long)]
        data: String,
    },
}

async fn plans(ctx: &Ctx, cmd: PlansCommand) -> CliResult {
    match cmd {
        PlansCommand::List => {
            let v = ctx.http.get("/v1/plans", &[]).await?;
            ctx.out
                .list(&v, &["name", "description", "features", "updated_at"]);
        }
        PlansCommand::Set { name, data } => {
            let body = json_arg("data", &data)?;
            ctx.out.one(
                &ctx.http
                    .put(&format!("/v1/plans/{}", seg(&name)), &body)
                    .await?,
            );
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum MetersCommand {
    List,
    Create {
        name: String,
        /// sum, max or unique.
        #[arg(long)]
        aggregation: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
}

async fn meters(ctx: &Ctx, cmd: MetersCommand) -> CliResult {
    match cmd {
        MetersCommand::List => {
            let v = ctx.http.get("/v1/meters", &[]).await?;
            ctx.out
                .list(&v, &["name", "aggregation", "builtin", "description"]);
        }
        MetersCommand::Create {
            name,
            aggregation,
            description,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            put_opt(&mut body, "aggregation", aggregation);
            put_opt(&mut body, "description", description);
            ctx.out
                .one(&ctx.http.post("/v1/meters", &Value::Object(body)).await?);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// A tenant's usage of one meter over time.
    Show {
        tenant: String,
        #[arg(long)]
        meter: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// day or month.
        #[arg(long)]
        granularity: Option<String>,
    },
    /// Record usage events (JSON: one event or {"events": [...]}).
    Record {
        #[arg(long)]
        data: String,
    },
}

async fn usage(ctx: &Ctx, cmd: UsageCommand) -> CliResult {
    match cmd {
        UsageCommand::Show {
            tenant,
            meter,
            from,
            to,
            granularity,
        } => {
            let q = [
                ("meter", Some(meter)),
                ("from", from),
                ("to", to),
                ("granularity", granularity),
            ];
            let v = ctx
                .http
                .get(&format!("/v1/tenants/{}/usage", seg(&tenant)), &q)
                .await?;
            if ctx.out.json {
                ctx.out.one(&v);
            } else {
                ctx.out.list(&v["series"], &["period_start", "value"]);
                println!("total: {}", v["total"]);
            }
        }
        UsageCommand::Record { data } => {
            let body = json_arg("data", &data)?;
            ctx.out
                .one(&ctx.http.post("/v1/usage/events", &body).await?);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum QuotasCommand {
    /// Check (or with --consume, take) quantity of a meter's monthly quota.
    Check {
        /// The tenant (operator keys); a tenant key checks its own.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        meter: String,
        #[arg(long)]
        quantity: Option<i64>,
        #[arg(long)]
        consume: bool,
    },
}

async fn quotas(ctx: &Ctx, cmd: QuotasCommand) -> CliResult {
    let QuotasCommand::Check {
        tenant,
        meter,
        quantity,
        consume,
    } = cmd;
    let mut body = Map::new();
    body.insert("meter".into(), json!(meter));
    put_opt(&mut body, "tenant_id", tenant);
    put_opt(&mut body, "quantity", quantity);
    if consume {
        body.insert("consume".into(), json!(true));
    }
    ctx.out.one(
        &ctx.http
            .post("/v1/quotas/check", &Value::Object(body))
            .await?,
    );
    Ok(())
}

// ---------------------------------------------------------------- audit

/// Which audit chain: a tenant's, or the operator's.
#[derive(Args, Debug, Clone)]
pub struct ChainArg {
    /// The tenant's chain; without it, the operator chain.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl ChainArg {
    fn base(&self) -> String {
        match &self.tenant {
            Some(t) => format!("/v1/tenants/{}/audit", seg(t)),
            None => "/v1/operator/audit".to_owned(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Query audit entries.
    List {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Export a chain as NDJSON (verifiable offline) or CSV, with progress.
    Export {
        #[command(flatten)]
        chain: ChainArg,
        /// ndjson or csv.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Verify audit chains. Remote by default: the server recomputes the
    /// chain and checks its signed checkpoints (--tenant, --operator, or
    /// every chain). --file: an NDJSON export, offline. --database: this
    /// host's database directly (a server command, like doctor).
    Verify {
        /// Only this tenant's chain (`operator`: the operator chain).
        #[arg(long)]
        tenant: Option<String>,
        /// Verify an NDJSON export instead, offline (no server, no database).
        #[arg(long, conflicts_with = "database")]
        file: Option<std::path::PathBuf>,
        /// With --file: trust only this checkpoint key (a signed-note vkey
        /// from GET /v1/audit/keys, obtained apart from the file; repeatable).
        /// Required, unless --trust-file-keys.
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
        /// With --file and no --public-key: check against the keys the file
        /// itself carries, which proves it consistent, not authentic.
        #[arg(long = "trust-file-keys")]
        trust_file_keys: bool,
        /// Read the chains from the database this host's configuration
        /// names (TENANTRY_DATABASE_URL or the SQLite data directory).
        #[arg(long)]
        database: bool,
    },
    /// Signed checkpoints of a chain.
    Checkpoints {
        #[command(flatten)]
        chain: ChainArg,
        #[command(flatten)]
        page: Page,
    },
    /// The public keys that sign checkpoints (for `verify --file --public-key`).
    Keys,
}

async fn audit(ctx: &Ctx, cmd: AuditCommand) -> CliResult {
    match cmd {
        AuditCommand::List {
            chain,
            action,
            actor,
            target,
            outcome,
            from,
            to,
            page,
        } => {
            let q = vec![
                ("action", action),
                ("actor", actor),
                ("target", target),
                ("outcome", outcome),
                ("from", from),
                ("to", to),
            ];
            let v = list(ctx, &chain.base(), &page, q).await?;
            ctx.out.list(
                &v,
                &["sequence", "at", "actor.id", "action", "target", "outcome"],
            );
        }
        AuditCommand::Export {
            chain,
            format,
            from,
            to,
            output,
        } => {
            export(ctx, &chain, format, from, to, output).await?;
        }
        AuditCommand::Verify { tenant, .. } => {
            let chains: Vec<Option<String>> = match tenant.as_deref() {
                Some("operator") => vec![None],
                Some(t) => vec![Some(t.to_owned())],
                None => {
                    let mut all = vec![None];
                    let page = Page {
                        all: true,
                        ..Page::default()
                    };
                    let v = list(ctx, "/v1/tenants", &page, vec![]).await?;
                    for t in v["data"].as_array().cloned().unwrap_or_default() {
                        if let Some(id) = t["id"].as_str() {
                            all.push(Some(id.to_owned()));
                        }
                    }
                    all
                }
            };
            let bar = progress_bar(chains.len() as u64, "verifying chains");
            let mut reports = Vec::new();
            for chain in &chains {
                let path = format!(
                    "{}/verify",
                    ChainArg {
                        tenant: chain.clone()
                    }
                    .base()
                );
                reports.push(ctx.http.get(&path, &[]).await?);
                bar.inc(1);
            }
            bar.finish_and_clear();
            let all_ok = reports.iter().all(|r| r["ok"] == json!(true));
            if ctx.out.json {
                for r in &reports {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
            } else {
                ctx.out.list(
                    &Value::Array(reports),
                    &[
                        "chain",
                        "ok",
                        "size",
                        "checkpoints_checked",
                        "first_bad_sequence",
                        "reason",
                    ],
                );
            }
            if !all_ok {
                return Err(CliError::generic("an audit chain does not verify"));
            }
        }
        AuditCommand::Checkpoints { chain, page } => {
            let v = list(ctx, &format!("{}/checkpoints", chain.base()), &page, vec![]).await?;
            ctx.out
                .list(&v, &["size", "created_at", "key_id", "head_hash"]);
        }
        AuditCommand::Keys => {
            let v = ctx.http.get("/v1/audit/keys", &[]).await?;
            ctx.out
                .list(&v, &["key_id", "name", "created_at", "retired_at", "vkey"]);
        }
    }
    Ok(())
}

async fn export(
    ctx: &Ctx,
    chain: &ChainArg,
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
    output: Option<std::path::PathBuf>,
) -> CliResult {
    use std::io::Write;
    let q = [("format", format), ("from", from), ("to", to)];
    let mut response = ctx
        .http
        .stream(&format!("{}/export", chain.base()), &q)
        .await?;
    let mut sink: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::generic(format!("cannot create {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    // Progress on standard error, only when the export goes to a file (a
    // bar drawn over the export on a terminal would be in the way).
    let bar = if output.is_some() {
        spinner("exporting audit entries")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut lines = 0u64;
    let write_err = |e: std::io::Error| CliError::generic(format!("cannot write the export: {e}"));
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        CliError::new(
            super::error::Exit::Unavailable,
            format!("the export was cut off: {e}"),
        )
    })? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        sink.write_all(&chunk).map_err(write_err)?;
        bar.set_position(lines);
    }
    sink.flush().map_err(write_err)?;
    bar.finish_and_clear();
    if let Some(path) = output {
        eprintln!("exported {lines} lines to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------- webhooks

/// Whose webhook endpoints: a tenant's, or the operator's.
#[derive(Args, Debug, Clone)]
pub struct OwnerArg {
    /// The tenant's endpoints; without it, the operator's.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl OwnerArg {
    fn base(&self) -> String {
        match &self.tenant {
            Some(t) => format!("/v1/tenants/{}/webhook-endpoints", seg(t)),
            None => "/v1/webhook-endpoints".to_owned(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Webhook endpoints.
    #[command(subcommand)]
    Endpoints(EndpointsCommand),
    /// Messages sent to an endpoint.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Send again one message, or every message since a time.
    Replay {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
        /// The message to send again.
        message: Option<String>,
        /// Instead of one message: every message since (RFC 3339).
        #[arg(long, conflicts_with = "message")]
        since: Option<String>,
        #[arg(long, requires = "since")]
        until: Option<String>,
    },
    /// The event types endpoints can subscribe to.
    EventTypes,
}

#[derive(Subcommand, Debug)]
pub enum EndpointsCommand {
    List {
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        page: Page,
    },
    Show {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
    },
    /// Create an endpoint; its signing secret is printed once.
    Create {
        #[command(flatten)]
        owner: OwnerArg,
        /// Where to deliver (--url names the Tenantry server).
        #[arg(long = "endpoint-url")]
        endpoint_url: String,
        /// An event type to receive (repeatable; default: all).
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// More fields as JSON (ordering, rate_limit_per_second, metadata…).
        #[arg(long)]
        data: Option<String>,
    },
    Update {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
        #[arg(long = "endpoint-url")]
        endpoint_url: Option<String>,
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        data: Option<String>,
    },
    Delete {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
    },
    /// A new signing secret; the old one keeps signing for the overlap.
    RotateSecret {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
        #[arg(long)]
        overlap_seconds: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MessagesCommand {
    List {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
        /// pending, delivered or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        event_type: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// One message with its delivery attempts.
    Show {
        #[command(flatten)]
        owner: OwnerArg,
        endpoint: String,
        message: String,
    },
}

const ENDPOINT_COLUMNS: &[&str] = &[
    "id",
    "url",
    "enabled",
    "event_types",
    "ordering",
    "disabled_reason",
    "created_at",
];

fn endpoint_body(
    url: Option<String>,
    event_types: Vec<String>,
    description: Option<String>,
    enabled: Option<bool>,
    data: Option<&str>,
) -> CliResult<Map<String, Value>> {
    let mut body = match data {
        Some(text) => match json_arg("data", text)? {
            Value::Object(m) => m,
            _ => return Err(CliError::usage("--data must be a JSON object")),
        },
        None => Map::new(),
    };
    put_opt(&mut body, "url", url);
    if !event_types.is_empty() {
        body.insert("event_types".into(), json!(event_types));
    }
    put_opt(&mut body, "description", description);
    put_opt(&mut body, "enabled", enabled);
    Ok(body)
}

async fn webhooks(ctx: &Ctx, cmd: WebhooksCommand) -> CliResult {
    match cmd {
        WebhooksCommand::Endpoints(cmd) => match cmd {
            EndpointsCommand::List { owner, page } => {
                let v = list(ctx, &owner.base(), &page, vec![]).await?;
                ctx.out.list(&v, ENDPOINT_COLUMNS);
            }
            EndpointsCommand::Show { owner, endpoint } => {
                let path = format!("{}/{}", owner.base(), seg(&endpoint));
                ctx.out.one(&ctx.http.get(&path, &[]).await?);
            }
            EndpointsCommand::Create {
                owner,
                endpoint_url,
                event_types,
                description,
                data,
            } => {
                let body = endpoint_body(
                    Some(endpoint_url),
                    event_types,
                    description,
                    None,
                    data.as_deref(),
                )?;
                ctx.out
                    .one(&ctx.http.post(&owner.base(), &Value::Object(body)).await?);
            }
            EndpointsCommand::Update {
                owner,
                endpoint,
                endpoint_url,
                event_types,
                description,
                enable,
                disable,
                data,
            } => {
                let body = endpoint_body(
                    endpoint_url,
                    event_types,
                    description,
                    enabled_flag(enable, disable),
                    data.as_deref(),
                )?;
                require_changes(&body)?;
                let path = format!("{}/{}", owner.base(), seg(&endpoint));
                ctx.out
                    .one(&ctx.http.patch(&path, &Value::Object(body)).await?);
            }
            EndpointsCommand::Delete { owner, endpoint } => {
                let path = format!("{}/{}", owner.base(), seg(&endpoint));
                let v = ctx.http.delete(&path, &[]).await?;
                ctx.out.done(&v, &format!("endpoint {endpoint} deleted"));
            }
            EndpointsCommand::RotateSecret {
                owner,
                endpoint,
                overlap_seconds,
            } => {
                let mut body = Map::new();
                put_opt(&mut body, "overlap_seconds", overlap_seconds);
                let path = format!("{}/{}/secret/rotate", owner.base(), seg(&endpoint));
                ctx.out
                    .one(&ctx.http.post(&path, &Value::Object(body)).await?);
            }
        },
        WebhooksCommand::Messages(cmd) => match cmd {
            MessagesCommand::List {
                owner,
                endpoint,
                status,
                event_type,
                since,
                until,
                page,
            } => {
                let path = format!("{}/{}/messages", owner.base(), seg(&endpoint));
                let q = vec![
                    ("status", status),
                    ("event_type", event_type),
                    ("since", since),
                    ("until", until),
                ];
                let v = list(ctx, &path, &page, q).await?;
                ctx.out.list(
                    &v,
                    &[
                        "id",
                        "event_type",
                        "status",
                        "attempts",
                        "last_status",
                        "created_at",
                        "delivered_at",
                    ],
                );
            }
            MessagesCommand::Show {
                owner,
                endpoint,
                message,
            } => {
                let path = format!(
                    "{}/{}/messages/{}",
                    owner.base(),
                    seg(&endpoint),
                    seg(&message)
                );
                ctx.out.one(&ctx.http.get(&path, &[]).await?);
            }
        },
        WebhooksCommand::Replay {
            owner,
            endpoint,
            message,
            since,
            until,
        } => {
            let v = match (message, since) {
                (Some(m), _) => {
                    let path = format!(
                        "{}/{}/messages/{}/replay",
                        owner.base(),
                        seg(&endpoint),
                        seg(&m)
                    );
                    ctx.http.post(&path, &json!({})).await?
                }
                (None, Some(since)) => {
                    let mut body = Map::new();
                    body.insert("since".into(), json!(since));
                    put_opt(&mut body, "until", until);
                    let path = format!("{}/{}/replay", owner.base(), seg(&endpoint));
                    ctx.http.post(&path, &Value::Object(body)).await?
                }
                (None, None) => return Err(CliError::usage("name a message, or pass --since")),
            };
            ctx.out.done(&v, &format!("replayed {}", v["replayed"]));
        }
        WebhooksCommand::EventTypes => {
            let v = ctx.http.get("/v1/event-types", &[]).await?;
            ctx.out.list(&v, &["name", "description"]);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- provisioning

#[derive(Subcommand, Debug)]
pub enum ProvisioningCommand {
    List {
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    Show {
        id: String,
    },
    /// Start onboarding a tenant (JSON spec: tenant, whatsapp, genesys,
    /// api_keys, webhook_endpoints, config…); --follow shows its steps.
    Start {
        #[arg(long)]
        data: String,
        #[arg(long)]
        follow: bool,
    },
    /// Poll a workflow until it ends, showing each step; exits 1 if it did
    /// not succeed.
    Follow {
        id: String,
    },
    /// Run a failed workflow again from its failed step.
    Retry {
        id: String,
        #[arg(long)]
        follow: bool,
    },
    Cancel {
        id: String,
    },
}

const WORKFLOW_COLUMNS: &[&str] = &[
    "id",
    "tenant_id",
    "status",
    "dry_run",
    "created_at",
    "updated_at",
];
const FINAL: &[&str] = &["succeeded", "failed", "compensated", "cancelled"];

async fn provisioning(ctx: &Ctx, cmd: ProvisioningCommand) -> CliResult {
    match cmd {
        ProvisioningCommand::List { status, page } => {
            let v = list(ctx, "/v1/provisioning", &page, vec![("status", status)]).await?;
            ctx.out.list(&v, WORKFLOW_COLUMNS);
        }
        ProvisioningCommand::Show { id } => {
            let v = ctx
                .http
                .get(&format!("/v1/provisioning/{}", seg(&id)), &[])
                .await?;
            show_workflow(ctx, &v);
        }
        ProvisioningCommand::Start { data, follow: f } => {
            let v = ctx
                .http
                .post("/v1/provisioning", &json_arg("data", &data)?)
                .await?;
            after_start(ctx, v, f).await?;
        }
        ProvisioningCommand::Follow { id } => follow(ctx, &id).await?,
        ProvisioningCommand::Retry { id, follow: f } => {
            let v = ctx
                .http
                .post(&format!("/v1/provisioning/{}/retry", seg(&id)), &json!({}))
                .await?;
            after_start(ctx, v, f).await?;
        }
        ProvisioningCommand::Cancel { id } => {
            let v = ctx
                .http
                .post(&format!("/v1/provisioning/{}/cancel", seg(&id)), &json!({}))
                .await?;
            show_workflow(ctx, &v);
        }
    }
    Ok(())
}

async fn after_start(ctx: &Ctx, v: Value, f: bool) -> CliResult {
    if f {
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        follow(ctx, &id).await
    } else {
        show_workflow(ctx, &v);
        Ok(())
    }
}

fn show_workflow(ctx: &Ctx, v: &Value) {
    if ctx.out.json {
        ctx.out.one(v);
        return;
    }
    println!(
        "workflow {} for {}: {}",
        v["id"].as_str().unwrap_or("?"),
        v["tenant_id"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?")
    );
    ctx.out
        .list(&v["steps"], &["name", "status", "attempts", "error"]);
}

/// Polls the workflow, one progress bar over its steps, until it ends.
async fn follow(ctx: &Ctx, id: &str) -> CliResult {
    let path = format!("/v1/provisioning/{}", seg(id));
    let mut v = ctx.http.get(&path, &[]).await?;
    let steps = v["steps"].as_array().map_or(0, Vec::len) as u64;
    let bar = progress_bar(steps.max(1), "provisioning");
    loop {
        let list = v["steps"].as_array().cloned().unwrap_or_default();
        let done = list
            .iter()
            .filter(|s| {
                matches!(
                    s["status"].as_str(),
                    Some("succeeded" | "skipped" | "compensated")
                )
            })
            .count() as u64;
        let current = list
            .iter()
            .find(|s| {
                !matches!(
                    s["status"].as_str(),
                    Some("succeeded" | "skipped" | "compensated")
                )
            })
            .and_then(|s| s["name"].as_str())
            .unwrap_or("");
        bar.set_position(done);
        bar.set_message(format!("{} {current}", v["status"].as_str().unwrap_or("")));
        if v["status"].as_str().is_some_and(|s| FINAL.contains(&s)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        v = ctx.http.get(&path, &[]).await?;
    }
    bar.finish_and_clear();
    show_workflow(ctx, &v);
    if v["status"] == json!("succeeded") {
        Ok(())
    } else {
        Err(CliError::generic(format!(
            "workflow {id} ended {}",
            v["status"].as_str().unwrap_or("?")
        )))
    }
}

// ---------------------------------------------------------------- widgets

#[derive(Subcommand, Debug)]
pub enum WidgetsCommand {
    List {
        tenant: String,
    },
    Create {
        tenant: String,
        #[arg(long)]
        name: String,
        /// An allowed origin (repeatable), e.g. https://shop.example.com.
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
    },
    Update {
        tenant: String,
        widget: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "origin")]
        origins: Vec<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Issue a short-lived widget token for one origin.
    Token {
        tenant: String,
        widget: String,
        #[arg(long)]
        origin: String,
        #[arg(long)]
        ttl_seconds: Option<u64>,
    },
}

async fn widgets(ctx: &Ctx, cmd: WidgetsCommand) -> CliResult {
    let base = |t: &str| format!("/v1/tenants/{}/widgets", seg(t));
    match cmd {
        WidgetsCommand::List { tenant } => {
            let v = ctx.http.get(&base(&tenant), &[]).await?;
            ctx.out.list(
                &v,
                &["id", "name", "enabled", "allowed_origins", "created_at"],
            );
        }
        WidgetsCommand::Create {
            tenant,
            name,
            origins,
        } => {
            let body = json!({"name": name, "allowed_origins": origins});
            ctx.out.one(&ctx.http.post(&base(&tenant), &body).await?);
        }
        WidgetsCommand::Update {
            tenant,
            widget,
            name,
            origins,
            enable,
            disable,
        } => {
            let mut body = Map::new();
            put_opt(&mut body, "name", name);
            if !origins.is_empty() {
                body.insert("allowed_origins".into(), json!(origins));
            }
            put_opt(&mut body, "enabled", enabled_flag(enable, disable));
            require_changes(&body)?;
            let path = format!("{}/{}", base(&tenant), seg(&widget));
            ctx.out
                .one(&ctx.http.patch(&path, &Value::Object(body)).await?);
        }
        WidgetsCommand::Token {
            tenant,
            widget,
            origin,
            ttl_seconds,
        } => {
            let mut body = Map::new();
            body.insert("origin".into(), json!(origin));
            put_opt(&mut body, "ttl_seconds", ttl_seconds);
            let path = format!("{}/{}/tokens", base(&tenant), seg(&widget));
            ctx.out
                .one(&ctx.http.post(&path, &Value::Object(body)).await?);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- progress

/// A bar on standard error (hidden when it is not a terminal).
pub fn progress_bar(total: u64, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:20} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos} lines {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub async fn run(ctx: &Ctx, command: Remote) -> CliResult {
    match command {
        Remote::Tenants(c) => tenants(ctx, c).await,
        Remote::Domains(c) => domains(ctx, c).await,
        Remote::ApiKeys(c) => api_keys(ctx, c).await,
        Remote::OperatorKeys(c) => operator_keys(ctx, c).await,
        Remote::Credentials(c) => credentials(ctx, c).await,
        Remote::Settings(c) => settings(ctx, c).await,
        Remote::Config(c) => config(ctx, c).await,
        Remote::Plans(c) => plans(ctx, c).await,
        Remote::Meters(c) => meters(ctx, c).await,
        Remote::Usage(c) => usage(ctx, c).await,
        Remote::Quotas(c) => quotas(ctx, c).await,
        Remote::Audit(c) => audit(ctx, c).await,
        Remote::Webhooks(c) => webhooks(ctx, c).await,
        Remote::Provisioning(c) => provisioning(ctx, c).await,
        Remote::Widgets(c) => widgets(ctx, c).await,
        Remote::Vault(c) => vault(ctx, c).await,
    }
}
