#!/usr/bin/env bash
# tests/e2e/redteam.sh: the network containment red-team test, on a VM `sandbox up` provisioned
# (run by run.sh; also on its own against a running e2e VM whose profile allows `allowed.test`
# and `*.wild.test` and sets `network.host_address: 10.0.2.2`).
#
# Traffic goes only to servers this script starts on this machine's loopback
# (redteam_servers.py), which the VM reaches at qemu's host address 10.0.2.2; the test names
# resolve to it through /etc/hosts in the VM. As the agent user (openclaw, no sudo) and from
# inside tool containers it tries every way out it can think of; each attempt must fail for the
# reason under test and be logged: network ones as "[SANDBOX DENY]" in the kernel log or
# TCP_DENIED in the proxy's log (and never reach a server), sudo in the journal, refused file
# and socket operations in the audit log. `iptables`/`ufw` refuse a non-root user before the
# kernel sees anything to log; that their rules are unchanged afterwards is checked instead.
# An allowed domain must work through the proxy, for the agent, a container and the gateway's
# Node.js.
#
# The tool containers are the service user's rootless Podman's: with a network (slirp4netns),
# their connections leave from that user, so the firewall holds them as it holds the agent user,
# and they have its rights: the web through the proxy only, and the VM's loopback services.
#
# Needs root on this machine (the servers bind ports 53, 80 and 443 on 127.0.0.1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm=$here/vm.sh
: "${E2E_DIR:=/tmp/sandbox-e2e}"
export E2E_DIR
fail() { echo "e2e: FAILED: red team: $*" >&2; exit 1; }
# Seconds since run.sh started (E2E_T0), or since this script did when run on its own.
: "${E2E_T0:=$(date +%s)}"
step() { echo "== e2e [$(($(date +%s) - E2E_T0)) s]: red team: $*"; }
in_vm() { bash "$vm" ssh -- "$@"; }

rt=$(mktemp -d)
servers_pid=
cleanup_rt() { [[ -z $servers_pid ]] || kill "$servers_pid" 2>/dev/null || true; rm -rf "$rt"; }
trap cleanup_rt EXIT

step "start the test servers on 127.0.0.1 (HTTP 80/8080, HTTPS 443, TCP 9999, UDP 53/5353)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=allowed.test \
  -addext "subjectAltName=DNS:allowed.test,DNS:sub.wild.test,DNS:blocked.test" \
  -keyout "$rt/key.pem" -out "$rt/cert.pem" 2>/dev/null
: >"$rt/events"
python3 "$here/redteam_servers.py" "$rt/events" "$rt/cert.pem" "$rt/key.pem" >"$rt/servers.out" 2>&1 &
servers_pid=$!
for _ in $(seq 50); do grep -q ready "$rt/servers.out" && break; sleep 0.1; done
grep -q ready "$rt/servers.out" || fail "the test servers did not start: $(cat "$rt/servers.out")"

# The test names, and the certificate (not its key), in the VM.
in_vm 'sudo sh -c "grep -q allowed.test /etc/hosts || echo \"10.0.2.2 allowed.test sub.wild.test blocked.test\" >> /etc/hosts"'
# squid reads /etc/hosts when it starts (a restart returns once it is ready: Type=notify).
in_vm 'sudo systemctl restart squid.service'
in_vm 'cat > /tmp/redteam-ca.pem && chmod 644 /tmp/redteam-ca.pem' <"$rt/cert.pem"
uid=$(in_vm 'id -u openclaw')
# A missing tool would make an attempt fail for the wrong reason.
missing=$(in_vm 'for t in curl ping python3 iptables ufw podman; do sudo -u openclaw sh -c "command -v $t" >/dev/null || echo "$t"; done')
[ -z "$missing" ] || fail "the VM lacks what the attempts use: $missing"
podman_sock=/run/user/$uid/podman/podman.sock
podman="podman --url unix://$podman_sock"

since=$(in_vm 'date +%s')
proxy=http://127.0.0.1:3128
image=openclaw-sandbox:bookworm-slim

