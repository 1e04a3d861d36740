//! `up`'s last wait: the gateway answering its health endpoint through the VM's loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{GATEWAY_UNIT, VmError, WAIT_SSH_OPTIONS as SSH_OPTIONS, as_root, ssh_with};
use crate::profile::Profile;

/// Restarts within one wait that make it a crash loop. Not fewer: OpenClaw gives a starting
/// worker five seconds, which a loaded or emulated VM can miss several times and then make (CI
/// under TCG saw three misses in a row); the wait's timeout still bounds a real crash loop.
const CRASH_LOOP: u64 = 5;

/// Between two probes. Each probe is an SSH login, `sudo` and `systemctl` in the VM: in a slow
/// VM, probing every few seconds took CPU the starting gateway's workers needed to make
/// OpenClaw's five-second heartbeat.
const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Prints, as root in the VM, the gateway unit's state and restart count and whether its health
/// endpoint answers. Arguments: the unit, the port, then `--start` (start a unit that is enabled
/// but not running: it may have failed before its secrets were fixed) or `--journal` (also print
/// the unit's last log lines after a `journal` line).
const GATEWAY_PROBE: &str = r#"set -u
unit=$1 port=$2 what=${3:-}
if [ "$what" = --start ] && systemctl is-enabled -q "$unit" 2>/dev/null; then
  case "$(systemctl is-active "$unit" 2>/dev/null)" in
    failed|inactive) systemctl reset-failed "$unit" 2>/dev/null; systemctl start --no-block "$unit" ;;
  esac
fi
echo "state $(systemctl is-active "$unit" 2>/dev/null || true)"
echo "restarts $(systemctl show -p NRestarts --value "$unit" 2>/dev/null || echo 0)"
if curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then echo "health ok"; else echo "health down"; fi
if [ "$what" = --journal ]; then
  echo "journal"
  journalctl -u "$unit" -n 15 --no-pager -o cat 2>/dev/null || true
fi
"#;

/// Waits until the gateway answers its health endpoint. A unit that failed (OpenClaw's
/// configuration errors stop the restarts) or keeps restarting ends the wait at once, with the
/// unit's journal tail, secrets redacted. An SSH round trip that fails is retried until the time
/// is up. `interrupted` is checked after each round trip.
pub(super) fn wait(
    profile: &Profile,
    state_dir: &Path,
    timeout: Duration,
    interrupted: &dyn Fn() -> Result<(), VmError>,
    secrets: &crate::secrets::SecretSet,
) -> Result<Duration, VmError> {
    let started = Instant::now();
    let args = |what: &str| {
        let mut args = vec![GATEWAY_UNIT.to_owned(), profile.gateway.port.to_string()];
        args.extend((!what.is_empty()).then(|| what.to_owned()));
        as_root(GATEWAY_PROBE, args)
    };
    let mut first_restarts = None;
    let mut what = "--start";
    loop {
        let inv = ssh_with(profile, state_dir, &SSH_OPTIONS, &args(what))?;
        let out = inv.output()?;
        interrupted()?;
        let probe = if out.success() {
            Some(Probe::parse(&out.stdout_text()))
        } else if started.elapsed() < timeout {
            None
        } else {
            let stderr_tail = crate::exec::tail(&out.stderr);
            return Err(
                crate::exec::ExecError::Failed { command: inv.display(), status: out.status, stderr_tail }.into()
            );
        };
        what = "";
        if let Some(probe) = probe {
            if probe.healthy {
                return Ok(started.elapsed());
            }
            let base = *first_restarts.get_or_insert(probe.restarts);
            if let Some(problem) = probe.problem(base, started.elapsed(), timeout, profile.gateway.port) {
                let journal = ssh_with(profile, state_dir, &SSH_OPTIONS, &args("--journal"))?
                    .output()
                    .map(|o| journal_tail(&o.stdout_text(), secrets))
                    .unwrap_or_default();
                let help = if probe.stopped() {
                    "fix what the log names (often the profile or a secret) and run `sandbox up` again".to_owned()
                } else {
                    format!(
                        "a slow VM may need a longer wait (--gateway-timeout, now {} s); otherwise fix what the log names and run `sandbox up` again",
                        timeout.as_secs()
                    )
                };
                return Err(VmError::GatewayUnhealthy { problem, journal, help });
            }
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}

/// One answer of `GATEWAY_PROBE`.
#[derive(Debug, PartialEq, Eq)]
struct Probe {
    state: String,
    restarts: u64,
    healthy: bool,
}

impl Probe {
    fn parse(text: &str) -> Self {
        let field = |key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' '))).unwrap_or("").trim()
        };
        Probe {
            state: field("state").to_owned(),
            restarts: field("restarts").parse().unwrap_or(0),
            healthy: field("health") == "ok",
        }
    }

    /// Failed or stopped: OpenClaw's configuration errors end its restarts.
    fn stopped(&self) -> bool {
        self.state == "failed" || self.state == "inactive"
    }

    /// Why waiting longer is pointless, if it is: the unit failed or stopped, restarted
    /// `CRASH_LOOP` times since the wait began, or the time is up. `base`: the restart count when
    /// the wait began.
    fn problem(&self, base: u64, waited: Duration, timeout: Duration, port: u16) -> Option<String> {
        if self.stopped() {
            Some(format!("the gateway service is {}", self.state))
        } else if self.restarts >= base + CRASH_LOOP {
            Some(format!("the gateway service keeps restarting ({} restarts while waiting)", self.restarts - base))
        } else if waited >= timeout {
            Some(format!(
                "the gateway did not answer http://127.0.0.1:{port}/healthz in the VM within {} s (service {})",
                timeout.as_secs(),
                self.state
            ))
        } else {
            None
        }
    }
}

