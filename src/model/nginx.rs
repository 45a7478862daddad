//! nginx's semantic configuration: http → server → location with nginx's inheritance rules,
//! upstream groups, `proxy_pass` targets, logging, and nginx's defaults.
//!
//! Built from a [`ConfigTree`] with no I/O. Host names are kept as written: resolving them is
//! the gatherer's job (`crate::gather::host`).

use std::path::PathBuf;
use std::time::Duration;

use crate::parse::nginx::{ConfigTree, Directive, Located};

mod values;
pub use values::{format_time, parse_size, parse_time};

/// nginx's default `user` when the directive is absent (compiled in; Debian's packaged
/// nginx.conf sets `www-data` explicitly).
pub const DEFAULT_USER: &str = "nobody";
/// The compiled-in group that goes with [`DEFAULT_USER`] on Debian (no `nobody` group there).
pub const DEFAULT_GROUP: &str = "nogroup";
/// `proxy_connect_timeout`, `proxy_read_timeout`, `proxy_send_timeout` default.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(60);
/// The upstream `keepalive_timeout` default since nginx 1.15.3.
pub const DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A value together with the directive that set it; `from: None` means nginx's default applies.
#[derive(Debug, Clone)]
pub struct Setting<'a, T> {
    pub value: T,
    pub from: Option<Located<'a>>,
}

impl<T> Setting<'_, T> {
    fn default(value: T) -> Self {
        Setting { value, from: None }
    }
}

/// An address nginx connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addr {
    Unix(PathBuf),
    /// A host name or IP literal (brackets stripped) and a port.
    Host {
        host: String,
        port: u16,
    },
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// `http` or `https` in `proxy_pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where a `proxy_pass` sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An `upstream` group, by name.
    Upstream(String),
    /// A direct address.
    Direct(Addr),
    /// The host part is built from variables: it is only known at request time.
    Variable,
}

/// A `proxy_pass` directive.
#[derive(Debug, Clone)]
pub struct ProxyPass<'a> {
    pub at: Located<'a>,
    /// The URL as written.
    pub url: String,
    pub scheme: Scheme,
    /// The host part as written (`backend`, `127.0.0.1:8000`, `unix:/run/app.sock`).
    pub authority: String,
    pub target: Target,
}

/// The `proxy_set_header` list in effect: an inner level's list replaces every outer one, and
/// nginx's built-in `Host: $proxy_host` and `Connection: close` apply unless the list sets them.
#[derive(Debug, Clone, Default)]
pub struct Headers<'a> {
    /// Header name and value, in order.
    pub entries: Vec<(String, String, Located<'a>)>,
    /// The block (http, server, location…) whose list is in effect; `None` when no level sets one.
    pub level: Option<Located<'a>>,
}

impl Headers<'_> {
    /// The value nginx sends for `name` (case-insensitive); `Some("")` means the header is
    /// removed, `None` means absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v, _)) = self
            .entries
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        {
            return Some(v);
        }
        if name.eq_ignore_ascii_case("host") {
            return Some("$proxy_host");
        }
        if name.eq_ignore_ascii_case("connection") {
            return Some("close");
        }
        None
    }
}

/// The `proxy_*` settings in effect in one location.
#[derive(Debug, Clone)]
pub struct ProxySettings<'a> {
    pub http_version: Setting<'a, String>,
    pub headers: Headers<'a>,
    pub connect_timeout: Setting<'a, Duration>,
    pub read_timeout: Setting<'a, Duration>,
    pub send_timeout: Setting<'a, Duration>,
    pub buffer_size: Setting<'a, Option<u64>>,
}

impl Default for ProxySettings<'_> {
    fn default() -> Self {
        ProxySettings {
            http_version: Setting::default("1.0".into()),
            headers: Headers::default(),
            connect_timeout: Setting::default(DEFAULT_PROXY_TIMEOUT),
            read_timeout: Setting::default(DEFAULT_PROXY_TIMEOUT),
            send_timeout: Setting::default(DEFAULT_PROXY_TIMEOUT),
            buffer_size: Setting::default(None),
        }
    }
}

impl ProxySettings<'_> {
    /// HTTP/1.1 with the `Connection` header cleared: what upstream keep-alive needs.
    pub fn keepalive_capable(&self) -> bool {
        self.http_version.value == "1.1" && self.headers.get("connection") == Some("")
    }
}

