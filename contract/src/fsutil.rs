//! Durable file operations for the provider's state directory (the catalog and its secrets, the control
//! loop's state): the one place that knows how to replace a file so that a crash (kill -9, power loss) at
//! any point leaves either the old content or the new one, never a torn or missing file.
//!
//! The recipe ([`write_atomic`]): write a temporary file next to the target, fsync it, rename it over the
//! target, fsync the directory (so the rename itself is on disk). Temporary files start with
//! [`TMP_PREFIX`]; a crash between create and rename leaves one behind, never visible under the target's
//! name, which a scan may delete.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of the temporary files [`write_atomic`] creates (never a valid DNS-1123 name, so never a
/// secret's or a catalog entry's).
pub const TMP_PREFIX: &str = ".tmp-";

/// Atomically replaces `path` with `bytes`; a new file gets permission bits `mode` (less the umask). The
/// parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent directory"))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp: PathBuf = dir.join(format!(
        "{TMP_PREFIX}{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the file `path` durably (the directory is fsynced); a missing file is not an error.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Flushes a directory's entries (creations, renames, removals) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every regular file directly in `dir`, then `dir` itself: for a directory written by code that
/// does not fsync (a model's weights), before it is published by an atomic [`write_atomic`] elsewhere.
pub fn sync_files_in(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }

    #[test]
    fn atomic_write_fails_cleanly_without_a_parent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("s");
        assert!(write_atomic(&p, b"x", 0o600).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_durable_ignores_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        remove_durable(&p).unwrap();
        fs::write(&p, "x").unwrap();
        remove_durable(&p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn sync_files_in_flushes_a_written_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "x").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        sync_files_in(dir.path()).unwrap();
        assert!(sync_files_in(&dir.path().join("absent")).is_err());
    }
}
