//! The catalog's files under the state directory, written through [`crate::fsutil`] (temporary file,
//! fsync, rename, fsync of the directory): a crash at any point leaves either the old or the new file.
//!
//! Layout: `<state>/catalog.json` (functions and namespaces) and `<state>/secrets/<namespace>/<name>`
//! (secret values, mode 0600, directories 0700).
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::FunctionRecord;
use crate::fsutil::TMP_PREFIX;
use crate::types::FunctionNamespace;

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
    use super::*;

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
