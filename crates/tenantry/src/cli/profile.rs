//! Named servers for the remote CLI, in the user's configuration directory
//! (`$TENANTRY_CONFIG_DIR`, else e.g. `~/.config/tenantry`): `profiles.json`
//! holds names, URLs and the current profile; each key lives in its own
//! file under `keys/`, created with mode 0600 in a 0700 directory. Keys are
//! never printed.

use super::error::{CliError, CliResult};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn config_dir() -> CliResult<PathBuf> {
    if let Some(dir) = std::env::var_os("TENANTRY_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy()
        .map_err(|e| CliError::generic(format!("cannot find your configuration directory: {e}")))?;
    Ok(strategy.config_dir().join("tenantry"))
}

fn valid_name(name: &str) -> CliResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "profile name {name:?}: use letters, digits, '-' and '_' (at most 64)"
        )))
    }
}

pub struct Profiles {
    dir: PathBuf,
    doc: Value,
}

/// A profile as commands use it.
pub struct Profile {
    pub url: String,
    pub key: Option<String>,
}

impl Profiles {
    pub fn load() -> CliResult<Self> {
        let dir = config_dir()?;
        let file = dir.join("profiles.json");
        let doc = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::usage(format!("{} is not valid JSON: {e}", file.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                json!({"current": null, "profiles": {}})
            }
            Err(e) => {
                return Err(CliError::generic(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
            }
        };
        Ok(Profiles { dir, doc })
    }

    fn save(&self) -> CliResult<()> {
        private_dir(&self.dir)?;
        let file = self.dir.join("profiles.json");
        write_private(&file, crate::cli::output::pretty(&self.doc).as_bytes())
    }

    fn key_file(&self, name: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{name}.key"))
    }

    pub fn current(&self) -> Option<&str> {
        self.doc["current"].as_str()
    }

    pub fn add(&mut self, name: &str, url: &str, key: Option<&str>) -> CliResult<()> {
        valid_name(name)?;
        if let Some(key) = key {
            let keys = self.dir.join("keys");
            private_dir(&self.dir)?;
            private_dir(&keys)?;
            write_private(&self.key_file(name), key.trim().as_bytes())?;
        }
        self.doc["profiles"][name] = json!({ "url": url.trim_end_matches('/') });
        if self.current().is_none() {
            self.doc["current"] = json!(name);
        }
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> CliResult<()> {
        let removed = self.doc["profiles"]
            .as_object_mut()
            .and_then(|m| m.remove(name));
        if removed.is_none() {
            return Err(CliError::usage(format!("no profile {name:?}")));
        }
        match std::fs::remove_file(self.key_file(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::generic(format!("cannot remove its key: {e}"))),
        }
        if self.current() == Some(name) {
            self.doc["current"] = Value::Null;
        }
        self.save()
    }

    pub fn use_profile(&mut self, name: &str) -> CliResult<()> {
        if self.doc["profiles"].get(name).is_none() {
            return Err(CliError::usage(format!("no profile {name:?}")));
        }
        self.doc["current"] = json!(name);
        self.save()
    }

    /// Name, URL, whether a key is stored, whether it is the current one.
    pub fn list(&self) -> Vec<(String, String, bool, bool)> {
        let current = self.current();
        self.doc["profiles"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(name, p)| {
                        (
                            name.clone(),
                            p["url"].as_str().unwrap_or("").to_owned(),
                            self.key_file(name).exists(),
                            current == Some(name.as_str()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The named profile (or the current one), with its key read.
    pub fn get(&self, name: Option<&str>) -> CliResult<Option<Profile>> {
        let Some(name) = name.or(self.current()) else {
            return Ok(None);
        };
        let Some(p) = self.doc["profiles"].get(name) else {
            return Err(CliError::usage(format!("no profile {name:?}")));
        };
        let key = match std::fs::read_to_string(self.key_file(name)) {
            Ok(k) => Some(k.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(CliError::generic(format!(
                    "cannot read the key of profile {name}: {e}"
                )));
            }
        };
        Ok(Some(Profile {
            url: p["url"].as_str().unwrap_or("").to_owned(),
            key,
        }))
    }
}

fn private_dir(dir: &Path) -> CliResult<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::generic(format!("cannot create {}: {e}", dir.display())))?;
    // A symlink planted in its place would have the key written, and the
    // mode changed, wherever it points.
    let real_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir());
    if !real_dir {
        return Err(CliError::generic(format!(
            "{} is not a directory (a symbolic link?): refusing to keep keys there",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| CliError::generic(format!("cannot protect {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Writes a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let fail =
        |e: std::io::Error| CliError::generic(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    // A leftover temporary file (or a symlink planted under its name) is
    // removed, not followed: create_new opens with O_EXCL, which refuses
    // any existing name, links included.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
