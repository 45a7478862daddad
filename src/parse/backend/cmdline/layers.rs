//! gunicorn's settings as layers (config file, `GUNICORN_CMD_ARGS`, command line), each
//! overriding the one before, with what could not be read kept as unknown.

use std::collections::BTreeMap;

use super::CmdlineError;
use super::options::Scanned;
use crate::model::backend::{Backend, Knob};
use crate::parse::backend::gunicorn_conf::{GunicornConf, STAR, Value, parse_int};

/// Where a gunicorn setting's value came from, for messages.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Cli(String),
    ConfLine(u32),
}

impl Origin {
    pub(super) fn describe(&self, setting: &str) -> String {
        match self {
            Origin::Cli(opt) => opt.clone(),
            Origin::ConfLine(line) => format!("{setting} (config file line {line})"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Entry {
    Known(Value, Origin),
    Unknown(String),
}

/// gunicorn settings in precedence order.
#[derive(Default)]
pub(super) struct Layers {
    pub(super) values: BTreeMap<String, Entry>,
    /// When set, a setting no layer sets may still be set where we cannot see (why).
    pub(super) fallback: Option<String>,
}

pub(super) enum Got<'a> {
    Value(&'a Value, &'a Origin),
    Unknown(String),
    Default,
}

impl Layers {
    pub(super) fn add_conf(&mut self, conf: &GunicornConf) {
        for s in &conf.settings {
            if s.name == STAR {
                // `from base import *`: any setting may come from there, earlier ones included.
                let why = format!(
                    "config file line {}: `{}` may set it",
                    s.line,
                    expr(&s.value)
                );
                self.unknown_everywhere(&why);
                continue;
            }
            let entry = Entry::Known(s.value.clone(), Origin::ConfLine(s.line));
            self.values.insert(s.name.clone(), entry);
        }
    }

    /// Every setting not set by a later layer is unknown, for `why`.
    pub(super) fn unknown_everywhere(&mut self, why: &str) {
        for v in self.values.values_mut() {
            *v = Entry::Unknown(why.to_string());
        }
        self.fallback = Some(why.to_string());
    }

    pub(super) fn add_cli(&mut self, cli: &Scanned, gaps: &BTreeMap<usize, String>) {
        let gap = |word: usize, shown: String| {
            gaps.get(&word)
                .map(|why| Entry::Unknown(format!("`{shown}`: {why}")))
        };
        // argparse's `append` gives a list that replaces the config file's `bind` entirely.
        let binds: Vec<_> = cli.opts.iter().filter(|o| o.name == "bind").collect();
        if !binds.is_empty() {
            let unknown = binds.iter().find_map(|o| {
                gap(
                    o.word,
                    format!("--bind {}", o.value.as_deref().unwrap_or("")),
                )
            });
            let list = binds.iter().filter_map(|o| o.value.clone()).collect();
            let known = Entry::Known(Value::List(list), Origin::Cli("--bind".into()));
            self.values.insert("bind".into(), unknown.unwrap_or(known));
        }
        for o in cli.opts.iter().filter(|o| o.name != "bind") {
            let setting = match o.name.as_str() {
                "keep-alive" => "keepalive".to_string(),
                n => n.replace('-', "_"),
            };
            let value = o.value.clone().map_or(Value::Bool(true), Value::Str);
            let shown = format!("--{} {}", o.name, o.value.as_deref().unwrap_or(""));
            let entry = gap(o.word, shown)
                .unwrap_or_else(|| Entry::Known(value, Origin::Cli(format!("--{}", o.name))));
            self.values.insert(setting, entry);
        }
    }

    pub(super) fn get(&self, name: &str) -> Got<'_> {
        match self.values.get(name) {
            Some(Entry::Known(Value::Expr(e), origin)) => {
                Got::Unknown(format!("{} = {e} is not evaluated", origin.describe(name)))
            }
            Some(Entry::Known(v, origin)) => Got::Value(v, origin),
            Some(Entry::Unknown(why)) => Got::Unknown(why.clone()),
            None => match &self.fallback {
                Some(why) => Got::Unknown(why.clone()),
                None => Got::Default,
            },
        }
    }

    /// An integer no rule relies on: unknown is recorded as not understood, taken as unset.
    pub(super) fn optional(
        &self,
        name: &str,
        b: &mut Backend,
    ) -> Result<Option<u64>, CmdlineError> {
        self.int(name, None, b, false)
    }

    /// A string setting; `Err(why)` when unknown.
    pub(super) fn str(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            Got::Value(Value::Str(s), _) => Ok(Some(s)),
            Got::Value(other, origin) => Err(format!(
                "{} = {} is not a string",
                origin.describe(name),
                expr(other)
            )),
            Got::Unknown(why) => Err(why),
            Got::Default => Ok(None),
        }
    }

    /// An integer setting, `int(x, 0)` for strings as gunicorn's `validate_pos_int`; `auto`
    /// also accepts a leading-zero octal (`022`), as gunicorn's `auto_int` does for `umask`.
    /// Unknown values mark `knob` unknown and give `None`; with no `knob` (a setting no rule
    /// relies on) the reason goes to `unparsed` instead, when some layer sets it.
    pub(super) fn int(
        &self,
        name: &str,
        knob: Option<Knob>,
        b: &mut Backend,
        auto: bool,
    ) -> Result<Option<u64>, CmdlineError> {
        let (value, origin) = match self.get(name) {
            Got::Value(v, o) => (v, o),
            Got::Unknown(why) => {
                match knob {
                    Some(knob) => b.set_unknown(knob, why),
                    None if self.values.contains_key(name) => b.unparsed.push(why),
                    None => {}
                }
                return Ok(None);
            }
            Got::Default => return Ok(None),
        };
        let bad = |v: &str| CmdlineError::BadNumber {
            option: origin.describe(name),
            value: v.into(),
        };
        match value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            // Python's int() of a float truncates; of a bool, True is 1.
            Value::Float(f) if *f >= 0.0 => Ok(Some(*f as u64)),
            Value::Bool(t) => Ok(Some(u64::from(*t))),
            Value::Str(s) => {
                let s = s.trim();
                let octal = auto
                    && s.len() > 1
                    && s.starts_with('0')
                    && s[1..].starts_with(|c: char| c.is_ascii_digit());
                let n = if octal {
                    u64::from_str_radix(&s[1..], 8).ok()
                } else {
                    parse_int(s).and_then(|n| u64::try_from(n).ok())
                };
                n.map(Some).ok_or_else(|| bad(s))
            }
            other => {
                let why = format!(
                    "{} = {} is not an integer",
                    origin.describe(name),
                    expr(other)
                );
                match knob {
                    Some(knob) => b.set_unknown(knob, why),
                    None => b.unparsed.push(why),
                }
                Ok(None)
            }
        }
    }
}

/// A value as Python source, for messages.
pub(super) fn expr(v: &Value) -> String {
    match v {
        Value::Expr(e) => e.clone(),
        Value::Str(s) => format!("{s:?}"),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::List(l) => format!("{l:?}"),
    }
}
