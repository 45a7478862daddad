//! `reflex diagnose`: gather (config, backends, host facts, live evidence, the logs' recent
//! window) → diagnose (pure rules) → report. Exit codes: 0 healthy, 1 a cause was found,
//! 2 an error.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::diagnose::live::{Diagnosis, LiveInput, run as diagnose};
use crate::gather::evidence::collect::{Options, collect};
use crate::gather::logwindow::{self, AccessSource, Window};
use crate::gather::{host, nginx_conf};
use crate::model::evidence::{Evidence, Unavailable};
use crate::model::logs::LogWindow;
use crate::model::nginx::{NginxModel, parse_time};
use crate::parse::logs::access_log::{AccessFormat, Escape};
use crate::parse::nginx::ConfigTree;

use super::inputs::{choose_config, load_backends};
use super::{BackendArgs, Format};

/// Flags of `reflex diagnose`.
#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// The main nginx configuration file. Default: the running nginx master's `-c`, else
    /// /etc/nginx/nginx.conf.
    #[arg(long, value_name = "PATH")]
    pub nginx_conf: Option<PathBuf>,
    /// How far back to read the logs (nginx time syntax: 30s, 15m, 1h).
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub since: String,
    /// Output format (text or json).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Do not send HTTP probes to the upstreams and through nginx.
    #[arg(long)]
    pub no_probe: bool,
    #[command(flatten)]
    pub sources: BackendArgs,
    /// An application log file (uvicorn/gunicorn output). Repeatable.
    #[arg(long = "app-log", value_name = "PATH")]
    pub app_logs: Vec<PathBuf>,
    /// Analyse logs copied from another host: no live evidence, lower confidence.
    #[arg(long, requires = "error_logs")]
    pub offline: bool,
    /// An nginx error log to read instead of the configuration's. Repeatable.
    #[arg(long = "error-log", value_name = "FILE")]
    pub error_logs: Vec<PathBuf>,
    /// An nginx access log to read instead of the configuration's. Repeatable.
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_logs: Vec<PathBuf>,
    /// The access logs' `log_format` name (from the configuration; `combined` by default).
    #[arg(long, value_name = "NAME")]
    pub log_format: Option<String>,
}

