//! The opt-in file store: one JSON file per provider, mode 0600, in a 0700 directory that
//! must be this user's and writable by no one else. Writes go to a temporary file in the
//! same directory, synced, then renamed over the old one: a reader sees the old entry or
//! the new, never half of one.

use std::io::Write;
use std::path::Path;

/// The largest secrets file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The file's text, `None` if it does not exist. Refuses a file others can read.
pub fn read(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let file =
        match crate::sys::private_no_follow(std::fs::OpenOptions::new().read(true)).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
        };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if let Some(problem) = crate::sys::private_file_problem(&meta) {
        return Err(format!("{} {problem}; refusing it", path.display()));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some(text))
}

/// Writes `bytes` to `path` (in `dir`, made 0700 if missing) atomically, mode 0600.
pub fn write(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::paths::prepare_private_dir(dir).map_err(|e| e.to_string())?;
    let mut temp = tempfile::Builder::new()
        .prefix(".secrets-") // created 0600 on Unix
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    temp.persist(path)
        .map_err(|e| format!("cannot replace {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Removes `path`; nothing to do if it does not exist.
pub fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}
