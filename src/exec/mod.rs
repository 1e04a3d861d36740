//! The only place that spawns processes (duct). Every external tool the product drives goes
//! through an [`Invocation`]: a missing tool is an error with an install hint, a failing one an error with
//! the command, its exit status and the tail of its stderr.
//!
//! Never put a secret in `args` or `env`: argv is world-readable in `/proc`, and the command is
//! printed in errors. Secrets go on stdin.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// Lines of stderr kept in an error.
const STDERR_TAIL_LINES: usize = 12;

/// An external tool: its program name and how to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tool {
    pub(crate) program: &'static str,
    pub(crate) install: &'static str,
}

pub(crate) const LIMACTL: Tool = Tool { program: "limactl", install: "install Lima: `brew install lima` (macOS)" };
pub(crate) const ANSIBLE_PLAYBOOK: Tool = Tool {
    program: "ansible-playbook",
    install: "install Ansible: `brew install ansible`, `pipx install ansible-core` or `apt-get install ansible-core`",
};
pub(crate) const GIT: Tool =
    Tool { program: "git", install: "install git (`apt-get install git`; on macOS, `xcode-select --install`)" };
pub(crate) const SSH: Tool =
    Tool { program: "ssh", install: "install OpenSSH's client (`apt-get install openssh-client`); macOS ships it" };

/// One command to run.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    tool: Tool,
    /// The program to run instead of looking `tool` up on PATH.
    program: Option<PathBuf>,
    args: Vec<OsString>,
    /// How some arguments show in messages, by index (see [`Invocation::arg_shown`]).
    shown: Vec<(usize, String)>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    /// The working directory, if not ours.
    dir: Option<PathBuf>,
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) status: Option<i32>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl Output {
    pub(crate) fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecError {
    #[error("`{program}` is not installed (not found on PATH)\n  help: {install}")]
    NotFound { program: &'static str, install: &'static str },

    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },

    #[error("reading the output of `{command}` failed: {source}")]
    Read { command: String, source: std::io::Error },

    #[error("`{command}` failed ({})\n{}", status.map_or("killed by a signal".to_owned(), |c| format!("exit status {c}")), indent(stderr_tail))]
    Failed { command: String, status: Option<i32>, stderr_tail: String },
}

