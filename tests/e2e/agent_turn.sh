#!/usr/bin/env bash
# tests/e2e/agent_turn.sh HOST_WORKSPACE: one real agent turn on a VM `sandbox up` provisioned
# (run by run.sh after the red-team test, which maps `allowed.test` to the host address in the
# VM's /etc/hosts; also on its own against such a VM).
#
# The model is scripted_model.py on this machine's port 80, which the VM reaches as allowed.test
# through its egress proxy, like any model API. It asks for one `exec` call. The turn runs
# OpenClaw's own embedded runner (`openclaw agent --local`) as the gateway runs: the service
# user, the unit's environment and secrets file, its hardening (no new privileges, no
# namespaces, no capabilities) and the Podman socket where the unit has it. Only the config
# differs: a copy of the VM's openclaw.json that adds the model. The state is its own, not the
# running gateway's. The tool must run in a rootless Podman container with the profile's limits,
# no network, no capabilities and a read-only root, as the service user on the VM, and its write
# to /workspace must land in the overlay's upper, not in HOST_WORKSPACE, whose a.txt it reads
# (through the overlay, with nothing of its in the upper).
#
# Status: run by run.sh only with E2E_AGENT_TURN=1, not in CI (about 200 s more under TCG, and
# CI is over its budget already). With OpenClaw 2026.8.2 its turn passed under TCG on
# 2026-11-27 in both runs made (about 200 s each). An earlier run in the dev VM saw the CLI exit
# 1 without a message after the tool had run.
#
# Needs root on this machine (the model binds port 80 on 127.0.0.1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm=$here/vm.sh
: "${E2E_DIR:=/tmp/sandbox-e2e}"
export E2E_DIR
host_ws=${1:?usage: agent_turn.sh HOST_WORKSPACE}
fail() { echo "e2e: FAILED: agent turn: $*" >&2; exit 1; }
: "${E2E_T0:=$(date +%s)}"
step() { echo "== e2e [$(($(date +%s) - E2E_T0)) s]: agent turn: $*"; }
in_vm() { bash "$vm" ssh -- "$@"; }

