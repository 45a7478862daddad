//! `reflex diagnose`: gather (config, backends, host facts, live evidence, the logs' recent
//! window) → diagnose (pure rules) → report. Exit codes: 0 healthy, 1 a cause was found,
//! 2 an error (bad flags, a file named on the command line that cannot be read) or nothing to
//! judge by (no finding and no log could be read: "inconclusive").

mod output;
mod sources;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::diagnose::live::{LiveInput, run as diagnose};
use crate::gather::evidence::collect::{Options, collect};
use crate::gather::logwindow::{self, Window};
use crate::gather::{host, nginx_conf};
use crate::model::backend::Backend;
use crate::model::evidence::{Evidence, Unavailable};
use crate::model::nginx::{NginxModel, parse_time};
use crate::parse::nginx::ConfigTree;

use super::BackendArgs;
use super::inputs::{ConfigChoice, choose_config, load_backends};
use output::{Report, Verdict};

/// Output formats of `reflex diagnose` (SARIF describes static findings in files: `check` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagnoseFormat {
    Text,
    Json,
}

/// Flags of `reflex diagnose`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("copied_logs").args(["error_logs", "access_logs"]).multiple(true)))]
pub struct DiagnoseArgs {
    /// The main nginx configuration file. Default: the running nginx master's `-c`, else
    /// /etc/nginx/nginx.conf.
    #[arg(long, value_name = "PATH")]
    pub nginx_conf: Option<PathBuf>,
    /// How far back to read the logs (nginx time syntax: 30s, 15m, 1h).
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub since: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagnoseFormat::Text)]
    pub format: DiagnoseFormat,
    /// Do not send HTTP probes to the upstreams and through nginx.
    #[arg(long)]
    pub no_probe: bool,
    #[command(flatten)]
    pub sources: BackendArgs,
    /// An application log file (uvicorn/gunicorn output). Repeatable.
    #[arg(long = "app-log", value_name = "PATH")]
    pub app_logs: Vec<PathBuf>,
    /// Analyse logs copied from another host (--error-log and/or --access-log): no live
    /// evidence, lower confidence.
    #[arg(long, requires = "copied_logs")]
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
    sources::check_named(args)?;
    let mut unavailable: Vec<Unavailable> = Vec::new();
    let (conf, tree) = config(args, &mut unavailable)?;
    let nginx = tree.as_ref().map(NginxModel::build);
    let (backends, _, mut notes) = if args.offline && args.sources.backends.is_empty() {
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
    let master = conf.as_ref().and_then(|c| sources::master_of(&c.path));
    let window = Window {
        seconds: since.as_secs() as i64,
        end_s: (!args.offline).then_some(now),
        zone: logwindow::zone::nginx_zone(master),
    };
    let (error_logs, access_logs) = sources::log_sources(
        args,
        nginx.as_ref(),
        conf.as_ref().and_then(|c| c.prefix.as_deref()),
    )?;
    let read = logwindow::read(&error_logs, &access_logs, window.clone());
    let logs = read.logs;
    unavailable.extend(read.unavailable);
    notes.extend(read.notes);
    let evidence = evidence(args, &backends, nginx.as_ref(), now - window.seconds);
    unavailable.extend(evidence.unavailable.iter().cloned());
    let findings = diagnose(&LiveInput {
        nginx: nginx.as_ref(),
        backends: &backends,
        host: &facts,
        evidence: &evidence,
        logs: &logs,
        offline: args.offline,
    });
    let verdict = Verdict::of(&findings, &logs);
    let labels: Vec<String> = backends.iter().map(Backend::label).collect();
    let report = Report {
        findings: &findings,
        unavailable: &unavailable,
        logs: &logs,
        notes: &notes,
        backends: &labels,
        since: &args.since,
        since_s: window.seconds,
        verdict,
    };
    let mut out = anstream::stdout();
    match args.format {
        DiagnoseFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&output::json(&report))?
        )?,
        DiagnoseFormat::Text => write!(out, "{}", output::text(&report))?,
    }
    Ok(match verdict {
        Verdict::Healthy => ExitCode::SUCCESS,
        Verdict::Findings => ExitCode::from(1),
        Verdict::Inconclusive => ExitCode::from(2),
    })
}

/// The configuration: optional offline; live, a missing default is evidence unavailable (the
/// logs still tell a lot), but a file named with --nginx-conf that cannot be read is an error.
fn config(
    args: &DiagnoseArgs,
    unavailable: &mut Vec<Unavailable>,
) -> anyhow::Result<(Option<ConfigChoice>, Option<ConfigTree>)> {
    if args.offline && args.nginx_conf.is_none() {
        return Ok((None, None));
    }
    let c = choose_config(args.nginx_conf.as_deref());
    match nginx_conf::load(&c.path) {
        Ok(t) => Ok((Some(c), Some(t))),
        Err(e) if args.nginx_conf.is_some() => Err(anyhow::Error::new(e).context(format!(
            "cannot read the nginx configuration `{}`",
            c.path.display()
        ))),
        Err(e) => {
            unavailable.push(Unavailable {
                what: "nginx configuration".into(),
                why: e.to_string(),
                how: "pass --nginx-conf, or run as a user who can read it".into(),
            });
            Ok((Some(c), None))
        }
    }
}

fn evidence(
    args: &DiagnoseArgs,
    backends: &[Backend],
    nginx: Option<&NginxModel<'_>>,
    since_s: i64,
) -> Evidence {
    if args.offline {
        let mut e = Evidence::default();
        e.unavailable.push(Unavailable {
            what: "live evidence (processes, sockets, probes, unit state)".into(),
            why: "--offline".into(),
            how: "run reflex diagnose on the host itself".into(),
        });
        return e;
    }
    collect(&Options {
        backends,
        nginx,
        probe: !args.no_probe,
        probe_timeout: Duration::from_millis(1500),
        sample: Duration::from_millis(300),
        since_ms: (since_s.max(0) as u64) * 1000,
        app_logs: &args.app_logs,
    })
}
