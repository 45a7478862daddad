//! Test harness: locating the programs the tests run, temp dirs, and (in the submodules) real
//! nginx and real uvicorn/gunicorn processes that are killed and reaped by PID on drop.

#![allow(dead_code)]

pub mod app;
pub mod check;
pub mod http;
pub mod load;
pub mod nginx;
pub mod ns;
pub mod oracle;
pub mod proc;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python venv with fastapi, uvicorn, gunicorn and crossplane: `$REFLEX_VENV`, or `.venv` in
/// the repository (what `scripts/setup` creates). A missing venv fails the test: a skipped test
/// would hide a broken set-up.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("REFLEX_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"));
    assert!(
        dir.join("bin/python").exists(),
        "no Python venv at {} (run scripts/setup, or set REFLEX_VENV)",
        dir.display()
    );
    dir
}

/// A program from the venv, e.g. `venv_bin("uvicorn")`.
pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// The nginx binary (`$REFLEX_NGINX`, or `/usr/sbin/nginx`).
pub fn nginx_bin() -> PathBuf {
    let p = std::env::var_os("REFLEX_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        p.exists(),
        "nginx not found at {} (run scripts/setup)",
        p.display()
    );
    p
}

/// A `Command` for the `reflex` binary under test.
pub fn reflex() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reflex"))
}

/// A fresh temp dir, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("reflex-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Writes `text` to `dir/rel`, creating parent directories; returns the full path.
pub fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dir");
    }
    std::fs::write(&path, text).expect("write file");
    path
}

/// A fresh temp dir that other users can traverse (0755): root-started nginx workers run as
/// `nobody` and must reach unix sockets inside it. Removed on drop.
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}
