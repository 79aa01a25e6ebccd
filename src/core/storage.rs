//! Where the plugin keeps files, and how: per-player directories under the data dir, owner-only (0700
//! directories, 0600 files), every file replaced atomically: temporary file, fsync, then a rename made durable
//! (on Unix an fsync of the directory; on Windows, which cannot open a directory as a file, a write-through
//! `MoveFileExW`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory of `player_id` under `data_dir`. Player ids are written as a safe file name one to one:
/// ASCII letters, digits, `.`, `-` and `_` stay, every other byte is `%XX`, so two ids never share a
/// directory (`a/b` is `a%2Fb`, `a_b` stays `a_b`).
pub fn player_dir(data_dir: &Path, player_id: &str) -> PathBuf {
    let mut safe = String::with_capacity(player_id.len());
    for byte in player_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_') {
            safe.push(byte as char);
        } else {
            safe.push_str(&format!("%{byte:02X}"));
        }
    }
    // Not empty, and never `.`, `..` or hidden; `p` cannot start an encoded id otherwise, so this stays 1:1.
    let safe =
        if safe.is_empty() || safe.starts_with('.') || safe.starts_with('p') { format!("p{safe}") } else { safe };
    data_dir.join("players").join(safe)
}

/// Replaces the file at `path` with `bytes` atomically, readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = private_file(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        durable_replace(&temporary, path, dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Moves `from` over `to` so that the move survives a power cut.
#[cfg(not(windows))]
fn durable_replace(from: &Path, to: &Path, dir: &Path) -> std::io::Result<()> {
    fs::rename(from, to)?;
    File::open(dir)?.sync_all()
}

/// Moves `from` over `to` so that the move survives a power cut. Windows cannot open a directory to fsync it;
/// `MOVEFILE_WRITE_THROUGH` makes `MoveFileExW` return only once the move is on disk. (Not run in CI: no
/// Windows machine here. Keep it this small.)
#[cfg(windows)]
fn durable_replace(from: &Path, to: &Path, _dir: &Path) -> std::io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW};
    let wide = |path: &Path| path.as_os_str().encode_wide().chain(Some(0)).collect::<Vec<u16>>();
    let (from, to) = (wide(from), wide(to));
    // SAFETY: both pointers are to NUL-terminated UTF-16 strings that outlive the call.
    let moved = unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) };
    if moved == 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// The lock file one running game holds in its data directory.
const INSTANCE_LOCK_FILE: &str = "instance.lock";

/// Why this game instance may not write its data directory.
#[derive(Debug)]
pub(crate) enum InstanceLockError {
    /// Another running instance holds the data directory.
    HeldByAnotherInstance,
    /// The lock file could not be opened or locked.
    Io(std::io::Error),
}

/// Takes the exclusive lock on `data_dir` for this process: one writer for the players' ledgers, tokens,
/// outboxes and caches, so a second instance can never overwrite what the first wrote. The lock lives as long
/// as the returned file; the operating system releases it when the process ends, crash included (advisory
/// `flock` on Unix, `LockFileEx` on Windows, both through std's `File::try_lock`).
pub(crate) fn lock_instance(data_dir: &Path) -> Result<File, InstanceLockError> {
    create_private_dir(data_dir).map_err(InstanceLockError::Io)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(data_dir.join(INSTANCE_LOCK_FILE)).map_err(InstanceLockError::Io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(InstanceLockError::HeldByAnotherInstance),
        Err(fs::TryLockError::Error(error)) => Err(InstanceLockError::Io(error)),
    }
}

/// Removes a file; a file already gone is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_holds_a_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_instance(dir.path()).unwrap();
        assert!(matches!(lock_instance(dir.path()), Err(InstanceLockError::HeldByAnotherInstance)));
        drop(first);
        assert!(lock_instance(dir.path()).is_ok(), "released with the file");
    }

    #[test]
    fn player_directories_are_one_to_one() {
        let base = Path::new("/data");
        let ids = ["a/b", "a_b", "a%2Fb", "", ".", "..", "p", "pa", "a", "amzn1.account.AF3XYZ", "é", "a b"];
        let dirs: std::collections::HashSet<PathBuf> = ids.iter().map(|id| player_dir(base, id)).collect();
        assert_eq!(dirs.len(), ids.len(), "{dirs:?}");
        for id in ids {
            let dir = player_dir(base, id);
            let name = dir.file_name().unwrap().to_str().unwrap();
            assert!(!name.starts_with('.') && !name.is_empty() && !name.contains('/'), "{name}");
        }
    }
}
