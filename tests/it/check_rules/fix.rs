//! `--fix` on the files as they are found in the wild: Debian's symlinked sites, a relative
//! `--nginx-conf`, files that are not UTF-8; and SARIF's view of the same files.

use std::path::Path;

use serde_json::Value;

use super::{check, fixable};
use crate::harness::{reflex, tempdir, write};

const BACKEND: [&str; 2] = ["--backend", "uvicorn main:app --port 8000"];

fn fix_flags(backups: &Path) -> Vec<&str> {
    vec![
        "--fix",
        "--backup-dir",
        backups.to_str().unwrap_or_default(),
        BACKEND[0],
        BACKEND[1],
    ]
}

#[test]
fn a_symlinked_site_is_fixed_through_the_link() {
    let a = tempdir();
    let backups = tempdir();
    let d = a.path().display();
    let site = "upstream app {\n    server 127.0.0.1:8000;\n}\nserver {\n    listen 127.0.0.1:8080;\n    \
                location / {\n        proxy_pass https://app;\n    }\n}\n";
    let target = write(a.path(), "sites-available/app", site);
    std::fs::create_dir_all(a.path().join("sites-enabled")).expect("mkdir");
    let link = a.path().join("sites-enabled/app");
    std::os::unix::fs::symlink("../sites-available/app", &link).expect("symlink");
    let main = write(
        a.path(),
        "nginx.conf",
        &format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n    \
             include sites-enabled/*;\n}}\n"
        ),
    );
    let run = check(&main, &fix_flags(backups.path()));
    assert!(
        run.json["notes"].to_string().contains("nginx -t` passed"),
        "{}",
        run.json
    );
    let meta = std::fs::symlink_metadata(&link).expect("lstat");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let fixed = std::fs::read_to_string(&target).expect("read target");
    assert!(fixed.contains("proxy_pass http://app;"), "{fixed}");
    // The backup is the target's original, under the target's own path.
    let canonical = std::fs::canonicalize(&target).expect("canonical");
    let backup = super::walk(backups.path())
        .into_iter()
        .find(|p| p.ends_with(canonical.strip_prefix("/").expect("absolute")))
        .unwrap_or_else(|| panic!("no backup of {}", canonical.display()));
    assert_eq!(std::fs::read_to_string(backup).expect("read"), site);
}

#[test]
fn a_relative_nginx_conf_is_validated_where_it_is() {
    let a = tempdir();
    let backups = tempdir();
    fixable(a.path());
    let out = reflex()
        .current_dir(a.path())
        .args(["check", "--format", "json", "--nginx-conf", "nginx.conf"])
        .args(fix_flags(backups.path()))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        json["notes"].to_string().contains("nginx -t` passed"),
        "{json}"
    );
    let fixed = std::fs::read_to_string(a.path().join("sites/app.conf")).expect("read");
    assert!(fixed.contains("proxy_pass http://app;"), "{fixed}");
}

/// A site whose comment is Latin-1, before the line the fix changes.
fn latin1(dir: &Path) -> std::path::PathBuf {
    let d = dir.display();
    let mut site = b"# caf\xe9 cr\xe8me: written by an old editor\n".to_vec();
    site.extend_from_slice(
        b"server {\n    listen 127.0.0.1:8080;\n    location / {\n        proxy_pass https://127.0.0.1:8000;\n    }\n}\n",
    );
    std::fs::create_dir_all(dir.join("sites")).expect("mkdir");
    std::fs::write(dir.join("sites/app.conf"), &site).expect("write");
    write(
        dir,
        "nginx.conf",
        &format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n    \
             include sites/*.conf;\n}}\n"
        ),
    )
}

#[test]
fn non_utf8_files_are_fixed_byte_for_byte() {
    let a = tempdir();
    let backups = tempdir();
    let main = latin1(a.path());
    let run = check(&main, &fix_flags(backups.path()));
    assert!(
        run.json["notes"].to_string().contains("nginx -t` passed"),
        "{}",
        run.json
    );
    let bytes = std::fs::read(a.path().join("sites/app.conf")).expect("read");
    assert!(
        bytes.starts_with(b"# caf\xe9 cr\xe8me: written by an old editor\n"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("proxy_pass http://127.0.0.1:8000;"), "{text}");
}

#[test]
fn sarif_uris_and_byte_offsets() {
    let a = tempdir();
    // A directory name that needs percent-encoding, outside the working directory.
    let spaced = a.path().join("my conf");
    let main = latin1(&spaced);
    let run = |cwd: &Path, conf: &Path| -> Value {
        let out = reflex()
            .current_dir(cwd)
            .args(["check", "--format", "sarif", "--nginx-conf"])
            .arg(conf)
            .args(BACKEND)
            .output()
            .expect("run");
        serde_json::from_slice(&out.stdout).expect("sarif")
    };
    // Relative to the working directory: a relative URI against %SRCROOT%.
    let sarif = run(&spaced, Path::new("nginx.conf"));
    let r = &sarif["runs"][0];
    let result = r["results"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|x| x["ruleId"] == "upstream_scheme_mismatch")
        })
        .unwrap_or_else(|| panic!("{sarif}"));
    let loc = &result["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(loc["uri"], "sites/app.conf", "{loc}");
    assert_eq!(loc["uriBaseId"], "%SRCROOT%");
    let root = r["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap_or_default();
    assert!(
        root.starts_with("file:///") && root.ends_with("/my%20conf/"),
        "{root}"
    );
    // The replacement's byte offset is in the file's bytes, past the Latin-1 comment.
    let rep = &result["fixes"][0]["artifactChanges"][0]["replacements"][0];
    let start = rep["deletedRegion"]["byteOffset"].as_u64().expect("offset") as usize;
    let len = rep["deletedRegion"]["byteLength"].as_u64().expect("length") as usize;
    let bytes = std::fs::read(spaced.join("sites/app.conf")).expect("read");
    assert_eq!(&bytes[start..start + len], b"https://", "{rep}");
    // Outside the working directory: an absolute, percent-encoded file URI.
    let elsewhere = tempdir();
    let sarif = run(elsewhere.path(), &main);
    let uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        ["artifactLocation"]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        uri.starts_with("file:///") && uri.contains("/my%20conf/sites/app.conf"),
        "{uri}"
    );
}

/// A diff of a file under the working directory names it relative to it, so the printed fix
/// can be applied with `git apply` where `reflex check` ran (a pre-commit hook, CI).
#[test]
fn diffs_apply_with_git_where_check_ran() {
    let a = tempdir();
    fixable(a.path());
    let out = reflex()
        .current_dir(a.path())
        .args(["check", "--format", "json", "--nginx-conf", "nginx.conf"])
        .args(BACKEND)
        .output()
        .expect("run");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let diffs: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["fix"]["diff"].as_str())
        .collect();
    assert!(!diffs.is_empty(), "{json}");
    for d in &diffs {
        assert!(
            d.starts_with("--- a/sites/app.conf\n+++ b/sites/app.conf\n"),
            "{d}"
        );
    }
    let patch = write(a.path(), "fix.patch", diffs[0]);
    let git = std::process::Command::new("git")
        .current_dir(a.path())
        .args(["apply", "--check", "--verbose"])
        .arg(&patch)
        .output()
        .expect("run git (scripts/setup installs it)");
    assert!(
        git.status.success(),
        "{}{}",
        String::from_utf8_lossy(&git.stdout),
        String::from_utf8_lossy(&git.stderr)
    );
}
