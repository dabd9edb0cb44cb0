//! Durable files under the state directory: write to a temporary file, fsync it, rename it over the
//! target, fsync the directory. A crash at any point leaves either the old or the new file, never a torn one.
//!
//! Layout: `<state>/catalog.json` (functions and namespaces) and `<state>/secrets/<namespace>/<name>`
//! (secret values, mode 0600, directories 0700).
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::FunctionRecord;
use crate::types::FunctionNamespace;

/// Prefix of temporary files; never a valid secret name (those start with a letter or digit).
const TMP_PREFIX: &str = ".tmp-";

/// The persisted catalog document.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Document {
    /// Format version, for future migrations.
    pub version: u32,
    pub functions: Vec<FunctionRecord>,
    pub namespaces: Vec<FunctionNamespace>,
}

pub const FORMAT_VERSION: u32 = 1;

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Atomically replaces `path` with `bytes`, created with `mode`.
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

/// Removes `path` durably; a missing file is not an error.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the catalog document; a missing file is an empty catalog.
pub fn load_document(path: &Path) -> Result<Document, super::CatalogError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| super::CatalogError::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Document::default()),
        Err(e) => Err(e.into()),
    }
}

/// Secret names per namespace found under `secrets_root`; stray temporary files are deleted.
pub fn scan_secrets(secrets_root: &Path) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let namespaces = match fs::read_dir(secrets_root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for ns in namespaces {
        let ns = ns?;
        let Some(ns_name) = ns.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !ns.file_type()?.is_dir() || !super::is_dns1123_label(&ns_name) {
            continue;
        }
        for f in fs::read_dir(ns.path())? {
            let f = f?;
            let Some(name) = f.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                // Left by a crash between create and rename: never visible, safe to drop.
                let _ = fs::remove_file(f.path());
            } else if f.file_type()?.is_file() && super::is_dns1123_subdomain(&name) {
                out.push((ns_name.clone(), name));
            }
        }
    }
    Ok(out)
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
    fn scan_drops_temp_files_and_ignores_invalid_names() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("openfaas-fn");
        ensure_private_dir(&ns).unwrap();
        fs::write(ns.join("good"), "x").unwrap();
        fs::write(ns.join(".tmp-good-1-2"), "x").unwrap();
        fs::write(ns.join("Bad_Name"), "x").unwrap();
        let found = scan_secrets(dir.path()).unwrap();
        assert_eq!(found, vec![("openfaas-fn".to_owned(), "good".to_owned())]);
        assert!(!ns.join(".tmp-good-1-2").exists());
    }
}
