//! Differential tests for the nginx configuration loader and parser.
//!
//! Every configuration under `tests/fixtures/nginx/` and Debian's stock `/etc/nginx/nginx.conf`
//! is loaded with `reflex::gather::nginx_conf::load` and compared with two oracles:
//!
//! crossplane and `nginx -T` (see `harness::oracle`, which also checks every configuration a
//! test starts nginx with). Lua fixtures skip `nginx -T` (Debian's nginx has no Lua module).
//!
//! Broken configurations are checked against nginx's own error position.

use std::path::{Path, PathBuf};
use std::process::Command;

use reflex::gather::nginx_conf::{ConfigError, load};

use crate::harness::oracle::{check, crossplane_json, paths};
use crate::harness::{self, nginx_bin, tempdir, write};

fn fixture(name: &str) -> PathBuf {
    harness::repo()
        .join("tests/fixtures/nginx")
        .join(name)
        .join("nginx.conf")
}

macro_rules! fixture_tests {
    ($($name:ident: $nginx:expr,)*) => {$(
        #[test]
        fn $name() {
            check(&fixture(stringify!($name)), $nginx);
        }
    )*};
}

fixture_tests! {
    fastapi_proxy: true,
    unix_socket: true,
    includes: true,
    quoting: true,
    blocks: true,
    crlf: true,
    non_utf8: true,
    // Debian's nginx has no Lua module, so `nginx -T` would reject these directives.
    lua: false,
}

#[test]
fn includes_fixture_orders_differ_between_nginx_and_crossplane() {
    let main = fixture("includes");
    let tree = load(&main).expect("loads");
    let root = main.parent().expect("dir");
    // By string: `Path::strip_prefix` would normalise the `./` away.
    let prefix = format!("{}/", root.display());
    let ours: Vec<String> = tree
        .files
        .iter()
        .map(|f| f.path.display().to_string().replacen(&prefix, "", 1))
        .collect();
    // Depth first, as nginx reaches them; the hidden conf.d/.hidden.conf is not matched, a
    // file included twice appears once, and two spellings of one file are two files (nginx
    // and crossplane both key files by the name they opened).
    assert_eq!(
        ours,
        [
            "nginx.conf",
            "mime.types",
            "conf.d/10-maps.conf",
            "conf.d/20-upstreams.conf",
            "upstreams/api-a.conf",
            "upstreams/api-b.conf",
            "./sites-enabled/a.example",
            "snippets/proxy.conf",
            "snippets/headers.conf",
            "./sites-enabled/b.example",
            "snippets/../snippets/headers.conf",
        ]
    );
    let cp = crossplane_json(&main);
    let cp_files: Vec<&str> = cp["config"]
        .as_array()
        .expect("config")
        .iter()
        .map(|c| c["file"].as_str().expect("file"))
        .collect();
    assert_eq!(
        cp_files[4],
        root.join("./sites-enabled/a.example")
            .to_str()
            .expect("utf-8")
    );
}

#[test]
fn debian_stock_tree() {
    let main = Path::new("/etc/nginx/nginx.conf");
    let tree = check(main, true);
    let files = paths(&tree);
    for want in ["/etc/nginx/mime.types", "/etc/nginx/sites-enabled/default"] {
        assert!(
            files.contains(&PathBuf::from(want)),
            "{want} not in {files:?}"
        );
    }
}

/// Our error's `FILE:LINE` and nginx's `in FILE:LINE` for the same broken configuration.
fn both_errors(main: &Path) -> (ConfigError, String) {
    let ours = load(main).expect_err("the configuration is broken");
    let tmp = tempdir();
    let out = Command::new(nginx_bin())
        .args(["-t", "-c"])
        .arg(main)
        .arg("-p")
        .arg(format!("{}/", tmp.path().display()))
        .output()
        .expect("run nginx -t");
    assert!(
        !out.status.success(),
        "nginx accepted a broken configuration"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let emerg = stderr
        .lines()
        .find(|l| l.contains("[emerg]"))
        .expect("an [emerg] line")
        .to_string();
    let place = emerg
        .rsplit(" in ")
        .next()
        .expect("in FILE:LINE")
        .to_string();
    (ours, place)
}

#[test]
fn syntax_error_in_included_file_points_where_nginx_does() {
    let dir = tempdir();
    let main = write(
        dir.path(),
        "nginx.conf",
        "error_log error.log;\nevents {}\nhttp {\n    access_log off;\n    include conf.d/*.conf;\n}\n",
    );
    write(
        dir.path(),
        "conf.d/a.conf",
        "upstream a { server 127.0.0.1:1; }\n",
    );
    write(
        dir.path(),
        "conf.d/b.conf",
        "server {\n    listen 127.0.0.1:8089;\n    location / {\n        proxy_pass http://a\n    }\n}\n",
    );
    let (ours, nginx_place) = both_errors(&main);
    let bad = dir.path().join("conf.d/b.conf");
    assert_eq!(
        ours.to_string(),
        format!("{}:5:5: unexpected \"}}\"", bad.display())
    );
    assert_eq!(nginx_place, format!("{}:5", bad.display()));
}

#[test]
fn missing_include_points_at_the_include() {
    let dir = tempdir();
    let main = write(
        dir.path(),
        "nginx.conf",
        "events {}\n\nhttp {\n    include missing.conf;\n}\n",
    );
    let (ours, nginx_place) = both_errors(&main);
    let msg = ours.to_string();
    assert!(matches!(ours, ConfigError::Include { .. }), "{msg}");
    assert!(msg.starts_with(&format!("{}:4: ", main.display())), "{msg}");
    assert!(
        msg.contains(&dir.path().join("missing.conf").display().to_string()),
        "{msg}"
    );
    assert_eq!(nginx_place, format!("{}:4", main.display()));
}

#[test]
fn unexpected_end_of_file_points_where_nginx_does() {
    let dir = tempdir();
    let main = write(
        dir.path(),
        "nginx.conf",
        "events {}\nhttp {\n    server {\n        listen 80;\n    }\n",
    );
    let (ours, nginx_place) = both_errors(&main);
    assert_eq!(
        ours.to_string(),
        format!(
            "{}:6:1: unexpected end of file, expecting \"}}\"",
            main.display()
        )
    );
    assert_eq!(nginx_place, format!("{}:6", main.display()));
}

#[test]
fn unreadable_main_file_says_why() {
    let dir = tempdir();
    let main = write(dir.path(), "nginx.conf", "events {}\n");
    let msg = if nix::unistd::geteuid().is_root() {
        // root reads anything, so use a directory to get a read error.
        load(dir.path()).expect_err("a directory").to_string()
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let msg = load(&main).expect_err("unreadable").to_string();
        assert!(msg.contains("Permission denied"), "{msg}");
        msg
    };
    assert!(msg.contains("cannot read the configuration file"), "{msg}");
}

#[test]
fn byte_order_mark_is_an_error_as_in_nginx() {
    let dir = tempdir();
    let main = write(
        dir.path(),
        "nginx.conf",
        "\u{feff}events {}\nhttp {\n    access_log off;\n}\n",
    );
    let (ours, nginx_place) = both_errors(&main);
    let msg = ours.to_string();
    assert!(
        msg.starts_with(&format!("{}:1:1: byte order mark", main.display())),
        "{msg}"
    );
    assert_eq!(nginx_place, format!("{}:1", main.display()));
}
