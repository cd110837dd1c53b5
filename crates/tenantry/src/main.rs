//! `tenantry`: the server and its operator commands. Configuration comes from
//! defaults, `tenantry.toml` and `TENANTRY_*` variables (see README).

mod cli;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;
use tenantry_appdb as app_db;
use tenantry_server::config::{Config, SETTINGS};

#[derive(Parser)]
#[command(name = "tenantry", version, about = "The multi-tenant control plane")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    remote: cli::RemoteArgs,
}

/// The commands that act on this host's database and keyring; every other
/// command talks to a server over HTTP (listed apart in `--help`).
const SERVER_COMMANDS: &[&str] = &[
    "serve",
    "migrate",
    "doctor",
    "seed",
    "openapi",
    "settings",
    "keyring",
    "signing-keys",
    "completions",
    "app-db",
];

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check tenant isolation in the database; exits non-zero on any finding.
    Doctor,
    /// Print the OpenAPI document.
    Openapi,
    /// List every setting with its default.
    Settings,
    /// Load many tenants and keys (for benchmarks); writes key samples to --out.
    Seed {
        #[arg(long, default_value_t = 1000)]
        tenants: usize,
        #[arg(long, default_value_t = 10)]
        keys_per_tenant: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
        #[arg(long, default_value_t = 20000)]
        sample: usize,
        #[arg(long, default_value = "./seed-out")]
        out: std::path::PathBuf,
    },
    /// Manage the keys that seal tenants' credentials (this host's keyring
    /// file and database; `keys` is an old name for it).
    #[command(subcommand, alias = "keys")]
    Keyring(KeysCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(SigningKeysCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Named servers and their keys for the remote commands.
    #[command(subcommand)]
    Profile(cli::ProfileCommand),
    /// Tenants: list, show, create, update, delete, suspend, reactivate, stats, events.
    #[command(subcommand)]
    Tenants(cli::TenantsCommand),
    /// A tenant's custom domains and their verification.
    #[command(subcommand)]
    Domains(cli::DomainsCommand),
    /// A tenant's API keys (and verifying a key).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(cli::ApiKeysCommand),
    /// Operator keys.
    #[command(subcommand, name = "operator-keys")]
    OperatorKeys(cli::OperatorKeysCommand),
    /// A tenant's third-party credentials (masked; reveal asks first).
    #[command(subcommand)]
    Credentials(cli::CredentialsCommand),
    /// A tenant's settings by category (sensitive fields sealed and masked).
    #[command(subcommand, name = "tenant-settings")]
    TenantSettings(cli::SettingsCommand),
    /// A tenant's effective configuration and its versions.
    #[command(subcommand)]
    Config(cli::ConfigCommand),
    /// Plans: limits, rate limits, quotas and features.
    #[command(subcommand)]
    Plans(cli::PlansCommand),
    /// The meter catalogue.
    #[command(subcommand)]
    Meters(cli::MetersCommand),
    /// Usage of a tenant, and recording usage events.
    #[command(subcommand)]
    Usage(cli::UsageCommand),
    /// Quota checks.
    #[command(subcommand)]
    Quotas(cli::QuotasCommand),
    /// The audit log: query, export, verify, checkpoints, keys.
    #[command(subcommand)]
    Audit(cli::AuditCommand),
    /// Outbound webhooks: endpoints, messages, replay.
    #[command(subcommand)]
    Webhooks(cli::WebhooksCommand),
    /// Provisioning workflows: start, follow, retry, cancel.
    #[command(subcommand)]
    Provisioning(cli::ProvisioningCommand),
    /// A tenant's chat widgets and their tokens.
    #[command(subcommand)]
    Widgets(cli::WidgetsCommand),
    /// The server's key-encryption keys, over the API: status, rotate (with
    /// rewrap progress), rotate a tenant's data key.
    #[command(subcommand)]
    Vault(cli::VaultCommand),
    /// Identity providers whose tokens the server trusts (operators).
    #[command(subcommand, name = "identity-providers")]
    IdentityProviders(cli::IdentityProvidersCommand),
    /// A tenant's members: list, show, add, update, remove.
    #[command(subcommand)]
    Members(cli::MembersCommand),
    /// A tenant's inbound conversations and their messages.
    #[command(subcommand)]
    Conversations(cli::ConversationsCommand),
    /// Which tenant a host, API key or token resolves to, and how.
    #[command(subcommand)]
    Resolve(cli::ResolveCommand),
    /// Row-level security for the app's own PostgreSQL database.
    #[command(subcommand, name = "app-db")]
    AppDb(app_db::AppDbCommand),
}

/// The top-level help: server commands and remote commands apart, then the
/// exit codes.
fn command_line() -> clap::Command {
    let cmd = Cli::command();
    let mut server = String::new();
    let mut remote = String::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let line = format!("  {:<16}{about}\n", sub.get_name());
        if SERVER_COMMANDS.contains(&sub.get_name()) {
            server.push_str(&line);
        } else {
            remote.push_str(&line);
        }
    }
    let template = format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n\
         Server commands (this host's database, keyring and files):\n{server}\n\
         Remote commands (a server over HTTP: --url/TENANTRY_URL, --key/TENANTRY_KEY or a profile):\n{remote}\n\
         Options:\n{{options}}\n{{after-help}}"
    );
    cmd.help_template(template)
        .after_help(cli::error::EXIT_CODES_HELP)
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Activate a new key-encryption key (written to the keyring file, the
    /// old keys kept after it) and rewrap every tenant's data key with it.
    Rotate,
    /// Give one tenant a new data key and re-encrypt all its secrets.
    RotateTenant { tenant: String },
    /// Show the keyring: active key, data keys per key, rewrap backlog.
    Status,
}

#[derive(Subcommand)]
enum SigningKeysCommand {
    /// Start signing with a new key; the previous one keeps verifying until
    /// its tokens have expired. Running servers pick it up at once.
    Rotate,
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command_line().get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let remote = cli.remote;
    let command = cli.command.unwrap_or(Command::Serve);
    let command = match remote_command(command, &remote) {
        Ok(RemoteOrLocal::Remote(command)) => return cli::run(&remote, command),
        Ok(RemoteOrLocal::Done(code)) => return code,
        Err(local) => local,
    };
    match command {
        Command::Openapi => {
            print!("{}", tenantry_server::openapi::json());
            return ExitCode::SUCCESS;
        }
        Command::AppDb(command) => return app_db::main(command),
        Command::Settings => {
            for (name, secret, default, help) in SETTINGS {
                let env = format!("TENANTRY_{}", name.to_ascii_uppercase());
                let file = if *secret {
                    format!(" (or {env}_FILE)")
                } else {
                    String::new()
                };
                println!(
                    "{env}{file}\n    {help}; default: {}",
                    if default.is_empty() { "unset" } else { default }
                );
            }
            return ExitCode::SUCCESS;
        }
        Command::Audit(cli::AuditCommand::Verify {
            file: Some(file),
            public_keys,
            trust_file_keys,
            ..
        }) => {
            if public_keys.is_empty() && !trust_file_keys {
                eprintln!(
                    "tenantry: --file needs --public-key (from GET /v1/audit/keys): the keys inside \
                     an export prove nothing about who signed it (or pass --trust-file-keys)"
                );
                return ExitCode::from(2);
            }
            return verify_export_file(&file, &public_keys);
        }
        _ => {}
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tenantry: {err}");
            return ExitCode::from(2);
        }
    };
    tenantry_server::logging::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("tenantry: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Doctor => doctor(config).await,
            Command::Seed {
                tenants,
                keys_per_tenant,
                prefix,
                sample,
                out,
            } => {
                let store = tenantry_server::open_store(&config).await?;
                let plan = tenantry_server::seed::SeedPlan {
                    tenants,
                    keys_per_tenant,
                    prefix,
                    sample,
                };
                let bar = cli::resources::progress_bar(tenants as u64, "seeding tenants");
                tenantry_server::seed::seed_with_progress(&store, &plan, &out, &|done, _keys| {
                    bar.set_position(done as u64)
                })
                .await?;
                bar.finish_and_clear();
                store.close().await;
                Ok(ExitCode::SUCCESS)
            }
            Command::SigningKeys(SigningKeysCommand::Rotate) => rotate_signing_key(config).await,
            Command::Keyring(command) => keys(config, command).await,
            Command::Audit(cli::AuditCommand::Verify { tenant, .. }) => {
                audit_verify(config, tenant).await
            }
            _ => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("tenantry: {err:#}");
            ExitCode::FAILURE
        }
    }
}

