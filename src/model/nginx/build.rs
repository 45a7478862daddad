//! Building [`NginxModel`] from a [`ConfigTree`]: nginx's contexts, inheritance and defaults.

use std::time::Duration;

use super::*;
use super::{maps, proxy_pass};
use crate::parse::nginx::{ConfigTree, Directive, Located};

impl<'a> NginxModel<'a> {
    /// Builds the model from a parsed tree.
    pub fn build(tree: &'a ConfigTree) -> NginxModel<'a> {
        let mut m = NginxModel {
            user: Setting::default((DEFAULT_USER.to_string(), Some(DEFAULT_GROUP.to_string()))),
            pid: Setting::default("/run/nginx.pid".into()),
            upstreams: Vec::new(),
            servers: Vec::new(),
            locations: Vec::new(),
            log_formats: vec![LogFormat {
                name: "combined".into(),
                escape: "default".into(),
                format: COMBINED.into(),
                at: None,
            }],
            access_logs: Vec::new(),
            error_logs: Vec::new(),
            maps: Vec::new(),
            index: Default::default(),
        };
        for d in tree.top() {
            match d.directive.name.as_str() {
                "user" => {
                    let group = d.directive.args.get(1).cloned();
                    m.user = Setting {
                        value: (d.directive.arg(0).to_string(), group),
                        from: Some(d),
                    };
                }
                "pid" => {
                    m.pid = Setting {
                        value: d.directive.arg(0).to_string(),
                        from: Some(d),
                    }
                }
                "error_log" => m.error_logs.push(log_target(d, "main", "error")),
                "http" => {
                    if let Some(block) = &d.directive.block {
                        m.http(tree, d, tree.expand(d.file, block));
                    }
                }
                _ => {}
            }
        }
        m.upstreams
            .sort_by_key(|u| (u.at.file, u.at.directive.start));
        m.reindex();
        m
    }

    fn http(&mut self, tree: &'a ConfigTree, http: Located<'a>, body: Vec<Located<'a>>) {
        // Maps first: locations evaluate their Connection header against them.
        for d in body.iter().filter(|d| d.directive.name == "map") {
            self.maps.push(Map::build(tree, *d));
        }
        // Upstreams next: a `proxy_pass` names one whether it comes before or after it.
        for d in body.iter().filter(|d| d.directive.name == "upstream") {
            self.upstreams.push(upstream(tree, *d));
        }
        let proxy = ProxySettings::default().inherit(http, &body);
        for d in &body {
            match d.directive.name.as_str() {
                "log_format" => self.log_formats.push(log_format(*d)),
                "access_log" => self.access_logs.push(log_target(*d, "http", "combined")),
                "error_log" => self.error_logs.push(log_target(*d, "http", "error")),
                "server" => {
                    if let Some(block) = &d.directive.block {
                        self.server(tree, *d, tree.expand(d.file, block), &proxy);
                    }
                }
                _ => {}
            }
        }
    }

    fn server(
        &mut self,
        tree: &'a ConfigTree,
        at: Located<'a>,
        body: Vec<Located<'a>>,
        outer: &ProxySettings<'a>,
    ) {
        let index = self.servers.len();
        let mut server = Server {
            at,
            names: Vec::new(),
            listens: Vec::new(),
        };
        for d in &body {
            match d.directive.name.as_str() {
                "server_name" => server.names.extend(d.directive.args.iter().cloned()),
                "listen" => server.listens.push(d.directive.arg(0).to_string()),
                "access_log" => self.access_logs.push(log_target(*d, "server", "combined")),
                "error_log" => self.error_logs.push(log_target(*d, "server", "error")),
                _ => {}
            }
        }
        self.servers.push(server);
        let proxy = outer.clone().inherit(at, &body);
        self.locations_in(tree, index, &body, &proxy);
    }

    /// Walks the `location`s (and `if` / `limit_except` blocks) of one level, recursively.
    fn locations_in(
        &mut self,
        tree: &'a ConfigTree,
        server: usize,
        body: &[Located<'a>],
        outer: &ProxySettings<'a>,
    ) {
        for d in body {
            let name = d.directive.name.as_str();
            if !matches!(name, "location" | "if" | "limit_except") {
                continue;
            }
            let Some(block) = &d.directive.block else {
                continue;
            };
            let inner = tree.expand(d.file, block);
            let mut proxy = outer.clone().inherit(*d, &inner);
            proxy.connection = maps::connection(&proxy.headers, &self.maps);
            let proxy_pass = inner
                .iter()
                .find(|x| x.directive.name == "proxy_pass")
                .map(|x| proxy_pass::proxy_pass(*x, &self.upstreams));
            for x in &inner {
                if x.directive.name == "access_log" {
                    self.access_logs
                        .push(log_target(*x, "location", "combined"));
                }
            }
            let matcher = match name {
                "location" => d.directive.args.join(" "),
                _ => format!("{name} ({})", d.directive.args.join(" ")),
            };
            self.locations.push(Location {
                at: *d,
                matcher,
                server,
                proxy_pass,
                proxy: proxy.clone(),
            });
            self.locations_in(tree, server, &inner, &proxy);
        }
    }
}

impl<'a> ProxySettings<'a> {
    /// The settings in effect inside `block` whose (include-expanded) body is `body`: what the
    /// body sets itself, else what it inherits.
    fn inherit(mut self, block: Located<'a>, body: &[Located<'a>]) -> Self {
        let mut headers: Vec<(String, String, Located<'a>)> = Vec::new();
        for d in body {
            let dir: &Directive = d.directive;
            let set = Some(*d);
            match dir.name.as_str() {
                "proxy_http_version" => {
                    self.http_version = Setting {
                        value: dir.arg(0).to_string(),
                        from: set,
                    }
                }
                "proxy_set_header" => {
                    headers.push((dir.arg(0).to_string(), dir.arg(1).to_string(), *d))
                }
                "proxy_connect_timeout" | "proxy_read_timeout" | "proxy_send_timeout" => {
                    if let Some(t) = parse_time(dir.arg(0)) {
                        let s = Setting {
                            value: t,
                            from: set,
                        };
                        match dir.name.as_str() {
                            "proxy_connect_timeout" => self.connect_timeout = s,
                            "proxy_read_timeout" => self.read_timeout = s,
                            _ => self.send_timeout = s,
                        }
                    }
                }
                "resolver" => {
                    self.resolver = Setting {
                        value: Some(dir.args.join(" ")),
                        from: set,
                    }
                }
                "proxy_buffer_size" => {
                    self.buffer_size = Setting {
                        value: parse_size(dir.arg(0)),
                        from: set,
                    }
                }
                _ => {}
            }
        }
        // nginx: "These directives are inherited from the previous configuration level if and
        // only if there are no proxy_set_header directives defined on the current level."
        if !headers.is_empty() {
            self.headers = Headers {
                entries: headers,
                level: Some(block),
            };
        }
        self
    }
}

/// nginx's built-in `combined` format.
pub const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status \
                            $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

fn log_format(d: Located<'_>) -> LogFormat<'_> {
    let args = &d.directive.args;
    let mut rest = args.iter().skip(1).peekable();
    let mut escape = "default".to_string();
    if let Some(e) = rest.peek().and_then(|a| a.strip_prefix("escape=")) {
        escape = e.to_string();
        rest.next();
    }
    LogFormat {
        name: d.directive.arg(0).to_string(),
        escape,
        format: rest
            .map(|s| crate::parse::nginx::unescape(s))
            .collect::<Vec<_>>()
            .join(""),
        at: Some(d),
    }
}

fn log_target<'a>(d: Located<'a>, context: &'static str, default: &str) -> LogTarget<'a> {
    LogTarget {
        path: d.directive.arg(0).to_string(),
        format_or_level: d
            .directive
            .args
            .get(1)
            .cloned()
            .unwrap_or_else(|| default.to_string()),
        context,
        at: Some(d),
    }
}

fn upstream<'a>(tree: &'a ConfigTree, at: Located<'a>) -> Upstream<'a> {
    let mut up = Upstream {
        name: at.directive.arg(0).to_string(),
        at,
        servers: Vec::new(),
        keepalive: None,
        keepalive_timeout: Setting::default(DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT),
    };
    let Some(block) = &at.directive.block else {
        return up;
    };
    for d in tree.expand(at.file, block) {
        let dir = d.directive;
        match dir.name.as_str() {
            "server" => {
                if let Some(s) = upstream_server(d) {
                    up.servers.push(s);
                }
            }
            "keepalive" => {
                if let Ok(n) = dir.arg(0).parse() {
                    up.keepalive = Some(Setting {
                        value: n,
                        from: Some(d),
                    });
                }
            }
            "keepalive_timeout" => {
                if let Some(t) = parse_time(dir.arg(0)) {
                    up.keepalive_timeout = Setting {
                        value: t,
                        from: Some(d),
                    };
                }
            }
            _ => {}
        }
    }
    up
}

fn upstream_server(d: Located<'_>) -> Option<UpstreamServer<'_>> {
    let addr = parse_addr(d.directive.arg(0), 80)?;
    let mut s = UpstreamServer {
        at: d,
        addr,
        weight: 1,
        max_fails: 1,
        fail_timeout: Duration::from_secs(10),
        backup: false,
        down: false,
    };
    for p in d.directive.args.iter().skip(1) {
        match p.split_once('=') {
            Some(("weight", v)) => s.weight = v.parse().unwrap_or(1),
            Some(("max_fails", v)) => s.max_fails = v.parse().unwrap_or(1),
            Some(("fail_timeout", v)) => s.fail_timeout = parse_time(v).unwrap_or(s.fail_timeout),
            None if p == "backup" => s.backup = true,
            None if p == "down" => s.down = true,
            _ => {}
        }
    }
    Some(s)
}
