//! The command line as clap sees it: parsing and help text only. `command.rs` turns it into
//! validated, clap-free values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run AI agents in a hardened VM; their changes reach your files only through a gate you control.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// Profile to use: a path to a YAML file, or a name looked up in
    /// `$XDG_CONFIG_HOME/sandbox/profiles/NAME.yaml`, then among the built-in profiles
    /// (default, minimal, strict-offline). Without it: `$SANDBOX_PROFILE`, else `default`.
    #[arg(long, short = 'p', global = true, value_name = "PATH|NAME")]
    pub(crate) profile: Option<String>,

    /// Print only errors and data, no progress or warnings.
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,

    #[command(subcommand)]
    pub(crate) command: CommandArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CommandArgs {
    /// Render every file the VM needs from the profile.
    ///
    /// Without --out or --check, lists what would be written. Output is byte-identical for the
    /// same profile. No secret value is ever rendered, only secret names.
    Render(RenderArgs),

    /// List, show or validate profiles.
    #[command(subcommand)]
    Profile(ProfileArgs),

    /// Scan files for secrets with the built-in scanner (the same one the sync gate uses).
    ///
    /// Rules are the built-in ones, or a gitleaks-format TOML file given with --config
    /// (`[extend] useDefault = true` extends the built-in rules). Binary files are scanned as
    /// bytes; zip, gzip and tar archives are opened within limits. Anything that cannot be
    /// scanned (unreadable, over the size limit, over the archive limits, not a regular file) is
    /// reported as a finding, never skipped.
    ///
    /// By default `.gitleaksignore` (fingerprints, in each scanned folder) and `gitleaks:allow`
    /// comments are honoured, since you are scanning your own files; --no-ignore-files turns
    /// both off, as the sync gate always does for files written in the sandbox. A
    /// `.gitleaks.toml` in the scanned tree is never read: pass it with --config.
    ///
    /// Exit status: 0 clean, 5 findings, 1 error.
    Scan(ScanArgs),

    /// Record the baseline of a host workspace: what the VM's read-only lower layer shows.
    ///
    /// The sync gate interprets the overlay's changes against it: a deletion in the VM deletes
    /// only what the baseline lists, and a host file that changed since is a conflict. Stored
    /// privately under `$XDG_STATE_HOME/sandbox/baselines/`; `up`, `reset` and every sync refresh it.
    Baseline(BaselineArgs),

    /// Bring the VM's changes to a host workspace through the gate.
    ///
    /// Reads the overlay upper (a directory, or a PAX tar stream with its declared entry count
    /// and byte total), interprets it against the workspace's baseline, checks path policy,
    /// conflicts with host changes and secrets (on the exact bytes to be written), shows a
    /// preview, and applies transactionally with backups. Exit 0 applied or nothing to do,
    /// 3 refused by the gate, 1 error.
    Sync(SyncArgs),

    /// Create or start the VM and provision it (ansible-playbook); record baselines; check health.
    ///
    /// Lima: creates the VM from the rendered instance, or starts it. ssh backend: reaches the
    /// host. Then waits for SSH, sends the secrets, provisions, records missing baselines and
    /// checks the mounts, the audit and the firewall.
    ///
    /// Idempotent: when nothing that provisioning reads has changed since the last complete run
    /// (a content hash kept in the state dir and in the VM), provisioning is skipped. An
    /// interrupted `up` resumes where it stopped. Ansible's full output goes to a log under
    /// `$XDG_STATE_HOME/sandbox/logs/`.
    Up(UpArgs),

    /// Discard the agent's unsynced changes in the VM, after a confirmation listing them.
    ///
    /// Starts again from the host's files: stops the services, empties each overlay's upper and
    /// work directories, remounts, restarts, and refreshes the baselines. Exit 3 if you decline.
    Reset(ResetArgs),

    /// Check the secrets the VM needs (names and where they come from; never a value).
    #[command(subcommand)]
    Secrets(SecretsArgs),

    /// Stop the profile's VM. Its disk, overlay and changes not synced yet stay.
    Down,

    /// Delete the profile's VM and its disk, after a confirmation (--force: without one).
    ///
    /// Changes the agent made that were not synced are lost. Baselines and sync history on the
    /// host stay.
    Destroy(DestroyArgs),

    /// The VM's state; when it runs: changes not synced yet (per workspace), the services,
    /// the firewall and the gateway's health.
    Status(StatusArgs),

    /// Open a shell in the VM, or run a command there: `sandbox ssh -- CMD ARGS...`.
    ///
    /// Each word of CMD ARGS reaches the VM as is (quoted for the remote shell). Lima VMs are
    /// reached through the instance's `ssh.config`; the ssh backend through `vm.ssh`, with host
    /// keys trusted on first use and remembered in `$XDG_STATE_HOME/sandbox/known_hosts`.
    Ssh(SshArgs),

    /// Check that the tools sandbox drives are installed and usable, and that nothing outside
    /// the profile (Lima's global config) would change the VM. Exit 0 when every check passes,
    /// 1 when one fails.
    Doctor,

    /// Create a profile with an interactive wizard.
    ///
    /// Writes `$XDG_CONFIG_HOME/sandbox/profiles/NAME.yaml`. Never overwrites without --force,
    /// and keeps a backup when it does. Without a terminal, pass --non-interactive and flags.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Write the files into DIR (created if needed); files from a previous render that are no
    /// longer produced are removed.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub(crate) out: Option<PathBuf>,

    /// Compare DIR with a fresh render; print a diff and exit 4 when they differ.
    #[arg(long, value_name = "DIR")]
    pub(crate) check: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The overlay upper directory (read as root). Without --from-dir or --from-tar, the
    /// changes are read from the profile's VM over SSH.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["from_tar", "undo"])]
    pub(crate) from_dir: Option<PathBuf>,

    /// The upper as a PAX tar stream (`-` for stdin); needs --entries and --bytes.
    #[arg(long, value_name = "FILE|-", requires_all = ["entries", "bytes"], conflicts_with = "undo")]
    pub(crate) from_tar: Option<PathBuf>,

    /// Entries the VM counted in the stream (everything under the upper but its root).
    #[arg(long, value_name = "N")]
    pub(crate) entries: Option<u64>,

    /// Bytes of regular-file content the VM counted in the stream.
    #[arg(long, value_name = "N")]
    pub(crate) bytes: Option<u64>,

    /// The host workspace to update.
    #[arg(long, value_name = "HOST_DIR")]
    pub(crate) to: PathBuf,

    /// Show the preview and stop.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Apply without asking. Still refuses on any refusal, conflict or finding, and never
    /// applies review-tier paths (they need a person).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,

    /// Print the plan and the checks as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,

    /// What to do with a path changed both on the host (since the baseline) and in the VM.
    #[arg(long, value_enum, default_value_t = ConflictArg::Refuse)]
    pub(crate) on_conflict: ConflictArg,

    /// Restore the last applied sync from its backups (refuses if a file changed since).
    #[arg(long)]
    pub(crate) undo: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ConflictArg {
    Refuse,
    KeepHost,
    TakeVm,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print it as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SshArgs {
    /// The command to run in the VM (after `--`); none: an interactive shell.
    #[arg(last = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Run provisioning even if nothing changed since the last complete run.
    #[arg(long)]
    pub(crate) reprovision: bool,

    /// Show Ansible's output as it runs (it always goes to the log).
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,

    /// How long to wait for the VM's SSH, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) ssh_timeout: u64,

    /// How long to wait for the gateway to answer its health check, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) gateway_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsArgs {
    /// List the required secret names as present or missing. Exit 0 when all are present, 1
    /// when one is missing.
    Check,
}

#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    /// Do not ask for a confirmation.
    #[arg(long, short = 'f')]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Do not ask for a confirmation.
    #[arg(long, short = 'f')]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BaselineArgs {
    /// The host workspace folder.
    #[arg(value_name = "HOST_DIR")]
    pub(crate) dir: PathBuf,

    /// Hashing threads (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files or folders to scan (default: the current folder).
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,

    /// Rules in gitleaks' TOML format instead of the built-in rules.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = ScanFormat::Text)]
    pub(crate) format: ScanFormat,

    /// Ignore `.gitleaksignore` files and `gitleaks:allow` comments.
    #[arg(long)]
    pub(crate) no_ignore_files: bool,

    /// Scan threads (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// Files larger than this are reported as not scanned, e.g. 100MiB.
    #[arg(long, value_name = "SIZE", default_value = "100MiB")]
    pub(crate) max_file_size: String,

    /// Run only this rule (by id). Repeatable.
    #[arg(long, value_name = "ID")]
    pub(crate) enable_rule: Vec<String>,

    /// Do not scan paths matching this glob (relative to the scanned folder). Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScanFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileArgs {
    /// List profiles: built-in ones and those in the profiles directory.
    List,
    /// Print the fully resolved profile (after `extends` and defaults).
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Yaml)]
        format: ShowFormat,
    },
    /// Check the profile and print every problem found.
    Validate,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ShowFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Profile name (also the VM name).
    #[arg(long)]
    pub(crate) name: Option<String>,

    /// Replace an existing profile (the old file is kept as NAME.yaml.bak.N).
    #[arg(long)]
    pub(crate) force: bool,

    /// Do not ask; take every answer from the flags below or their defaults.
    #[arg(long)]
    pub(crate) non_interactive: bool,

    /// A host folder to mount, optionally with its path in the VM: `HOST[:GUEST]`. Repeatable.
    #[arg(long = "workspace", value_name = "HOST[:GUEST]")]
    pub(crate) workspaces: Vec<String>,

    /// Virtual CPUs.
    #[arg(long)]
    pub(crate) cpus: Option<u32>,

    /// Memory, e.g. 8GiB.
    #[arg(long)]
    pub(crate) memory: Option<String>,

    /// Disk size, e.g. 50GiB.
    #[arg(long)]
    pub(crate) disk: Option<String>,

    /// A domain the VM may reach (`example.com` or `*.example.com`). Repeatable.
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub(crate) allow_domains: Vec<String>,

    /// A dotenv file holding secrets (kept on the host, never mounted).
    #[arg(long, value_name = "PATH")]
    pub(crate) secrets_file: Option<PathBuf>,

    /// An environment variable to pass as a secret. Repeatable.
    #[arg(long = "secrets-env", value_name = "NAME")]
    pub(crate) secrets_env: Vec<String>,

    /// OpenClaw gateway version to pin.
    #[arg(long)]
    pub(crate) gateway_version: Option<String>,
}
