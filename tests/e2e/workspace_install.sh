#!/usr/bin/env bash
# tests/e2e/workspace_install.sh [path/to/sandbox]: `gateway.install: workspace` end to end, on a
# fresh e2e VM (tests/e2e/vm.sh) through the real `sandbox up`.
#
# The checkout: no OpenClaw source tree is reachable here (only the npm registry), so the test
# makes one from the registry's package of the pinned version: its files, its package.json
# without devDependencies (the published dist needs no build tools) and a package-lock.json
# that npm resolves on this machine. Its build command writes a marker into dist/, so the test
# can tell the installed package was built in the VM and not fetched. What is real: the copy
# from the VM's read-only share, root fetching the locked dependencies with install scripts off,
# the build and `npm pack` as the install user, the install from the packed file, OpenClaw's
# own install step, the gateway running from it, and where everything lands (nothing in the
# host's checkout, nothing in the overlay's upper, no build copy left behind). Then
# `up --reprovision` must change nothing: the fingerprint of an unchanged checkout is stable.
#
# With --pnpm, the checkout is what a real OpenClaw checkout is: a package.json whose
# packageManager pins pnpm (with its hash), and a pnpm-lock.yaml (made on this machine by that pnpm). Then
# corepack fetches that pnpm in the VM, through the proxy, and pnpm installs the locked
# dependencies.
#
#   bash tests/e2e/workspace_install.sh [--pnpm] [path/to/sandbox]
#
# Status: run by hand (passed on 2026-11-27 in about 55 min under TCG, with and without --pnpm), not by run.sh: CI's budget has no room for a
# second OpenClaw install.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pnpm_version=
if [[ ${1:-} == --pnpm ]]; then
  pnpm_version=10.34.9
  shift
fi
vm="$root/tests/e2e/vm.sh"
: "${E2E_DIR:=/tmp/sandbox-e2e}"
export E2E_DIR
fail() { echo "e2e: FAILED: workspace install: $*" >&2; exit 1; }
step() { echo "== e2e [${SECONDS} s]: workspace install: $*"; }

sandbox=$(realpath "${1:-$root/target/release/sandbox}")
[ -x "$sandbox" ] || fail "no sandbox binary at $sandbox (cargo build --release)"
bash "$root/tests/e2e/run.sh" --prepare >/dev/null
node_archive=$(ls "$E2E_DIR"/node/node-v*-linux-x64.tar.xz)
node_version=$(basename "$node_archive" | sed 's/^node-v\(.*\)-linux-x64.tar.xz$/\1/')
rootfs=$(bash "$vm" rootfs)
version=$(sed -n 's/^ *version: "\(.*\)"$/\1/p' "$root/profiles/default.yaml" | head -1)

work=$(mktemp -d /tmp/sandbox-e2e-wsinstall.XXXXXX)
cleanup() { bash "$vm" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step "a checkout of openclaw@$version, made from the registry's package"
mkdir -p "$work/home/ws/openclaw" "$work/home/.config/sandbox/profiles"
chmod 755 "$work" "$work/home" "$work/home/ws"
(cd "$work" && npm pack --silent "openclaw@$version" >/dev/null)
tar -C "$work/home/ws/openclaw" --strip-components=1 -xzf "$work/openclaw-$version.tgz"
rm "$work/openclaw-$version.tgz"
# Pinned with its hash, as `corepack use` writes it: corepack then checks the download against
# it. (Without one, corepack checks the registry's npm signatures instead, which the registry
# mirror this machine reaches does not serve.)
pnpm_integrity=
[ -z "$pnpm_version" ] || pnpm_integrity=$(npm view "pnpm@$pnpm_version" dist.integrity)
python3 - "$work/home/ws/openclaw/package.json" "$pnpm_version" "$pnpm_integrity" <<'PY'
import base64, json, sys
p, pnpm, integrity = sys.argv[1:4]
d = json.load(open(p))
d.pop("devDependencies", None)
if pnpm:
    algo, digest = integrity.split("-", 1)
    assert algo == "sha512", integrity
    d["packageManager"] = f"pnpm@{pnpm}+sha512.{base64.b64decode(digest).hex()}"
json.dump(d, open(p, "w"), indent=2)
PY
if [ -n "$pnpm_version" ]; then
  # The package ships OpenClaw's pnpm-workspace.yaml, whose patches are for devDependencies and
  # extensions the package lacks: pnpm refuses unused patches unless told otherwise.
  printf '\n# The e2e test'"'"'s checkout has no devDependencies and no extensions.\nallowUnusedPatches: true\n' \
    >>"$work/home/ws/openclaw/pnpm-workspace.yaml"
  (cd "$work/home/ws/openclaw" &&
    npm exec --yes --package="pnpm@$pnpm_version" -- pnpm install --lockfile-only --ignore-scripts --silent)
  [ -s "$work/home/ws/openclaw/pnpm-lock.yaml" ] || fail "pnpm wrote no pnpm-lock.yaml"
  [ ! -e "$work/home/ws/openclaw/package-lock.json" ] || fail "the pnpm checkout has a package-lock.json"
else
  (cd "$work/home/ws/openclaw" && npm install --silent --package-lock-only --ignore-scripts --no-audit --no-fund)
  [ -s "$work/home/ws/openclaw/package-lock.json" ] || fail "npm wrote no package-lock.json"
fi
[ ! -e "$work/home/ws/openclaw/node_modules" ] || fail "making the lockfile installed node_modules into the checkout"
# The build: a marker in dist/, listed in dist/postinstall-inventory.json as OpenClaw's own build
# lists its outputs (OpenClaw's install step deletes every file of dist/ the list does not name).
cat >"$work/home/ws/openclaw/build-marker.mjs" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
writeFileSync("dist/built-in-the-vm.txt", `${process.version}\n`);
const inventory = JSON.parse(readFileSync("dist/postinstall-inventory.json", "utf8"));
writeFileSync("dist/postinstall-inventory.json", JSON.stringify([...inventory, "dist/built-in-the-vm.txt"]));
JS
printf 'notes\n' >"$work/home/ws/notes.txt"
host_before=$(cd "$work/home/ws" && find . -printf '%p %s %T@\n' | sort | sha256sum)

step "boot a fresh VM with it shared read-only"
bash "$vm" start --workspace "$work/home/ws" >/dev/null
port=$(cat "$E2E_DIR/ssh.port")
in_vm() { bash "$vm" ssh -- "$@"; }
bash "$vm" trust-host-cas
( umask 077; printf 'OPENCLAW_GATEWAY_TOKEN=wsinstall-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$work/home/.config/sandbox/secrets.env" )
cat >"$work/home/.config/sandbox/profiles/src.yaml" <<EOF
name: src
extends: default
vm: {backend: ssh, ssh: {host: 127.0.0.1, port: $port, guest_port: 22, user: dev, identity_file: $E2E_DIR/id_ed25519}}
workspaces: [{host: $work/home/ws, name: workspace}]
secrets: {sources: [{file: $work/home/.config/sandbox/secrets.env}]}
gateway:
  install: workspace
  source:
    workspace: workspace
    path: openclaw
    build: [[node, build-marker.mjs]]
  node: {version: "$node_version", archive: $node_archive}
tool_sandbox: {rootfs: $rootfs}
network: {host_address: 10.0.2.2, dns: [10.0.2.3]}
EOF
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.local/state NO_COLOR=1
sb() { (cd "$HOME" && "$sandbox" --profile src "$@"); }

step "up builds OpenClaw from the checkout and starts the gateway from it"
sb up --gateway-timeout 900 >"$work/up1.txt" 2>&1 || { cat "$work/up1.txt"; fail "up"; }
cat "$work/up1.txt"
app=$(in_vm 'readlink /opt/openclaw/app')
case "$app" in
  /opt/openclaw/openclaw-$version-src-????????????????) ;;
  *) fail "the app link points at $app, not at a build of the checkout" ;;
