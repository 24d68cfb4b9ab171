//! Keeping the data directory private: it holds the SQLite database (with the secret
//! that seals tracked links and unsubscribe tokens, and every customer's data) and the
//! admin token. The directory is mode 0700 and Flywheel's files in it 0600: the process
//! umask is 077 from the start (so SQLite's own `-wal`/`-shm` files are created private
//! too), and group or other permissions found at start are taken off, with a warning.

use std::path::Path;

use anyhow::{Context, Result};

/// Makes every file and directory this process creates private to its user (umask 077).
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) if missing; the directory itself is mode 0700.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    narrow(dir)
}

/// Writes `text` to `path`, created or truncated, mode 0600.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // A file that existed before keeps its mode through open(): narrow it.
    narrow(path)?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Takes group and other permissions off the data directory and the files Flywheel keeps
/// there (the admin token, the SQLite database with its `-wal`, `-shm` and `-journal`
/// files, which may live elsewhere with `--store sqlite://PATH`), warning for each one
/// changed. Other files in the directory are not Flywheel's and are left alone.
pub fn secure(data_dir: &Path, sqlite: Option<&Path>) -> Result<()> {
    if data_dir.is_dir() {
        narrow(data_dir)?;
    }
    let mut files = vec![admin_token_file(data_dir)];
    if let Some(db) = sqlite {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            files.push(std::path::PathBuf::from(name));
        }
    }
    for f in files.iter().filter(|f| f.is_file()) {
        narrow(f)?;
    }
    Ok(())
}

/// Where a generated admin token is saved.
pub fn admin_token_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("admin_token")
}

/// Takes the group and other permission bits off `path` when it has any, warning.
fn narrow(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let current = meta.permissions().mode() & 0o7777;
        if current & 0o077 != 0 {
            let mode = current & 0o700;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("restricting {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{current:o}"),
                now = format!("{mode:o}"),
                "took group and other permissions off (the data directory holds secrets and customer data)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn wider_modes_are_narrowed_and_new_files_are_private() {
        let dir = std::env::temp_dir().join(format!("flywheel-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("flywheel.db");
        std::fs::write(&db, "x").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("flywheel.db-wal");
        std::fs::write(&wal, "x").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666)).unwrap();
        secure(&dir, Some(&db)).unwrap();
        assert_eq!((mode(&dir), mode(&db), mode(&wal)), (0o700, 0o600, 0o600));
        // A pre-existing token file with a wide mode is narrowed when rewritten.
        let token = dir.join("admin_token");
        std::fs::write(&token, "old").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&token, "new\n").unwrap();
        assert_eq!(mode(&token), 0o600);
        assert_eq!(std::fs::read_to_string(&token).unwrap(), "new\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
