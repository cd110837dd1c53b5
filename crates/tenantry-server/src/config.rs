//! Settings: compiled-in defaults, then an optional `tenantry.toml`, then
//! `TENANTRY_*` environment variables. Unknown settings are refused with a
//! message naming them. Secret settings may also be given as `*_FILE` (a path
//! to a file holding the value), in the file or the environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenantry_core::SecretString;
use tenantry_core::TenantId;
use tenantry_core::values::{Hostname, PlanName, Region};
use tenantry_store::DatabaseOptions;

/// Every setting: name (as in `tenantry.toml`; the environment variable is
/// `TENANTRY_` + upper case), whether it is secret, default, and meaning.
pub const SETTINGS: &[(&str, bool, &str, &str)] = &[
    (
        "listen",
        false,
        "127.0.0.1:3007",
        "address and port to serve HTTP on",
    ),
    (
        "data_dir",
        false,
        "./tenantry-data",
        "directory for the embedded SQLite database and generated keys",
    ),
    (
        "database_url",
        true,
        "",
        "postgres://… to use PostgreSQL instead of the embedded SQLite database",
    ),
    (
        "database_max_connections",
        false,
        "16",
        "connections in the database pool",
    ),
    (
        "root_key",
        true,
        "",
        "operator root key (at least 32 characters); generated into <data_dir>/root.key when unset",
    ),
    ("log", false, "pretty", "log format: pretty or json"),
    (
        "log_level",
        false,
        "info",
        "log filter, e.g. info or tenantry=debug,info",
    ),
    (
        "deletion_grace_period",
        false,
        "30d",
        "how long a soft-deleted tenant's data is kept before it is purged",
    ),
    (
        "purge_interval",
        false,
        "5m",
        "how often the purge worker looks for tenants past their grace period",
    ),
    (
        "max_body_bytes",
        false,
        "1048576",
        "largest request body accepted",
    ),
    (
        "default_plan",
        false,
        "starter",
        "plan of a tenant created without one",
    ),
    (
        "default_region",
        false,
        "local",
        "region of a tenant created without one",
    ),
    (
        "shutdown_timeout",
        false,
        "30s",
        "how long in-flight requests may finish after SIGTERM/SIGINT",
    ),
    (
        "master_key",
        true,
        "",
        "key-encryption keyring: base64 256-bit keys, one per line, the first active; generated into <data_dir>/master.key with SQLite, required with PostgreSQL",
    ),
    (
        "redis_url",
        true,
        "",
        "redis://… to keep rate limits in Redis, exact across server processes",
    ),
    (
        "redis_failure",
        false,
        "open",
        "when Redis is unreachable: open (allow, warn, count) or closed (deny)",
    ),
    (
        "base_domain",
        false,
        "",
        "domain under which tenants have subdomains (acme.example.com → acme)",
    ),
    (
        "dns_resolver",
        false,
        "",
        "DNS resolver (address:port) that checks custom-domain TXT challenges; default: the first nameserver of /etc/resolv.conf",
    ),
    (
        "default_tenant",
        false,
        "",
        "tenant that requests resolve to when nothing else matches (single-tenant mode)",
    ),
    (
        "token_ttl",
        false,
        "15m",
        "default lifetime of access tokens (at most 1h)",
    ),
    (
        "key_usage_flush_interval",
        false,
        "10s",
        "how often last-used times of keys are written",
    ),
    (
        "resolve_anonymous_per_minute",
        false,
        "600",
        "resolutions per minute per source address for callers that are not trusted (0: no limit)",
    ),
    (
        "trusted_proxies",
        false,
        "127.0.0.1,::1",
        "comma-separated IP addresses of gateways whose X-Real-IP header names the client's address (empty: none)",
    ),
    (
        "header_read_timeout",
        false,
        "10s",
        "how long a client may take to send a request's headers (also the longest wait for the next request on a kept-alive connection); then the connection is closed",
    ),
    (
        "body_timeout",
        false,
        "30s",
        "how long a client may take to send a request's body; then 408 request_body_timeout",
    ),
    (
        "request_timeout",
        false,
        "60s",
        "longest time a request may take in all; then 503 request_timeout",
    ),
    (
        "idle_timeout",
        false,
        "5s",
        "how long a kept-alive connection may sit idle between requests before it is closed (at most header_read_timeout)",
    ),
    (
        "write_timeout",
        false,
        "10s",
        "how long a client may leave a pending response unread (the socket accepting none of it); then the connection is closed",
    ),
    (
        "max_connections",
        false,
        "1024",
        "most client connections served at once; further ones wait in the listen backlog until one closes",
    ),
    (
        "changes_keepalive",
        false,
        "15s",
        "how often GET /v1/changes sends a keep-alive comment on a stream with no events",
    ),
    (
        "changes_streams_per_caller",
        false,
        "16",
        "most GET /v1/changes streams one credential may hold open at once; more are refused with 429 too_many_streams",
    ),
    (
        "idempotency_ttl",
        false,
        "24h",
        "how long the response to a request with an Idempotency-Key is kept and replayed to retries",
    ),
    (
        "database_timeout",
        false,
        "5s",
        "how long a request waits for a database connection (PostgreSQL) or the write lock (SQLite) before answering 503 database_unavailable",
    ),
    (
        "audit_checkpoint_interval",
        false,
        "1h",
        "how often a signed checkpoint of every audit chain is published (also for chains with no new entries); retention is applied at the same pace",
    ),
    (
        "audit_retention_days",
        false,
        "0",
        "days of audit entries kept for a tenant whose configuration sets no retention_policy.audit_retention_days, and for the operator chain (0: keep everything)",
    ),
    (
        "outbound_allowlist",
        false,
        "",
        "comma-separated CIDRs and host names that outbound requests (webhooks, key sets, provider checks) may reach although they are internal, and over plain http (e.g. 127.0.0.1/32,receiver.internal)",
    ),
    (
        "outbound_timeout",
        false,
        "15s",
        "longest time one outbound request may take, connection included",
    ),
    (
        "identity_jwks_refetch_interval",
        false,
        "60s",
        "shortest time between two fetches of an identity provider's key set made because a token named an unknown kid (or after a failed fetch), per provider",
    ),
    (
        "meta_graph_url",
        false,
        "https://graph.facebook.com",
        "base URL of Meta's Graph API, which provisioning asks about a WhatsApp phone number",
    ),
    (
        "meta_graph_version",
        false,
        "v24.0",
        "Graph API version provisioning calls (vN.0)",
    ),
    (
        "genesys_login_url",
        false,
        "https://login.{region}",
        "base URL of Genesys Cloud's login service; {region} is the region's domain (mypurecloud.com, …)",
    ),
    (
        "genesys_api_url",
        false,
        "https://api.{region}",
        "base URL of Genesys Cloud's API; {region} is the region's domain",
    ),
    (
        "provisioning_max_attempts",
        false,
        "5",
        "attempts of a provisioning step that fails transiently (throttled, 5xx, timeout) before the workflow fails",
    ),
    (
        "provisioning_backoff",
        false,
        "1s",
        "first wait before a provisioning step is tried again; doubled each attempt (with jitter), at most 5 minutes",
    ),
    (
        "provisioning_provider_timeout",
        false,
        "10s",
        "longest time one provider check (Meta, Genesys) may take",
    ),
    (
        "provisioning_lease",
        false,
        "60s",
        "how long a node holds a provisioning workflow without renewing it before another node may take it over",
    ),
    (
        "provisioning_poll_interval",
        false,
        "1s",
        "how often each node looks for provisioning work that is due",
    ),
    (
        "webhook_retry_schedule",
        false,
        "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h",
        "delays before each delivery attempt of a webhook message (the first is the first attempt's); a message failing them all is given up; each delay gets up to 10% jitter",
    ),
    (
        "webhook_timeout",
        false,
        "15s",
        "longest time one webhook delivery may take; longer is a failure",
    ),
    (
        "webhook_secret_overlap",
        false,
        "24h",
        "how long a rotated-out webhook secret keeps signing (a second v1 signature) unless the rotation says otherwise",
    ),
    (
        "webhook_disable_after",
        false,
        "5d",
        "an endpoint failing every delivery for this long is disabled (and webhook_endpoint.disabled emitted)",
    ),
    (
        "webhook_poll_interval",
        false,
        "500ms",
        "how often the delivery worker looks for queued events and due messages when idle",
    ),
    (
        "webhook_lease",
        false,
        "60s",
        "how long a claimed message is reserved for the node delivering it; a node that dies holding it delays its retry by this much (must exceed webhook_timeout)",
    ),
    (
        "public_url",
        false,
        "",
        "the public base URL providers call (e.g. https://tenantry.example.com), which Twilio signs; empty: http:// and the request's Host header (set it behind a proxy or TLS terminator)",
    ),
    (
        "metrics_public",
        false,
        "false",
        "true: GET /metrics answers without an operator key (for a scraper on a private network); false: it needs one",
    ),
    (
        "metrics_tenant_labels",
        false,
        "false",
        "true: key-verification and quota metrics carry a tenant label (one series per tenant: mind the cardinality)",
    ),
    (
        "node_id",
        false,
        "",
        "this server process's name in quota leases and logs (e.g. the host name); empty: a random node id per start",
    ),
    (
        "quota_lease_max",
        false,
        "1000",
        "most units of one tenant's quota one process leases from the database at a time and consumes in memory (a crash under-admits at most this much; 0: every consume is one database statement)",
    ),
    (
        "console_session_idle",
        false,
        "30m",
        "how long a web console session lasts without a request before it ends",
    ),
    (
        "console_session_max",
        false,
        "12h",
        "the longest a web console session lasts, however active",
    ),
    (
        "region",
        false,
        "",
        "this node's region, and that of tenants created here without one (see docs/regions.md); empty: the value of default_region",
    ),
    (
        "regions",
        false,
        "",
        "the region directory, name=URL pairs separated by commas (eu=https://eu.example.com,us=https://us.example.com); empty: one region, nothing is redirected",
    ),
    (
        "region_databases",
        true,
        "",
        "postgres:// URLs of the other regions' databases, name=URL pairs separated by commas: tenant creation records new tenants in their directories, and tenant moves copy into them",
    ),
    (
        "region_move_drain",
        false,
        "2s",
        "how long a move waits between freezing a tenant and copying it, so every node of the region honours the freeze and requests under way finish",
    ),
    (
        "region_directory_refresh",
        false,
        "500ms",
        "how often each node rereads the region directory (moves and tenants of other regions)",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub root_key: Option<SecretString>,
    pub log: LogFormat,
    pub log_level: String,
    pub deletion_grace_period: Duration,
    pub purge_interval: Duration,
    pub max_body_bytes: usize,
    pub default_plan: PlanName,
    pub default_region: Region,
    pub shutdown_timeout: Duration,
    /// The keyring's text (base64 keys, one per line), if configured.
    pub master_key: Option<SecretString>,
    /// The file the keyring was read from (`TENANTRY_MASTER_KEY_FILE`): key
    /// rotation writes the new keyring there.
    pub master_key_file: Option<PathBuf>,
    pub redis_url: Option<SecretString>,
    pub redis_failure: crate::limits::ratelimit::FailurePolicy,
    pub base_domain: Option<Hostname>,
    /// `None`: the system resolver (`/etc/resolv.conf`).
    pub dns_resolver: Option<SocketAddr>,
    pub default_tenant: Option<TenantId>,
    pub token_ttl: Duration,
    pub key_usage_flush_interval: Duration,
    /// Anonymous (not trusted) resolutions per minute per source address; 0: no limit.
    pub resolve_anonymous_per_minute: u64,
    /// Peers whose `X-Real-IP` names the source address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub header_read_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a write of a response may make no progress before the
    /// connection is closed.
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// Keep-alive comment interval of `GET /v1/changes` streams.
    pub changes_keepalive: Duration,
    /// Most open `GET /v1/changes` streams per credential.
    pub changes_streams_per_caller: usize,
    pub database_timeout: Duration,
    /// How often audit checkpoints are published (and retention applied).
    pub audit_checkpoint_interval: Duration,
    /// Default audit retention in days (0: keep everything).
    pub audit_retention_days: u32,
    /// How long an `Idempotency-Key`'s response is replayed.
    pub idempotency_ttl: Duration,
    /// Addresses and names outbound requests may reach although internal.
    pub outbound_allowlist: crate::outbound::Allowlist,
    pub outbound_timeout: Duration,
    /// Shortest time between forced refetches of one issuer's key set.
    pub identity_jwks_refetch_interval: Duration,
    pub meta_graph_url: String,
    pub meta_graph_version: String,
    pub genesys_login_url: String,
    pub genesys_api_url: String,
    pub provisioning_max_attempts: u32,
    pub provisioning_backoff: Duration,
    pub provisioning_provider_timeout: Duration,
    pub provisioning_lease: Duration,
    pub provisioning_poll_interval: Duration,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_timeout: Duration,
    pub webhook_secret_overlap: Duration,
    pub webhook_disable_after: Duration,
    pub webhook_poll_interval: Duration,
    pub webhook_lease: Duration,
    /// The public base URL providers call, without a trailing `/` (`None`:
    /// built from the Host header).
    pub public_url: Option<String>,
    /// `GET /metrics` without an operator key.
    pub metrics_public: bool,
    /// A `tenant` label on the per-tenant metrics.
    pub metrics_tenant_labels: bool,
    /// This process's name (`TENANTRY_NODE_ID`); `None`: a random one.
    pub node_id: Option<String>,
    /// Most units of one quota leased at a time (0: no leases).
    pub quota_lease_max: i64,
    /// Web console sessions: idle and absolute expiry.
    pub console_session_idle: Duration,
    pub console_session_max: Duration,
    /// This node's region, and the directory of every region's public URL
    /// (empty: a single region).
    pub region: Region,
    pub regions: Vec<(Region, String)>,
    /// The other regions' database URLs (for directory writes and moves).
    pub region_databases: Vec<(Region, SecretString)>,
    pub region_move_drain: Duration,
    pub region_directory_refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Source {
    Default,
    File(PathBuf),
    Env(String),
    /// A `*_FILE` setting: the file the value was read from, and which
    /// setting named it.
    SecretFile(PathBuf, String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::SecretFile(path, what) => write!(f, "{} (named by {what})", path.display()),
        }
    }
}

impl Config {
    /// Loads the configuration the server and every command use: defaults,
    /// then `$TENANTRY_CONFIG` or `./tenantry.toml` if present, then the
    /// process environment.
    pub fn load() -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let explicit = env
            .iter()
            .find(|(k, _)| k == "TENANTRY_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let file = match explicit {
            Some(path) => Some(path),
            None => Some(PathBuf::from("tenantry.toml")).filter(|p| p.exists()),
        };
        Self::from_sources(file.as_deref(), &env)
    }

    /// Builds a configuration from an optional TOML file and a list of
    /// environment variables (only `TENANTRY_*` ones are read).
    pub fn from_sources(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Source)> = SETTINGS
            .iter()
            .map(|(name, _, default, _)| (*name, ((*default).to_owned(), Source::Default)))
            .collect();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| ConfigError(format!("{} is not valid TOML: {e}", path.display())))?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError(format!(
                            "{}: setting '{key}' must be a string or number, not {}",
                            path.display(),
                            other.type_str()
                        )));
                    }
                };
                let source = Source::File(path.to_owned());
                set(
                    &mut values,
                    &key,
                    value,
                    source,
                    &format!("setting '{key}' in {}", path.display()),
                )?;
            }
        }

        for (name, value) in env {
            let Some(key) = name.strip_prefix("TENANTRY_") else {
                continue;
            };
            // The file's own path, and the remote CLI's variables (its
            // server, key and profile: not settings of this server).
            if matches!(key, "CONFIG" | "URL" | "KEY" | "PROFILE" | "CONFIG_DIR") {
                continue;
            }
            let key = key.to_ascii_lowercase();
            set(
                &mut values,
                &key,
                value.clone(),
                Source::Env(name.clone()),
                &format!("environment variable {name}"),
            )?;
        }

        let get = |name: &str| -> (&str, &Source) {
            values
                .get(name)
                .map(|(v, s)| (v.as_str(), s))
                .unwrap_or(("", &Source::Default))
        };
        let invalid = |name: &str, why: &str| {
            let (_, source) = get(name);
            ConfigError(format!("{name} (from {source}): {why}"))
        };
        let secret = |name: &str| -> Option<SecretString> {
            let (v, _) = get(name);
            (!v.is_empty()).then(|| SecretString::new(v))
        };

        let listen = get("listen").0.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "listen",
                "must be an address and port such as 127.0.0.1:3007",
            )
        })?;
        let root_key = secret("root_key");
        if let Some(key) = &root_key
            && key.len() < 32
        {
            return Err(invalid("root_key", "must be at least 32 characters long"));
        }
        let database_url = secret("database_url");
        if let Some(url) = &database_url
            && !(url.expose().starts_with("postgres://")
                || url.expose().starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must be a postgres:// or postgresql:// URL",
            ));
        }
        let log = match get("log").0 {
            "pretty" | "text" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => return Err(invalid("log", "must be 'pretty' or 'json'")),
        };
        let number = |name: &str| -> Result<u64, ConfigError> {
            get(name)
                .0
                .parse::<u64>()
                .map_err(|_| invalid(name, "must be a whole number"))
        };
        let flag = |name: &str| -> Result<bool, ConfigError> {
            match get(name).0 {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                _ => Err(invalid(name, "must be true or false")),
            }
        };
        let duration = |name: &str| -> Result<Duration, ConfigError> {
            parse_duration(get(name).0)
                .ok_or_else(|| invalid(name, "must be a duration such as 30s, 5m, 12h or 30d"))
        };
        // A provider's base URL: http(s), no trailing slash; `{region}`
        // may stand for the host's region part.
        let base_url = |name: &str| -> Result<String, ConfigError> {
            let value = get(name).0.trim_end_matches('/');
            let probe = value.replace("{region}", "mypurecloud.com");
            match url::Url::parse(&probe) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Ok(value.to_owned())
                }
                _ => Err(invalid(name, "must be an http(s) URL")),
            }
        };
        let positive = |name: &str| -> Result<Duration, ConfigError> {
            Some(duration(name)?)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid(name, "must be longer than 0"))
        };
        Config {
            listen,
            data_dir: PathBuf::from(get("data_dir").0),
            database_url,
            database_max_connections: u32::try_from(number("database_max_connections")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(
                        "database_max_connections",
                        "must be between 1 and 4294967295",
                    )
                })?,
            root_key,
            log,
            log_level: get("log_level").0.to_owned(),
            deletion_grace_period: duration("deletion_grace_period")?,
            purge_interval: duration("purge_interval")?.max(Duration::from_millis(100)),
            max_body_bytes: usize::try_from(number("max_body_bytes")?)
                .map_err(|_| invalid("max_body_bytes", "is too large"))?,
            default_plan: PlanName::parse("default_plan", get("default_plan").0)
                .map_err(|e| invalid("default_plan", &e.message))?,
            default_region: Region::parse("default_region", get("default_region").0)
                .map_err(|e| invalid("default_region", &e.message))?,
            shutdown_timeout: duration("shutdown_timeout")?,
            master_key: secret("master_key"),
            master_key_file: match get("master_key").1 {
                Source::SecretFile(path, _) => Some(path.clone()),
                _ => None,
            },
            redis_url: secret("redis_url"),
            redis_failure: match get("redis_failure").0 {
                "open" => crate::limits::ratelimit::FailurePolicy::Open,
                "closed" => crate::limits::ratelimit::FailurePolicy::Closed,
                _ => return Err(invalid("redis_failure", "must be 'open' or 'closed'")),
            },
            base_domain: match get("base_domain").0 {
                "" => None,
                d => Some(
                    Hostname::parse("base_domain", d)
                        .map_err(|e| invalid("base_domain", &e.message))?,
                ),
            },
            dns_resolver: match get("dns_resolver").0 {
                "" => None,
                a => Some(a.parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "dns_resolver",
                        "must be an address and port such as 127.0.0.1:53",
                    )
                })?),
            },
            default_tenant: match get("default_tenant").0 {
                "" => None,
                t => Some(TenantId::parse(t).map_err(|e| invalid("default_tenant", &e.message))?),
            },
            token_ttl: {
                let ttl = duration("token_ttl")?;
                if ttl.is_zero() || ttl > Duration::from_secs(3600) {
                    return Err(invalid("token_ttl", "must be between 1s and 1h"));
                }
                ttl
            },
            key_usage_flush_interval: duration("key_usage_flush_interval")?
                .max(Duration::from_millis(50)),
            resolve_anonymous_per_minute: number("resolve_anonymous_per_minute")?,
            trusted_proxies: get("trusted_proxies")
                .0
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<std::net::IpAddr>().map_err(|_| {
                        invalid(
                            "trusted_proxies",
                            "must be IP addresses separated by commas",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            header_read_timeout: positive("header_read_timeout")?,
            body_timeout: positive("body_timeout")?,
            request_timeout: positive("request_timeout")?,
            idle_timeout: positive("idle_timeout")?,
            write_timeout: positive("write_timeout")?,
            max_connections: usize::try_from(number("max_connections")?)
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| invalid("max_connections", "must be between 1 and 1000000"))?,
            changes_keepalive: positive("changes_keepalive")?,
            changes_streams_per_caller: usize::try_from(number("changes_streams_per_caller")?)
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    invalid("changes_streams_per_caller", "must be between 1 and 10000")
                })?,
            database_timeout: positive("database_timeout")?,
            audit_checkpoint_interval: positive("audit_checkpoint_interval")?
                .max(Duration::from_millis(100)),
            audit_retention_days: u32::try_from(number("audit_retention_days")?)
                .ok()
                .filter(|d| *d <= 36_500)
                .ok_or_else(|| invalid("audit_retention_days", "must be between 0 and 36500"))?,
            idempotency_ttl: positive("idempotency_ttl")?,
            outbound_allowlist: crate::outbound::Allowlist::parse(get("outbound_allowlist").0)
                .map_err(|why| invalid("outbound_allowlist", &why))?,
            outbound_timeout: positive("outbound_timeout")?,
            identity_jwks_refetch_interval: positive("identity_jwks_refetch_interval")?,
            meta_graph_url: base_url("meta_graph_url")?,
            meta_graph_version: {
                let v = get("meta_graph_version").0;
                let digits = v.strip_prefix('v').and_then(|n| n.strip_suffix(".0"));
                if !digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
                    return Err(invalid("meta_graph_version", "must look like v24.0"));
                }
                v.to_owned()
            },
            genesys_login_url: base_url("genesys_login_url")?,
            genesys_api_url: base_url("genesys_api_url")?,
            provisioning_max_attempts: u32::try_from(number("provisioning_max_attempts")?)
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| invalid("provisioning_max_attempts", "must be between 1 and 100"))?,
            provisioning_backoff: positive("provisioning_backoff")?,
            provisioning_provider_timeout: positive("provisioning_provider_timeout")?,
            provisioning_lease: positive("provisioning_lease")?.max(Duration::from_secs(1)),
            provisioning_poll_interval: positive("provisioning_poll_interval")?
                .max(Duration::from_millis(50)),
            webhook_retry_schedule: get("webhook_retry_schedule")
                .0
                .split(',')
                .map(str::trim)
                .map(|d| {
                    parse_duration(d).ok_or_else(|| {
                        invalid(
                            "webhook_retry_schedule",
                            "must be durations separated by commas (0s,5s,5m,…)",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .and_then(|s| {
                    if s.is_empty() || s.len() > 50 {
                        Err(invalid(
                            "webhook_retry_schedule",
                            "must list 1 to 50 durations",
                        ))
                    } else {
                        Ok(s)
                    }
                })?,
            webhook_timeout: positive("webhook_timeout")?,
            webhook_secret_overlap: duration("webhook_secret_overlap")?,
            webhook_disable_after: positive("webhook_disable_after")?,
            webhook_poll_interval: positive("webhook_poll_interval")?
                .max(Duration::from_millis(20)),
            webhook_lease: {
                let lease = positive("webhook_lease")?;
                if lease <= positive("webhook_timeout")? {
                    return Err(invalid(
                        "webhook_lease",
                        "must be longer than webhook_timeout",
                    ));
                }
                lease
            },
            public_url: match get("public_url").0.trim_end_matches('/') {
                "" => None,
                u if u.starts_with("https://") || u.starts_with("http://") => Some(u.to_owned()),
                _ => return Err(invalid("public_url", "must start with https:// or http://")),
            },
            metrics_public: flag("metrics_public")?,
            metrics_tenant_labels: flag("metrics_tenant_labels")?,
            node_id: match get("node_id").0.trim() {
                "" => None,
                id if id.len() <= 100
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
                {
                    Some(id.to_owned())
                }
                _ => {
                    return Err(invalid(
                        "node_id",
                        "must be up to 100 letters, digits and - _ . :",
                    ));
                }
            },
            quota_lease_max: i64::try_from(number("quota_lease_max")?)
                .ok()
                .filter(|n| *n <= 1_000_000_000)
                .ok_or_else(|| invalid("quota_lease_max", "must be between 0 and 1000000000"))?,
            console_session_idle: positive("console_session_idle")?,
            console_session_max: positive("console_session_max")?,
            region: match get("region").0 {
                "" => Region::parse("default_region", get("default_region").0)
                    .map_err(|e| invalid("default_region", &e.message))?,
                r => Region::parse("region", r).map_err(|e| invalid("region", &e.message))?,
            },
            regions: parse_region_list(get("regions").0, public_region_url)
                .map_err(|why| invalid("regions", &why))?,
            region_databases: parse_region_list(get("region_databases").0, |url| {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(url.to_owned())
                } else {
                    Err("must be a postgres:// or postgresql:// URL".to_owned())
                }
            })
            .map_err(|why| invalid("region_databases", &why))?
            .into_iter()
            .map(|(region, url)| (region, SecretString::new(url)))
            .collect(),
            region_move_drain: duration("region_move_drain")?,
            region_directory_refresh: positive("region_directory_refresh")?
                .max(Duration::from_millis(50)),
        }
        .check_regions()
        .map_err(|(name, why)| invalid(name, &why))
    }

    /// The regions' settings must agree: this node's region in the
    /// directory, databases only of other regions that are in it.
    fn check_regions(self) -> Result<Config, (&'static str, String)> {
        if self.regions.is_empty() {
            if !self.region_databases.is_empty() {
                return Err((
                    "region_databases",
                    "needs the region directory (regions) to be set".into(),
                ));
            }
            return Ok(self);
        }
        if !self.regions.iter().any(|(r, _)| *r == self.region) {
            return Err((
                "region",
                format!("'{}' is not in the region directory (regions)", self.region),
            ));
        }
        for (region, _) in &self.region_databases {
            if *region == self.region {
                return Err((
                    "region_databases",
                    format!("'{region}' is this node's own region; its database is database_url"),
                ));
            }
            if !self.regions.iter().any(|(r, _)| r == region) {
                return Err((
                    "region_databases",
                    format!("'{region}' is not in the region directory (regions)"),
                ));
            }
        }
        Ok(self)
    }

    /// The public URL of a region in the directory.
    pub fn region_url(&self, region: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|(r, _)| r.as_str() == region)
            .map(|(_, url)| url.as_str())
    }

    /// Where the data lives: PostgreSQL when a URL is set, else SQLite in the
    /// data directory.
    pub fn database(&self) -> DatabaseOptions {
        match &self.database_url {
            Some(url) => DatabaseOptions::Postgres {
                url: url.expose().to_owned(),
                max_connections: self.database_max_connections,
                timeout: self.database_timeout,
            },
            None => DatabaseOptions::Sqlite {
                path: self.data_dir.join("tenantry.db"),
                max_readers: self.database_max_connections,
                timeout: self.database_timeout,
            },
        }
    }
}

