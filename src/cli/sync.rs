//! `sandbox sync`: runs the gate, prints its report (the preview, or `--json`), and asks the
//! person at the terminal. The report is data (`sync::report`); this is the one place that turns
//! it into text for a person.

use std::path::PathBuf;

use crate::environment::Environment;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::profile::ProfileSpec;
use crate::sync::gate::{Approval, Source};
use crate::sync::report::{Decision, OpKind, OpView, Report};
use crate::ui::{Interrupted, Ui};

use super::command::{SourceSpec, SyncSpec, load};

pub(crate) fn sync(
    spec: &ProfileSpec,
    sync: SyncSpec,
    json: bool,
    env: &Environment,
    ui: &Ui,
) -> Result<ExitCode, Error> {
    let profile = load(spec, env, ui)?;
    let source = match sync.source {
        SourceSpec::Dir(dir) => Source::Dir(dir),
        SourceSpec::Tar { path, entries, bytes } => Source::Tar { path, entries, bytes },
        SourceSpec::Vm => {
            ui.info("reading the overlay's changes from the VM");
            Source::Stream(crate::vm::export(&profile, &env.state_dir, &sync.host)?)
        }
    };
    let request = &crate::sync::gate::Request {
        source,
        host: sync.host,
        dry_run: sync.dry_run,
        yes: sync.yes,
        on_conflict: sync.on_conflict,
        interactive: sync.interactive,
        protected: protected_paths(&profile, spec, env),
    };
    let ask_first = profile.sync.confirm && !request.yes;
    let color = ui.stdout_color();
    let mut interrupted = false;
    let mut confirm = |report: &Report| -> Approval {
        if !request.interactive {
            return Approval::Decline;
        }
        if !json {
            let _ = ui.data(&preview(report, color));
        }
        choose(report, ask_first, ui).unwrap_or_else(|Interrupted| {
            interrupted = true;
            Approval::Decline
        })
    };
    let report = crate::sync::gate::run(request, &profile, &env.state_dir, &mut confirm)?;
    if let Some(message) = &report.recovered {
        ui.info(message);
    }
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Stdout(std::io::Error::other(e)))?;
        ui.data(&(text + "\n")).map_err(Error::Stdout)?;
    } else if !(request.interactive && matches!(report.decision, Decision::Applied | Decision::Declined)) {
        ui.data(&preview(&report, ui.stdout_color())).map_err(Error::Stdout)?;
    }
    Ok(match report.decision {
        Decision::Applied => {
            ui.info(&format!(
                "applied {} to {}; `sandbox sync --undo --to {}` restores the previous state",
                count(report.ops.len(), "operation"),
                report.host.display(),
                report.host.display()
            ));
            ExitCode::Ok
        }
        Decision::NothingToDo => {
            ui.info("nothing to do: the host already matches the VM");
            ExitCode::Ok
        }
        Decision::DryRun => {
            ui.info("dry run: the gate would let this through; nothing was written");
            ExitCode::Ok
        }
        Decision::Declined if interrupted => {
            ui.info("interrupted: nothing was written");
            ExitCode::Interrupted
        }
        Decision::Declined if !request.interactive => {
            ui.info(
                "not applied: the gate asks before it applies, and there is no terminal to ask in (stdin or stderr \
                 is not one)\n  help: run `sandbox sync` in a terminal to review it, or add `--yes` to apply what \
                 needs no review",
            );
            ExitCode::GateRefused
        }
        Decision::Declined => {
            ui.info("not applied: you declined; nothing was written");
            ExitCode::GateRefused
        }
        Decision::Refused => {
            ui.info("refused by the gate: nothing was written");
            ExitCode::GateRefused
        }
    })
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// What `sandbox` itself reads, which the gate reviews a change to: every file of the active
/// profile's `extends` chain, every file the profile names (secret rules, Ansible roles, secret
/// sources and programs, the SSH key, archives and root filesystems it installs),
/// `$SANDBOX_PROFILE`'s file, and its config and state folders.
fn protected_paths(profile: &crate::profile::Profile, spec: &ProfileSpec, env: &Environment) -> Vec<PathBuf> {
    use crate::profile::{SecretRules, SecretSource};
    let mut paths: Vec<PathBuf> = profile
        .chain
        .iter()
        .filter_map(|origin| match origin.as_ref() {
            crate::profile::source::Origin::File(path) => Some(path.clone()),
            crate::profile::source::Origin::Embedded(_) => None,
        })
        .collect();
    if let SecretRules::File(path) = &profile.sync.secret_rules {
        paths.push(path.clone());
    }
    paths.extend(profile.provision.roles_path.iter().cloned());
    for source in &profile.secrets.sources {
        match source {
            SecretSource::File(path) => paths.push(path.clone()),
            // The program, and any argument that names a file (`bash scripts/get.sh`).
            SecretSource::Exec(argv) => {
                paths.extend(argv.iter().filter(|a| a.contains('/')).map(|a| env.expand(a, &env.cwd)));
            }
            SecretSource::Env(_) => {}
        }
    }
    paths.extend(profile.vm.ssh.as_ref().and_then(|ssh| ssh.identity_file.clone()));
    paths.extend(profile.gateway.node.archive.clone());
    paths.extend(profile.tool_sandbox.rootfs.clone());
    // The profile as it was named, not only where it resolves (a link in the workspace).
    if let ProfileSpec::Path(path) = spec {
        paths.push(env.expand(&path.to_string_lossy(), &env.cwd));
    }
    if let Some(ProfileSpec::Path(path)) = env.profile.as_deref().map(ProfileSpec::parse) {
        paths.push(env.expand(&path.to_string_lossy(), &env.cwd));
    }
    paths.push(env.config_dir.join("sandbox"));
    paths.push(env.state_dir.join("sandbox"));
    paths
}

