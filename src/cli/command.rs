//! Validated commands, free of clap types, and what each one does.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::args::{
    BaselineArgs, CommandArgs, ConflictArg, DestroyArgs, InitArgs, ProfileArgs, RenderArgs, ResetArgs, ScanArgs,
    ScanFormat, SecretsArgs, ShowFormat, SshArgs, StatusArgs, SyncArgs, UpArgs,
};
use crate::environment::Environment;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::init::InitRequest;
use crate::profile::load::{EMBEDDED, named_path};
use crate::profile::{Profile, ProfileSpec};
use crate::render::output::{self, Difference};
use crate::ui::Ui;

/// One thing to do, with its inputs resolved.
#[derive(Debug)]
pub(crate) enum Command {
    Render { profile: ProfileSpec, target: RenderTarget },
    ProfileList,
    ProfileShow { profile: ProfileSpec, json: bool },
    ProfileValidate { profile: ProfileSpec },
    Init(InitRequest),
    Scan(ScanRequest),
    Baseline { dir: PathBuf, threads: usize },
    Sync { profile: ProfileSpec, spec: SyncSpec, json: bool },
    Undo { profile: ProfileSpec, host: PathBuf },
    Up { profile: ProfileSpec, options: crate::vm::UpOptions, verbose: bool },
    Reset { profile: ProfileSpec, force: bool },
    SecretsCheck { profile: ProfileSpec },
    Down { profile: ProfileSpec },
    Destroy { profile: ProfileSpec, force: bool },
    Doctor { profile: ProfileSpec },
    Ssh { profile: ProfileSpec, command: Vec<String> },
    Status { profile: ProfileSpec, json: bool },
}

/// `sandbox sync`, validated; the source is opened once the profile is loaded.
#[derive(Debug)]
pub(crate) struct SyncSpec {
    pub(super) source: SourceSpec,
    pub(super) host: PathBuf,
    pub(super) dry_run: bool,
    pub(super) yes: bool,
    pub(super) on_conflict: crate::sync::apply::OnConflict,
    pub(super) interactive: bool,
}

#[derive(Debug)]
pub(super) enum SourceSpec {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        entries: u64,
        bytes: u64,
    },
    /// The profile's VM, over SSH.
    Vm,
}

/// `sandbox scan`, validated.
#[derive(Debug)]
pub(crate) struct ScanRequest {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) enable_rules: Vec<String>,
    pub(crate) format: ScanFormat,
    pub(crate) options: crate::scan::walk::WalkOptions,
}

#[derive(Debug)]
pub(crate) enum RenderTarget {
    List,
    Out(PathBuf),
    Check(PathBuf),
}

