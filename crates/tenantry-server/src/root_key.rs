//! The operator root key: from `TENANTRY_ROOT_KEY`, or generated on first
//! start into `<data dir>/root.key` (mode 0600) and printed once.

use crate::config::Config;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::io::Write;
use subtle::ConstantTimeEq;
use tenantry_core::SecretString;
use tenantry_core::ids::base62;

pub const FILE_NAME: &str = "root.key";

/// The operator root key, kept only as its SHA-256.
pub struct RootKey {
    hash: [u8; 32],
}

impl RootKey {
    pub fn new(key: &SecretString) -> Self {
        Self {
            hash: Sha256::digest(key.expose().as_bytes()).into(),
        }
    }

    /// Constant-time comparison of hashes (both 32 bytes, so lengths match).
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.hash.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

pub fn load_or_create(config: &Config) -> anyhow::Result<RootKey> {
    if let Some(key) = &config.root_key {
        return Ok(RootKey::new(key));
    }
    let path = config.data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            tenantry_store::tighten_file(&path)
                .with_context(|| format!("cannot restrict {}", path.display()))?;
            let key = SecretString::new(text.trim());
            if key.len() < 32 {
                bail!("{} holds a key shorter than 32 characters", path.display());
            }
            return Ok(RootKey::new(&key));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    tenantry_store::private_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let key = SecretString::new(format!(
        "tenantry_root_{}{}",
        base62(rand::random()),
        base62(rand::random())
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(key.expose().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    // Printed once, outside the log stream, so log collectors don't keep it.
    eprintln!(
        "\n  A root key was generated and saved to {} (mode 0600):\n\n    {}\n\n  \
         Send it as 'Authorization: Bearer <key>'. It is not shown again.\n",
        path.display(),
        key.expose()
    );
    Ok(RootKey::new(&key))
}
