//! The remote commands, one enum per resource, each verb one call of the
//! typed `tenantry-client` (see openapi.json for the shapes). Lists take
//! `--limit`/`--cursor` and `--all`; answers are printed as the JSON the
//! client decoded them from.

use super::error::{CliError, CliResult};
use super::{Ctx, Remote, json_arg};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tenantry_client::api;
use tenantry_client::api::provisioning::WorkflowOut;
use tenantry_client::{ItemStream, ListParams};

/// Pagination of a list.
#[derive(Args, Debug, Clone, Default)]
pub struct Page {
    /// Items to show (1–200; default 50, the server's page).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start from this cursor (a `next_cursor` of the API).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every item, page after page.
    #[arg(long)]
    pub all: bool,
}

/// The server's page size when no `limit` is given.
const DEFAULT_PAGE: u32 = 50;

impl Page {
    pub(super) fn params(&self) -> ListParams {
        ListParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// An answer as the JSON it was decoded from, for printing.
pub(super) fn value<T: Serialize>(answer: &T) -> Value {
    serde_json::to_value(answer).unwrap_or(Value::Null)
}

/// A list from one of the client's pagination streams: every item with
/// `--all`, else the first `--limit` items (one page). `has_more` says
/// whether the list goes on; finding out reads one more item, which costs a
/// request only when the server said there is a next page.
pub(super) async fn collect<T: Serialize>(
    page: &Page,
    mut items: ItemStream<T>,
) -> CliResult<Value> {
    let mut got = Vec::new();
    if page.all {
        while let Some(item) = items.try_next().await? {
            got.push(item);
        }
        return Ok(json!({"data": value(&got), "has_more": false}));
    }
    let want = page.limit.unwrap_or(DEFAULT_PAGE) as usize;
    while got.len() < want {
        match items.try_next().await? {
            Some(item) => got.push(item),
            None => break,
        }
    }
    let has_more = got.len() == want && items.try_next().await?.is_some();
    Ok(json!({"data": value(&got), "has_more": has_more}))
}

/// Reads a JSON argument (inline, `@file` or `-`) as the request type `T`.
pub(super) fn typed_arg<T: DeserializeOwned>(name: &str, text: &str) -> CliResult<T> {
    from_json(name, json_arg(name, text)?)
}

fn from_json<T: DeserializeOwned>(name: &str, value: Value) -> CliResult<T> {
    serde_json::from_value(value).map_err(|e| CliError::usage(format!("--{name}: {e}")))
}

fn opt_json(name: &str, text: Option<&str>) -> CliResult<Option<Value>> {
    text.map(|t| json_arg(name, t)).transpose()
}

/// Refuses a change that would change nothing.
fn require_changes<T: Serialize>(patch: &T) -> CliResult {
    if value(patch).as_object().is_some_and(Map::is_empty) {
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

/// `None` for a repeatable option given no times.
fn non_empty(list: Vec<String>) -> Option<Vec<String>> {
    (!list.is_empty()).then_some(list)
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

/// A tenant's optional fields, as create and update take them.
#[derive(Args, Debug, Clone, Default)]
pub struct TenantFields {
    #[arg(long)]
    plan: Option<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    subdomain: Option<String>,
    /// JSON object (inline, @file or -).
    #[arg(long)]
    metadata: Option<String>,
}

impl TenantFields {
    fn metadata(&self) -> CliResult<Option<Value>> {
        opt_json("metadata", self.metadata.as_deref())
    }
}

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
        #[command(flatten)]
        fields: TenantFields,
    },
    /// Change a tenant's name, plan, region, subdomain or metadata.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: TenantFields,
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
    let tenants = ctx.client.tenants();
    match cmd {
        TenantsCommand::List { status, plan, page } => {
            let params = api::tenants::ListTenantsParams {
                status,
                plan,
                limit: page.limit,
                cursor: page.cursor.clone(),
            };
            ctx.out
                .list(&collect(&page, tenants.list(params)).await?, TENANT_COLUMNS);
        }
        TenantsCommand::Show { id } => ctx.out.one(&value(&tenants.get(&id).await?)),
        TenantsCommand::Create { id, name, fields } => {
            let input = api::tenants::TenantIn {
                id,
                name,
                metadata: fields.metadata()?,
                subdomain: fields.subdomain,
                plan: fields.plan,
                region: fields.region,
            };
            ctx.out.one(&value(&tenants.create(&input).await?));
        }
        TenantsCommand::Update { id, name, fields } => {
            let patch = api::tenants::TenantPatchIn {
                name,
                metadata: fields.metadata()?,
                subdomain: fields.subdomain,
                plan: fields.plan,
                region: fields.region,
            };
            require_changes(&patch)?;
            ctx.out.one(&value(&tenants.update(&id, &patch).await?));
        }
        TenantsCommand::Delete { id, purge: true } => {
            tenants.purge(&id).await?;
            ctx.out.gone("tenant", &id, "purged");
        }
        TenantsCommand::Delete { id, purge: false } => {
            ctx.out.one(&value(&tenants.delete(&id).await?));
        }
        TenantsCommand::Suspend { id } => ctx.out.one(&value(&tenants.suspend(&id).await?)),
        TenantsCommand::Reactivate { id } => {
            ctx.out.one(&value(&tenants.reactivate(&id).await?));
        }
        TenantsCommand::Stats { id } => {
            ctx.out.one(&value(&ctx.client.usage().stats(&id).await?));
        }
        TenantsCommand::Events { id, page } => {
            let v = collect(&page, tenants.events(&id, page.params())).await?;
            ctx.out.list(&v, &["id", "type", "actor", "created_at"]);
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
            let v = value(&ctx.client.domains(&tenant).list().await?);
            ctx.out.list(&v, DOMAIN_COLUMNS);
        }
        DomainsCommand::Add { tenant, domain } => {
            let input = api::domains::DomainIn { domain };
            ctx.out
                .one(&value(&ctx.client.domains(&tenant).add(&input).await?));
        }
        DomainsCommand::Verify { tenant, domain } => {
            let input = api::domains::VerifyIn::default();
            let v = ctx.client.domains(&tenant).verify(&domain, &input).await?;
            ctx.out.one(&value(&v));
        }
        DomainsCommand::Remove { tenant, domain } => {
            ctx.client.domains(&tenant).remove(&domain).await?;
            ctx.out.gone("domain", &domain, "removed");
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
        expires_at: Option<DateTime<Utc>>,
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
        /// RFC 3339 time.
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
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
    match cmd {
        ApiKeysCommand::List { tenant, page } => {
            let v = collect(&page, ctx.client.keys(&tenant).list(page.params())).await?;
            ctx.out.list(&v, KEY_COLUMNS);
        }
        ApiKeysCommand::Show { tenant, key_id } => {
            ctx.out
                .one(&value(&ctx.client.keys(&tenant).get(&key_id).await?));
        }
        ApiKeysCommand::Create {
            tenant,
            name,
            scopes,
            environment,
            expires_at,
            metadata,
        } => {
            let input = api::keys::KeyIn {
                name,
                scopes,
                environment,
                expires_at,
                metadata: opt_json("metadata", metadata.as_deref())?,
            };
            ctx.out
                .one(&value(&ctx.client.keys(&tenant).create(&input).await?));
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
            let patch = api::keys::KeyPatchIn {
                name,
                scopes: non_empty(scopes),
                enabled: enabled_flag(enable, disable),
                expires_at: expires_at.map(Some),
                metadata: opt_json("metadata", metadata.as_deref())?,
            };
            require_changes(&patch)?;
            let v = ctx.client.keys(&tenant).update(&key_id, &patch).await?;
            ctx.out.one(&value(&v));
        }
        ApiKeysCommand::Revoke { tenant, key_id } => {
            ctx.out
                .one(&value(&ctx.client.keys(&tenant).revoke(&key_id).await?));
        }
        ApiKeysCommand::Rotate {
            tenant,
            key_id,
            overlap_seconds,
        } => {
            let input = api::keys::RotateIn { overlap_seconds };
            let v = ctx.client.keys(&tenant).rotate(&key_id, &input).await?;
            ctx.out.one(&value(&v));
        }
        ApiKeysCommand::Verify { scopes } => {
            let input = api::keys::VerifyIn {
                key: read_secret_line("the key")?,
                scopes: non_empty(scopes),
            };
            ctx.out.one(&value(&ctx.client.verify_key(&input).await?));
        }
    }
    Ok(())
}

/// One line of standard input: a secret that must not be an argument.
pub(super) fn read_secret_line(what: &str) -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::generic(format!("cannot read {what}: {e}")))?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(CliError::usage(format!(
            "{what} is read from standard input (one line)"
        )));
    }
    Ok(line)
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
    let keys = ctx.client.operator_keys();
    match cmd {
        OperatorKeysCommand::List => {
            ctx.out.list(
                &value(&keys.list().await?),
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
            let input = api::operator_keys::OperatorKeyIn { name, environment };
            ctx.out.one(&value(&keys.create(&input).await?));
        }
        OperatorKeysCommand::Revoke { key_id } => {
            ctx.out.one(&value(&keys.revoke(&key_id).await?));
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
            let v = value(&ctx.client.credentials(&tenant).list().await?);
            ctx.out.list(&v, columns);
        }
        CredentialsCommand::Show { tenant, cred_id } => {
            let v = ctx.client.credentials(&tenant).get(&cred_id).await?;
            ctx.out.one(&value(&v));
        }
        CredentialsCommand::Create {
            tenant,
            kind,
            name,
            data,
        } => {
            let input = api::credentials::CredentialIn {
                kind,
                name,
                data: json_arg("data", &data)?,
            };
            let v = ctx.client.credentials(&tenant).create(&input).await?;
            ctx.out.one(&value(&v));
        }
        CredentialsCommand::Update {
            tenant,
            cred_id,
            name,
            data,
            active,
            inactive,
        } => {
            let patch = api::credentials::CredentialPatchIn {
                name,
                data: opt_json("data", data.as_deref())?,
                is_active: enabled_flag(active, inactive),
            };
            require_changes(&patch)?;
            let v = ctx
                .client
                .credentials(&tenant)
                .update(&cred_id, &patch)
                .await?;
            ctx.out.one(&value(&v));
        }
        CredentialsCommand::Delete { tenant, cred_id } => {
            ctx.client.credentials(&tenant).delete(&cred_id).await?;
            ctx.out.gone("credential", &cred_id, "deleted");
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
            let v = ctx.client.credentials(&tenant).reveal(&cred_id).await?;
            ctx.out.one(&value(&v));
        }
        CredentialsCommand::AccessLog {
            tenant,
            cred_id,
            page,
        } => {
            let items = ctx
                .client
                .credentials(&tenant)
                .access_log(&cred_id, page.params());
            ctx.out.list(
                &collect(&page, items).await?,
                &["created_at", "actor", "action", "source_ip", "request_id"],
            );
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
    match cmd {
        SettingsCommand::Show { tenant, category } => {
            let v = ctx.client.settings(&tenant).get(&category).await?;
            ctx.out.one(&value(&v));
        }
        SettingsCommand::Set {
            tenant,
            category,
            data,
        } => {
            let body = json_arg("data", &data)?;
            let v = ctx.client.settings(&tenant).put(&category, &body).await?;
            ctx.out.one(&value(&v));
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
            let v = ctx.client.settings(&tenant).reveal(&category).await?;
            ctx.out.one(&value(&v));
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
    let keyring = ctx.client.keyring();
    match cmd {
        VaultCommand::Status => {
            let status = keyring.status().await?;
            if ctx.out.json {
                ctx.out.one(&value(&status));
            } else {
                ctx.out.list(
                    &value(&status.keks),
                    &["id", "active", "in_keyring", "data_keys", "retirable"],
                );
                println!("rewrap pending: {}", status.rewrap_pending);
            }
        }
        VaultCommand::Rotate { wait } => {
            let rotated = keyring.rotate().await?;
            let total = u64::try_from(rotated.rewrap_pending).unwrap_or(0);
            if wait && total > 0 {
                let bar = progress_bar(total, "rewrapping data keys");
                let status = loop {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    let status = keyring.status().await?;
                    let left = u64::try_from(status.rewrap_pending).unwrap_or(0);
                    bar.set_position(total.saturating_sub(left));
                    if left == 0 {
                        break status;
                    }
                };
                bar.finish_and_clear();
                ctx.out.done(
                    &value(&status),
                    &format!("active key {}; every data key rewrapped", status.active_kek),
                );
            } else {
                ctx.out.done(
                    &value(&rotated),
                    &format!(
                        "active key {}; {total} data keys to rewrap in the background",
                        rotated.active_kek
                    ),
                );
            }
        }
        VaultCommand::RotateTenant { tenant } => {
            ctx.out
                .one(&value(&keyring.rotate_tenant_data_key(&tenant).await?));
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
    match cmd {
        ConfigCommand::Show { tenant } => {
            ctx.out
                .one(&value(&ctx.client.config(&tenant).get().await?));
        }
        ConfigCommand::Update { tenant, data } => {
            let patch = json_arg("data", &data)?;
            ctx.out
                .one(&value(&ctx.client.config(&tenant).patch(&patch).await?));
        }
        ConfigCommand::Versions { tenant, page } => {
            let items = ctx.client.config(&tenant).versions(page.params());
            ctx.out.list(
                &collect(&page, items).await?,
                &["version", "created_at", "actor"],
            );
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
            ctx.out.list(
                &value(&ctx.client.plans().list().await?),
                &["name", "description", "features", "updated_at"],
            );
        }
        PlansCommand::Set { name, data } => {
            let definition = json_arg("data", &data)?;
            let v = ctx.client.plans().put(&name, &definition).await?;
            ctx.out.one(&value(&v));
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
            ctx.out.list(
                &value(&ctx.client.usage().meters().await?),
                &["name", "aggregation", "builtin", "description"],
            );
        }
        MetersCommand::Create {
            name,
            aggregation,
            description,
        } => {
            let input = api::meters::MeterIn {
                name,
                aggregation,
                description,
            };
            ctx.out
                .one(&value(&ctx.client.usage().create_meter(&input).await?));
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
            let params = api::usage::UsageParams {
                meter,
                from,
                to,
                granularity,
            };
            let usage = ctx.client.usage().series(&tenant, &params).await?;
            if ctx.out.json {
                ctx.out.one(&value(&usage));
            } else {
                ctx.out
                    .list(&value(&usage.series), &["period_start", "value"]);
                println!("total: {}", usage.total);
            }
        }
        UsageCommand::Record { data } => {
            let events = json_arg("data", &data)?;
            ctx.out
                .one(&value(&ctx.client.usage().ingest(&events).await?));
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
    let input = api::quotas::QuotaCheckIn {
        tenant_id: tenant,
        meter,
        quantity,
        consume: consume.then_some(true),
    };
    ctx.out
        .one(&value(&ctx.client.usage().check_quota(&input).await?));
    Ok(())
}

// ---------------------------------------------------------------- audit

/// Whose audit chain or webhook endpoints: a tenant's, or the operator's.
#[derive(Args, Debug, Clone)]
pub struct OwnerArg {
    /// The tenant's; without it, the operator's.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl OwnerArg {
    fn audit(&self, ctx: &Ctx) -> tenantry_client::resources::audit::Audit {
        match &self.tenant {
            Some(t) => ctx.client.audit(t),
            None => ctx.client.operator_audit(),
        }
    }

    fn webhooks(&self, ctx: &Ctx) -> tenantry_client::resources::webhooks::Webhooks {
        match &self.tenant {
            Some(t) => ctx.client.webhooks(t),
            None => ctx.client.operator_webhooks(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Query audit entries.
    List {
        #[command(flatten)]
        chain: OwnerArg,
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
        chain: OwnerArg,
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
        chain: OwnerArg,
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
            let query = api::audit::AuditQuery {
                action,
                actor,
                target,
                outcome,
                from,
                to,
                limit: page.limit,
                cursor: page.cursor.clone(),
            };
            let items = chain.audit(ctx).list(query);
            ctx.out.list(
                &collect(&page, items).await?,
                &[
                    "sequence",
                    "occurred_at",
                    "actor.id",
                    "action",
                    "targets",
                    "outcome",
                ],
            );
        }
        AuditCommand::Export {
            chain,
            format,
            from,
            to,
            output,
        } => {
            let query = api::audit::ExportQuery { format, from, to };
            export(ctx, &chain, &query, output).await?;
        }
        AuditCommand::Verify { tenant, .. } => {
            let chains: Vec<OwnerArg> = match tenant.as_deref() {
                Some("operator") => vec![OwnerArg { tenant: None }],
                Some(t) => vec![OwnerArg {
                    tenant: Some(t.to_owned()),
                }],
                None => {
                    let tenants: Vec<_> = ctx
                        .client
                        .tenants()
                        .list(Default::default())
                        .try_collect()
                        .await?;
                    std::iter::once(OwnerArg { tenant: None })
                        .chain(tenants.into_iter().map(|t| OwnerArg { tenant: Some(t.id) }))
                        .collect()
                }
            };
            let bar = progress_bar(chains.len() as u64, "verifying chains");
            let mut reports = Vec::new();
            for chain in &chains {
                reports.push(chain.audit(ctx).verify().await?);
                bar.inc(1);
            }
            bar.finish_and_clear();
            if ctx.out.json {
                for r in &reports {
                    println!("{}", value(r));
                }
            } else {
                ctx.out.list(
                    &value(&reports),
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
            if !reports.iter().all(|r| r.ok) {
                return Err(CliError::generic("an audit chain does not verify"));
            }
        }
        AuditCommand::Checkpoints { chain, page } => {
            let query = api::audit::CheckpointQuery {
                limit: page.limit,
                cursor: page.cursor.clone(),
            };
            let items = chain.audit(ctx).checkpoints(query);
            ctx.out.list(
                &collect(&page, items).await?,
                &["size", "created_at", "key_id", "head_hash"],
            );
        }
        AuditCommand::Keys => {
            let keys = ctx.client.operator_audit().signing_keys().await?;
            ctx.out.list(
                &value(&keys),
                &["key_id", "name", "created_at", "retired_at", "vkey"],
            );
        }
    }
    Ok(())
}

async fn export(
    ctx: &Ctx,
    chain: &OwnerArg,
    query: &api::audit::ExportQuery,
    output: Option<std::path::PathBuf>,
) -> CliResult {
    use std::io::Write;
    // The client reads the export whole; a spinner shows it is under way
    // (on standard error, only when the export goes to a file: drawn over
    // the export on a terminal it would be in the way).
    let bar = if output.is_some() {
        spinner("exporting audit entries")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let text = chain.audit(ctx).export(query).await?;
    bar.finish_and_clear();
    let lines = text.lines().count();
    let write_err = |e: std::io::Error| CliError::generic(format!("cannot write the export: {e}"));
    match &output {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .map_err(|e| CliError::generic(format!("cannot create {}: {e}", path.display())))?;
            file.write_all(text.as_bytes()).map_err(write_err)?;
            file.flush().map_err(write_err)?;
            eprintln!("exported {lines} lines to {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).map_err(write_err)?;
            out.flush().map_err(write_err)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- webhooks

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
        since: Option<DateTime<Utc>>,
        #[arg(long, requires = "since")]
        until: Option<DateTime<Utc>>,
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
        overlap_seconds: Option<u64>,
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
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        #[arg(long)]
        until: Option<DateTime<Utc>>,
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

/// An endpoint's JSON body: `--data`'s object with the flags on top.
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
    let flags = [
        ("url", url.map(Value::from)),
        ("event_types", non_empty(event_types).map(Value::from)),
        ("description", description.map(Value::from)),
        ("enabled", enabled.map(Value::from)),
    ];
    for (name, flag) in flags {
        if let Some(v) = flag {
            body.insert(name.to_owned(), v);
        }
    }
    Ok(body)
}

async fn webhooks(ctx: &Ctx, cmd: WebhooksCommand) -> CliResult {
    match cmd {
        WebhooksCommand::Endpoints(cmd) => endpoints(ctx, cmd).await?,
        WebhooksCommand::Messages(MessagesCommand::List {
            owner,
            endpoint,
            status,
            event_type,
            since,
            until,
            page,
        }) => {
            let params = api::webhooks::MessageParams {
                limit: page.limit,
                cursor: page.cursor.clone(),
                status,
                event_type,
                since,
                until,
            };
            let items = owner.webhooks(ctx).messages(&endpoint, params);
            ctx.out.list(
                &collect(&page, items).await?,
                &[
                    "id",
                    "type",
                    "status",
                    "attempts",
                    "last_status",
                    "created_at",
                    "delivered_at",
                ],
            );
        }
        WebhooksCommand::Messages(MessagesCommand::Show {
            owner,
            endpoint,
            message,
        }) => {
            let v = owner.webhooks(ctx).message(&endpoint, &message).await?;
            ctx.out.one(&value(&v));
        }
        WebhooksCommand::Replay {
            owner,
            endpoint,
            message,
            since,
            until,
        } => {
            let hooks = owner.webhooks(ctx);
            let replayed = match (message, since) {
                (Some(m), _) => hooks.replay(&endpoint, &m).await?,
                (None, Some(since)) => {
                    let input = api::webhooks::ReplayIn { since, until };
                    hooks.replay_range(&endpoint, &input).await?
                }
                (None, None) => return Err(CliError::usage("name a message, or pass --since")),
            };
            ctx.out.done(
                &value(&replayed),
                &format!("replayed {}", replayed.replayed),
            );
        }
        WebhooksCommand::EventTypes => {
            ctx.out.list(
                &value(&ctx.client.event_types().await?),
                &["name", "description"],
            );
        }
    }
    Ok(())
}

async fn endpoints(ctx: &Ctx, cmd: EndpointsCommand) -> CliResult {
    match cmd {
        EndpointsCommand::List { owner, page } => {
            let items = owner.webhooks(ctx).list(page.params());
            ctx.out
                .list(&collect(&page, items).await?, ENDPOINT_COLUMNS);
        }
        EndpointsCommand::Show { owner, endpoint } => {
            ctx.out
                .one(&value(&owner.webhooks(ctx).get(&endpoint).await?));
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
            let input: api::webhooks::EndpointInput = from_json("data", Value::Object(body))?;
            ctx.out
                .one(&value(&owner.webhooks(ctx).create(&input).await?));
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
            let patch: api::webhooks::EndpointPatch = from_json("data", Value::Object(body))?;
            require_changes(&patch)?;
            let v = owner.webhooks(ctx).update(&endpoint, &patch).await?;
            ctx.out.one(&value(&v));
        }
        EndpointsCommand::Delete { owner, endpoint } => {
            owner.webhooks(ctx).delete(&endpoint).await?;
            ctx.out.gone("endpoint", &endpoint, "deleted");
        }
        EndpointsCommand::RotateSecret {
            owner,
            endpoint,
            overlap_seconds,
        } => {
            let input = api::webhooks::RotateSecretIn { overlap_seconds };
            let v = owner.webhooks(ctx).rotate_secret(&endpoint, &input).await?;
            ctx.out.one(&value(&v));
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

async fn provisioning(ctx: &Ctx, cmd: ProvisioningCommand) -> CliResult {
    let workflows = ctx.client.provisioning();
    match cmd {
        ProvisioningCommand::List { status, page } => {
            let params = api::provisioning::ListParams {
                status,
                limit: page.limit,
                cursor: page.cursor.clone(),
            };
            ctx.out.list(
                &collect(&page, workflows.list(params)).await?,
                WORKFLOW_COLUMNS,
            );
        }
        ProvisioningCommand::Show { id } => show_workflow(ctx, &workflows.get(&id).await?),
        ProvisioningCommand::Start { data, follow: f } => {
            let spec: api::provisioning::ProvisioningIn = typed_arg("data", &data)?;
            after_start(ctx, workflows.create(&spec).await?, f).await?;
        }
        ProvisioningCommand::Follow { id } => follow(ctx, &id).await?,
        ProvisioningCommand::Retry { id, follow: f } => {
            after_start(ctx, workflows.retry(&id).await?, f).await?;
        }
        ProvisioningCommand::Cancel { id } => show_workflow(ctx, &workflows.cancel(&id).await?),
    }
    Ok(())
}

/// The serde name of a wire enum (`succeeded`, `verify_whatsapp`, …).
fn wire_name<T: Serialize>(v: &T) -> String {
    value(v).as_str().unwrap_or("?").to_owned()
}

async fn after_start(ctx: &Ctx, workflow: WorkflowOut, f: bool) -> CliResult {
    // A dry run has no id: there is nothing to follow.
    match (&workflow.id, f) {
        (Some(id), true) => follow(ctx, id).await,
        _ => {
            show_workflow(ctx, &workflow);
            Ok(())
        }
    }
}

fn show_workflow(ctx: &Ctx, workflow: &WorkflowOut) {
    if ctx.out.json {
        ctx.out.one(&value(workflow));
        return;
    }
    println!(
        "workflow {} for {}: {}",
        workflow.id.as_deref().unwrap_or("(dry run)"),
        workflow.tenant_id,
        wire_name(&workflow.status)
    );
    ctx.out.list(
        &value(&workflow.steps),
        &["name", "status", "attempts", "error.code"],
    );
}

/// Polls the workflow, one progress bar over its steps, until it ends.
async fn follow(ctx: &Ctx, id: &str) -> CliResult {
    use api::provisioning::{StepStatus, WorkflowStatus};
    let workflows = ctx.client.provisioning();
    let mut workflow = workflows.get(id).await?;
    let bar = progress_bar((workflow.steps.len() as u64).max(1), "provisioning");
    loop {
        let finished = |s: &&api::provisioning::Step| {
            matches!(s.status, StepStatus::Succeeded | StepStatus::Compensated)
        };
        let done = workflow.steps.iter().filter(finished).count() as u64;
        let current = workflow
            .steps
            .iter()
            .find(|s| !finished(s))
            .map(|s| wire_name(&s.name))
            .unwrap_or_default();
        bar.set_position(done);
        bar.set_message(format!("{} {current}", wire_name(&workflow.status)));
        if matches!(
            workflow.status,
            WorkflowStatus::Succeeded
                | WorkflowStatus::Failed
                | WorkflowStatus::Compensated
                | WorkflowStatus::Cancelled
        ) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        workflow = workflows.get(id).await?;
    }
    bar.finish_and_clear();
    show_workflow(ctx, &workflow);
    if workflow.status == WorkflowStatus::Succeeded {
        Ok(())
    } else {
        Err(CliError::generic(format!(
            "workflow {id} ended {}",
            wire_name(&workflow.status)
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
        ttl_seconds: Option<i64>,
    },
}

async fn widgets(ctx: &Ctx, cmd: WidgetsCommand) -> CliResult {
    match cmd {
        WidgetsCommand::List { tenant } => {
            ctx.out.list(
                &value(&ctx.client.widgets(&tenant).list().await?),
                &["id", "name", "enabled", "allowed_origins", "created_at"],
            );
        }
        WidgetsCommand::Create {
            tenant,
            name,
            origins,
        } => {
            let input = api::widgets::WidgetIn {
                name,
                allowed_origins: origins,
            };
            ctx.out
                .one(&value(&ctx.client.widgets(&tenant).create(&input).await?));
        }
        WidgetsCommand::Update {
            tenant,
            widget,
            name,
            origins,
            enable,
            disable,
        } => {
            let patch = api::widgets::WidgetPatchIn {
                name,
                allowed_origins: non_empty(origins),
                enabled: enabled_flag(enable, disable),
            };
            require_changes(&patch)?;
            let v = ctx.client.widgets(&tenant).update(&widget, &patch).await?;
            ctx.out.one(&value(&v));
        }
        WidgetsCommand::Token {
            tenant,
            widget,
            origin,
            ttl_seconds,
        } => {
            let input = api::widgets::WidgetTokenIn {
                origin,
                ttl_seconds,
            };
            let v = ctx
                .client
                .widgets(&tenant)
                .issue_token(&widget, &input)
                .await?;
            ctx.out.one(&value(&v));
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
        Remote::IdentityProviders(c) => super::identity::identity_providers(ctx, c).await,
        Remote::Members(c) => super::identity::members(ctx, c).await,
        Remote::Resolve(c) => super::identity::resolve(ctx, c).await,
        Remote::Conversations(c) => super::inbound::conversations(ctx, c).await,
    }
}
