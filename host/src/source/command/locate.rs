//! Which file a command runs: what a policy or a pin must check before it runs.

use std::path::{Path, PathBuf};

/// Finds the file a command would run: absolute as is, a path with a separator against
/// `cwd`, a bare name in the first `PATH` entry that has it as an executable file.
pub fn locate(program: &str, cwd: &Path) -> Result<PathBuf, String> {
    let is_executable = |path: &Path| crate::sys::is_executable(path);
    let path = Path::new(program);
    if path.is_absolute() || program.contains('/') {
        let full = cwd.join(path);
        return match is_executable(&full) {
            true => Ok(full),
            false => Err(format!("{} is not an executable file", full.display())),
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| "not on PATH".to_string())
}