/// A `location` (or an `if`/`limit_except` block inside one), with the settings in effect there.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub at: Located<'a>,
    /// The match as written: `/api`, `~ \.php$`, `= /`, `if (...)`.
    pub matcher: String,
    pub server: usize,
    pub proxy_pass: Option<ProxyPass<'a>>,
    pub proxy: ProxySettings<'a>,
}

/// A `server` block of the http context.
#[derive(Debug, Clone)]
pub struct Server<'a> {
    pub at: Located<'a>,
    pub names: Vec<String>,
    pub listens: Vec<String>,
}

impl Server<'_> {
    /// A short label: the first server name, or the first listen.
    pub fn label(&self) -> String {
        self.names
            .iter()
            .find(|n| !n.is_empty() && *n != "_")
            .or(self.listens.first())
            .cloned()
            .unwrap_or_else(|| "server".into())
    }
}

/// One `server` line of an upstream group.
#[derive(Debug, Clone)]
pub struct UpstreamServer<'a> {
    pub at: Located<'a>,
    pub addr: Addr,
    pub weight: u32,
    pub max_fails: u32,
    pub fail_timeout: Duration,
    pub backup: bool,
    pub down: bool,
}

/// An `upstream` block.
#[derive(Debug, Clone)]
pub struct Upstream<'a> {
    pub name: String,
    pub at: Located<'a>,
    pub servers: Vec<UpstreamServer<'a>>,
    /// `keepalive N`: idle connections cached per worker. `None`: no upstream keep-alive.
    pub keepalive: Option<Setting<'a, u32>>,
    pub keepalive_timeout: Setting<'a, Duration>,
}

/// A `log_format`.
#[derive(Debug, Clone)]
pub struct LogFormat<'a> {
    pub name: String,
    /// `default`, `json` or `none`.
    pub escape: String,
    /// The format string, its pieces joined as nginx does.
    pub format: String,
    pub at: Option<Located<'a>>,
}

/// An `access_log` or `error_log` destination.
#[derive(Debug, Clone)]
pub struct LogTarget<'a> {
    /// The path, or `off`, `syslog:…`, `stderr`.
    pub path: String,
    /// access_log: the format name (`combined` by default); error_log: the level (`error` by default).
    pub format_or_level: String,
    /// `main`, `http`, `server`, `location`: where it is set.
    pub context: &'static str,
    pub at: Option<Located<'a>>,
}

/// One address nginx connects to, and where it is written.
#[derive(Debug, Clone)]
pub struct TargetRef<'a, 'm> {
    pub addr: Addr,
    /// The upstream group it belongs to; `None` for a direct `proxy_pass`.
    pub upstream: Option<&'m str>,
    /// The `server` or `proxy_pass` directive.
    pub at: Located<'a>,
    /// The address exactly as written in that directive.
    pub raw: String,
}

impl TargetRef<'_, '_> {
    /// The name findings are grouped under: the upstream group, or the address itself.
    pub fn group(&self) -> String {
        self.upstream
            .map(str::to_string)
            .unwrap_or_else(|| self.raw.clone())
    }
}

/// The whole semantic configuration.
#[derive(Debug, Clone)]
pub struct NginxModel<'a> {
    /// `user` and its group: the identity of the worker processes, which connect to upstream
    /// unix sockets. nginx looks up a group named like the user when the group is omitted;
    /// without the directive it uses the compiled-in `nobody`/`nogroup`.
    pub user: Setting<'a, (String, Option<String>)>,
    pub pid: Setting<'a, String>,
    pub upstreams: Vec<Upstream<'a>>,
    pub servers: Vec<Server<'a>>,
    /// Every location (nested ones included), in file order.
    pub locations: Vec<Location<'a>>,
    pub log_formats: Vec<LogFormat<'a>>,
    pub access_logs: Vec<LogTarget<'a>>,
    pub error_logs: Vec<LogTarget<'a>>,
}

