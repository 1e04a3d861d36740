#!/usr/bin/env bash
# tests/e2e/run.sh: the end-to-end scenario on a real booted VM (tests/e2e/vm.sh), through the
# real `sandbox` binary and the ssh backend. What exists of the VM lifecycle so far is covered:
# `status` reads the overlay's pending changes over SSH, `sync` pulls the overlay upper from the
# VM (as root through `sudo -n`, a counted PAX tar) into the gate and applies exactly those
# changes, a planted secret is refused, and a second sync has nothing to do.
#
# Provisioning (`sandbox up` with Ansible) is not built yet, so the scenario creates the overlay
# upper in the VM by hand, where the rendered mount unit puts it, as the agent's writes would.
#
#   bash tests/e2e/run.sh [path/to/sandbox]     # default: target/release/sandbox (built if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
vm="$root/tests/e2e/vm.sh"
sandbox=${1:-$root/target/release/sandbox}
[ -x "$sandbox" ] || cargo build --release --quiet --manifest-path "$root/Cargo.toml"
# Absolute: the scenario runs it from the test home.
sandbox=$(realpath "$sandbox")
E2E_DIR=${E2E_DIR:-/tmp/sandbox-e2e}
export E2E_DIR

fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
step() { echo "== e2e: $*"; }

work=$(mktemp -d /tmp/sandbox-e2e-run.XXXXXX)
cleanup() { bash "$vm" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step "build the VM image (cached in $E2E_DIR)"
bash "$vm" build
mkdir -p "$work/home/ws" "$work/home/.config/sandbox/profiles"
chmod 755 "$work" "$work/home" "$work/home/ws"
printf 'A\n' > "$work/home/ws/a.txt"
printf 'old\n' > "$work/home/ws/old.txt"
step "boot it with the workspace shared read-only"
bash "$vm" start --workspace "$work/home/ws"
port=$(cat "$E2E_DIR/ssh.port")
cat > "$work/home/.config/sandbox/profiles/vm.yaml" <<EOF
name: vm
extends: default
vm: {backend: ssh, ssh: {host: 127.0.0.1, port: $port, user: dev, identity_file: $E2E_DIR/id_ed25519}}
workspaces: [{host: $work/home/ws, name: e2e}]
EOF
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.local/state NO_COLOR=1
sb() { (cd "$HOME" && "$sandbox" --profile vm "$@"); }

step "the VM sees the workspace read-only"
[ "$(bash "$vm" ssh -- cat /mnt/sandbox/lower/workspace/a.txt)" = A ] || fail "workspace not shared"
if bash "$vm" ssh -- 'sudo touch /mnt/sandbox/lower/workspace/x' 2>/dev/null; then fail "the share is writable"; fi

step "the agent's writes land in the overlay upper"
"$sandbox" baseline "$HOME/ws" >/dev/null
bash "$vm" ssh -- 'set -e; u=/var/lib/sandbox/overlay/e2e/upper; sudo mkdir -p $u; cd $u
  printf "A2\n" | sudo tee a.txt >/dev/null; printf "new\n" | sudo tee new.txt >/dev/null
  sudo mkdir d; printf "x\n" | sudo tee d/x.txt >/dev/null; sudo mknod old.txt c 0 0'

step "status reports the pending changes over SSH"
status=$(sb status --json)
echo "$status" | python3 -c 'import json,sys; s=json.load(sys.stdin); w=s["workspaces"][0]; assert s["state"]=="reachable", s; assert (w["entries"], w["bytes"])==(5, 9), w' \
  || fail "status: $status"

step "sync pulls the upper from the VM and applies exactly those changes"
sb sync --to ws --yes
[ "$(cat "$HOME/ws/a.txt")" = A2 ] || fail "a.txt not updated"
[ "$(cat "$HOME/ws/new.txt")" = new ] || fail "new.txt not created"
[ "$(cat "$HOME/ws/d/x.txt")" = x ] || fail "d/x.txt not created"
[ ! -e "$HOME/ws/old.txt" ] || fail "old.txt not deleted (whiteout)"

step "a second sync has nothing to do"
out=$(sb sync --to ws --yes 2>&1) || fail "second sync: $out"
case "$out" in *"nothing to do"*) ;; *) fail "second sync was not a no-op: $out" ;; esac

step "a secret the agent writes is refused, and nothing reaches the host"
bash "$vm" ssh -- 'printf "token = gh%s\n" "p_0123456789abcdefghijklmnopqrstuvwxyz" | sudo tee /var/lib/sandbox/overlay/e2e/upper/conf.txt >/dev/null'
set +e
sb sync --to ws --yes >"$work/refused.txt" 2>&1
code=$?
set -e
[ "$code" = 3 ] || fail "expected exit 3 (refused), got $code: $(cat "$work/refused.txt")"
[ ! -e "$HOME/ws/conf.txt" ] || fail "the secret reached the host"
if grep -q "0123456789abcdefghij" "$work/refused.txt"; then fail "the secret was printed"; fi

step "stop the VM"
bash "$vm" stop
echo "== e2e: all passed"
