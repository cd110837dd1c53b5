//! Who a caller is: the identity providers whose tokens the server trusts,
//! the members of each tenant, and resolving a host, key or token to its
//! tenant the way the gateway does.

use super::error::{CliError, CliResult};
use super::resources::{Page, collect, typed_arg, value};
use super::{Ctx, json_arg};
use clap::Subcommand;
use tenantry_client::api;

#[derive(Subcommand, Debug)]
pub enum IdentityProvidersCommand {
    /// The registered identity providers (operators).
    List,
    Show {
        id: String,
    },
    /// Register a provider: JSON with issuer, audiences, algorithms, and
    /// jwks_url or jwks (tenant_claim, roles_claim, role_mapping… optional).
    Create {
        /// JSON object (inline, @file or -).
        #[arg(long)]
        data: String,
    },
    /// Replace a provider's settings (the same JSON as create).
    Update {
        id: String,
        #[arg(long)]
        data: String,
    },
    /// Remove a provider: its tokens are refused from then on.
    Delete {
        id: String,
    },
}

const PROVIDER_COLUMNS: &[&str] = &["id", "issuer", "audiences", "algorithms", "updated_at"];

pub async fn identity_providers(ctx: &Ctx, cmd: IdentityProvidersCommand) -> CliResult {
    let providers = ctx.client.identity_providers();
    match cmd {
        IdentityProvidersCommand::List => {
            ctx.out
                .list(&value(&providers.list().await?), PROVIDER_COLUMNS);
        }
        IdentityProvidersCommand::Show { id } => ctx.out.one(&value(&providers.get(&id).await?)),
        IdentityProvidersCommand::Create { data } => {
            let input: api::identity::ProviderIn = typed_arg("data", &data)?;
            ctx.out.one(&value(&providers.create(&input).await?));
        }
        IdentityProvidersCommand::Update { id, data } => {
            let input: api::identity::ProviderIn = typed_arg("data", &data)?;
            ctx.out.one(&value(&providers.put(&id, &input).await?));
        }
        IdentityProvidersCommand::Delete { id } => {
            providers.delete(&id).await?;
            ctx.out.gone("identity provider", &id, "deleted");
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// A tenant's members.
    List {
        tenant: String,
        #[command(flatten)]
        page: Page,
    },
    /// One member; SUBJECT is `idp_…:subject`.
    Show { tenant: String, subject: String },
    /// Add a member (or replace one) with these roles.
    Add {
        tenant: String,
        subject: String,
        /// admin, member or a custom role of the provider (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// JSON object (inline, @file or -).
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Change a member's roles or metadata (the rest is kept).
    Update {
        tenant: String,
        subject: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Remove a member: their tokens stop resolving to the tenant.
    Remove { tenant: String, subject: String },
    /// Every tenant a user is a member of (operators).
    Tenants { subject: String },
}

const MEMBER_COLUMNS: &[&str] = &["subject", "tenant_id", "roles", "created_at", "updated_at"];

pub async fn members(ctx: &Ctx, cmd: MembersCommand) -> CliResult {
    match cmd {
        MembersCommand::List { tenant, page } => {
            let items = ctx.client.members(&tenant).list(page.params());
            ctx.out.list(&collect(&page, items).await?, MEMBER_COLUMNS);
        }
        MembersCommand::Show { tenant, subject } => {
            ctx.out
                .one(&value(&ctx.client.members(&tenant).get(&subject).await?));
        }
        MembersCommand::Add {
            tenant,
            subject,
            roles,
            metadata,
        } => {
            let input = api::identity::MemberIn {
                roles,
                metadata: metadata.map(|m| json_arg("metadata", &m)).transpose()?,
            };
            let v = ctx.client.members(&tenant).put(&subject, &input).await?;
            ctx.out.one(&value(&v));
        }
        MembersCommand::Update {
            tenant,
            subject,
            roles,
            metadata,
        } => {
            if roles.is_empty() && metadata.is_none() {
                return Err(CliError::usage(
                    "nothing to change: pass --role or --metadata",
                ));
            }
            // The API replaces a member whole: start from what is there.
            let members = ctx.client.members(&tenant);
            let current = members.get(&subject).await?;
            let input = api::identity::MemberIn {
                roles: if roles.is_empty() {
                    current.roles
                } else {
                    roles
                },
                metadata: Some(match metadata {
                    Some(m) => json_arg("metadata", &m)?,
                    None => current.metadata,
                }),
            };
            ctx.out.one(&value(&members.put(&subject, &input).await?));
        }
        MembersCommand::Remove { tenant, subject } => {
            ctx.client.members(&tenant).delete(&subject).await?;
            ctx.out.gone("member", &subject, "removed");
        }
        MembersCommand::Tenants { subject } => {
            ctx.out.list(
                &value(&ctx.client.member_tenants(&subject).await?),
                MEMBER_COLUMNS,
            );
        }
    }
    Ok(())
}

/// What to resolve. A key or token is read from standard input, never an
/// argument (arguments show in the process list).
#[derive(Subcommand, Debug)]
pub enum ResolveCommand {
    /// The tenant a host name (custom domain or subdomain) belongs to.
    Host { host: String },
    /// The tenant of an API key, read from standard input.
    Key,
    /// The tenant of an access or widget token, read from standard input.
    Token,
}

pub async fn resolve(ctx: &Ctx, cmd: ResolveCommand) -> CliResult {
    let input = match cmd {
        ResolveCommand::Host { host } => api::resolve::ResolveIn {
            host: Some(host),
            ..Default::default()
        },
        ResolveCommand::Key => api::resolve::ResolveIn {
            api_key: Some(super::resources::read_secret_line("the key")?),
            ..Default::default()
        },
        ResolveCommand::Token => api::resolve::ResolveIn {
            token: Some(super::resources::read_secret_line("the token")?),
            ..Default::default()
        },
    };
    let resolved = ctx.client.resolve(&input).await?;
    if ctx.out.json {
        ctx.out.one(&value(&resolved));
    } else {
        let mut shown = value(&resolved.tenant);
        if let Some(map) = shown.as_object_mut() {
            map.insert("matched_by".to_owned(), value(&resolved.matched_by));
        }
        ctx.out.one(&shown);
    }
    Ok(())
}