fn indent(text: &str) -> String {
    if text.trim().is_empty() {
        return "  (it printed nothing on stderr)".to_owned();
    }
    text.lines().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

impl Invocation {
    pub(crate) fn new(tool: Tool) -> Self {
        Invocation { tool, program: None, args: Vec::new(), shown: Vec::new(), env: Vec::new(), stdin: None, dir: None }
    }

    /// Run this program for the tool (a path), instead of the one on PATH.
    pub(crate) fn program(mut self, program: Option<&std::path::Path>) -> Self {
        self.program = program.map(std::path::Path::to_path_buf);
        self
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// An argument that messages show as `shown`: an encoded one as what it encodes.
    pub(crate) fn arg_shown(mut self, arg: impl AsRef<OsStr>, shown: &str) -> Self {
        self.shown.push((self.args.len(), shown.to_owned()));
        self.arg(arg)
    }

    /// Run in `dir` instead of the current directory.
    pub(crate) fn dir(mut self, dir: &std::path::Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub(crate) fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// What to execute: the override, else the tool's name (looked up on PATH).
    fn executable(&self) -> &OsStr {
        self.program.as_deref().map_or(OsStr::new(self.tool.program), std::path::Path::as_os_str)
    }

    /// The command as a person would type it (for messages and logs).
    /// A script passed as an argument shows as its first line: the message is about the
    /// command, and the script is in the source.
    pub(crate) fn display(&self) -> String {
        let word = |(i, a): (usize, &OsString)| {
            let text = match self.shown.iter().find(|(at, _)| *at == i) {
                Some((_, shown)) => std::borrow::Cow::Borrowed(shown.as_str()),
                None => a.to_string_lossy(),
            };
            match text.split_once('\n') {
                Some((first, _)) => format!("{}…", shell_word(first)),
                None => shell_word(&text),
            }
        };
        std::iter::once(self.tool.program.to_owned())
            .chain(self.args.iter().enumerate().map(word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command with its environment, exit status not checked (callers judge it).
    fn expression(&self) -> duct::Expression {
        let mut expr = duct::cmd(self.executable(), &self.args).unchecked();
        for (k, v) in &self.env {
            expr = expr.env(k, v);
        }
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        expr
    }

    /// Why the command could not be started: a missing program gets its install hint.
    fn start_error(&self, source: std::io::Error) -> ExecError {
        if source.kind() == std::io::ErrorKind::NotFound {
            ExecError::NotFound { program: self.tool.program, install: self.tool.install }
        } else {
            ExecError::Spawn { command: self.display(), source }
        }
    }

    /// Run to completion, capturing stdout and stderr. A non-zero exit is not an error here
    /// (see [`Invocation::checked`]).
    pub(crate) fn output(&self) -> Result<Output, ExecError> {
        let expr = self.expression().stdout_capture().stderr_capture();
        let expr = match &self.stdin {
            Some(bytes) => expr.stdin_bytes(bytes.clone()),
            None => expr.stdin_null(),
        };
        let out = expr.run().map_err(|e| self.start_error(e))?;
        Ok(Output { status: out.status.code(), stdout: out.stdout, stderr: out.stderr })
    }

    /// Replace this process with the command, its stdin, stdout and stderr the terminal's (for
    /// `sandbox ssh`). Returns only if it could not be started.
    pub(crate) fn replace(&self) -> ExecError {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(self.executable());
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        self.start_error(cmd.exec())
    }

    /// Start the command and read its stdout as it comes (stderr is kept for errors). Reading
    /// to the end fails, with the command and its stderr tail, if the command failed.
    pub(crate) fn reader(&self) -> Result<Reader, ExecError> {
        let handle = self.expression().stderr_capture().stdin_null().reader().map_err(|e| self.start_error(e))?;
        Ok(Reader { handle, command: self.display() })
    }

    /// Start the command with stderr merged into stdout, to be read line by line as it runs
    /// (Ansible's progress, warnings and failures arrive on both). The caller judges the exit
    /// status: [`Lines::finish`].
    pub(crate) fn lines(&self) -> Result<Lines, ExecError> {
        let handle = self.expression().stderr_to_stdout().stdin_null().reader().map_err(|e| self.start_error(e))?;
        Ok(Lines { reader: std::io::BufReader::new(handle), command: self.display() })
    }

    /// Run to completion; a non-zero exit is [`ExecError::Failed`] with the tail of stderr.
    pub(crate) fn checked(&self) -> Result<Output, ExecError> {
        let out = self.output()?;
        if out.success() {
            return Ok(out);
        }
        Err(ExecError::Failed { command: self.display(), status: out.status, stderr_tail: tail(&out.stderr) })
    }
}

/// A running command's stdout (see [`Invocation::reader`]). Dropping it kills the command.
pub(crate) struct Reader {
    handle: duct::ReaderHandle,
    command: String,
}

impl std::io::Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.handle.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // The end of its output: the command has finished; say so if it failed.
            if let Some(out) = self.handle.try_wait()?
                && !out.status.success()
            {
                let err = ExecError::Failed {
                    command: self.command.clone(),
                    status: out.status.code(),
                    stderr_tail: tail(&out.stderr),
                };
                return Err(std::io::Error::other(err.to_string()));
            }
        }
        Ok(n)
    }
}

/// A running command's merged output, line by line (see [`Invocation::lines`]). Dropping it
/// kills the command.
pub(crate) struct Lines {
    reader: std::io::BufReader<duct::ReaderHandle>,
    command: String,
}

impl Lines {
    /// The next line (without its newline; invalid UTF-8 replaced), `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<String>, ExecError> {
        use std::io::BufRead;
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => Ok(None),
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            Err(source) => Err(ExecError::Read { command: self.command.clone(), source }),
        }
    }

    /// Wait for the command; its exit code (`None`: killed by a signal).
    pub(crate) fn finish(self) -> Result<Option<i32>, ExecError> {
        let command = self.command;
        match self.reader.into_inner().try_wait() {
            Ok(Some(out)) => Ok(out.status.code()),
            Ok(None) => Err(ExecError::Read {
                command,
                source: std::io::Error::other("still running at the end of its output"),
            }),
            Err(source) => Err(ExecError::Read { command, source }),
        }
    }

    /// The command, as a person would type it.
    pub(crate) fn command(&self) -> &str {
        &self.command
    }
}

/// The last lines of `stderr`, control characters made visible.
pub(crate) fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..].iter().map(|l| crate::ui::sanitize(l)).collect::<Vec<_>>().join("\n")
}

/// `word` quoted for a POSIX shell (unchanged when it needs no quoting). A leading `=` or `%`
/// is quoted too: zsh expands `=cmd` to a path, and older fish `%` to process IDs.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && !word.starts_with(['=', '%'])
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Where `tool` is on PATH, if anywhere.
pub(crate) fn which(tool: Tool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(tool.program)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tool = Tool { program: "sh", install: "it is part of every system" };

    #[test]
    fn failures_carry_the_command_status_and_stderr_tail() {
        let err = Invocation::new(SH)
            .args(["-c", "for i in $(seq 1 30); do echo line $i >&2; done; exit 3", "it's"])
            .checked()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`sh -c 'for i in"), "{text}");
        assert!(text.contains("exit status 3") && text.contains("line 30") && !text.contains("line 18\n"), "{text}");
        assert!(text.contains("'it'\\''s'"), "{text}");
    }

    #[test]
    fn a_script_argument_shows_as_its_first_line() {
        let inv = Invocation::new(SH).args(["-c", "set -eu\nexit 4\n", "x y"]);
        assert_eq!(inv.display(), "sh -c 'set -eu'… 'x y'");
    }

    #[test]
    fn stdin_and_env_reach_the_child() {
        let out = Invocation::new(SH).args(["-c", "cat; printf %s \"$X\""]).env("X", "y").stdin(b"in\n".to_vec());
        assert_eq!(out.checked().unwrap().stdout_text(), "in\ny");
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let missing = Tool { program: "sandbox-no-such-tool", install: "do the thing" };
        let err = Invocation::new(missing).output().unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }));
        assert!(err.to_string().contains("help: do the thing"));
        assert!(which(missing).is_none() && which(SH).is_some());
    }
}
