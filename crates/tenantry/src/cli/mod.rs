//! The remote operator CLI: `tenantry <resource> <verb>` against a server's
//! HTTP API. Where a command's server and key come from: `--url`/`TENANTRY_URL`
//! and `--key`/`TENANTRY_KEY`, else a profile (`tenantry profile …`). Every
//! request goes through the typed `tenantry-client` (its retries, pagination
//! streams and problem errors); output through [`output::Output`].

pub mod error;
pub mod identity;
pub mod inbound;
pub mod output;
pub mod profile;
pub mod resources;

use clap::{Args, Subcommand};
use error::{CliError, CliResult, Exit};
use serde_json::Value;
use std::process::ExitCode;

pub use identity::{IdentityProvidersCommand, MembersCommand, ResolveCommand};
pub use inbound::ConversationsCommand;
pub use resources::{
    ApiKeysCommand, AuditCommand, ConfigCommand, CredentialsCommand, DomainsCommand, MetersCommand,
    OperatorKeysCommand, PlansCommand, ProvisioningCommand, QuotasCommand, SettingsCommand,
    TenantsCommand, UsageCommand, VaultCommand, WebhooksCommand, WidgetsCommand,
};

/// Where remote commands connect, and how they print.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Server base URL (e.g. http://127.0.0.1:3007); overrides the profile.
    #[arg(
        long,
        env = "TENANTRY_URL",
        global = true,
        help_heading = "Remote options"
    )]
    pub url: Option<String>,
    /// API key (operator or tenant); overrides the profile's. Prefer a
    /// profile or TENANTRY_KEY: arguments show in the process list.
    #[arg(
        long,
        env = "TENANTRY_KEY",
        global = true,
        hide_env_values = true,
        help_heading = "Remote options"
    )]
    pub key: Option<String>,
    /// Profile to use instead of the current one.
    #[arg(
        long,
        env = "TENANTRY_PROFILE",
        global = true,
        help_heading = "Remote options"
    )]
    pub profile: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true, help_heading = "Remote options")]
    pub json: bool,
}

/// `tenantry profile …`: named servers and their keys.
#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Add (or replace) a profile. The key is read from --key-stdin or
    /// TENANTRY_KEY/--key and stored in a file only you can read.
    Add {
        name: String,
        /// The server's base URL.
        #[arg(long = "server")]
        server: String,
        /// Read the key from standard input (one line).
        #[arg(long)]
        key_stdin: bool,
    },
    /// List profiles (never their keys).
    List,
    /// Make a profile the current one.
    Use { name: String },
    /// Remove a profile and its stored key.
    Remove { name: String },
}

/// The context every remote command runs with.
pub struct Ctx {
    pub client: tenantry_client::Client,
    pub out: output::Output,
}

/// A client for `url` calling with `key` (anonymous without one).
fn client(url: &str, key: Option<&str>) -> CliResult<tenantry_client::Client> {
    let mut builder = tenantry_client::Client::builder(url)
        // Exports and `--all` lists of a large server take a while.
        .timeout(std::time::Duration::from_secs(120))
        .user_agent(concat!("tenantry-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(key) = key {
        builder = builder.key(key);
    }
    builder.build().map_err(|e| match e {
        tenantry_client::Error::BaseUrl(_) => CliError::usage(format!(
            "server URL {url:?} must be an http:// or https:// URL"
        )),
        other => other.into(),
    })
}

/// Whether `--key` was given on this process's command line (rather than
/// through TENANTRY_KEY, which clap reads into the same field).
fn key_on_command_line() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--key" || a.to_string_lossy().starts_with("--key="))
}

/// A key on the command line is readable by every user of the host (`ps`,
/// `/proc/*/cmdline`) and stays in shell history: say so, once.
fn warn_if_key_on_command_line(args: &RemoteArgs) {
    if args.key.as_deref().is_some_and(|k| !k.is_empty()) && key_on_command_line() {
        eprintln!(
            "warning: --key is visible to other users in the process list and stays in shell history; \
             use TENANTRY_KEY or a profile (tenantry profile add NAME --server URL --key-stdin)"
        );
    }
}

impl Ctx {
    fn connect(args: &RemoteArgs) -> CliResult<Ctx> {
        let profiles = profile::Profiles::load()?;
        let chosen = profiles.get(args.profile.as_deref())?;
        let url = match (&args.url, &chosen) {
            (Some(url), _) => url.clone(),
            (None, Some(p)) => p.url.clone(),
            (None, None) => {
                return Err(CliError::usage(
                    "no server: pass --url, set TENANTRY_URL, or add a profile (tenantry profile add NAME --server URL)",
                ));
            }
        };
        warn_if_key_on_command_line(args);
        let key = args
            .key
            .clone()
            .filter(|k| !k.is_empty())
            .or_else(|| chosen.and_then(|p| p.key));
        Ok(Ctx {
            client: client(&url, key.as_deref())?,
            out: output::Output { json: args.json },
        })
    }
}