pub fn run(args: &DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let since = parse_time(&args.since)
        .with_context(|| format!("`--since {}`: not a duration like 15m", args.since))?;
    if args.format == Format::Sarif {
        anyhow::bail!("`reflex diagnose` prints text or json");
    }
    let mut unavailable: Vec<Unavailable> = Vec::new();
    // The configuration: optional offline, and never fatal live (the logs still tell a lot).
    let conf = if args.offline && args.nginx_conf.is_none() {
        None
    } else {
        Some(choose_config(args.nginx_conf.as_deref()))
    };
    let tree: Option<ConfigTree> = match &conf {
        Some(c) => match nginx_conf::load(&c.path) {
            Ok(t) => Some(t),
            Err(e) => {
                unavailable.push(Unavailable {
                    what: "nginx configuration".into(),
                    why: e.to_string(),
                    how: "pass --nginx-conf, or run as a user who can read it".into(),
                });
                None
            }
        },
        None => None,
    };
    let nginx = tree.as_ref().map(NginxModel::build);
    let (backends, _, notes) = if args.offline && args.sources.backends.is_empty() {
        (Vec::new(), false, Vec::new())
    } else {
        load_backends(&args.sources)?
    };
    let facts = match &nginx {
        Some(n) if !args.offline => host::collect(n, &backends),
        _ => Default::default(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let window = Window {
        seconds: since.as_secs() as i64,
        end_s: (!args.offline).then_some(now),
        utc_offset_s: logwindow::local_utc_offset(),
    };
    let (error_logs, access_logs) = log_sources(
        args,
        nginx.as_ref(),
        conf.as_ref().and_then(|c| c.prefix.as_deref()),
    )?;
    let (logs, missing) = logwindow::read(&error_logs, &access_logs, window);
    unavailable.extend(missing);
    let evidence = if args.offline {
        Evidence::default()
    } else {
        collect(&Options {
            backends: &backends,
            nginx: nginx.as_ref(),
            probe: !args.no_probe,
            probe_timeout: Duration::from_millis(1500),
            sample: Duration::from_millis(300),
            since_ms: ((now - window.seconds).max(0) as u64) * 1000,
            app_logs: &args.app_logs,
        })
    };
    unavailable.extend(evidence.unavailable.iter().cloned());
    if args.offline {
        unavailable.push(Unavailable {
            what: "live evidence (processes, sockets, probes, unit state)".into(),
            why: "--offline".into(),
            how: "run reflex diagnose on the host itself".into(),
        });
    }
    let findings = diagnose(&LiveInput {
        nginx: nginx.as_ref(),
        backends: &backends,
        host: &facts,
        evidence: &evidence,
        logs: &logs,
        offline: args.offline,
    });
    let mut out = anstream::stdout();
    match args.format {
        Format::Json => {
            let v = json!({
                "findings": findings,
                "evidence_unavailable": unavailable,
                "window": {"from_ms": logs.from_ms, "to_ms": logs.to_ms, "since_s": window.seconds},
                "logs": {
                    "sources": logs.sources,
                    "upstream_errors": logs.errors.len(),
                    "requests": logs.requests.len(),
                    "malformed_lines": logs.malformed,
                    "has_upstream_fields": logs.has_upstream_fields,
                },
                "backends": backends.iter().map(|b| &b.name).collect::<Vec<_>>(),
                "notes": notes,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        _ => write!(
            out,
            "{}",
            text(&findings, &unavailable, &logs, &notes, &args.since)
        )?,
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The error and access logs to read: given on the command line, else the configuration's.
fn log_sources(
    args: &DiagnoseArgs,
    nginx: Option<&NginxModel<'_>>,
    prefix: Option<&Path>,
) -> anyhow::Result<(Vec<PathBuf>, Vec<AccessSource>)> {
    let format_of = |name: &str| -> anyhow::Result<AccessFormat> {
        if name == "combined" {
            return Ok(AccessFormat::combined());
        }
        let f = nginx
            .and_then(|n| n.log_formats.iter().find(|f| f.name == name))
            .with_context(|| {
                format!("no log_format `{name}` in the configuration (give --nginx-conf)")
            })?;
        Ok(AccessFormat::compile(
            &f.format,
            Escape::parse(&f.escape).unwrap_or(Escape::Default),
        )?)
    };
    let resolve = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_relative() {
            prefix.unwrap_or(Path::new("/usr/share/nginx")).join(p)
        } else {
            p
        }
    };
    let mut errors: Vec<PathBuf> = args.error_logs.clone();
    let mut access: Vec<AccessSource> = Vec::new();
    for p in &args.access_logs {
        access.push(AccessSource {
            path: p.clone(),
            format: format_of(args.log_format.as_deref().unwrap_or("combined"))?,
        });
    }
    if let Some(n) = nginx {
        if args.error_logs.is_empty() {
            for l in &n.error_logs {
                if !l.path.starts_with("syslog:")
                    && l.path != "stderr"
                    && !errors.contains(&resolve(&l.path))
                {
                    errors.push(resolve(&l.path));
                }
            }
            if !n.error_logs.iter().any(|l| l.context == "main") && errors.is_empty() {
                errors.push(PathBuf::from("/var/log/nginx/error.log"));
            }
        }
        if args.access_logs.is_empty() {
            for l in &n.access_logs {
                if l.path == "off"
                    || l.path.starts_with("syslog:")
                    || access.iter().any(|a| a.path == resolve(&l.path))
                {
                    continue;
                }
                let name = l
                    .format_or_level
                    .split_whitespace()
                    .next()
                    .unwrap_or("combined");
                access.push(AccessSource {
                    path: resolve(&l.path),
                    format: format_of(name)?,
                });
            }
        }
    }
    Ok((errors, access))
}

fn text(
    findings: &[Diagnosis],
    unavailable: &[Unavailable],
    logs: &LogWindow,
    notes: &[String],
    since: &str,
) -> String {
    use std::fmt::Write as _;
    let bold = anstyle::Style::new().bold();
    let dim = anstyle::Style::new().dimmed();
    let red = anstyle::AnsiColor::Red.on_default().bold();
    let green = anstyle::AnsiColor::Green.on_default().bold();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{dim}last {since}: {} requests, {} upstream errors, {} malformed lines ({}){dim:#}",
        logs.requests.len(),
        logs.errors.len(),
        logs.malformed,
        if logs.sources.is_empty() {
            "no logs read".to_string()
        } else {
            logs.sources.join(", ")
        }
    );
    if findings.is_empty() {
        let _ = writeln!(out, "{green}healthy{green:#}: no cause of 502/504 found");
    }
    for (i, d) in findings.iter().enumerate() {
        let restart = if d.restart_helps {
            "a restart helps"
        } else {
            "a restart will not help"
        };
        let _ = writeln!(
            out,
            "\n{}. {red}{}{red:#} {dim}(confidence {:.2}, {restart}){dim:#}{}",
            i + 1,
            d.kind,
            d.confidence,
            d.upstream
                .as_ref()
                .map(|u| format!("  upstream {u}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "   {bold}{}{bold:#}", d.message);
        for e in &d.evidence {
            let _ = writeln!(out, "   {dim}·{dim:#} {e}");
        }
        let _ = writeln!(out, "   {bold}fix:{bold:#} {}", d.fix);
    }
    if !unavailable.is_empty() {
        let _ = writeln!(out, "\n{bold}evidence unavailable{bold:#}");
        for u in unavailable {
            let _ = writeln!(out, "   - {}: {} ({})", u.what, u.why, u.how);
        }
    }
    for n in notes {
        let _ = writeln!(out, "{dim}note:{dim:#} {n}");
    }
    out
}
