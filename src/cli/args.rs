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
