//! Builders shared by the unit tests: a parsed tree from text, and a backend literal.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::backend::{Backend, Bind, RunAs, Server, Source};
use crate::parse::nginx::{ConfigTree, SourceFile, parse};

/// A one-file configuration tree, as if read from `/t/nginx.conf`.
pub fn tree(text: &str) -> ConfigTree {
    let directives = parse(text).expect("test config parses");
    ConfigTree {
        files: vec![SourceFile {
            path: PathBuf::from("/t/nginx.conf"),
            text: text.into(),
            directives,
        }],
    }
}

/// A backend with uvicorn's defaults, given by `--backend` (name `--backend #1`).
pub fn backend(server: Server, binds: Vec<Bind>, keepalive_s: u64) -> Backend {
    Backend {
        name: "--backend #1".into(),
        source: Source::Flag { index: 0 },
        server,
        argv: vec!["uvicorn".into(), "main:app".into()],
        app: Some("main:app".into()),
        binds,
        keepalive: Duration::from_secs(keepalive_s),
        keepalive_explicit: true,
        worker_timeout: None,
        graceful_timeout: None,
        backlog: 2048,
        workers: 1,
        limit_concurrency: None,
        max_requests: None,
        max_requests_jitter: None,
        proxy_headers: true,
        forwarded_allow_ips: None,
        tls: false,
        root_path: None,
        working_directory: None,
        run_as: RunAs::default(),
        unparsed: Vec::new(),
        unknown: Vec::new(),
        reload: false,
        supervision: Default::default(),
    }
}