impl Command {
    pub(crate) fn from_args(profile: Option<String>, command: CommandArgs, env: &Environment) -> Result<Self, Error> {
        let spec = || profile.as_deref().map_or_else(|| ProfileSpec::from_environment(env), ProfileSpec::parse);
        Ok(match command {
            CommandArgs::Render(RenderArgs { out, check }) => {
                let target = match (out, check) {
                    (Some(dir), _) => RenderTarget::Out(env.cwd.join(dir)),
                    (None, Some(dir)) => RenderTarget::Check(env.cwd.join(dir)),
                    (None, None) => RenderTarget::List,
                };
                Command::Render { profile: spec(), target }
            }
            CommandArgs::Profile(ProfileArgs::List) => Command::ProfileList,
            CommandArgs::Profile(ProfileArgs::Show { format }) => {
                Command::ProfileShow { profile: spec(), json: matches!(format, ShowFormat::Json) }
            }
            CommandArgs::Profile(ProfileArgs::Validate) => Command::ProfileValidate { profile: spec() },
            CommandArgs::Init(args) => Command::Init(init_request(args)),
            CommandArgs::Up(UpArgs { reprovision, verbose, ssh_timeout, gateway_timeout }) => {
                for (flag, value) in [("--ssh-timeout", ssh_timeout), ("--gateway-timeout", gateway_timeout)] {
                    if value == 0 {
                        return Err(Error::Usage(format!("{flag} must be at least 1 second")));
                    }
                }
                let options = crate::vm::UpOptions {
                    reprovision,
                    ssh_timeout: std::time::Duration::from_secs(ssh_timeout),
                    gateway_timeout: std::time::Duration::from_secs(gateway_timeout),
                };
                Command::Up { profile: spec(), options, verbose }
            }
            CommandArgs::Reset(ResetArgs { force }) => Command::Reset { profile: spec(), force },
            CommandArgs::Secrets(SecretsArgs::Check) => Command::SecretsCheck { profile: spec() },
            CommandArgs::Down => Command::Down { profile: spec() },
            CommandArgs::Destroy(DestroyArgs { force }) => Command::Destroy { profile: spec(), force },
            CommandArgs::Doctor => Command::Doctor { profile: spec() },
            CommandArgs::Ssh(SshArgs { command }) => Command::Ssh { profile: spec(), command },
            CommandArgs::Status(StatusArgs { json }) => Command::Status { profile: spec(), json },
            CommandArgs::Scan(args) => return scan_request(args, env),
            CommandArgs::Sync(args) => sync_command(args, spec(), env)?,
            CommandArgs::Baseline(BaselineArgs { dir, threads }) => Command::Baseline {
                dir: env.cwd.join(dir),
                threads: match threads {
                    Some(0) => return Err(Error::Usage("--threads must be at least 1".into())),
                    Some(n) => n,
                    None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                },
            },
        })
    }

