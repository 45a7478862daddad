use std::time::Duration;

use super::*;
use crate::test_support::tree;

const CONF: &str = r#"
user www-data;
events {}
http {
    proxy_read_timeout 90s;
    proxy_set_header Host $host;
    proxy_set_header X-Outer 1;
    upstream app {
        server 127.0.0.1:8000 weight=3 max_fails=2 fail_timeout=5s;
        server unix:/run/app.sock backup;
        server [::1]:9000 down;
        server localhost;
        keepalive 16;
        keepalive_timeout 4s;
    }
    server {
        listen 80;
        server_name example.com www.example.com;
        proxy_http_version 1.1;
        location / {
            proxy_pass http://app;
        }
        location /inner {
            proxy_set_header Connection "";
            proxy_read_timeout 5;
            proxy_pass http://APP/x;
            location /inner/deeper {
                proxy_pass http://unix:/run/other.sock:/y;
            }
        }
        location /var {
            proxy_pass http://$backend;
        }
        location /tls {
            proxy_pass https://10.0.0.5;
        }
    }
}
"#;

#[test]
fn upstream_servers_and_parameters() {
    let t = tree(CONF);
    let m = NginxModel::build(&t);
    let u = m.upstream("app").expect("upstream app");
    assert_eq!(u.servers.len(), 4);
    let s = &u.servers[0];
    assert_eq!(
        s.addr,
        Addr::Host {
            host: "127.0.0.1".into(),
            port: 8000
        }
    );
    assert_eq!(
        (s.weight, s.max_fails, s.fail_timeout),
        (3, 2, Duration::from_secs(5))
    );
    assert_eq!(u.servers[1].addr, Addr::Unix("/run/app.sock".into()));
    assert!(u.servers[1].backup);
    assert_eq!(
        u.servers[2].addr,
        Addr::Host {
            host: "::1".into(),
            port: 9000
        }
    );
    assert!(u.servers[2].down);
    assert_eq!(
        u.servers[3].addr,
        Addr::Host {
            host: "localhost".into(),
            port: 80
        }
    );
    assert_eq!(u.keepalive.as_ref().map(|k| k.value), Some(16));
    assert_eq!(u.keepalive_timeout.value, Duration::from_secs(4));
    assert!(u.keepalive_timeout.from.is_some());
}

#[test]
fn inheritance_of_proxy_settings() {
    let t = tree(CONF);
    let m = NginxModel::build(&t);
    let root = &m.locations[0];
    assert_eq!(root.matcher, "/");
    // http-level headers reach the location; server-level http_version too.
    assert_eq!(root.proxy.headers.get("host"), Some("$host"));
    assert_eq!(root.proxy.headers.get("x-outer"), Some("1"));
    assert_eq!(
        root.proxy.headers.get("connection"),
        Some("close"),
        "nginx's default"
    );
    assert_eq!(root.proxy.http_version.value, "1.1");
    assert_eq!(root.proxy.read_timeout.value, Duration::from_secs(90));
    assert!(!root.proxy.keepalive_capable());

    let inner = &m.locations[1];
    // An inner proxy_set_header replaces every outer one.
    assert_eq!(inner.proxy.headers.get("x-outer"), None);
    assert_eq!(inner.proxy.headers.get("host"), Some("$proxy_host"));
    assert_eq!(inner.proxy.headers.get("connection"), Some(""));
    assert!(inner.proxy.keepalive_capable());
    assert_eq!(inner.proxy.read_timeout.value, Duration::from_secs(5));
    // Upstream names match case-insensitively, as nginx does.
    assert_eq!(
        inner.proxy_pass.as_ref().map(|p| p.target.clone()),
        Some(Target::Upstream("app".into()))
    );

    // Nested locations inherit from their enclosing location.
    let deeper = &m.locations[2];
    assert_eq!(deeper.matcher, "/inner/deeper");
    assert_eq!(deeper.proxy.read_timeout.value, Duration::from_secs(5));
    assert_eq!(
        deeper.proxy_pass.as_ref().map(|p| p.target.clone()),
        Some(Target::Direct(Addr::Unix("/run/other.sock".into())))
    );
}

