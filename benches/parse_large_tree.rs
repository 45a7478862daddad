//! Benchmark: `load(main)` end to end (read + parse + resolve includes) on a large generated
//! configuration: 1,000 server blocks over 100 included site files, with upstreams, locations,
//! proxy headers and a shared snippet, the shape of a busy multi-tenant reverse proxy. Then the
//! whole static check on it: load, the semantic model, and every rule (host facts left empty,
//! so no DNS or filesystem lookups are timed).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use reflex::diagnose::check::{CheckInput, run};
use reflex::gather::nginx_conf::load;
use reflex::model::host::HostFacts;
use reflex::model::nginx::NginxModel;
use reflex::parse::nginx::Directive;

const SITE_FILES: usize = 100;
const SERVERS_PER_FILE: usize = 10;
const LOCATIONS_PER_SERVER: usize = 5;
const SERVERS_PER_UPSTREAM: usize = 4;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// One site file: its upstreams, then its servers.
fn site(file: usize) -> String {
    let mut s = String::new();
    for u in 0..SERVERS_PER_FILE.div_ceil(SERVERS_PER_UPSTREAM) {
        let _ = writeln!(s, "upstream app_{file}_{u} {{");
        for port in 0..3 {
            let _ = writeln!(
                s,
                "    server 10.{}.{u}.{port}:8000 max_fails=3 fail_timeout=10s;",
                file % 256
            );
        }
        s.push_str("    keepalive 32;\n    keepalive_timeout 60s;\n}\n\n");
    }
    for n in 0..SERVERS_PER_FILE {
        let up = n / SERVERS_PER_UPSTREAM;
        let _ = writeln!(
            s,
            "server {{\n    listen 80;\n    server_name site{file}-{n}.example.com www.site{file}-{n}.example.com;\n    access_log /var/log/nginx/site{file}-{n}.log json_combined;\n    client_max_body_size 10m;"
        );
        for l in 0..LOCATIONS_PER_SERVER {
            let _ = writeln!(s, "\n    location /api/v{l}/ {{");
            if l == 0 {
                s.push_str("        include snippets/proxy.conf;\n");
            }
            let _ = writeln!(s, "        proxy_pass http://app_{file}_{up};");
            s.push_str(concat!(
                "        proxy_http_version 1.1;\n",
                "        proxy_set_header Connection \"\";\n",
                "        proxy_set_header Host $host;\n",
                "        proxy_set_header X-Real-IP $remote_addr;\n",
                "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n",
                "        proxy_read_timeout 60s; # keep below the app's timeout\n",
                "        if ($request_method = OPTIONS) { return 204; }\n",
                "    }\n",
            ));
        }
        s.push_str("}\n\n");
    }
    s
}

fn generate(dir: &Path) {
    write(
        dir,
        "nginx.conf",
        concat!(
            "user www-data;\nworker_processes auto;\nevents { worker_connections 4096; }\n",
            "http {\n    include mime.types;\n",
            "    log_format json_combined escape=json '{\"time\":\"$time_iso8601\",'\n",
            "        '\"status\":\"$status\",\"upstream\":\"$upstream_addr\"}';\n",
            "    include conf.d/*.conf;\n    include sites-enabled/*.conf;\n}\n",
        ),
    );
    write(
        dir,
        "mime.types",
        "types {\n    text/html html;\n    application/json json;\n}\n",
    );
    write(
        dir,
        "conf.d/maps.conf",
        "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n}\n",
    );
    write(
        dir,
        "snippets/proxy.conf",
        "proxy_buffering on;\nproxy_buffers 16 16k;\n",
    );
    for file in 0..SITE_FILES {
        write(
            dir,
            &format!("sites-enabled/site{file:03}.conf"),
            &site(file),
        );
    }
}

fn count(ds: &[Directive]) -> usize {
    ds.iter()
        .map(|d| 1 + d.block.as_deref().map(count).unwrap_or(0))
        .sum()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path());
    let main = dir.path().join("nginx.conf");
    let tree = load(&main).expect("generated tree loads");
    let directives: usize = tree.files.iter().map(|f| count(&f.directives)).sum();
    let bytes: usize = tree.files.iter().map(|f| f.text.len()).sum();
    let servers = tree
        .files
        .iter()
        .map(|f| f.text.matches("\nserver {").count() + usize::from(f.text.starts_with("server {")))
        .sum::<usize>();
    eprintln!(
        "tree: {} files, {servers} server blocks, {directives} directives, {bytes} bytes",
        tree.files.len()
    );
    let mut group = c.benchmark_group("nginx_conf");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("load_1000_servers_100_files", |b| {
        b.iter(|| load(std::hint::black_box(&main)).expect("loads"))
    });
    group.bench_function("check_1000_servers_100_files", |b| {
        let host = HostFacts::default();
        b.iter(|| {
            let tree = load(std::hint::black_box(&main)).expect("loads");
            let nginx = NginxModel::build(&tree);
            run(&CheckInput {
                tree: &tree,
                nginx: &nginx,
                backends: &[],
                host: &host,
            })
            .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