fn op_line(op: &OpView) -> String {
    let path = crate::ui::escape_name(&op.path);
    match &op.target {
        Some(target) => format!("{path} -> {}", crate::ui::escape_name(target)),
        None => path,
    }
}

/// The person at the terminal decides: each conflict is settled (keep the host's version, take
/// the VM's, or stop), each review-tier path is approved one by one (a "no" leaves it out), then
/// everything is applied, some operations are left out, or nothing is.
fn choose(report: &Report, ask_first: bool, ui: &Ui) -> Result<Approval, Interrupted> {
    let mut leave_out: Vec<String> = Vec::new();
    let mut take_vm: Vec<String> = Vec::new();
    for conflict in &report.conflicts {
        let path = crate::ui::escape_name(&conflict.path);
        // Only a path the plan writes or deletes itself can take the VM's version; a symlink in
        // the way is never written through, nor a FIFO or device replaced.
        let can_take = conflict.can_take_vm() && report.ops.iter().any(|o| o.path == conflict.path);
        let mut items = vec![format!("keep the host's version of {path}")];
        if can_take {
            items.push(format!("take the VM's version of {path} (undo restores the host's)"));
        }
        items.push("stop: apply nothing".to_owned());
        let prompt = format!("Conflict: {path}: {}", crate::ui::sanitize(&conflict.message));
        match (crate::ui::select(&prompt, &items, 0)?, can_take) {
            (0, _) => leave_out.push(conflict.path.clone()),
            (1, true) => take_vm.push(conflict.path.clone()),
            _ => return Ok(Approval::Decline),
        }
    }
    for path in report.review_paths() {
        let cut = report
            .diff_of(path)
            .filter(|d| !d.complete)
            .map(|_| " Its diff above is NOT complete: read the file itself first.")
            .unwrap_or_default();
        let prompt = format!(
            "Approve {}? It runs code or changes how tools behave (see \"needs approval\").{cut}",
            crate::ui::escape_name(path)
        );
        if !crate::ui::confirm(&prompt, false)? {
            leave_out.push(path.to_owned());
        }
    }
    let remaining: Vec<&OpView> = report.ops.iter().filter(|o| !left_out_now(&o.path, &leave_out)).collect();
    if remaining.is_empty() {
        return Ok(Approval::Decline);
    }
    if !ask_first && leave_out.is_empty() && take_vm.is_empty() {
        return Ok(Approval::Apply { leave_out, take_vm });
    }
    // A diff that was cut (budget, size, a binary format) is said where the choice is made.
    let cut = report.diffs.iter().filter(|d| !d.complete && !left_out_now(&d.path, &leave_out)).count();
    let cut = if cut == 0 { String::new() } else { format!(" ({} not shown in full above)", count(cut, "file")) };
    let items = [
        format!("apply all {}{cut}", count(remaining.len(), "operation")),
        "choose operations to leave out".to_owned(),
        "apply nothing".to_owned(),
    ];
    match crate::ui::select(&format!("Apply to {}?", report.host.display()), &items, 0)? {
        0 => Ok(Approval::Apply { leave_out, take_vm }),
        1 => {
            let items: Vec<String> = remaining.iter().map(|o| format!("{:<7} {}", o.op.as_str(), op_line(o))).collect();
            let kept = crate::ui::checklist("Space toggles, Enter applies the checked operations", &items)?;
            for (i, op) in remaining.iter().enumerate() {
                if !kept.contains(&i) {
                    leave_out.push(op.path.clone());
                }
            }
            // Leaving out a folder leaves out what is inside it: say exactly what will be applied.
            let applied: Vec<&&OpView> = remaining.iter().filter(|o| !left_out_now(&o.path, &leave_out)).collect();
            if applied.is_empty() {
                return Ok(Approval::Decline);
            }
            let mut text = format!("these {} will be applied:\n", count(applied.len(), "operation"));
            for op in &applied {
                text.push_str(&format!("  {:<7} {}\n", op.op.as_str(), op_line(op)));
            }
            let dropped = remaining.len() - applied.len();
            let inside = dropped.saturating_sub(remaining.len() - kept.len());
            if inside > 0 {
                text.push_str(&format!(
                    "({} inside a folder you left out {} left out too)\n",
                    count(inside, "operation"),
                    if inside == 1 { "is" } else { "are" }
                ));
            }
            ui.info(text.trim_end());
            if crate::ui::confirm("Apply these?", true)? {
                Ok(Approval::Apply { leave_out, take_vm })
            } else {
                Ok(Approval::Decline)
            }
        }
        _ => Ok(Approval::Decline),
    }
}