esac
[ "$(in_vm "cat $app/node_modules/openclaw/dist/built-in-the-vm.txt")" = "v$node_version" ] ||
  fail "the installed package lacks the build command's output"
[ "$(in_vm 'systemctl is-active openclaw-gateway.service')" = active ] || fail "the gateway is not active"
in_vm 'curl -fsS -m 10 -o /dev/null http://127.0.0.1:18789/healthz' || fail "the gateway does not answer /healthz"
pid=$(in_vm 'systemctl show -p MainPID --value openclaw-gateway.service')
in_vm "sudo cat /proc/$pid/cmdline | tr '\\0' ' '" | grep -q '/opt/openclaw/app/node_modules/openclaw/openclaw.mjs' ||
  fail "the gateway does not run the installed package"

if [ -n "$pnpm_version" ]; then
  up1_log=$(sed -n 's/.*; log \(.*\.log\)).*/\1/p' "$work/up1.txt")
  [ -s "$up1_log" ] || fail "up did not name its Ansible log"
  grep -q '^TASK \[gateway : Put pnpm on the build.s PATH\]' "$up1_log" || fail "the build did not set up pnpm"
  in_vm "sudo test -d /var/cache/sandbox/corepack/v1/pnpm/$pnpm_version" ||
    fail "corepack did not fetch pnpm $pnpm_version: $(in_vm 'sudo find /var/cache/sandbox/corepack -maxdepth 3' | head)"
  in_vm 'sudo test -d /var/cache/sandbox/pnpm-store' || fail "pnpm did not fill its store"
fi

step "nothing landed in the host's checkout, the overlay's upper or the build folder"
[ "$(cd "$work/home/ws" && find . -printf '%p %s %T@\n' | sort | sha256sum)" = "$host_before" ] ||
  fail "the host's workspace changed"
[ -z "$(in_vm 'sudo find /var/lib/sandbox/overlay/workspace/upper -mindepth 1 -print -quit')" ] ||
  fail "the build wrote into the overlay's upper: $(in_vm 'sudo find /var/lib/sandbox/overlay/workspace/upper -mindepth 1 | head')"
in_vm 'sudo test ! -e /var/lib/sandbox/gateway-build/src && sudo test ! -e /var/lib/sandbox/gateway-build/out' ||
  fail "the build's copy of the checkout was left behind"
loose=$(in_vm 'sudo find /opt/openclaw/ \( ! -user root -o -perm /022 \) ! -type l -print -quit')
[ -z "$loose" ] || fail "$loose under /opt/openclaw is not root's, or is writable by others"
[ "$(sb status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["workspaces"][0]["entries"])')" = 0 ] ||
  fail "status reports pending changes after the build"

step "up --reprovision changes nothing for an unchanged checkout"
sb up --reprovision >"$work/up2.txt" 2>&1 || { cat "$work/up2.txt"; fail "up --reprovision"; }
cat "$work/up2.txt"
grep -q " 0 changed" "$work/up2.txt" || fail "up --reprovision changed something: $(cat "$work/up2.txt")"
[ "$(in_vm 'systemctl show -p MainPID --value openclaw-gateway.service')" = "$pid" ] || fail "the gateway was restarted"

bash "$vm" stop >/dev/null
echo "== e2e: workspace install: all passed"
