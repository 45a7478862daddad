//! `reflex check`: gather (config, backends, host facts) → diagnose (rules) → act (`--fix`) →
//! report.

use std::io::Write as _;
use std::process::ExitCode;

use crate::act::fix::{apply_fixes, default_backup_root};
use crate::diagnose::check::{CheckInput, run as run_rules};
use crate::diagnose::finding::Finding;
use crate::gather::host;
use crate::model::nginx::NginxModel;
use crate::report::{Report, json, sarif, text};

use super::inputs::{choose_config, load_backends, load_config};
use super::{CheckArgs, Format};

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let choice = choose_config(args.nginx_conf.as_deref());
    let (backends, discovered, mut notes) = load_backends(&args.sources)?;
    notes.extend(choice.note.clone());
    let mut tree = load_config(&choice.path)?;
    let mut findings = check(&tree, &backends, discovered);

    if args.fix {
        let root = args.backup_dir.clone().unwrap_or_else(default_backup_root);
        let test = choice.nginx_test();
        let outcome = apply_fixes(&tree, &findings, &root, test.as_ref())?;
        if outcome.changed.is_empty() {
            notes.push("--fix: nothing to apply automatically".into());
        } else {
            let files = outcome
                .changed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let backup = outcome
                .backup_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            match outcome.validated {
                Some(true) => notes.push(format!("--fix: rewrote {files}; `nginx -t` passed; originals in {backup}")),
                Some(false) => notes.push(format!(
                    "--fix: `nginx -t` rejected the fixed configuration, originals restored (copies in {backup}): {}",
                    outcome.nginx_output
                )),
                None => notes.push(format!("--fix: rewrote {files} (nginx not installed: not validated); originals in {backup}")),
            }
            if outcome.skipped > 0 {
                notes.push(format!(
                    "--fix: {} overlapping edits left for a second run",
                    outcome.skipped
                ));
            }
            if outcome.validated == Some(false) {
                anyhow::bail!("{}", notes.last().cloned().unwrap_or_default());
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
    };
    let mut out = anstream::stdout();
    match args.format {
        Format::Text => write!(out, "{}", text(&report))?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&json(&report))?)?,
        Format::Sarif => writeln!(out, "{}", serde_json::to_string_pretty(&sarif(&report))?)?,
    }
    let failing = findings.iter().any(|f| f.severity >= args.fail_on);
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