    pub(crate) fn execute(self, env: &Environment, ui: &Ui) -> Result<ExitCode, Error> {
        match self {
            Command::Render { profile, target } => render(&profile, target, env, ui),
            Command::ProfileList => profile_list(env, ui),
            Command::ProfileShow { profile, json } => {
                let profile = load(&profile, env, ui)?;
                let text = if json {
                    serde_json::to_string_pretty(&profile).map(|s| s + "\n").expect("a validated profile serialises")
                } else {
                    serde_yaml::to_string(&profile).expect("a validated profile serialises")
                };
                ui.data(&text).map_err(Error::Stdout)?;
                Ok(ExitCode::Ok)
            }
            Command::ProfileValidate { profile } => {
                let resolved = load(&profile, env, ui)?;
                let chain: Vec<String> = resolved.chain.iter().map(ToString::to_string).collect();
                ui.info(&format!("profile `{}` is valid ({})", resolved.name, chain.join(" <- ")));
                Ok(ExitCode::Ok)
            }
            Command::Scan(request) => scan(&request, ui),
            Command::Sync { profile, spec, json } => super::sync::sync(&profile, spec, json, env, ui),
            Command::Undo { profile, host } => {
                let profile = load(&profile, env, ui)?;
                let left = crate::sync::gate::undo(&host, &profile, &env.state_dir)?;
                ui.info("undid the last sync");
                if !left.is_empty() {
                    ui.info(&format!("these directories now hold host files and were kept: {}", left.join(", ")));
                }
                Ok(ExitCode::Ok)
            }
            Command::Baseline { dir, threads } => {
                let manifest = crate::sync::manifest::record(&dir, threads)?;
                if let Some(previous) = crate::sync::store::load_baseline(&env.state_dir, &manifest.root)? {
                    let changed = crate::sync::manifest::changed_paths(&previous, &manifest);
                    ui.info(&format!("{changed} paths changed since the previous baseline"));
                }
                let path = crate::sync::store::save_baseline(&env.state_dir, &manifest)?;
                ui.info(&format!(
                    "recorded the baseline of {}: {} entries, {} files, {} ({})",
                    manifest.root.display(),
                    manifest.entries.len(),
                    manifest.files(),
                    crate::profile::ByteSize(manifest.bytes()),
                    path.display()
                ));
                Ok(ExitCode::Ok)
            }
            Command::Up { profile, options, verbose } => up(&profile, &options, verbose, env, ui),
            Command::Reset { profile, force } => reset(&profile, force, env, ui),
            Command::SecretsCheck { profile } => {
                let profile = load(&profile, env, ui)?;
                let set = crate::secrets::collect(&profile, &|name| env.secret_var(name))?;
                let checks = crate::secrets::check(&profile, &set);
                let mut text = String::new();
                for (name, origin) in &checks {
                    match origin {
                        Some(origin) => text.push_str(&format!("present {name} ({origin})\n")),
                        None => text.push_str(&format!("missing {name}\n")),
                    }
                }
                ui.data(&text).map_err(Error::Stdout)?;
                let missing: Vec<String> = checks.into_iter().filter(|(_, o)| o.is_none()).map(|(n, _)| n).collect();
                if missing.is_empty() {
                    Ok(ExitCode::Ok)
                } else {
                    Err(crate::secrets::SecretsError::Missing { names: missing }.into())
                }
            }
            Command::Down { profile } => {
                let profile = load(&profile, env, ui)?;
                match crate::vm::down(&profile, &env.state_dir)? {
                    crate::vm::Down::Stopped => ui.info(&format!("stopped the VM `{}`", profile.name)),
                    crate::vm::Down::AlreadyStopped(how) => ui.info(&format!("the VM `{}` {how}", profile.name)),
                }
                Ok(ExitCode::Ok)
            }
            Command::Destroy { profile, force } => {
                let profile = load(&profile, env, ui)?;
                let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
                let mut confirm = |question: &str| {
                    interactive.then(|| {
                        dialoguer::Confirm::new().with_prompt(question).default(false).interact().unwrap_or(false)
                    })
                };
                if crate::vm::destroy(&profile, &env.state_dir, force, &mut confirm)? {
                    ui.info(&format!("destroyed the VM `{}`", profile.name));
                    Ok(ExitCode::Ok)
                } else {
                    ui.info("not destroyed");
                    Ok(ExitCode::GateRefused)
                }
            }
            Command::Ssh { profile, command } => {
                let profile = load(&profile, env, ui)?;
                let ssh = crate::vm::ssh(&profile, &env.state_dir, &command)?;
                // Only returns when ssh could not be started.
                Err(crate::vm::VmError::from(ssh.replace()).into())
            }
            Command::Status { profile, json } => {
                let profile = load(&profile, env, ui)?;
                let status = crate::vm::status(&profile, &env.state_dir)?;
                let text = if json {
                    serde_json::to_string_pretty(&status).expect("the status serialises") + "\n"
                } else {
                    status_text(&status)
                };
                ui.data(&text).map_err(Error::Stdout)?;
                Ok(ExitCode::Ok)
            }
            Command::Doctor { profile } => {
                let profile = load(&profile, env, ui)?;
                let checks = crate::vm::doctor(&profile, &env.state_dir);
                let mut text = String::new();
                for c in &checks {
                    let level = match c.level {
                        crate::vm::Level::Ok => "ok  ",
                        crate::vm::Level::Warn => "warn",
                        crate::vm::Level::Fail => "FAIL",
                    };
                    text.push_str(&format!("{level} {}: {}\n", c.what, c.detail));
                }
                ui.data(&text).map_err(Error::Stdout)?;
                let failed = checks.iter().filter(|c| c.level == crate::vm::Level::Fail).count();
                if failed == 0 {
                    Ok(ExitCode::Ok)
                } else {
                    ui.info(&format!("{failed} checks failed"));
                    Ok(ExitCode::Error)
                }
            }
            Command::Init(request) => {
                let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
                let written = crate::init::run(&request, env, interactive)?;
                if let Some(backup) = &written.backup {
                    ui.info(&format!("kept the previous profile as {}", backup.display()));
                }
                ui.info(&format!("wrote {}", written.path.display()));
                Ok(ExitCode::Ok)
            }
        }
    }
}

