//! nginx's semantic configuration: http → server → location with nginx's inheritance rules,
//! upstream groups, `proxy_pass` targets, logging, and nginx's defaults.
//!
//! Built from a [`ConfigTree`] with no I/O. Host names are kept as written: resolving them is
//! the gatherer's job (`crate::gather::host`).

use std::path::PathBuf;
use std::time::Duration;

use crate::parse::nginx::Located;

mod build;
mod maps;
mod proxy_pass;
mod values;
pub use build::COMBINED;
pub use maps::{Connection, Map};
pub use proxy_pass::parse_addr;
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
    /// The host part as written (`backend`, `127.0.0.1:8000`, `unix:/run/app.sock`), without a
    /// URI variable that follows it (`http://app$request_uri`).
    pub authority: String,
    pub target: Target,
    /// The URL holds variables: nginx builds it per request and resolves a host name that is
    /// not an `upstream` group with `resolver` (not at start-up).
    pub runtime: bool,
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
    /// `resolver` (inherited like the `proxy_*` settings); `None`: not set.
    pub resolver: Setting<'a, Option<String>>,
    /// The `Connection` header for requests that are not upgrades, with `map`s evaluated.
    pub connection: Connection,
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
            resolver: Setting::default(None),
            connection: Connection::Fixed("close".into()),
        }
    }
}

impl ProxySettings<'_> {
    /// HTTP/1.1 with the `Connection` header cleared for plain requests (directly, or by a
    /// WebSocket `map` whose non-upgrade value is empty): what upstream keep-alive needs.
    pub fn keepalive_capable(&self) -> bool {
        self.http_version.value == "1.1" && self.connection.plain() == Some("")
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

impl Location<'_> {
    /// The prefix the location matches, for plain (`/api`), `=` and `^~` locations; `None` for
    /// regular expressions, named locations and `if` blocks, whose reach cannot be told by
    /// prefix.
    pub fn literal_prefix(&self) -> Option<&str> {
        let m = self.matcher.trim();
        let p = m
            .strip_prefix("^~")
            .or_else(|| m.strip_prefix('='))
            .unwrap_or(m)
            .trim();
        (p.starts_with('/') && !p.contains(char::is_whitespace)).then_some(p)
    }
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
    /// Resolved per request with `resolver` (a `proxy_pass` with variables), not at start-up.
    pub runtime: bool,
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
    /// `map` blocks of the http context, in order.
    pub maps: Vec<Map<'a>>,
    pub error_logs: Vec<LogTarget<'a>>,
    /// Lookups by lowercased upstream name (rules ask per location and per upstream: a scan
    /// each time is quadratic on configurations with thousands of locations).
    index: Index,
}

/// See [`NginxModel::index`].
#[derive(Debug, Clone, Default)]
struct Index {
    /// Upstream name → its index in `upstreams`.
    upstreams: std::collections::HashMap<String, usize>,
    /// Upstream name → the indices in `locations` of the locations proxying to it.
    locations: std::collections::HashMap<String, Vec<usize>>,
}

impl<'a> NginxModel<'a> {
    /// The upstream group named `name` (nginx matches names case-insensitively).
    pub fn upstream(&self, name: &str) -> Option<&Upstream<'a>> {
        let i = *self.index.upstreams.get(&name.to_ascii_lowercase())?;
        self.upstreams.get(i)
    }

    /// Locations that proxy to the upstream group `name`.
    pub fn locations_to(&self, name: &str) -> impl Iterator<Item = &Location<'a>> {
        let found = self.index.locations.get(&name.to_ascii_lowercase());
        found
            .into_iter()
            .flatten()
            .filter_map(|&i| self.locations.get(i))
    }

    /// Builds the lookups; called once the model is complete.
    fn reindex(&mut self) {
        let mut index = Index::default();
        for (i, u) in self.upstreams.iter().enumerate() {
            // The first of several groups with one name is the one a lookup finds.
            index
                .upstreams
                .entry(u.name.to_ascii_lowercase())
                .or_insert(i);
        }
        for (i, l) in self.locations.iter().enumerate() {
            if let Some(ProxyPass {
                target: Target::Upstream(u),
                ..
            }) = &l.proxy_pass
            {
                index
                    .locations
                    .entry(u.to_ascii_lowercase())
                    .or_default()
                    .push(i);
            }
        }
        self.index = index;
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
                    runtime: false,
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
                    runtime: p.runtime,
                });
            }
        }
        out
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