fn set(
    values: &mut BTreeMap<&'static str, (String, Source)>,
    key: &str,
    value: String,
    source: Source,
    what: &str,
) -> Result<(), ConfigError> {
    let (name, from_file) = match key.strip_suffix("_file") {
        Some(base)
            if SETTINGS
                .iter()
                .any(|(n, secret, _, _)| *n == base && *secret) =>
        {
            (base, true)
        }
        _ => (key, false),
    };
    let Some((name, _, _, _)) = SETTINGS.iter().find(|(n, _, _, _)| *n == name) else {
        let known: Vec<&str> = SETTINGS.iter().map(|(n, _, _, _)| *n).collect();
        return Err(ConfigError(format!(
            "unknown {what}; known settings are: {}",
            known.join(", ")
        )));
    };
    let (value, source) = if from_file {
        let text = std::fs::read_to_string(&value)
            .map_err(|e| ConfigError(format!("{what}: cannot read {value}: {e}")))?;
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        (
            text,
            Source::SecretFile(PathBuf::from(value), what.to_owned()),
        )
    } else {
        (value, source)
    };
    values.insert(name, (value, source));
    Ok(())
}

/// `90`, `90s`, `15m`, `12h`, `30d`, `250ms`.
/// `name=value` pairs separated by commas, each name a region name (at most
/// once) and each value checked by `value`. Errors name the bad entry.
fn parse_region_list(
    text: &str,
    value: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<(Region, String)>, String> {
    let mut out: Vec<(Region, String)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, raw)) = entry.split_once('=') else {
            return Err(format!(
                "entry '{}' must be name=URL",
                entry.split(':').next().unwrap_or("")
            ));
        };
        let name = name.trim();
        let region = Region::parse("region", name)
            .map_err(|e| format!("region name '{name}': {}", e.message))?;
        if out.iter().any(|(r, _)| *r == region) {
            return Err(format!("region '{name}' is listed twice"));
        }
        let url = value(raw.trim()).map_err(|why| format!("region '{name}': {why}"))?;
        out.push((region, url));
    }
    Ok(out)
}

