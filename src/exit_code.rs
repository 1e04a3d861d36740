//! The closed set of process exit codes. README.md documents the same table; keep them in step.

/// Every way `sandbox` can end. Scripts rely on these numbers: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success, or nothing to do.
    Ok,
    /// Any error: bad profile, failed command, I/O.
    Error,
    /// Bad command-line usage (clap's own code).
    Usage,
    /// The sync gate refused the change set (policy, conflict or secret finding).
    GateRefused,
    /// `render --check` (or another check) found differences.
    Differences,
    /// `scan` found secrets.
    Findings,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted,
    /// Killed by another signal: 128 + N.
    Signal(i32),
}

impl ExitCode {
    /// The numeric code the process exits with.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Error => 1,
            ExitCode::Usage => 2,
            ExitCode::GateRefused => 3,
            ExitCode::Differences => 4,
            ExitCode::Findings => 5,
            ExitCode::Interrupted => 130,
            ExitCode::Signal(n) => 128 + n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn codes_are_distinct_and_documented() {
        let all = [
            ExitCode::Ok,
            ExitCode::Error,
            ExitCode::Usage,
            ExitCode::GateRefused,
            ExitCode::Differences,
            ExitCode::Findings,
            ExitCode::Interrupted,
        ];
        let codes: Vec<i32> = all.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 130]);
        let readme = include_str!("../README.md");
        for code in codes {
            assert!(readme.contains(&format!("| {code} |")), "README.md exit-code table lacks {code}");
        }
        assert_eq!(ExitCode::Signal(15).code(), 143);
    }
}
