//! The only place that prints. stdout carries data (rendered files, diffs, JSON, YAML); stderr
//! carries messages. Untrusted text (paths from a workspace, profile values) is escaped before it
//! reaches a terminal so control characters and bidi overrides cannot rewrite the screen.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use crate::profile::diagnostic::{Diagnostic, Severity};

/// How chatty and how colourful output is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    pub(crate) quiet: bool,
    color: bool,
}

impl Ui {
    pub(crate) fn new(quiet: bool) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ui { quiet, color }
    }

    /// Whether data written to stdout may carry colour.
    pub(crate) fn stdout_color(&self) -> bool {
        std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    }

    /// Write data to stdout. A closed pipe (`sandbox ... | head`) is not an error.
    pub(crate) fn data(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// A progress or status message on stderr, suppressed by `--quiet`.
    pub(crate) fn info(&self, text: &str) {
        if !self.quiet {
            eprintln!("{}", sanitize(text));
        }
    }

    pub(crate) fn diagnostic(&self, d: &Diagnostic) {
        let text = sanitize(&d.to_string());
        if d.severity == Severity::Warning && self.quiet {
            return;
        }
        eprintln!("{}", self.paint_level(&text));
    }

    /// Print an error and its source chain: `error: ...` then `  caused by: ...`.
    pub(crate) fn error(&self, err: &dyn std::error::Error) {
        let text = sanitize(&err.to_string());
        let text = if text.starts_with("error: ") { text } else { format!("error: {text}") };
        eprintln!("{}", self.paint_level(&text));
        let mut source = err.source();
        while let Some(s) = source {
            eprintln!("  caused by: {}", sanitize(&s.to_string()));
            source = s.source();
        }
    }

    fn paint_level(&self, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        text.replace("error:", "\x1b[1;31merror\x1b[0m:").replace("warning:", "\x1b[1;33mwarning\x1b[0m:")
    }
}

/// A prompt was interrupted (Ctrl-C): the cursor is shown again and nothing was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interrupted;

/// Run one dialoguer prompt on stderr. Ctrl-C in a prompt makes `console` raise SIGINT, which
/// would end the process with the cursor still hidden; while the prompt runs, SIGINT only sets a
/// flag, and the interruption comes back as [`Interrupted`] with the cursor shown.
fn prompt<T>(ask: impl FnOnce() -> dialoguer::Result<T>) -> Result<T, Interrupted> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let id = signal_hook::flag::register(signal_hook::consts::SIGINT, std::sync::Arc::clone(&flag)).ok();
    let answer = ask();
    if let Some(id) = id {
        signal_hook::low_level::unregister(id);
    }
    match answer {
        Ok(value) if !flag.load(std::sync::atomic::Ordering::SeqCst) => Ok(value),
        _ => {
            let _ = dialoguer::console::Term::stderr().show_cursor();
            Err(Interrupted)
        }
    }
}

/// Pick one of `items` (untrusted text is escaped by the caller).
pub(crate) fn select(prompt_text: &str, items: &[String], default: usize) -> Result<usize, Interrupted> {
    prompt(|| dialoguer::Select::new().with_prompt(prompt_text).items(items).default(default).interact())
}

/// Yes or no, `default` on Enter.
pub(crate) fn confirm(prompt_text: &str, default: bool) -> Result<bool, Interrupted> {
    prompt(|| dialoguer::Confirm::new().with_prompt(prompt_text).default(default).interact())
}

/// Check some of `items` (all checked at first); dialoguer's own echo of the choice is off, the
/// caller says what the choice means.
pub(crate) fn checklist(prompt_text: &str, items: &[String]) -> Result<Vec<usize>, Interrupted> {
    prompt(|| {
        dialoguer::MultiSelect::new()
            .with_prompt(prompt_text)
            .items(items)
            .defaults(&vec![true; items.len()])
            .report(false)
            .interact()
    })
}

/// Progress of a multi-step command (`up`): on a terminal, a spinner with the step, what it is
/// doing now (an Ansible task) and the elapsed time; otherwise one line per step. `--quiet`
/// shows nothing; `--verbose` also shows each line of a step's output.
pub(crate) struct Steps {
    command: &'static str,
    quiet: bool,
    verbose: bool,
    terminal: bool,
    step: Option<(&'static str, std::time::Instant, Option<indicatif::ProgressBar>)>,
}

impl Ui {
    pub(crate) fn steps(&self, command: &'static str, verbose: bool) -> Steps {
        Steps { command, quiet: self.quiet, verbose, terminal: std::io::stderr().is_terminal(), step: None }
    }
}

impl Steps {
    pub(crate) fn start(&mut self, name: &'static str) {
        self.abandon();
        let bar = (!self.quiet && self.terminal).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} [{elapsed}]")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(format!("{}: {name}", self.command));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        if !self.quiet && !self.terminal {
            eprintln!("{}: {name}...", self.command);
        }
        self.step = Some((name, std::time::Instant::now(), bar));
    }

    pub(crate) fn doing(&mut self, what: &str) {
        if let Some((_, _, Some(bar))) = &self.step {
            bar.set_message(sanitize(what));
        }
    }

    pub(crate) fn output(&mut self, line: &str) {
        if !self.verbose || self.quiet {
            return;
        }
        match &self.step {
            Some((_, _, Some(bar))) => bar.println(sanitize(line)),
            _ => eprintln!("{}", sanitize(line)),
        }
    }

    pub(crate) fn done(&mut self, how: &str) {
        if let Some((name, started, bar)) = self.step.take() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !self.quiet {
                eprintln!("{}: {name}: {} ({:.1} s)", self.command, sanitize(how), started.elapsed().as_secs_f64());
            }
        }
    }

    /// End the current step without a result (an error follows).
    pub(crate) fn abandon(&mut self) {
        if let Some((_, _, Some(bar))) = self.step.take() {
            bar.finish_and_clear();
        }
    }
}

/// `text` in ANSI colour `code` when `color` (a terminal that wants colour), else as is.
pub(crate) fn paint(color: bool, code: &str, text: &str) -> String {
    if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

/// Escape control characters (except newline and tab) and Unicode bidi/format characters.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let dangerous = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if dangerous {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A name (path, file name) on one line: every control character, newlines and tabs included,
/// and every bidi or invisible formatting character is escaped, so a crafted name cannot forge
/// lines of a preview.
pub(crate) fn escape_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_name, sanitize};

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(escape_name("a\n  delete  b"), "a\\u{a}  delete  b");
    }

    #[test]
    fn escapes_terminal_tricks() {
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(sanitize("line\nnext\tok"), "line\nnext\tok");
    }
}