work=$(mktemp -d)
model_pid=
cleanup() { [[ -z $model_pid ]] || kill "$model_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

uid=$(in_vm 'id -u openclaw')
sock=/run/user/$uid/podman/podman.sock
podman_vm() { in_vm "sudo podman --url unix://$sock $*"; }
in_vm 'grep -q allowed.test /etc/hosts' || fail "the VM does not resolve allowed.test (run the red-team test first)"

upper_list() { in_vm 'sudo find /var/lib/sandbox/overlay/workspace/upper -mindepth 1 | sort'; }
upper_before=$(upper_list)

step "start the scripted model on 127.0.0.1:80"
# Each line of the tool's output is checked below, in this order.
command='id -u; cat /workspace/a.txt; cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max; grep CapEff /proc/self/status; ls /sys/class/net; touch /probe 2>&1 || true; echo written by the agent > /workspace/from-agent.txt'
: >"$work/model.log"
python3 "$here/scripted_model.py" 80 "$command" "$work/model.log" >"$work/model.out" 2>&1 &
model_pid=$!
for _ in $(seq 50); do grep -q ready "$work/model.out" && break; sleep 0.1; done
grep -q ready "$work/model.out" || fail "the scripted model did not start: $(cat "$work/model.out")"

step "run the turn as the gateway's user, with its unit's environment and hardening"
turn=/var/lib/openclaw/e2e-turn
in_vm "sudo rm -rf $turn && sudo install -d -o openclaw -g openclaw -m 0700 $turn $turn/state"
in_vm "sudo python3 - $turn/openclaw.json" <<'PY'
import json, pwd, os, sys
config = json.load(open("/etc/openclaw/openclaw.json"))
config["models"] = {"mode": "merge", "providers": {"scripted": {
    "baseUrl": "http://allowed.test/v1", "apiKey": "none", "api": "openai-completions",
    "models": [{"id": "scripted", "name": "Scripted", "reasoning": False, "input": ["text"],
                "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                "contextWindow": 100000, "maxTokens": 1000}]}}}
config["agents"]["defaults"]["model"] = {"primary": "scripted/scripted"}
with open(sys.argv[1], "w") as f:
    json.dump(config, f)
os.chown(sys.argv[1], pwd.getpwnam("openclaw").pw_uid, 0)
PY
# The unit's environment, but this config and state.
env_args=$(in_vm 'systemctl show -p Environment --value openclaw-gateway.service' | tr ' ' '\n' |
  grep -v -e '^OPENCLAW_CONFIG_PATH=' -e '^OPENCLAW_STATE_DIR=' -e '^$' | sed 's/^/--setenv=/' | tr '\n' ' ')
[[ $env_args == *CONTAINER_HOST=unix:///run/openclaw-podman.sock* ]] || fail "the gateway's unit does not name the Podman socket: $env_args"
rw=$(in_vm 'systemctl show -p ReadWritePaths --value openclaw-gateway.service')
set +e
in_vm "sudo systemd-run --wait --pipe --quiet --uid=openclaw --gid=openclaw -p EnvironmentFile=/etc/openclaw/secrets.env \
  $env_args --setenv=OPENCLAW_CONFIG_PATH=$turn/openclaw.json --setenv=OPENCLAW_STATE_DIR=$turn/state \
  -p NoNewPrivileges=yes -p RestrictNamespaces=yes -p ProtectSystem=strict -p ProtectHome=yes -p PrivateTmp=yes -p PrivateDevices=yes \
  -p CapabilityBoundingSet= -p 'ReadWritePaths=$rw' -p WorkingDirectory=/workspace \
  -p BindReadOnlyPaths=$sock:/run/openclaw-podman.sock \
  --setenv=OPENCLAW_DEBUG=1 /opt/openclaw/node/bin/node /opt/openclaw/app/node_modules/openclaw/openclaw.mjs agent --local --agent main \
  --message 'run the scripted command' --json" >"$work/turn.json" 2>"$work/turn.err"
code=$?
set -e
[ "$code" = 0 ] || { tail -n 40 "$work/turn.err"; fail "openclaw agent failed (exit $code)"; }

step "the tool ran in a rootless Podman container, with the profile's limits"
python3 - "$work/turn.json" "$work/model.log" "$uid" "$(head -n 1 "$host_ws/a.txt")" <<'PY' || { tail -n 40 "$work/turn.err"; fail "the tool did not run as it must"; }
import json, sys
out, log, uid, a_txt = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
def find(node, key):
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            hit = find(item, key)
            if hit is not None:
                return hit
    return None
summary = find(json.loads(out[out.index("{"):]), "toolSummary")
assert summary == {"calls": 1, "tools": ["exec"], "failures": 0}, summary
requests = [json.loads(line) for line in open(log)]
assert len(requests) == 2 and "exec" in requests[0]["tools"], requests
lines = requests[1]["tool_results"][0].splitlines()
print("   the tool printed:", lines)
# Its user is the service user (Podman's keep-id); the profile's pids and memory limits; no
# capabilities; no network but the loopback; a read-only root.
assert lines[:2] == [uid, a_txt], lines
assert lines[2:4] == ["256", str(2 * 1024**3)], lines
assert lines[4].split() == ["CapEff:", "0000000000000000"], lines
assert lines[5] == "lo", lines
assert "Read-only file system" in lines[6], lines
PY
cid=$(podman_vm ps --format '{{.ID}}' | head -n 1)
[ -n "$cid" ] || fail "no tool container is running after the turn"
pid=$(podman_vm inspect --format '{{.State.Pid}}' "$cid")
[ "$(in_vm "ps -o user= -p $pid")" = openclaw ] || fail "the tool container's process is not the service user's on the VM"
echo "   container $cid: its process $pid is the service user's on the VM"

step "its write landed in the overlay's upper only, and OpenClaw seeded nothing into the workspace"
[ "$(in_vm 'sudo cat /var/lib/sandbox/overlay/workspace/upper/from-agent.txt')" = "written by the agent" ] ||
  fail "the tool's write is not in the overlay's upper"
[ ! -e "$host_ws/from-agent.txt" ] || fail "the tool's write reached the host without the gate"
in_vm 'test ! -e /workspace/AGENTS.md && test ! -e /workspace/SOUL.md' || fail "OpenClaw seeded its persona files into the workspace"

# run.sh goes on to check the agent's changes it makes itself; this turn's must not be among them.
# Besides its file, the turn leaves the mount point of OpenClaw's read-only skills mount, which
# the container runtime made in the writable workspace: empty folders, which sync leaves out
# (run.sh checks that with E2E_AGENT_TURN=1).
in_vm 'sudo -u openclaw rm /workspace/from-agent.txt'
mount_points='/var/lib/sandbox/overlay/workspace/upper/.openclaw
/var/lib/sandbox/overlay/workspace/upper/.openclaw/sandbox-skills
/var/lib/sandbox/overlay/workspace/upper/.openclaw/sandbox-skills/skills'
expected=$(printf '%s\n%s\n' "$upper_before" "$mount_points" | sed '/^$/d' | sort -u)
[ "$(upper_list)" = "$expected" ] ||
  fail "the turn left more in the overlay's upper than its file and the skills mount point: $(diff <(echo "$expected") <(upper_list))"
[ -z "$(in_vm 'sudo find /var/lib/sandbox/overlay/workspace/upper/.openclaw ! -type d')" ] ||
  fail "the skills mount point in the upper is not only empty folders"
