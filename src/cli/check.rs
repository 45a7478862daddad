//! `reflex check`: gather (config, backends, host facts) → diagnose (rules) → act (`--fix`) →
//! report.
//!
//! `--no-discover` is CI mode: the configuration and units describe another machine, so nothing
//! about this one is gathered (no backend discovery, no name resolution, no sysctls, no
//! filesystem permissions, no user database), and the files units refer to are not read. Rules
//! that need such facts say so in a note; rules that only need the configuration and the units
//! still run.

use std::io::Write as _;
use std::process::ExitCode;

use crate::act::fix::{NginxTest, apply_fixes, backup_dir_for_run, default_backup_root};
use crate::diagnose::check::{CheckInput, run_with_notes};
use crate::diagnose::finding::Finding;
use crate::gather::host;
use crate::model::backend::Backend;
use crate::model::host::HostFacts;
use crate::model::nginx::NginxModel;
use crate::parse::nginx::ConfigTree;
use crate::report::{Report, json, sarif, text};

use super::inputs::{choose_config, load_backends, load_config};
use super::{CheckArgs, Format};

/// How many times `--fix` re-checks and fixes again.
const MAX_FIX_PASSES: usize = 3;

/// What the rules look at besides the configuration.
struct Inputs {
    backends: Vec<Backend>,
    /// The backends were found on this host: what listens here right now is relevant too.
    discovered: bool,
    /// `--no-discover`: gather nothing about this host.
    offline: bool,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    if args.sources.no_discover && args.nginx_conf.is_none() {
        // CI mode describes another machine: this host's running nginx is not the one meant.
        anyhow::bail!(
            "--no-discover checks a configuration for another machine: give it with --nginx-conf"
        );
    }
    let choice = choose_config(args.nginx_conf.as_deref());
    let (backends, discovered, mut notes) = load_backends(&args.sources)?;
    notes.extend(choice.note.clone());
    notes.extend(backends.iter().flat_map(|b| {
        b.unparsed
            .iter()
            .map(move |u| format!("{}: not understood: {u}", b.name))
    }));
    let inputs = Inputs {
        backends,
        discovered,
        offline: args.sources.no_discover,
    };
    let mut tree = load_config(&choice.path)?;
    // The findings for `tree` when `--fix` already has them.
    let mut checked = None;
    if args.fix {
        let test = choice.nginx_test();
        (tree, checked) = fix(args, &choice.path, tree, &inputs, test.as_ref(), &mut notes)?;
    }
    let (findings, rule_notes) = checked.unwrap_or_else(|| check(&tree, &inputs));
    notes.extend(rule_notes);
    let failing = findings.iter().any(|f| f.severity >= args.fail_on);
    let verdict = if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let rendered = render(args.format, &tree, &inputs.backends, &findings, &notes)?;
    match anstream::stdout().write_all(rendered.as_bytes()) {
        // `reflex check | head`: the reader has what it wanted; the verdict still stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(verdict),
        other => other.map(|()| verdict).map_err(Into::into),
    }
}

/// `--fix`: applies the safe fixes and checks again, until nothing safe is left (a fix can make
/// another one apply: a keep-alive made effective can now race), a few passes at most. Returns
/// the configuration as it is afterwards, and its findings and notes when the last pass checked
/// that very configuration (it found nothing left to fix), so they need not be gathered again.
fn fix(
    args: &CheckArgs,
    path: &std::path::Path,
    mut tree: ConfigTree,
    inputs: &Inputs,
    test: Option<&NginxTest>,
    notes: &mut Vec<String>,
) -> anyhow::Result<(ConfigTree, Option<Checked>)> {
    let run_dir = backup_dir_for_run(&args.backup_dir.clone().unwrap_or_else(default_backup_root));
    for pass in 1..=MAX_FIX_PASSES {
        let (findings, rule_notes) = check(&tree, inputs);
        let dir = run_dir.join(format!("pass-{pass}"));
        let outcome = apply_fixes(&tree, &findings, &dir, test)?;
        if outcome.changed.is_empty() {
            if pass == 1 {
                notes.push("--fix: nothing to apply automatically".into());
            }
            // Nothing rewritten: this check is the final configuration's.
            return Ok((tree, Some((findings, rule_notes))));
        }
        let files = outcome
            .changed
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let backup = dir.display();
        match outcome.validated {
            Some(true) => notes.push(format!(
                "--fix pass {pass}: rewrote {files}; `nginx -t` passed; previous versions in {backup}"
            )),
            Some(false) => anyhow::bail!(
                "--fix pass {pass}: `nginx -t` rejected the fixed configuration, the files are restored (copies in {backup}): {}",
                outcome.nginx_output
            ),
            None => notes.push(format!(
                "--fix pass {pass}: rewrote {files} (nginx not installed: not validated); previous versions in {backup}"
            )),
        }
        if outcome.skipped > 0 {
            notes.push(format!(
                "--fix: {} overlapping edits left for another run",
                outcome.skipped
            ));
        }
        tree = load_config(path)?;
    }
    // The last pass rewrote files: what they are now has not been checked.
    Ok((tree, None))
}

/// The findings and the notes of the rules, from `check`.
type Checked = (Vec<Finding>, Vec<String>);

/// Gathers host facts (unless offline) and runs the rules: the findings and what could not be
/// checked.
fn check(tree: &ConfigTree, inputs: &Inputs) -> Checked {
    let nginx = NginxModel::build(tree);
    let facts = if inputs.offline {
        HostFacts {
            offline: true,
            ..HostFacts::default()
        }
    } else {
        let mut facts = host::collect(&nginx, &inputs.backends);
        if inputs.discovered {
            facts.listening = Some(host::listening());
        }
        facts
    };
    run_with_notes(&CheckInput {
        tree,
        nginx: &nginx,
        backends: &inputs.backends,
        host: &facts,
    })
}

fn render(
    format: Format,
    tree: &ConfigTree,
    backends: &[Backend],
    findings: &[Finding],
    notes: &[String],
) -> anyhow::Result<String> {
    let upstreams = NginxModel::build(tree)
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let cwd = std::env::current_dir().ok();
    let report = Report {
        tree,
        backends,
        findings,
        upstreams,
        notes,
        offsets: &crate::gather::nginx_conf::byte_offsets(tree),
        cwd: cwd.as_deref(),
    };
    Ok(match format {
        Format::Text => text(&report),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&json(&report))?),
        Format::Sarif => format!("{}\n", serde_json::to_string_pretty(&sarif(&report))?),
    })
}