// Built once per process from the command line: size does not matter.
#[allow(clippy::large_enum_variant)]
enum RemoteOrLocal {
    Remote(cli::Remote),
    Done(ExitCode),
}

/// Sorts a command: remote (HTTP), finished here (completions, profiles),
/// or local (given back).
#[allow(clippy::result_large_err)] // once per process, see RemoteOrLocal
fn remote_command(command: Command, args: &cli::RemoteArgs) -> Result<RemoteOrLocal, Command> {
    use cli::Remote as R;
    let remote = match command {
        Command::Completions { shell } => {
            let mut cmd = command_line();
            clap_complete::generate(shell, &mut cmd, "tenantry", &mut std::io::stdout());
            return Ok(RemoteOrLocal::Done(ExitCode::SUCCESS));
        }
        Command::Profile(c) => return Ok(RemoteOrLocal::Done(cli::profile(args, c))),
        Command::Tenants(c) => R::Tenants(c),
        Command::Domains(c) => R::Domains(c),
        Command::ApiKeys(c) => R::ApiKeys(c),
        Command::OperatorKeys(c) => R::OperatorKeys(c),
        Command::Credentials(c) => R::Credentials(c),
        Command::TenantSettings(c) => R::Settings(c),
        Command::Config(c) => R::Config(c),
        Command::Plans(c) => R::Plans(c),
        Command::Meters(c) => R::Meters(c),
        Command::Usage(c) => R::Usage(c),
        Command::Quotas(c) => R::Quotas(c),
        // `audit verify --file` (offline) and `--database` (this host) are local.
        Command::Audit(cli::AuditCommand::Verify {
            file: None,
            database: false,
            tenant,
            public_keys,
            trust_file_keys,
        }) => R::Audit(cli::AuditCommand::Verify {
            file: None,
            database: false,
            tenant,
            public_keys,
            trust_file_keys,
        }),
        Command::Audit(c @ cli::AuditCommand::Verify { .. }) => return Err(Command::Audit(c)),
        Command::Audit(c) => R::Audit(c),
        Command::Webhooks(c) => R::Webhooks(c),
        Command::Provisioning(c) => R::Provisioning(c),
        Command::Widgets(c) => R::Widgets(c),
        Command::Vault(c) => R::Vault(c),
        Command::IdentityProviders(c) => R::IdentityProviders(c),
        Command::Members(c) => R::Members(c),
        Command::Conversations(c) => R::Conversations(c),
        Command::Resolve(c) => R::Resolve(c),
        local => return Err(local),
    };
    Ok(RemoteOrLocal::Remote(remote))
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tenantry_server::run(config, listener, tenantry_server::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    let store = tenantry_server::open_store(&config).await?;
    println!("migrations applied ({} database)", store.backend_name());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn doctor(config: Config) -> anyhow::Result<ExitCode> {
    let mut store = tenantry_store::Store::connect(&config.database())
        .await
        .context("cannot connect to the database")?;
    store.prepare().await?;
    let report = store.doctor().await?;
    println!("{report}");
    store.close().await;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn rotate_signing_key(config: Config) -> anyhow::Result<ExitCode> {
    let store = tenantry_server::open_store(&config).await?;
    let vault = tenantry_server::vault::Vault::load(&config)?;
    let state = tenantry_server::app::AppState::for_command(store.clone(), config, vault)?;
    #[allow(clippy::disallowed_methods)] // system grant: the operator's own command on the host
    let grant = tenantry_server::grant::OperatorGrant::system("cli");
    let rotated = tenantry_server::keys::signing::rotate(&state, &grant).await;
    store.close().await;
    let kid = rotated.map_err(|err| anyhow::anyhow!("cannot rotate the signing key: {err:?}"))?;
    println!("token signing key rotated; new key {kid}");
    Ok(ExitCode::SUCCESS)
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<ExitCode> {
    use tenantry_server::grant::{OperatorGrant, TenantGrant};
    use tenantry_server::vault::{Vault, rotation};
    let store = tenantry_server::open_store(&config).await?;
    let vault = Vault::load(&config)?;
    let state = tenantry_server::app::AppState::for_command(store.clone(), config, vault)?;
    // The command acts on the server's own authority: whoever can run it
    // holds the keyring and the database credentials already.
    #[allow(clippy::disallowed_methods)] // system grant: a command (actor system/cli)
    let operator = OperatorGrant::system("cli");
    match command {
        KeysCommand::Rotate => {
            let kek = rotation::rotate_keyring(&state, &operator)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            println!("new key-encryption key {kek} is active; rewrapping data keys…");
            let pending = rotation::status(&state, &operator).await?.rewrap_pending;
            let bar = cli::resources::progress_bar(pending.max(0) as u64, "rewrapping");
            let mut moved = 0;
            loop {
                let batch = rotation::rewrap_batch(&state, 500).await?;
                if batch == 0 {
                    break;
                }
                moved += batch;
                bar.set_position(moved as u64);
            }
            bar.finish_and_clear();
            println!("rewrapped {moved} data keys");
        }
        KeysCommand::RotateTenant { tenant } => {
            let id = tenantry_core::TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("{e}"))?;
            #[allow(clippy::disallowed_methods)] // system grant: a command on one tenant
            let grant = TenantGrant::system(id.clone(), "cli");
            let dek = rotation::rotate_tenant(&state, &grant)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            println!("tenant {id} now uses data key {dek}; its secrets were re-encrypted");
        }
        KeysCommand::Status => {}
    }
    let status = rotation::status(&state, &operator).await?;
    println!("active key-encryption key: {}", status.active_kek);
    for kek in &status.keks {
        println!(
            "  {}{}  data keys: {}{}{}",
            kek.id,
            if kek.active { " (active)" } else { "" },
            kek.data_keys,
            if kek.retirable {
                "  — no longer used: can be removed from the keyring"
            } else {
                ""
            },
            if kek.in_keyring {
                ""
            } else {
                "  — NOT IN THE KEYRING: these data keys cannot be opened"
            }
        );
    }
    println!(
        "data keys waiting to be rewrapped: {}",
        status.rewrap_pending
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(config: Config, tenant: Option<String>) -> anyhow::Result<ExitCode> {
    use tenantry_core::audit::Chain;
    let store = tenantry_server::open_store(&config).await?;
    let chains = match tenant.as_deref() {
        None => tenantry_server::audit::chains(&store).await?,
        Some("operator") => vec![Chain::Operator],
        Some(id) => vec![Chain::Tenant(
            tenantry_core::TenantId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?,
        )],
    };
    let mut all_ok = true;
    for chain in &chains {
        let report = tenantry_server::audit::verify::verify_stored(&store, chain).await?;
        all_ok &= report.ok;
        println!("{}", serde_json::to_string(&report)?);
    }
    store.close().await;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `tenantry audit verify --file`: no configuration, no database.
fn verify_export_file(path: &std::path::Path, public_keys: &[String]) -> ExitCode {
    let mut trusted = Vec::new();
    for vkey in public_keys {
        match tenantry_crypto::note::NoteVerifier::parse(vkey) {
            Ok(v) => trusted.push(v),
            Err(err) => {
                eprintln!("tenantry: --public-key {vkey}: {err}");
                return ExitCode::from(2);
            }
        }
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("tenantry: cannot read {}: {err}", path.display());
            return ExitCode::from(2);
        }
    };
    match tenantry_server::audit::verify::verify_export(&text, &trusted) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(why) => {
            eprintln!("tenantry: {}: {why}", path.display());
            ExitCode::FAILURE
        }
    }
}