/// The journal lines after the probe's `journal` marker, fit for a terminal: colour codes
/// removed, secret values redacted, other control characters escaped.
fn journal_tail(probe_output: &str, secrets: &crate::secrets::SecretSet) -> String {
    static ANSI: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").expect("valid regex"));
    let journal = probe_output.split_once("journal\n").map_or("", |(_, j)| j);
    crate::ui::sanitize(&secrets.redact(&ANSI.replace_all(journal, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_decides_when_waiting_is_pointless() {
        let probe = Probe::parse("state activating\nrestarts 5\nhealth down\n");
        assert_eq!(probe, Probe { state: "activating".into(), restarts: 5, healthy: false });
        let (sec, min) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(probe.problem(5, sec, min, 18789), None);
        assert_eq!(probe.problem(1, sec, min, 18789), None);
        assert!(probe.problem(0, sec, min, 18789).is_some_and(|p| p.contains("keeps restarting (5 restarts")));
        assert!(probe.problem(5, min, min, 18789).is_some_and(|p| p.contains("127.0.0.1:18789/healthz")));
        let failed = Probe::parse("state failed\nrestarts 0\nhealth down\n");
        assert_eq!(failed.problem(0, sec, min, 1).as_deref(), Some("the gateway service is failed"));
        assert!(Probe::parse("state active\nrestarts 0\nhealth ok\n").healthy);
    }

    #[test]
    fn journal_tail_drops_colours_and_redacts() {
        let secrets = crate::secrets::tests::set(&[("OPENCLAW_GATEWAY_TOKEN", "tok-123456")]);
        let out = "state failed\njournal\n\u{1b}[36m[gateway]\u{1b}[39m bad token tok-123456\u{7}\n";
        assert_eq!(journal_tail(out, &secrets), "[gateway] bad token [OPENCLAW_GATEWAY_TOKEN redacted]\\u{7}\n");
    }

    #[test]
    fn the_error_shows_the_journal_and_the_help() {
        let e = VmError::GatewayUnhealthy {
            problem: "the gateway service is failed".into(),
            journal: "Missing config\nexit 78\n".into(),
            help: "fix it".into(),
        };
        assert_eq!(
            e.to_string(),
            "the gateway service is failed\n  the gateway's last log lines:\n    Missing config\n    exit 78\n  help: fix it; `sandbox ssh -- sudo journalctl -u openclaw-gateway.service` shows more"
        );
        let e = VmError::GatewayUnhealthy { problem: "p".into(), journal: " \n".into(), help: "h".into() };
        assert_eq!(
            e.to_string(),
            "p\n  help: h; `sandbox ssh -- sudo journalctl -u openclaw-gateway.service` shows more"
        );
    }
}
