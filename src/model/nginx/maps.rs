//! `map` blocks, and the one question rules ask of them: what `Connection` header nginx sends
//! upstream for a request that is not a WebSocket upgrade.
//!
//! The usual WebSocket configuration is `map $http_upgrade $connection_upgrade { default
//! upgrade; '' close; }` with `proxy_set_header Connection $connection_upgrade;`. For a plain
//! request `$http_upgrade` is empty, so the map's `''` entry decides (nginx tests exact keys
//! before regexes and the default); with `'' '';` the header is cleared and upstream
//! keep-alive works, with `'' close;` every plain request closes its connection.

use super::Headers;
use crate::parse::nginx::{ConfigTree, Located};

/// A `map $source $variable { … }` block.
#[derive(Debug, Clone)]
pub struct Map<'a> {
    pub at: Located<'a>,
    pub source: String,
    pub variable: String,
    /// `key value` entries other than the special ones, in order.
    pub entries: Vec<(String, String, Located<'a>)>,
    /// `default VALUE` (nginx's default is the empty string).
    pub default: Option<(String, Located<'a>)>,
}

impl<'a> Map<'a> {
    pub(super) fn build(tree: &'a ConfigTree, at: Located<'a>) -> Map<'a> {
        let mut m = Map {
            at,
            source: at.directive.arg(0).to_string(),
            variable: at.directive.arg(1).to_string(),
            entries: Vec::new(),
            default: None,
        };
        let Some(block) = &at.directive.block else {
            return m;
        };
        for d in tree.expand(at.file, block) {
            let (key, value) = (d.directive.name.as_str(), d.directive.arg(0));
            match key {
                "default" => m.default = Some((value.to_string(), d)),
                "hostnames" | "volatile" => {}
                _ => m.entries.push((key.to_string(), value.to_string(), d)),
            }
        }
        m
    }

    /// The value for a request whose source is empty, and the entry that gives it (`None`:
    /// nginx's implicit empty default). `None` overall when a regex key could decide.
    pub fn value_for_empty(&self) -> Option<(String, Option<Located<'a>>)> {
        if let Some((_, v, at)) = self.entries.iter().find(|(k, _, _)| k.is_empty()) {
            return Some((v.clone(), Some(*at)));
        }
        if self.entries.iter().any(|(k, _, _)| k.starts_with('~')) {
            return None;
        }
        Some(match &self.default {
            Some((v, at)) => (v.clone(), Some(*at)),
            None => (String::new(), None),
        })
    }
}

/// The `Connection` header a location sends upstream for requests that are not upgrades.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// A fixed value: nginx's default `close`, or what `proxy_set_header Connection` says
    /// (`""`: not sent).
    Fixed(String),
    /// The value of a map on `$http_upgrade` for a request without `Upgrade`.
    Mapped {
        /// The map's variable, e.g. `$connection_upgrade`.
        variable: String,
        value: String,
        /// Index of the map in `NginxModel::maps`.
        map: usize,
    },
    /// A value we cannot evaluate (a variable that is not such a map).
    Unknown(String),
}

impl Connection {
    /// The value sent for plain requests, when known.
    pub fn plain(&self) -> Option<&str> {
        match self {
            Connection::Fixed(v) | Connection::Mapped { value: v, .. } => Some(v),
            Connection::Unknown(_) => None,
        }
    }
}

/// Evaluates the `Connection` header of `headers` against `maps`.
pub fn connection(headers: &Headers<'_>, maps: &[Map<'_>]) -> Connection {
    let value = headers.get("connection").unwrap_or("close");
    if !value.contains('$') {
        return Connection::Fixed(value.to_string());
    }
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .map(|v| format!("${v}"))
        .unwrap_or_else(|| value.to_string());
    let found = maps
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.variable == name);
    match found {
        // Only `$http_upgrade` is known to be empty for requests that are not upgrades.
        Some((i, m)) if m.source == "$http_upgrade" => match m.value_for_empty() {
            Some((v, _)) if !v.contains('$') => Connection::Mapped {
                variable: name,
                value: v,
                map: i,
            },
            _ => Connection::Unknown(value.to_string()),
        },
        _ => Connection::Unknown(value.to_string()),
    }
}
