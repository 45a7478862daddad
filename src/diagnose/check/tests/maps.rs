//! WebSocket maps: the `Connection` header of plain requests decides upstream keep-alive.

use super::{backend, host, kinds, tcp, tree};
use crate::diagnose::check::*;
use crate::model::backend::Server;
use crate::model::nginx::Connection;

fn ws(empty_value: &str) -> String {
    format!(
        "user www-data; events {{}} http {{\n    map $http_upgrade $connection_upgrade {{\n        default upgrade;\n        '' {empty_value};\n    }}\n    \
         upstream app {{ server 127.0.0.1:8000; keepalive 8; }}\n    server {{\n        location / {{\n            proxy_pass http://app;\n            \
         proxy_http_version 1.1;\n            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;\n            \
         proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
         proxy_set_header X-Forwarded-Proto $scheme;\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn an_empty_map_value_is_keepalive_capable_and_races_are_checked() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let k = kinds(&ws("''"), &b, &host());
    // Keep-alive works, so nginx's 60 s against uvicorn's 5 s is the finding.
    assert_eq!(k, ["upstream_keepalive_timeout_race"]);
    let t = tree(&ws("''"));
    let m = NginxModel::build(&t);
    assert!(m.locations[0].proxy.keepalive_capable());
}

#[test]
fn a_close_map_value_is_fixed_in_the_map_not_the_header() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let c = ws("close");
    let f = super::findings(&c, &b, &host());
    assert_eq!(super::kinds_of(&f), ["upstream_keepalive_ineffective"]);
    let diff = edit::unified_diff(&tree(&c), &f[0].fix.edits, None);
    assert!(
        diff.contains("-        '' close;") && diff.contains("+        '' '';"),
        "{diff}"
    );
    assert!(!diff.contains("proxy_set_header Connection \"\""), "{diff}");
    assert!(f[0].fix.auto);
    assert!(
        f[0].evidence.iter().any(|e| e.contains("makes `close`")),
        "{:?}",
        f[0].evidence
    );
    // Without a '' entry the default decides; a regex key may decide instead: unknown.
    let no_entry = c.replace("        '' close;\n", "");
    let t = tree(&no_entry);
    assert_eq!(
        NginxModel::build(&t).locations[0].proxy.connection,
        Connection::Mapped {
            variable: "$connection_upgrade".into(),
            value: "upgrade".into(),
            map: 0
        }
    );
    let regex = c.replace("        '' close;\n", "        ~^$ '';\n");
    let t = tree(&regex);
    assert!(matches!(
        NginxModel::build(&t).locations[0].proxy.connection,
        Connection::Unknown(_)
    ));
}
