//! `tenantry`: the server and its operator commands. Configuration comes from
//! defaults, `tenantry.toml` and `TENANTRY_*` variables (see README).

mod app_db;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tenantry_server::config::{Config, SETTINGS};

#[derive(Parser)]
#[command(name = "tenantry", version, about = "The multi-tenant control plane")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

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
    /// Manage the keys that seal tenants' credentials.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(SigningKeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Row-level security for the app's own PostgreSQL database.
    #[command(subcommand, name = "app-db")]
    AppDb(app_db::AppDbCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute audit chains and check their signed checkpoints; prints one
    /// JSON report per chain and exits 1 if any chain does not verify.
    /// Without --tenant or --file: every chain (each tenant's and the
    /// operator's).
    Verify {
        /// Only this tenant's chain (`operator`: the operator chain).
        #[arg(long)]
        tenant: Option<String>,
        /// Verify an NDJSON export instead, offline (no database).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// With --file: trust only this checkpoint key (a signed-note vkey
        /// from GET /v1/audit/keys, obtained apart from the file; repeatable).
        /// Required, unless --trust-file-keys.
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
        /// With --file and no --public-key: check against the keys the file
        /// itself carries, which proves it consistent, not authentic (anyone
        /// can sign a file with a key of their own).
        #[arg(long = "trust-file-keys")]
        trust_file_keys: bool,
    },
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
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
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
        Command::Audit(AuditCommand::Verify {
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
                tenantry_server::seed::seed(&store, &plan, &out).await?;
                store.close().await;
                Ok(ExitCode::SUCCESS)
            }
            Command::SigningKeys(SigningKeysCommand::Rotate) => rotate_signing_key(config).await,
            Command::Keys(command) => keys(config, command).await,
            Command::Audit(AuditCommand::Verify { tenant, .. }) => {
                audit_verify(config, tenant).await
            }
            Command::Openapi | Command::Settings | Command::AppDb(_) => Ok(ExitCode::SUCCESS),
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
            let moved = rotation::rewrap_all(&state).await?;
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
