//! Files that hold secrets or the database: private to the server's user.
//! Created with their final mode (never widened by the umask and narrowed
//! later), and existing ones tightened at start.

use std::path::Path;

#[cfg(unix)]
fn mode_of(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Creates `dir` (and missing parents) with mode 0700, or tightens an
/// existing one that group or others may enter to 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = mode_of(dir)?;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory was open to other users; setting it to 0700"
            );
            set_mode(dir, 0o700)?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// If `path` exists and group or others may read or write it, sets it to 0600.
pub fn tighten_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    match mode_of(path) {
        Ok(mode) if mode & 0o077 != 0 => {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "a private file was open to other users; setting it to 0600"
            );
            set_mode(path, 0o600)?;
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist (SQLite gives
/// its `-wal` and `-shm` files the mode of the database file), and tightens
/// the database and its companion files if they exist.
pub(crate) fn private_database(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = std::ffi::OsString::from(path.as_os_str());
        name.push(suffix);
        tighten_file(Path::new(&name))?;
    }
    Ok(())
}