impl<'a> NginxModel<'a> {
    /// The upstream group named `name` (nginx matches names case-insensitively).
    pub fn upstream(&self, name: &str) -> Option<&Upstream<'a>> {
        self.upstreams
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// Locations that proxy to the upstream group `name`.
    pub fn locations_to(&self, name: &str) -> impl Iterator<Item = &Location<'a>> {
        self.locations.iter().filter(move |l| {
            matches!(&l.proxy_pass, Some(ProxyPass { target: Target::Upstream(u), .. }) if u.eq_ignore_ascii_case(name))
        })
    }

    /// Every address nginx proxies to: upstream group members and direct `proxy_pass` targets.
    pub fn targets(&self) -> Vec<TargetRef<'a, '_>> {
        let mut out = Vec::new();
        for u in &self.upstreams {
            for s in &u.servers {
                out.push(TargetRef {
                    addr: s.addr.clone(),
                    upstream: Some(u.name.as_str()),
                    at: s.at,
                    raw: s.at.directive.arg(0).to_string(),
                });
            }
        }
        for l in &self.locations {
            if let Some(
                p @ ProxyPass {
                    target: Target::Direct(addr),
                    ..
                },
            ) = &l.proxy_pass
            {
                out.push(TargetRef {
                    addr: addr.clone(),
                    upstream: None,
                    at: p.at,
                    raw: p.authority.clone(),
                });
            }
        }
        out
    }

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
        m
    }

    fn http(&mut self, tree: &'a ConfigTree, http: Located<'a>, body: Vec<Located<'a>>) {
        let proxy = ProxySettings::default().inherit(http, &body);
        for d in &body {
            match d.directive.name.as_str() {
                "upstream" => self.upstreams.push(upstream(tree, *d)),
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
                if name == "access_log" {
                    // Logged in the location context; server/http ones were taken already.
                }
                continue;
            }
            let Some(block) = &d.directive.block else {
                continue;
            };
            let inner = tree.expand(d.file, block);
            let proxy = outer.clone().inherit(*d, &inner);
            let proxy_pass = inner
                .iter()
                .find(|x| x.directive.name == "proxy_pass")
                .map(|x| proxy_pass(*x, &self.upstream_names(tree)));
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

    /// Upstream names are needed before all upstreams are built (a server may come before the
    /// upstream it uses), so they are collected straight from the tree.
    fn upstream_names(&self, tree: &'a ConfigTree) -> Vec<String> {
        let mut names = Vec::new();
        for d in tree.top() {
            if d.directive.name == "http"
                && let Some(block) = &d.directive.block
            {
                for x in tree.expand(d.file, block) {
                    if x.directive.name == "upstream" {
                        names.push(x.directive.arg(0).to_string());
                    }
                }
            }
        }
        names
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

/// Parses `unix:/path`, `[::1]:8000`, `host:port` or `host` (port `default_port`).
pub fn parse_addr(s: &str, default_port: u16) -> Option<Addr> {
    if let Some(path) = s.strip_prefix("unix:") {
        return (!path.is_empty()).then(|| Addr::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(Addr::Host {
            host: host.to_string(),
            port,
        });
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some(Addr::Host {
            host: host.to_string(),
            port: port.parse().ok()?,
        }),
        Some(_) => None,
        None if !s.is_empty() => Some(Addr::Host {
            host: s.to_string(),
            port: default_port,
        }),
        None => None,
    }
}

fn proxy_pass<'a>(at: Located<'a>, upstreams: &[String]) -> ProxyPass<'a> {
    let url = at.directive.arg(0).to_string();
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        (Scheme::Http, url.strip_prefix("http://").unwrap_or(&url))
    };
    // `http://unix:/path/to.sock:/uri`: the socket path ends at the next `:`.
    let authority = if let Some(path) = rest.strip_prefix("unix:") {
        format!("unix:{}", path.split(':').next().unwrap_or(""))
    } else {
        rest.split('/').next().unwrap_or("").to_string()
    };
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let target = if authority.contains('$') {
        Target::Variable
    } else if let Some(name) = upstreams
        .iter()
        .find(|u| u.eq_ignore_ascii_case(&authority))
    {
        Target::Upstream(name.clone())
    } else {
        match parse_addr(&authority, default_port) {
            Some(a) => Target::Direct(a),
            None => Target::Variable,
        }
    };
    ProxyPass {
        at,
        url,
        scheme,
        authority,
        target,
    }
}

#[cfg(test)]
mod tests;

impl NginxModel<'_> {
    /// The worker processes' user and group names, as nginx resolves them.
    pub fn worker_identity(&self) -> (String, String) {
        let (user, group) = &self.user.value;
        (user.clone(), group.clone().unwrap_or_else(|| user.clone()))
    }
}