fn up(
    profile: &ProfileSpec,
    options: &crate::vm::UpOptions,
    verbose: bool,
    env: &Environment,
    ui: &Ui,
) -> Result<ExitCode, Error> {
    let profile = load(profile, env, ui)?;
    let mut steps = ui.steps("up", verbose);
    let secret_var = |name: &str| env.secret_var(name);
    let result = crate::vm::up(&profile, &env.state_dir, options, &secret_var, &mut |event| match event {
        crate::vm::Event::Step(name) => steps.start(name),
        crate::vm::Event::Doing(what) => steps.doing(&what),
        crate::vm::Event::Output(line) => steps.output(&line),
        crate::vm::Event::Done(how) => steps.done(&how),
    });
    steps.abandon();
    let report = result?;
    let provisioned = match &report.provisioned {
        crate::vm::Provisioned::Skipped => "nothing to provision".to_owned(),
        crate::vm::Provisioned::Ran { ok, changed, log } => {
            format!("provisioned ({ok} tasks ok, {changed} changed; log {})", log.display())
        }
    };
    ui.info(&format!("the VM `{}` is up ({}); {provisioned}", profile.name, report.vm));
    for host in &report.baselines {
        ui.info(&format!("recorded the baseline of {}", host.display()));
    }
    let checks: Vec<String> = report.health.iter().map(|(what, state)| format!("{what} {state}")).collect();
    ui.info(&format!("healthy: {}", checks.join(", ")));
    Ok(ExitCode::Ok)
}

fn reset(profile: &ProfileSpec, force: bool, env: &Environment, ui: &Ui) -> Result<ExitCode, Error> {
    let profile = load(profile, env, ui)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut confirm = |discards: &[crate::vm::Discard]| {
        let mut text = String::from("These changes in the VM were not synced and will be lost:\n");
        for d in discards.iter().filter(|d| d.entries > 0) {
            text.push_str(&format!(
                "  {}: {} entries, {}\n",
                d.host.display(),
                d.entries,
                crate::profile::ByteSize(d.bytes)
            ));
            for path in &d.first {
                text.push_str(&format!("    {}\n", crate::ui::escape_name(path)));
            }
            if d.entries > d.first.len() as u64 {
                text.push_str(&format!("    ... and {} more\n", d.entries - d.first.len() as u64));
            }
        }
        ui.info(&text);
        interactive
            .then(|| dialoguer::Confirm::new().with_prompt("Discard them?").default(false).interact().unwrap_or(false))
    };
    match crate::vm::reset(&profile, &env.state_dir, force, &mut confirm)? {
        None => {
            ui.info("nothing discarded");
            Ok(ExitCode::GateRefused)
        }
        Some(discards) => {
            let n: u64 = discards.iter().map(|d| d.entries).sum();
            ui.info(&format!("discarded {n} entries; the overlays are empty and the baselines refreshed"));
            Ok(ExitCode::Ok)
        }
    }
}

