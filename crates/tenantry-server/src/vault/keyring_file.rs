//! The keyring file on disk, the one place that writes it.
//!
//! Every change happens under an exclusive `flock` on `<keyring>.lock` (a
//! file beside the keyring, never deleted, so every process locks the same
//! inode even though the keyring itself is replaced by rename): servers and
//! `tenantry keys rotate` serialize on it. A change starts from the file as it
//! is on disk (never from a process's possibly stale copy), is written to a
//! fresh temporary file in the same directory (mode 0600), fsynced, renamed
//! over the keyring, and the directory fsynced; the keyring is then read back
//! and checked before anyone may wrap with its new key.

use super::VaultError;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tenantry_crypto::{Kek, Keyring};

/// An exclusive lock on the keyring; released when dropped (or when the
/// process dies, so a crash never leaves it held).
pub(crate) struct KeyringLock {
    _file: File,
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

fn write_error(path: &Path, what: &str, err: impl std::fmt::Display) -> VaultError {
    VaultError::KeyringWrite(format!("{what} {}: {err}", path.display()))
}

/// Takes the exclusive lock, waiting for another process or thread that holds it.
pub(crate) fn lock(path: &Path) -> Result<KeyringLock, VaultError> {
    let lock_path = lock_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&lock_path)
        .map_err(|e| write_error(&lock_path, "cannot open the keyring lock", e))?;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
            Ok(()) => return Ok(KeyringLock { _file: file }),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(write_error(&lock_path, "cannot lock", e)),
        }
    }
}

/// Reads and parses the keyring file.
pub(crate) fn read(path: &Path) -> Result<Keyring, VaultError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| VaultError::KeyringRead(format!("cannot read {}: {e}", path.display())))?;
    Ok(Keyring::parse(&text)?)
}

/// Writes `keyring` durably: a unique temporary file beside it, fsync,
/// rename over the keyring, fsync of the directory.
fn write_durable(path: &Path, keyring: &Keyring) -> Result<(), VaultError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates it 0600 with a random name (O_EXCL): no two writers
    // ever share a temporary file, and a crash leaves only a stray temp file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".keyring-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| write_error(dir, "cannot create a temporary file in", e))?;
    let text = zeroize::Zeroizing::new(keyring.to_text());
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| write_error(tmp.path(), "cannot write", e))?;
    tmp.persist(path)
        .map_err(|e| write_error(path, "cannot replace", e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(dir, "cannot sync the directory", e))?;
    Ok(())
}

/// Adds a new active key to the keyring file. Returns the keyring as read
/// back from disk, checked to hold every previous key and the new one.
pub(crate) fn rotate(path: &Path) -> Result<Keyring, VaultError> {
    let _lock = lock(path)?;
    let current = read(path).map_err(|e| match e {
        VaultError::KeyringRead(why) => VaultError::KeyringWrite(why),
        VaultError::Crypto(why) => VaultError::KeyringWrite(format!(
            "{} does not parse, not rewriting it: {why}",
            path.display()
        )),
        other => other,
    })?;
    let next = current.with_active(Kek::generate());
    write_durable(path, &next)?;
    let back = read(path).map_err(|e| write_error(path, "cannot read back", e))?;
    let complete = back.active().id() == next.active().id()
        && back.ids().len() == current.ids().len() + 1
        && current.ids().iter().all(|id| back.get(id).is_some());
    if !complete {
        return Err(write_error(
            path,
            "the keyring read back is not the one written to",
            "refusing to use it",
        ));
    }
    Ok(back)
}

/// The keyring at `path`, generated (one new key) if the file does not
/// exist. Returns whether it was generated. Two processes starting at once
/// on a fresh data directory agree on one keyring.
pub(crate) fn load_or_generate(path: &Path) -> Result<(Keyring, bool), VaultError> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok((read(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(VaultError::KeyringRead(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    let _lock = lock(path)?;
    if path.exists() {
        return Ok((read(path)?, false));
    }
    let keyring = Keyring::new(vec![Kek::generate()])?;
    write_durable(path, &keyring)?;
    Ok((read(path)?, true))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_rotations_lose_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (first, generated) = load_or_generate(&path).unwrap();
        assert!(generated);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..5)
                        .map(|_| rotate(&path).unwrap().active().id().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut made: Vec<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let ring = read(&path).unwrap();
        assert_eq!(ring.ids().len(), 41);
        assert!(ring.get(first.active().id()).is_some());
        made.sort();
        made.dedup();
        assert_eq!(made.len(), 40);
        assert!(made.iter().all(|id| ring.get(id).is_some()));
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["master.key", "master.key.lock"], "{names:?}");
    }

    #[test]
    fn a_second_generation_reads_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (a, _) = load_or_generate(&path).unwrap();
        let (b, generated) = load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(a.ids(), b.ids());
    }
}