# agent CMD: runs CMD (one shell string) as the agent user in the VM.
agent() { in_vm "sudo -u openclaw sh -c $(printf %q "$1")"; }
# container NETWORK CMD: runs CMD (bash) in a tool container of the service user's Podman (as
# the container's root, the service user on the VM), on NETWORK (`bridge` is what `sandbox
# render` gives OpenClaw for it), with the proxy settings OpenClaw gives its containers and the
# test names in its /etc/hosts.
container() {
  local p=http://10.41.0.2:3128 net=$1
  [[ $net != bridge ]] || net=slirp4netns:cidr=10.41.0.0/24,allow_host_loopback=true
  in_vm "sudo $podman run --rm --network $net -e HTTPS_PROXY=$p -e HTTP_PROXY=$p -e https_proxy=$p -e http_proxy=$p \
    --add-host allowed.test:10.0.2.2 --add-host blocked.test:10.0.2.2 \
    -v /tmp/redteam-ca.pem:/ca.pem:ro $image bash -c $(printf %q "$2")"
}
# attempts NETWORK NAME CMD [NAME CMD]...: runs each CMD (bash) in one container on NETWORK, each
# in a shell of its own, and keeps its output and exit status for `attempted NAME`. One container
# per network, not per attempt: under TCG every Podman start costs seconds.
attempts() {
  local net=$1 script='' out names=(); shift
  while (($#)); do
    # The empty echo: an attempt's last line may lack its newline; the marker needs its own line.
    script+="echo '@@@ begin $1'; ( $2 ) 2>&1; r=\$?; echo; echo \"@@@ end $1 \$r\"; "
    names+=("$1")
    shift 2
  done
  out=$(container "$net" "$script") || fail "the attempts container on $net did not run: $(tail -c 300 <<<"$out")"
  awk -v dir="$rt" '
    /^@@@ begin / { name = $3; file = dir "/attempt." name ".out"; printf "" > file; next }
    /^@@@ end / { print $4 > (dir "/attempt." $3 ".rc"); close(file); name = ""; next }
    name != "" { print >> file }' <<<"$out"
  for name in "${names[@]}"; do
    [[ -e $rt/attempt.$name.rc ]] || fail "attempt $name did not run to its end: $(tail -c 300 <<<"$out")"
  done
}
# attempted NAME: replays an attempt `attempts` ran: its output, and its exit status.
attempted() {
  cat "$rt/attempt.$1.out"
  return "$(cat "$rt/attempt.$1.rc")"
}
# refused WHAT RUNNER ARG... : the attempt must fail.
refused() {
  local what=$1; shift
  if "$@" >"$rt/out" 2>&1; then fail "$what: it worked: $(head -c 300 "$rt/out")"; fi
  echo "   refused: $what"
}
# refused_with PATTERN WHAT RUNNER ARG... : it must fail, saying PATTERN (an extended regex), so
# that it failed for the reason under test and not, say, for a missing file.
refused_with() {
  local pattern=$1; shift
  refused "$@"
  grep -qiE -- "$pattern" "$rt/out" || fail "$1: failed, but not with /$pattern/: $(head -c 300 "$rt/out")"
}
# logged WHAT SUBSTRING... : a "[SANDBOX DENY]" kernel log line since the start has them all.
logged() {
  local what=$1; shift
  local s
  for _ in 1 2 3 4 5 6; do
    in_vm "sudo journalctl -k -q --no-pager -o cat --since=@$since" >"$rt/klog"
    grep -F '[SANDBOX DENY]' "$rt/klog" >"$rt/match" || true
    for s in "$@"; do grep -F -- "$s" "$rt/match" >"$rt/match.next" || true; mv "$rt/match.next" "$rt/match"; done
    [[ -s $rt/match ]] && { echo "   logged: $what"; return 0; }
    sleep 1
  done
  fail "$what: no [SANDBOX DENY] log line with: $*"
}
# proxy_denied WHAT SUBSTRING...: the proxy's log has a TCP_DENIED line with them all.
proxy_denied() {
  local what=$1 s; shift
  in_vm 'sudo cat /var/log/squid/access.log' >"$rt/access"
  grep -F TCP_DENIED "$rt/access" >"$rt/match" || true
  for s in "$@"; do grep -F -- "$s" "$rt/match" >"$rt/match.next" || true; mv "$rt/match.next" "$rt/match"; done
  [[ -s $rt/match ]] || fail "$what: the proxy did not log a denial with: $*"
  echo "   logged by the proxy: $what"
}
# audited WHAT SUBSTRING: the audit log (rules from `sandbox render`'s audit/sandbox.rules) has a
# refused operation of the agent's user that mentions it.
audited() {
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    # --input-logs: with stdin not a terminal, ausearch would read stdin instead of the logs.
    in_vm "sudo ausearch --input-logs -k sandbox-denied -ui $uid -i --start today" </dev/null >"$rt/audit" 2>/dev/null || true
    grep -qF -- "$2" "$rt/audit" && { echo "   audited: $1"; return 0; }
    # auditd writes its log asynchronously.
    sleep 1
  done
  fail "$1: no refused operation on $2 in the audit log"
}
# never WHAT PATTERN: no server event matches (a JSON fragment).
never() {
  if grep -qF -- "$2" "$rt/events"; then fail "$1: it reached the test server: $(grep -F -- "$2" "$rt/events")"; fi
}

step "an allowed domain works through the proxy, for the agent and from a bridge container"
agent "curl -fsS -m 20 -x $proxy --cacert /tmp/redteam-ca.pem https://allowed.test/agent-allowed-https" |
  grep -qx 'redteam https /agent-allowed-https' || fail "HTTPS to an allowed domain through the proxy does not work"
agent "curl -fsS -m 20 -x $proxy http://sub.wild.test/agent-allowed-wildcard" |
  grep -qx 'redteam http /agent-allowed-wildcard' || fail "HTTP to a *.wild.test name through the proxy does not work"
container bridge 'curl -fsS -m 20 --cacert /ca.pem https://allowed.test/container-allowed' |
  grep -qx 'redteam https /container-allowed' || fail "a bridge container cannot reach an allowed domain through the proxy"

# The gateway's own Node.js, with the proxy settings of its unit (Node's fetch reads them only
# with NODE_USE_ENV_PROXY=1, which the unit sets).
proxy_env=$(in_vm 'systemctl show -p Environment --value openclaw-gateway.service' | tr ' ' '\n' |
  grep -E '^(HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy|NODE_USE_ENV_PROXY)=' | tr '\n' ' ')
[[ $proxy_env == *NODE_USE_ENV_PROXY=1* && $proxy_env == *HTTPS_PROXY=http://127.0.0.1:3128* ]] ||
  fail "the gateway's unit lacks the proxy settings: $proxy_env"
agent "env $proxy_env NODE_EXTRA_CA_CERTS=/tmp/redteam-ca.pem /opt/openclaw/node/bin/node -e 'fetch(\"https://allowed.test/gateway-node\").then(r => r.text()).then(t => process.stdout.write(t))'" |
  grep -qx 'redteam https /gateway-node' || fail "the gateway's Node.js cannot fetch an allowed domain with its unit's proxy settings"

step "the agent user cannot get out any other way"
refused_with "(403|Forbidden)" "a non-allowed domain through the proxy" agent "curl -fsS -m 20 -x $proxy --cacert /tmp/redteam-ca.pem https://blocked.test/agent-blocked"
proxy_denied "a non-allowed domain through the proxy" "blocked.test:443"
never "a non-allowed domain through the proxy" '"/agent-blocked"'
refused_with "(403|Forbidden)" "the apex of a *.wild.test wildcard" agent "curl -fsS -m 20 -x $proxy http://wild.test/agent-apex"
proxy_denied "the apex of a *.wild.test wildcard" "http://wild.test/agent-apex"
refused_with "(403|Forbidden)" "an allowed domain by its raw IP, through the proxy" agent "curl -fsS -m 20 -x $proxy http://10.0.2.2/agent-rawip"
proxy_denied "an allowed domain by its raw IP" "http://10.0.2.2/agent-rawip"
never "raw IP" '"/agent-rawip"'
refused_with "(refused|Failed to connect|Couldn.t connect)" "direct HTTPS (443), bypassing the proxy" agent "curl -fsS -m 20 --noproxy '*' --cacert /tmp/redteam-ca.pem https://allowed.test/agent-direct"
logged "direct HTTPS" "UID=$uid " "DST=10.0.2.2 " "DPT=443 "
never "direct HTTPS" '"/agent-direct"'
refused_with "(403|Forbidden)" "a non-standard port through the proxy" agent "curl -fsS -m 20 -x $proxy http://allowed.test:8080/agent-port-proxy"
proxy_denied "a non-standard port through the proxy" "allowed.test:8080"
refused_with "(refused|Failed to connect|Couldn.t connect)" "a non-standard port, direct" agent "curl -fsS -m 20 --noproxy '*' http://allowed.test:8080/agent-port-direct"
logged "a non-standard port, direct" "UID=$uid " "DPT=8080 "
never "a non-standard port" '"http-8080"'
refused_with "(refused|Failed to connect|Couldn.t connect)" "the proxy's provisioning port (root's)" agent "curl -fsS -m 20 -x http://127.0.0.1:3129 http://allowed.test/agent-provision"
logged "the provisioning port" "UID=$uid " "DPT=3129 "
never "the provisioning port" '"/agent-provision"'
# UDP: sending succeeds locally or not; what counts is that nothing arrives and it is logged.
agent "python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b\"x\"*16, (\"10.0.2.2\", 5353))'" >/dev/null 2>&1 || true
logged "UDP to the host" "UID=$uid " "PROTO=UDP " "DPT=5353 "
# A real DNS query (A record for redteam.test) to a resolver the profile does not name.
agent "python3 -c 'import socket; q=bytes.fromhex(\"123401000001000000000000077265647465616d04746573740000010001\"); s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(q, (\"10.0.2.2\", 53))'" >/dev/null 2>&1 || true
logged "DNS to a non-configured resolver" "UID=$uid " "PROTO=UDP " "DPT=53 "
refused "ICMP (ping)" agent "ping -c 1 -W 3 10.0.2.2"
logged "ICMP" "UID=$uid " "PROTO=ICMP "
refused_with "(refused|Failed to connect|Couldn.t connect)" "another port of the host" agent "curl -sS -m 20 --noproxy '*' http://10.0.2.2:9999/"
logged "another port of the host" "UID=$uid " "DPT=9999 "
sleep 1
never "UDP to the host" '"udp-5353"'
never "DNS to a non-configured resolver" '"udp-53"'
never "another port of the host" '"tcp-9999"'

step "the agent user cannot change the policy, read the secrets or write the host's files"
refused_with "password is required" "sudo without a password" agent "sudo -n true"
# With a guessed password sudo gets as far as its policy, which refuses and logs it.
refused_with "incorrect password|not in the sudoers" "sudo with a guessed password" agent "echo guessed-password | sudo -S -k true"
in_vm "sudo journalctl -q --no-pager -o cat --since=@$since SYSLOG_IDENTIFIER=sudo" | grep -q 'openclaw : user NOT in sudoers' ||
  fail "sudo: the refusal is not in the journal"
echo "   logged: sudo"
refused_with "Permission denied" "flushing iptables" agent "iptables -F"
refused_with "need to be root" "ufw disable" agent "ufw --force disable"
refused_with "Permission denied" "editing UFW's rules" agent "echo '-A ufw-before-output -j ACCEPT' >> /etc/ufw/before.rules"
audited "editing UFW's rules" "name=/etc/ufw/before.rules"
refused_with "Permission denied" "editing the proxy's policy" agent "echo 'http_access allow all' >> /etc/squid/squid.conf"
audited "editing the proxy's policy" "name=/etc/squid/squid.conf"
in_vm 'sudo iptables -S sandbox-deny' | grep -q 'SANDBOX DENY' || fail "the firewall's deny chain is gone"
[ "$(in_vm 'sudo ufw status | head -n 1')" = "Status: active" ] || fail "the firewall is no longer active"
refused_with "Permission denied" "reading the secrets file" agent "cat /etc/openclaw/secrets.env"
audited "reading the secrets file" "name=/etc/openclaw/secrets.env"
lower=$(in_vm "findmnt -n -o TARGET -t 9p | head -n 1")
[ -n "$lower" ] || fail "no read-only host mount found in the VM"
refused_with "Read-only file system" "writing to the read-only host mount" agent "touch $lower/redteam-was-here"
audited "writing to the read-only host mount" "redteam-was-here"
# No Docker: its socket would be root in the VM.
in_vm 'test ! -e /var/run/docker.sock && ! command -v dockerd' >/dev/null || fail "Docker is installed in the VM"

step "a tool container cannot get out either"
# Its denials are the service user's, like the agent's above: only lines from now on count.
sleep 1
since=$(in_vm 'date +%s')
attempts bridge \
  tools 'for t in curl ping; do command -v $t >/dev/null || echo "missing: $t"; done' \
  blocked 'curl -fsS -m 20 --cacert /ca.pem https://nope.container.test/container-blocked' \
  direct 'curl -fsS -m 20 --noproxy "*" --cacert /ca.pem https://allowed.test/container-direct' \
  rawip 'curl -fsS -m 20 http://10.0.2.2/container-rawip' \
  udp 'echo x > /dev/udp/10.0.2.2/53' \
  icmp 'ping -c 1 -W 3 10.0.2.2' \
  provision 'curl -fsS -m 10 -x http://10.41.0.2:3129 http://allowed.test/container-provision' \
  port 'curl -sS -m 10 --noproxy "*" http://10.0.2.2:9999/' \
  socket "test -S /run/openclaw-podman.sock || test -S $podman_sock"
attempts none \
  none 'curl -fsS -m 10 http://10.0.2.2/container-none' \
  none_proxy 'curl -fsS -m 10 -x http://10.41.0.2:3128 http://allowed.test/container-none-proxy'
# A missing tool would make an attempt fail for the wrong reason.
tools=$(attempted tools) || fail "the tool image's tool check failed: $tools"
[ -z "$tools" ] || fail "the tool image lacks what the attempts use: $tools"
refused_with "(403|Forbidden)" "a non-allowed domain through the proxy, from a container" attempted blocked
proxy_denied "a non-allowed domain from a container" "CONNECT nope.container.test:443"
refused_with "(refused|Failed to connect|Couldn.t connect|reset)" "direct HTTPS from a bridge container" attempted direct
logged "direct HTTPS from a container" "UID=$uid " "DST=10.0.2.2 " "DPT=443 "
never "direct HTTPS from a container" '"/container-direct"'
refused_with "(403|Forbidden)" "a raw IP through the proxy, from a container" attempted rawip
proxy_denied "a raw IP from a container" "http://10.0.2.2/container-rawip"
never "a raw IP from a container" '"/container-rawip"'
logged "DNS/UDP from a container" "UID=$uid " "PROTO=UDP " "DPT=53 "
refused "ICMP from a container" attempted icmp
# slirp4netns, without ping sockets for the service user, sends an echo request on as UDP to
# the echo port.
logged "ICMP from a container" "UID=$uid " "PROTO=UDP " "DPT=7 "
refused_with "(refused|Failed to connect|Couldn.t connect|reset)" "the provisioning port from a container" attempted provision
logged "the provisioning port from a container" "UID=$uid " "DPT=3129 "
never "the provisioning port from a container" '"/container-provision"'
refused_with "(refused|Failed to connect|Couldn.t connect|reset)" "another port of the host from a container" attempted port
logged "another port of the host from a container" "UID=$uid " "DPT=9999 "
# The engine's socket is the gateway's alone, bound into its unit only.
refused "the Podman socket from a container" attempted socket
# --network host still runs as the service user, so the firewall holds it like the agent.
refused_with "(refused|Failed to connect|Couldn.t connect|reset)" "direct HTTPS from a --network host container" container host 'curl -fsS -m 20 --noproxy "*" --cacert /ca.pem https://allowed.test/container-hostnet'
never "a --network host container" '"/container-hostnet"'
refused_with "(unreachable|Failed to connect|Couldn.t connect)" "the network from a --network none container" attempted none
refused_with "(unreachable|Failed to connect|Couldn.t connect)" "the proxy from a --network none container" attempted none_proxy
sleep 1
never "DNS/UDP from a container" '"udp-53"'
never "another port of the host from a container" '"tcp-9999"'
never "the network from a --network none container" '"/container-none'

# The --network none container has no interface but loopback: nothing leaves it to be logged.
reached=$(python3 -c 'import json,sys; print(" ".join(sorted(json.loads(l).get("path", json.loads(l)["server"]) for l in open(sys.argv[1]))))' "$rt/events")
[ "$reached" = "/agent-allowed-https /agent-allowed-wildcard /container-allowed /gateway-node" ] ||
  fail "the test servers saw more than the allowed requests: $reached"
step "every attempt refused; only the 4 allowed requests reached the test servers"
