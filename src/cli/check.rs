//! `reflex check`: gather (config, backends, host facts) → diagnose (rules) → act (`--fix`) →
//! report.

use std::io::Write as _;
use std::process::ExitCode;

use crate::act::fix::{apply_fixes, backup_dir_for_run, default_backup_root};
use crate::diagnose::check::{CheckInput, run as run_rules};
use crate::diagnose::finding::Finding;
use crate::gather::host;
use crate::model::nginx::NginxModel;
use crate::report::{Report, json, sarif, text};

use super::inputs::{choose_config, load_backends, load_config};
use super::{CheckArgs, Format};

/// How many times `--fix` re-checks and fixes again.
const MAX_FIX_PASSES: usize = 3;

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let choice = choose_config(args.nginx_conf.as_deref());
    let (backends, discovered, mut notes) = load_backends(&args.sources)?;
    notes.extend(choice.note.clone());
    let mut tree = load_config(&choice.path)?;
    let mut findings = check(&tree, &backends, discovered);

    if args.fix {
        let run_dir =
            backup_dir_for_run(&args.backup_dir.clone().unwrap_or_else(default_backup_root));
        let test = choice.nginx_test();
        // A fix can make another one apply (a keep-alive made effective can now race), so fix
        // until nothing safe is left, a few passes at most.
        for pass in 1..=MAX_FIX_PASSES {
            let dir = run_dir.join(format!("pass-{pass}"));
            let outcome = apply_fixes(&tree, &findings, &dir, test.as_ref())?;
            if outcome.changed.is_empty() {
                if pass == 1 {
                    notes.push("--fix: nothing to apply automatically".into());
                }
                break;
            }
            let files = outcome
                .changed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let backup = dir.display();
            match outcome.validated {
                Some(true) => notes.push(format!("--fix pass {pass}: rewrote {files}; `nginx -t` passed; previous versions in {backup}")),
                Some(false) => {
                    anyhow::bail!(
                        "--fix pass {pass}: `nginx -t` rejected the fixed configuration, the files are restored (copies in {backup}): {}",
                        outcome.nginx_output
                    )
                }
                None => notes.push(format!("--fix pass {pass}: rewrote {files} (nginx not installed: not validated); previous versions in {backup}")),
            }
            if outcome.skipped > 0 {
                notes.push(format!(
                    "--fix: {} overlapping edits left for another run",
                    outcome.skipped
                ));
            }
            tree = load_config(&choice.path)?;
            findings = check(&tree, &backends, discovered);
        }
    }

    let upstreams = NginxModel::build(&tree)
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let report = Report {
        tree: &tree,
        backends: &backends,
        findings: &findings,
        upstreams,
        notes: &notes,
        offsets: &crate::gather::nginx_conf::byte_offsets(&tree),
    };
    let rendered = match args.format {
        Format::Text => text(&report),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&json(&report))?),
        Format::Sarif => format!("{}\n", serde_json::to_string_pretty(&sarif(&report))?),
    };
    let failing = findings.iter().any(|f| f.severity >= args.fail_on);
    let verdict = if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    match anstream::stdout().write_all(rendered.as_bytes()) {
        // `reflex check | head`: the reader has what it wanted; the verdict still stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(verdict),
        other => other.map(|()| verdict).map_err(Into::into),
    }
}

/// Gathers host facts and runs the rules. `discovered`: the backends were found on this host,
/// so what listens here right now is relevant too.
fn check(
    tree: &crate::parse::nginx::ConfigTree,
    backends: &[crate::model::backend::Backend],
    discovered: bool,
) -> Vec<Finding> {
    let nginx = NginxModel::build(tree);
    let mut facts = host::collect(&nginx, backends);
    if discovered {
        facts.listening = Some(host::listening());
    }
    run_rules(&CheckInput {
        tree,
        nginx: &nginx,
        backends,
        host: &facts,
    })
}