fn status_text(s: &crate::vm::VmStatus) -> String {
    let mut out = format!("VM `{}` ({}): {}\n", s.name, s.backend, s.state);
    if !s.workspaces.is_empty() {
        out.push_str("changes not synced yet:\n");
        for w in &s.workspaces {
            let what = match (w.entries, w.bytes) {
                (Some(0), _) => "none".to_owned(),
                (Some(n), Some(b)) => format!("{n} entries, {}", crate::profile::ByteSize(b)),
                _ => "no overlay upper in the VM".to_owned(),
            };
            out.push_str(&format!("  {}: {what}\n", w.host.display()));
        }
    }
    if !s.units.is_empty() {
        out.push_str("services:\n");
        for (unit, state) in &s.units {
            out.push_str(&format!("  {unit}: {}\n", crate::ui::sanitize(state)));
        }
    }
    if let Some(f) = &s.firewall {
        out.push_str(&format!("firewall: {}\n", crate::ui::sanitize(f)));
    }
    if let Some(g) = &s.gateway {
        out.push_str(&format!("gateway health: {}\n", crate::ui::sanitize(g)));
    }
    if let Some(e) = &s.egress {
        let list = |items: &[String]| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        out.push_str("egress policy:\n");
        out.push_str(&format!("  domains (through the proxy, ports 80 and 443): {}\n", list(&e.domains)));
        out.push_str(&format!("  other destinations (network.egress.allow): {}\n", list(&e.rules)));
        out.push_str(&format!("  DNS resolvers: {}\n", list(&e.resolvers)));
        if e.stale.is_empty() {
            out.push_str("  in force in the VM: yes (proxy and firewall files match the profile)\n");
        } else {
            out.push_str(&format!(
                "  in force in the VM: no, {} differ from the profile; run `sandbox up --reprovision`\n",
                e.stale.join(", ")
            ));
        }
    }
    out
}

