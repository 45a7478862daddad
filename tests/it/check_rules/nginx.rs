//! nginx constructs whose meaning takes more than one directive: WebSocket `map`s,
//! `proxy_pass` with variables, remote targets.

use std::path::{Path, PathBuf};

use super::check;
use crate::harness::{tempdir, write};

const HEADERS: &str = "proxy_set_header Host $host;\n            \
                       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
                       proxy_set_header X-Forwarded-Proto $scheme;";

/// A configuration with `http` text (maps, upstreams) and one `location /` body.
fn site(dir: &Path, http: &str, location: &str) -> PathBuf {
    let d = dir.display();
    write(
        dir,
        "nginx.conf",
        &format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n{http}\n    server {{\n        \
             listen 127.0.0.1:8080;\n        location / {{\n            {location}\n            {HEADERS}\n        }}\n    }}\n}}\n"
        ),
    )
}

fn websocket(dir: &Path, empty_value: &str) -> PathBuf {
    site(
        dir,
        &format!(
            "    map $http_upgrade $connection_upgrade {{\n        default upgrade;\n        '' {empty_value};\n    }}\n    \
             upstream app {{\n        server 127.0.0.1:8000;\n        keepalive 16;\n    }}"
        ),
        "proxy_pass http://app;\n            proxy_http_version 1.1;\n            \
         proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;",
    )
}

#[test]
fn websocket_map_that_clears_connection_is_keepalive_capable() {
    let a = tempdir();
    let c = websocket(a.path(), "''");
    let run = check(&c, &["--backend", "uvicorn main:app"]);
    let kinds = run.kinds();
    assert!(
        !kinds.iter().any(|k| k == "upstream_keepalive_ineffective"),
        "{}",
        run.json
    );
    // Keep-alive is in effect, so nginx's 60 s against uvicorn's 5 s is checked, and races.
    assert!(
        kinds.iter().any(|k| k == "upstream_keepalive_timeout_race"),
        "{}",
        run.json
    );
}

#[test]
fn websocket_map_that_closes_is_fixed_in_the_map() {
    let a = tempdir();
    let c = websocket(a.path(), "close");
    let run = check(&c, &["--backend", "uvicorn main:app"]);
    let f = run.finding("upstream_keepalive_ineffective");
    let diff = f["fix"]["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("+        '' '';"), "{f}");
    assert!(
        !diff.contains("Connection \"\""),
        "the WebSocket header stays: {f}"
    );
}

#[test]
fn a_uri_variable_keeps_the_host_checked() {
    let a = tempdir();
    let c = site(
        a.path(),
        "",
        "proxy_pass http://127.0.0.1:9000$request_uri;",
    );
    let run = check(&c, &["--backend", "uvicorn main:app --port 8000"]);
    let kinds = run.kinds();
    assert!(
        kinds.iter().any(|k| k == "upstream_address_mismatch"),
        "{}",
        run.json
    );
    assert!(
        !kinds.iter().any(|k| k == "proxy_pass_dynamic"),
        "{}",
        run.json
    );
}

#[test]
fn proxy_pass_no_resolver() {
    let (a, b) = (tempdir(), tempdir());
    let bad = site(
        a.path(),
        "",
        "proxy_pass http://localhost:8000$request_uri;",
    );
    let good = site(
        b.path(),
        "",
        "resolver 127.0.0.53;\n            proxy_pass http://localhost:8000$request_uri;",
    );
    let flags = ["--backend", "uvicorn main:app"];
    let run = super::fires_and_silent("proxy_pass_no_resolver", &bad, &good, &flags);
    let f = run.finding("proxy_pass_no_resolver");
    assert_eq!(f["severity"], "error");
    assert_eq!(run.code(), 1);
}

#[test]
fn proxy_headers_are_not_forced_on_remote_targets() {
    let a = tempdir();
    let d = a.path().display();
    let c = write(
        a.path(),
        "nginx.conf",
        &format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n    server {{\n        \
             listen 127.0.0.1:8080;\n        location /static/ {{\n            proxy_pass https://bucket.s3.amazonaws.com;\n        }}\n        \
             location / {{\n            proxy_pass http://127.0.0.1:8000;\n        }}\n    }}\n}}\n"
        ),
    );
    let run = check(&c, &["--backend", "uvicorn main:app"]);
    let f = run.finding("proxy_headers_missing");
    assert_eq!(
        f["location"]["line"], 12,
        "only the app's location: {}",
        run.json
    );
    let count = run
        .kinds()
        .iter()
        .filter(|k| *k == "proxy_headers_missing")
        .count();
    assert_eq!(count, 1, "{}", run.json);
}