#[test]
fn proxy_pass_targets() {
    let t = tree(CONF);
    let m = NginxModel::build(&t);
    let var = m.locations[3].proxy_pass.as_ref().expect("proxy_pass");
    assert_eq!(var.target, Target::Variable);
    let tls = m.locations[4].proxy_pass.as_ref().expect("proxy_pass");
    assert_eq!(tls.scheme, Scheme::Https);
    assert_eq!(
        tls.target,
        Target::Direct(Addr::Host {
            host: "10.0.0.5".into(),
            port: 443
        })
    );
    let targets = m.targets();
    assert_eq!(
        targets.len(),
        4 + 2,
        "4 upstream servers + 2 direct addresses"
    );
    assert_eq!(targets[4].raw, "unix:/run/other.sock");
}

#[test]
fn defaults_without_directives() {
    let t = tree("events {} http { server { location / { proxy_pass http://127.0.0.1:8000; } } }");
    let m = NginxModel::build(&t);
    assert_eq!(
        m.worker_identity(),
        ("nobody".to_string(), "nogroup".to_string())
    );
    let l = &m.locations[0];
    assert_eq!(l.proxy.http_version.value, "1.0");
    assert!(l.proxy.http_version.from.is_none());
    assert_eq!(l.proxy.read_timeout.value, DEFAULT_PROXY_TIMEOUT);
    assert_eq!(l.proxy.headers.get("host"), Some("$proxy_host"));
    assert!(l.proxy.headers.level.is_none());
}

#[test]
fn user_group_defaults_to_user_name() {
    let t = tree("user www-data; events {}");
    let m = NginxModel::build(&t);
    assert_eq!(
        m.worker_identity(),
        ("www-data".to_string(), "www-data".to_string())
    );
    let t = tree("user app web; events {}");
    assert_eq!(
        NginxModel::build(&t).worker_identity(),
        ("app".to_string(), "web".to_string())
    );
}

#[test]
fn logging_directives() {
    let t = tree(
        r#"error_log /var/log/nginx/error.log warn;
http {
    log_format up escape=json '{"s":"$status",' '"u":"$upstream_addr"}';
    access_log /var/log/nginx/access.log up;
    server { access_log off; location / { access_log /tmp/a.log; } }
}"#,
    );
    let m = NginxModel::build(&t);
    assert_eq!(m.error_logs[0].format_or_level, "warn");
    let f = m
        .log_formats
        .iter()
        .find(|f| f.name == "up")
        .expect("format");
    assert_eq!(f.escape, "json");
    assert_eq!(f.format, r#"{"s":"$status","u":"$upstream_addr"}"#);
    assert!(m.log_formats.iter().any(|f| f.name == "combined"));
    let ctx: Vec<&str> = m.access_logs.iter().map(|a| a.context).collect();
    assert_eq!(ctx, ["http", "server", "location"]);
}

#[test]
fn addresses() {
    assert_eq!(
        parse_addr("unix:/a.sock", 80),
        Some(Addr::Unix("/a.sock".into()))
    );
    assert_eq!(
        parse_addr("[::1]", 80),
        Some(Addr::Host {
            host: "::1".into(),
            port: 80
        })
    );
    assert_eq!(
        parse_addr("example.com:81", 80),
        Some(Addr::Host {
            host: "example.com".into(),
            port: 81
        })
    );
    assert_eq!(parse_addr("h:notaport", 80), None);
    assert_eq!(parse_addr("unix:", 80), None);
    assert_eq!(parse_addr("", 80), None);
}

#[test]
fn literal_prefixes_of_locations() {
    let t = tree(
        r#"events {}
http {
    server {
        location /api/ { }
        location = /health { }
        location =/exact { }
        location ^~ /static/ { }
        location ~ \.php$ { }
        location ~* ^/x { }
        location @fallback { }
    }
}
"#,
    );
    let m = NginxModel::build(&t);
    let got: Vec<Option<&str>> = m.locations.iter().map(|l| l.literal_prefix()).collect();
    assert_eq!(
        got,
        [
            Some("/api/"),
            Some("/health"),
            Some("/exact"),
            Some("/static/"),
            None,
            None,
            None
        ]
    );
}