fn sync_command(args: SyncArgs, profile: ProfileSpec, env: &Environment) -> Result<Command, Error> {
    let host = env.cwd.join(&args.to);
    if args.undo {
        return Ok(Command::Undo { profile, host });
    }
    let source = match (args.from_dir, args.from_tar) {
        (Some(dir), None) => SourceSpec::Dir(env.cwd.join(dir)),
        (None, Some(tar)) => SourceSpec::Tar {
            path: if tar.as_os_str() == "-" { tar } else { env.cwd.join(tar) },
            entries: args.entries.unwrap_or_default(),
            bytes: args.bytes.unwrap_or_default(),
        },
        (None, None) => SourceSpec::Vm,
        (Some(_), Some(_)) => return Err(Error::Usage("give one of --from-dir and --from-tar".into())),
    };
    let on_conflict = match args.on_conflict {
        ConflictArg::Refuse => crate::sync::apply::OnConflict::Refuse,
        ConflictArg::KeepHost => crate::sync::apply::OnConflict::KeepHost,
        ConflictArg::TakeVm => crate::sync::apply::OnConflict::TakeVm,
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let spec = SyncSpec { source, host, dry_run: args.dry_run, yes: args.yes, on_conflict, interactive };
    Ok(Command::Sync { profile, spec, json: args.json })
}

fn scan_request(args: ScanArgs, env: &Environment) -> Result<Command, Error> {
    let max_file_size = crate::profile::ByteSize::parse(&args.max_file_size)
        .map_err(|message| Error::Usage(format!("--max-file-size: {message}")))?
        .bytes();
    let exclude = if args.exclude.is_empty() {
        None
    } else {
        let mut builder = globset::GlobSetBuilder::new();
        for glob in &args.exclude {
            builder
                .add(globset::Glob::new(glob).map_err(|e| Error::Usage(format!("--exclude `{glob}`: {}", e.kind())))?);
        }
        Some(builder.build().map_err(|e| Error::Usage(format!("--exclude: {e}")))?)
    };
    let threads = match args.threads {
        Some(0) => return Err(Error::Usage("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths };
    let limits = crate::scan::archive::ArchiveLimits { max_member_bytes: max_file_size, ..Default::default() };
    Ok(Command::Scan(ScanRequest {
        paths,
        config: args.config.map(|c| env.cwd.join(c)),
        enable_rules: args.enable_rule,
        format: args.format,
        options: crate::scan::walk::WalkOptions {
            max_file_size,
            limits,
            ignore_files: !args.no_ignore_files,
            threads,
            exclude,
        },
    }))
}

fn scan(request: &ScanRequest, ui: &Ui) -> Result<ExitCode, Error> {
    let set = crate::scan::RuleSet::load(request.config.as_deref(), &request.enable_rules)?;
    let findings = crate::scan::walk::scan_paths(&set, &request.paths, &request.options)?;
    let out = match request.format {
        ScanFormat::Text => crate::scan::report::text(&findings, ui.stdout_color()),
        ScanFormat::Json => crate::scan::report::json(&findings),
        ScanFormat::Sarif => crate::scan::report::sarif(&findings, &set),
    };
    ui.data(&out).map_err(Error::Stdout)?;
    if findings.is_empty() {
        ui.info("no secrets found");
        Ok(ExitCode::Ok)
    } else {
        ui.info(&crate::scan::report::summary(&findings));
        Ok(ExitCode::Findings)
    }
}

fn init_request(args: InitArgs) -> InitRequest {
    InitRequest {
        name: args.name,
        force: args.force,
        non_interactive: args.non_interactive,
        workspaces: args.workspaces,
        cpus: args.cpus,
        memory: args.memory,
        disk: args.disk,
        allow_domains: args.allow_domains,
        secrets_file: args.secrets_file,
        secrets_env: args.secrets_env,
        gateway_version: args.gateway_version,
    }
}

/// Resolve a profile and print its warnings.
pub(super) fn load(spec: &ProfileSpec, env: &Environment, ui: &Ui) -> Result<Profile, Error> {
    let profile = crate::profile::resolve(spec, env)?;
    for warning in &profile.warnings {
        ui.diagnostic(warning);
    }
    Ok(profile)
}

fn render(spec: &ProfileSpec, target: RenderTarget, env: &Environment, ui: &Ui) -> Result<ExitCode, Error> {
    let profile = load(spec, env, ui)?;
    let files = crate::render::render(&profile)?;
    match target {
        RenderTarget::List => {
            let mut text = String::new();
            for file in &files {
                text.push_str(&format!("{:04o} {:>6} {}\n", file.mode, file.bytes.len(), file.rel_path.display()));
            }
            ui.data(&text).map_err(Error::Stdout)?;
            ui.info("nothing written; pass --out DIR to write these files");
            Ok(ExitCode::Ok)
        }
        RenderTarget::Out(dir) => {
            output::write(&dir, &files)?;
            ui.info(&format!("rendered {} files into {}", files.len(), dir.display()));
            Ok(ExitCode::Ok)
        }
        RenderTarget::Check(dir) => {
            let differences = output::check(&dir, &files)?;
            if differences.is_empty() {
                ui.info(&format!("{} is up to date ({} files)", dir.display(), files.len()));
                return Ok(ExitCode::Ok);
            }
            let mut text = String::new();
            for difference in &differences {
                match difference {
                    Difference::Missing(p) => text.push_str(&format!("missing: {}\n", p.display())),
                    Difference::Content { diff, .. } => text.push_str(diff),
                    Difference::Mode { path, on_disk, rendered } => {
                        text.push_str(&format!("mode: {} is {on_disk:04o}, expected {rendered:04o}\n", path.display()));
                    }
                    Difference::Stale(p) => text.push_str(&format!("stale: {} is no longer rendered\n", p.display())),
                }
            }
            ui.data(&text).map_err(Error::Stdout)?;
            ui.info(&format!(
                "{} differs from the profile in {} places; run `sandbox render --out {}` to update it",
                dir.display(),
                differences.len(),
                dir.display()
            ));
            Ok(ExitCode::Differences)
        }
    }
}

fn profile_list(env: &Environment, ui: &Ui) -> Result<ExitCode, Error> {
    let mut text = String::new();
    let dir = env.profiles_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".yaml")).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in &names {
        text.push_str(&format!("{name}\t{}\n", named_path(name, env).display()));
    }
    for (name, _) in EMBEDDED {
        if !names.iter().any(|n| n == name) {
            text.push_str(&format!("{name}\t(built in)\n"));
        }
    }
    ui.data(&text).map_err(Error::Stdout)?;
    Ok(ExitCode::Ok)
}