/// Runs `tenantry profile …` (no server needed).
pub fn profile(args: &RemoteArgs, command: ProfileCommand) -> ExitCode {
    finish(profile_inner(args, command))
}

fn profile_inner(args: &RemoteArgs, command: ProfileCommand) -> CliResult {
    let mut profiles = profile::Profiles::load()?;
    let out = output::Output { json: args.json };
    match command {
        ProfileCommand::Add {
            name,
            server,
            key_stdin,
        } => {
            let key = if key_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| CliError::generic(format!("cannot read the key: {e}")))?;
                Some(line.trim().to_owned()).filter(|k| !k.is_empty())
            } else {
                warn_if_key_on_command_line(args);
                args.key.clone().filter(|k| !k.is_empty())
            };
            client(&server, None)?;
            profiles.add(&name, &server, key.as_deref())?;
            out.done(
                &serde_json::json!({"name": name, "url": server, "key_stored": key.is_some()}),
                &format!(
                    "profile {name} saved{}",
                    if key.is_some() {
                        " (key stored, mode 0600)"
                    } else {
                        " (no key)"
                    }
                ),
            );
        }
        ProfileCommand::List => {
            let rows: Vec<Value> = profiles
                .list()
                .into_iter()
                .map(|(name, url, has_key, current)| {
                    serde_json::json!({"name": name, "url": url, "key": if has_key { "stored" } else { "none" }, "current": current})
                })
                .collect();
            out.list(&Value::Array(rows), &["name", "url", "key", "current"]);
        }
        ProfileCommand::Use { name } => {
            profiles.use_profile(&name)?;
            out.done(
                &serde_json::json!({"current": name}),
                &format!("using profile {name}"),
            );
        }
        ProfileCommand::Remove { name } => {
            profiles.remove(&name)?;
            out.done(
                &serde_json::json!({"removed": name}),
                &format!("profile {name} removed"),
            );
        }
    }
    Ok(())
}

/// Every remote command, for dispatch from `main`.
pub enum Remote {
    Tenants(TenantsCommand),
    Domains(DomainsCommand),
    ApiKeys(ApiKeysCommand),
    OperatorKeys(OperatorKeysCommand),
    Credentials(CredentialsCommand),
    Settings(SettingsCommand),
    Config(ConfigCommand),
    Plans(PlansCommand),
    Meters(MetersCommand),
    Usage(UsageCommand),
    Quotas(QuotasCommand),
    Audit(AuditCommand),
    Webhooks(WebhooksCommand),
    Provisioning(ProvisioningCommand),
    Widgets(WidgetsCommand),
    Vault(VaultCommand),
    IdentityProviders(IdentityProvidersCommand),
    Members(MembersCommand),
    Resolve(ResolveCommand),
    Conversations(ConversationsCommand),
}

/// Runs a remote command on a runtime of its own.
pub fn run(args: &RemoteArgs, command: Remote) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return finish(Err(CliError::generic(format!("cannot start: {e}")))),
    };
    finish(runtime.block_on(async {
        let ctx = Ctx::connect(args)?;
        resources::run(&ctx, command).await
    }))
}

fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.message);
            ExitCode::from(err.exit as u8)
        }
    }
}

/// Reads a JSON argument: inline, `@path` (a file) or `-` (standard input).
pub fn json_arg(name: &str, text: &str) -> CliResult<Value> {
    let raw = if text == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::generic(format!("cannot read standard input: {e}")))?;
        s
    } else if let Some(path) = text.strip_prefix('@') {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("{name}: cannot read {path}: {e}")))?
    } else {
        text.to_owned()
    };
    serde_json::from_str(&raw)
        .map_err(|e| CliError::new(Exit::Usage, format!("{name}: not valid JSON: {e}")))
}

/// Asks "type yes" on a terminal; refuses without one unless `yes`.
pub fn confirm(yes: bool, what: &str) -> CliResult {
    use std::io::IsTerminal;
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::usage(format!(
            "{what}: refusing without a terminal to confirm on; pass --yes"
        )));
    }
    eprint!("{what}. Type 'yes' to continue: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::generic(format!("cannot read the answer: {e}")))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::generic("not confirmed; nothing was revealed"))
    }
}
