//! `Debug` of every secret-bearing type of the server redacts the secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tenantry_core::SecretString;
use tenantry_server::config::Config;
use tenantry_server::http::auth::RootKey;

const ROOT: &str = "root-key-that-must-never-be-printed-123456";
const DB_PASSWORD: &str = "db-password-never-printed";
const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const REDIS_PASSWORD: &str = "redis-password-never-printed";

#[test]
fn config_root_key_vault_and_tokens_redact() {
    let env: Vec<(String, String)> = [
        ("TENANTRY_ROOT_KEY", ROOT.to_owned()),
        (
            "TENANTRY_DATABASE_URL",
            format!("postgres://app:{DB_PASSWORD}@db/tenantry"),
        ),
        ("TENANTRY_MASTER_KEY", MASTER.to_owned()),
        (
            "TENANTRY_REDIS_URL",
            format!("redis://:{REDIS_PASSWORD}@cache:6379"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, &env).unwrap();
    let printed = format!("{config:?}");
    for secret in [ROOT, DB_PASSWORD, MASTER, REDIS_PASSWORD] {
        assert!(
            !printed.contains(secret),
            "Config Debug shows a secret: {printed}"
        );
    }

    let root = RootKey::new(&SecretString::new(ROOT));
    assert!(!format!("{root:?}").contains(ROOT));

    let vault = tenantry_server::vault::Vault::load(&config).unwrap();
    let printed = format!("{vault:?}");
    assert!(
        !printed.contains(MASTER) && printed.contains("kek_"),
        "{printed}"
    );

    let tokens = tenantry_server::resolution::tokens::TokenKeys::default();
    assert_eq!(format!("{tokens:?}"), "TokenKeys([REDACTED])");

    let minted = tenantry_server::resolution::keys::mint(
        tenantry_core::keys::KeyKind::Tenant,
        tenantry_core::keys::Environment::Live,
    );
    assert!(!format!("{:?}", minted.secret).contains(minted.secret.expose()));
}