/// Whether `path` is one of `leave_out` or inside one.
fn left_out_now(path: &str, leave_out: &[String]) -> bool {
    leave_out.iter().any(|q| crate::sync::gate::within(path, q))
}

/// The human preview: summary, operations, checks, diffs; `color` on a terminal.
pub(crate) fn preview(report: &Report, color: bool) -> String {
    let paint = |code: &str, text: &str| crate::ui::paint(color, code, text);
    let mut out = String::new();
    let count_of = |op: OpKind| report.ops.iter().filter(|o| o.op == op).count();
    let bytes: u64 = report.ops.iter().filter_map(|o| o.bytes).sum();
    out.push_str(&format!(
        "sync into {}: {} ({}), {}, {}, {}\n",
        report.host.display(),
        count(count_of(OpKind::Write), "write"),
        crate::profile::ByteSize(bytes),
        count(count_of(OpKind::Symlink), "symlink"),
        count(count_of(OpKind::Mkdir), "new folder"),
        count(count_of(OpKind::Delete), "deletion"),
    ));
    for op in &report.ops {
        let code = match op.op {
            OpKind::Delete => "31",
            OpKind::Write | OpKind::Symlink => "32",
            OpKind::Mkdir => "34",
        };
        out.push_str(&format!("  {} {}\n", paint(code, &format!("{:<7}", op.op.as_str())), op_line(op)));
    }
    let section = |out: &mut String, title: &str, code: &str, items: Vec<String>| {
        if !items.is_empty() {
            out.push_str(&format!("{}:\n", paint(code, title)));
            for item in items {
                out.push_str(&format!("  {}\n", crate::ui::escape_name(&item)));
            }
        }
    };
    let describe = |i: &crate::sync::report::Item| {
        let path = if i.path.is_empty() { "." } else { i.path.as_str() };
        if i.fix.is_empty() {
            format!("{path}: {} [{}]", i.message, i.code)
        } else {
            format!("{path}: {} [{}]; fix: {}", i.message, i.code, i.fix)
        }
    };
    section(&mut out, "refused", "1;31", report.refusals.iter().map(describe).collect());
    section(&mut out, "needs approval", "1;33", report.review.iter().map(describe).collect());
    let conflicts = report.conflicts.iter().map(|c| format!("{}: {} [{}]", c.path, c.message, c.code)).collect();
    section(&mut out, "conflicts (use --on-conflict keep-host|take-vm)", "1;31", conflicts);
    let findings = report
        .findings
        .iter()
        .map(|f| {
            let f_ = &f.finding;
            if f_.is_unscannable() {
                format!("{}: not scanned: {} [{}]", f_.path, f_.description, f.code)
            } else {
                format!("{}:{}:{} {} {} [{}]", f_.path, f_.line, f_.column, f_.rule_id, f_.redacted, f.code)
            }
        })
        .collect();
    section(&mut out, "secrets found (blocking)", "1;31", findings);
    if report.preexisting_findings > 0 {
        out.push_str(&format!(
            "{} already present in the host's files (not blocking)\n",
            count(report.preexisting_findings, "finding")
        ));
    }
    section(&mut out, "excluded by the workspace's exclude globs", "1", report.excluded.clone());
    section(
        &mut out,
        "left out: the tool sandbox's mount points (empty folders its container runtime made)",
        "1",
        report.mount_points.clone(),
    );
    section(&mut out, "notes", "1", report.notes.clone());
    for diff in &report.diffs {
        for line in diff.text.lines() {
            let code = match line.as_bytes().first() {
                Some(b'+') if !line.starts_with("+++") => "32",
                Some(b'-') if !line.starts_with("---") => "31",
                Some(b'@') => "36",
                _ => "",
            };
            out.push_str(&if code.is_empty() || !color { line.to_owned() } else { paint(code, line) });
            out.push('\n');
        }
    }
    out
}