/// A region's public URL: https, or http to a loopback address (tests, a
/// local gateway); no query or fragment; without a trailing `/`.
fn public_region_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|_| "must be an https:// URL".to_owned())?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Err("must be an https:// URL".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must be https:// (http:// only for loopback addresses)".into()),
        _ => return Err("must be an https:// URL".into()),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry credentials, a query or a fragment".into());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let seconds = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit {
        "" | "s" => seconds(1),
        "ms" => Some(Duration::from_millis(n)),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_sources(None, &[]).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3007");
        assert_eq!(c.data_dir, PathBuf::from("./tenantry-data"));
        assert!(c.database_url.is_none());
        assert_eq!(c.log, LogFormat::Pretty);
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("tenantry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("tenantry.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:4000\"\nlog = \"json\"\n").expect("write");
        let c = Config::from_sources(
            Some(&file),
            &env(&[("TENANTRY_LISTEN", "127.0.0.1:5000"), ("PATH", "/bin")]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.log, LogFormat::Json);
    }

    #[test]
    fn unknown_settings_are_named() {
        let err =
            Config::from_sources(None, &env(&[("TENANTRY_LISTN", "x")])).expect_err("unknown");
        assert!(err.to_string().contains("TENANTRY_LISTN"), "{err}");
        let dir = std::env::temp_dir().join(format!("tenantry-config-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("tenantry.toml");
        std::fs::write(&file, "colour = \"blue\"\n").expect("write");
        let err = Config::from_sources(Some(&file), &[]).expect_err("unknown");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn secrets_from_files_and_short_root_keys() {
        let dir = std::env::temp_dir().join(format!("tenantry-config-s-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = dir.join("root");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").expect("write");
        let c = Config::from_sources(
            None,
            &env(&[("TENANTRY_ROOT_KEY_FILE", key.to_str().expect("utf8"))]),
        )
        .expect("valid");
        assert_eq!(
            c.root_key.expect("set").expose(),
            "0123456789abcdef0123456789abcdef"
        );
        let err =
            Config::from_sources(None, &env(&[("TENANTRY_ROOT_KEY", "short")])).expect_err("short");
        assert!(err.to_string().contains("32"));
        assert!(
            !err.to_string().contains("short"),
            "the value must not be echoed"
        );
        // Only secrets have *_FILE variants.
        assert!(Config::from_sources(None, &env(&[("TENANTRY_LISTEN_FILE", "/x")])).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d"),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
