//! Command-line flags and glue. The binary's `main` is [`main`].
//!
//! Exit codes: `check` 0 nothing at or above `--fail-on`, 1 something is; `diagnose` 0 healthy,
//! 1 a cause was found; `logs` and `parse` 0. All: 2 an error (bad flags, an unreadable or
//! malformed file; for `diagnose` also an inconclusive run: nothing found and nothing read).

mod check;
mod diagnose;
mod inputs;
mod logs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diagnose::finding::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "reflex",
    version,
    about = "Keeps FastAPI/uvicorn/gunicorn apps behind nginx free of 502/504s.",
    long_about = None,
    after_help = "Exit codes: check: 0 clean, 1 findings at or above --fail-on; diagnose: 0 healthy, \
                  1 a cause was found; logs, parse: 0. All: 2 an error (diagnose: or inconclusive)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Static analysis of the nginx configuration against the backends' launch settings.
    Check(CheckArgs),
    /// Name the cause of live 502/504s from nginx's logs, sockets, processes and probes.
    Diagnose(diagnose::DiagnoseArgs),
    /// Summarise nginx access and error logs: requests, 5xx/502/504 per upstream and minute,
    /// upstream error classes, slowest and most-failing URIs.
    Logs(logs::LogsArgs),
    /// Print the nginx configuration as crossplane-compatible JSON (includes resolved).
    Parse {
        /// The main configuration file.
        path: PathBuf,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Where the backends' launch settings come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendArgs {
    /// A backend's command line, e.g. 'uvicorn app:app --uds /run/app.sock'. Repeatable.
    /// When any backend source is given, discovery (units, supervisord, processes) is skipped.
    #[arg(long = "backend", value_name = "CMDLINE")]
    pub backends: Vec<String>,
    /// A systemd unit file whose ExecStart runs the backend. Repeatable.
    #[arg(long = "unit", value_name = "FILE")]
    pub units: Vec<PathBuf>,
    /// A supervisord configuration file with the backend's [program:x]. Repeatable.
    #[arg(long = "supervisord-conf", value_name = "FILE")]
    pub supervisord_confs: Vec<PathBuf>,
    /// Use only the backends given here; discover none on this host. For `check` this is CI
    /// mode: the configuration and units describe another machine, so nothing about this host
    /// is gathered either (name resolution, sysctls, socket permissions, users) and files the
    /// units refer to are not read; rules that need them say so in a note. `check` then needs
    /// --nginx-conf.
    #[arg(long)]
    pub no_discover: bool,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The main nginx configuration file. Default: the running nginx master's `-c`, else
    /// /etc/nginx/nginx.conf.
    #[arg(long, value_name = "PATH")]
    pub nginx_conf: Option<PathBuf>,
    #[command(flatten)]
    pub sources: BackendArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = Severity::Warning, value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// Apply the fixes that are safe unattended, keep backups, validate with `nginx -t` and
    /// restore the originals if nginx rejects the result.
    #[arg(long)]
    pub fix: bool,
    /// Where --fix keeps backups. Default: /var/backups/reflex (root) or
    /// ~/.local/state/reflex/backups.
    #[arg(long, value_name = "DIR", requires = "fix")]
    pub backup_dir: Option<PathBuf>,
}

/// Runs the command line; prints errors with their whole chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Diagnose(args) => diagnose::run(&args),
        Command::Parse { path } => parse(&path),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`reflex … | head`): end quietly, as ripgrep does.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether writing output failed because its reader closed the pipe.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn parse(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let tree = inputs::load_config(path)?;
    let json = crate::parse::nginx::to_crossplane_json(&tree);
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&json)?
    )?;
    Ok(ExitCode::SUCCESS)
}
