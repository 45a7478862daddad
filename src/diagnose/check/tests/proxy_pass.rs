//! `proxy_pass` URLs with variables: a URI variable leaves the host static; a host resolved per
//! request needs `resolver`.

use super::{backend, host, kinds, tcp};
use crate::model::backend::Server;

fn site(http: &str, location: &str) -> String {
    format!(
        "user www-data; events {{}} http {{\n{http}\n    server {{\n        location / {{\n            {location}\n            \
         proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            \
         proxy_set_header X-Forwarded-Proto $scheme;\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn a_uri_variable_leaves_the_host_static() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    // The upstream group is seen, so its ineffective keep-alive is too.
    let up = "    upstream app { server 127.0.0.1:8000; keepalive 8; keepalive_timeout 4s; }";
    let k = kinds(&site(up, "proxy_pass http://app$request_uri;"), &b, &host());
    assert_eq!(k, ["upstream_keepalive_ineffective"]);
    // A direct address is compared with the backends.
    for var in ["$request_uri", "$uri", "$document_uri"] {
        let k = kinds(
            &site("", &format!("proxy_pass http://127.0.0.1:9000{var};")),
            &b,
            &host(),
        );
        assert_eq!(k, ["upstream_address_mismatch"], "{var}");
    }
    // A host built from a variable stays dynamic.
    let k = kinds(
        &site(
            "",
            "resolver 127.0.0.53; proxy_pass http://$arg_h$request_uri;",
        ),
        &b,
        &host(),
    );
    assert_eq!(k, ["proxy_pass_dynamic"]);
}

#[test]
fn a_name_resolved_per_request_needs_a_resolver() {
    let b = [backend(Server::Uvicorn, vec![tcp("127.0.0.1", 8000)], 5)];
    let bad = site("", "proxy_pass http://localhost:8000$request_uri;");
    let k = kinds(&bad, &b, &host());
    assert!(k.contains(&"proxy_pass_no_resolver"), "{k:?}");
    // A resolver anywhere around it, an IP address, or an upstream group: fine.
    let with = bad.replace("location / {", "resolver 127.0.0.53;\n        location / {");
    assert!(!kinds(&with, &b, &host()).contains(&"proxy_pass_no_resolver"));
    let ip = site("", "proxy_pass http://127.0.0.1:8000$request_uri;");
    assert!(!kinds(&ip, &b, &host()).contains(&"proxy_pass_no_resolver"));
    let v6 = site("", "proxy_pass http://[::1]:8000$uri;");
    assert!(!kinds(&v6, &b, &host()).contains(&"proxy_pass_no_resolver"));
    // Variables whose values the configuration gives.
    let set = site("", "set $b localhost:8000; proxy_pass http://$b;");
    assert!(kinds(&set, &b, &host()).contains(&"proxy_pass_no_resolver"));
    let up = "    upstream app { server 127.0.0.1:8000; }";
    let set_up = site(up, "set $b app; proxy_pass http://$b;");
    assert!(!kinds(&set_up, &b, &host()).contains(&"proxy_pass_no_resolver"));
    let mapped = site(
        "    map $host $b { default localhost:8000; a.example 127.0.0.1:8000; }",
        "proxy_pass http://$b;",
    );
    assert!(kinds(&mapped, &b, &host()).contains(&"proxy_pass_no_resolver"));
    // A value from the request: only known per request.
    let arg = site("", "proxy_pass http://$arg_host:8000;");
    let k = kinds(&arg, &b, &host());
    assert!(
        !k.contains(&"proxy_pass_no_resolver") && k.contains(&"proxy_pass_dynamic"),
        "{k:?}"
    );
    // Not resolved at start-up: not `upstream_host_unresolvable` either.
    let nowhere = site("", "proxy_pass http://nowhere.invalid:8000$request_uri;");
    assert!(!kinds(&nowhere, &b, &host()).contains(&"upstream_host_unresolvable"));
}
