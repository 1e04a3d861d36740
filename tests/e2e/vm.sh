#!/usr/bin/env bash
# tests/e2e/vm.sh: build and boot a real Debian 12 test VM for end-to-end tests of `sandbox`.
#
# The VM stands in for the Lima guest that `sandbox` drives in production: same distro, a
# `dev` user with passwordless sudo (Lima's default user), sshd, DHCP networking, and the
# host workspace shared read-only over virtio-9p at /mnt/sandbox/lower/workspace (Lima's qemu
# mode shares the same way). It runs under plain qemu-system-x86_64 with TCG, because neither
# KVM nor Lima is usable on the machines it was written for; slow (boot to ssh ~30 s) but real.
#
#   vm.sh build [--force]                     debootstrap + raw ext4 image (cached)
#   vm.sh start [--workspace DIR] [--persist] boot, wait for ssh, print how to connect
#   vm.sh ssh [--] [CMD...]                   ssh in as dev (interactive without CMD)
#   vm.sh trust-host-cas                      add this machine's extra CAs to the VM's store
#   vm.sh stop                                poweroff, then kill after a grace period
#   vm.sh status                              running or not (exit 0 / 3), port
#   vm.sh rootfs                              a minbase Debian root filesystem archive (cached),
#                                             for `podman import` as the tool sandbox image
#
# Everything the script writes lives under $E2E_DIR (default /tmp/sandbox-e2e).
# Environment: E2E_DIR, E2E_SSH_PORT (2222), E2E_MIRROR (default: the host's apt mirror),
# E2E_MEM (2048), E2E_CPUS (2), E2E_CPU (max), E2E_BOOT_TIMEOUT (180), E2E_STOP_GRACE (30).
set -euo pipefail

E2E_DIR=${E2E_DIR:-/tmp/sandbox-e2e}
SUITE=bookworm
# OpenClaw 2026.8.2 unpacks to about 900 MiB, staged beside the tool image and the apt cache;
# 3G ran out of space at the first tool container. (The default profile gives its Lima VM 50GiB.)
IMAGE_SIZE=6G
VM_HOSTNAME=sandbox-e2e
VM_USER=dev
MEM=${E2E_MEM:-2048}
CPUS=${E2E_CPUS:-2}
CPU_MODEL=${E2E_CPU:-max}
BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-180}
STOP_GRACE=${E2E_STOP_GRACE:-30}
# The guest path is what `sandbox` renders for the lower of the first workspace
# (src/render/context.rs LOWER_ROOT + the workspace name).
WORKSPACE_TAG=workspace
WORKSPACE_MOUNT=/mnt/sandbox/lower/workspace

# Artefacts. The image, kernel, initrd and key form one cache entry: `build` is a no-op only
# when all four exist (a new key would not be authorized in an old image) and RECIPE holds the
# hash of the recipe that built them (image_recipe), so a changed package list or configuration
# rebuilds instead of silently testing an old image.
IMAGE=$E2E_DIR/debian-12.raw
RECIPE=$E2E_DIR/image.recipe
KERNEL=$E2E_DIR/vmlinuz
INITRD=$E2E_DIR/initrd.img
KEY=$E2E_DIR/id_ed25519
PIDFILE=$E2E_DIR/qemu.pid
PORTFILE=$E2E_DIR/ssh.port
SSH_CONFIG=$E2E_DIR/ssh.config
SERIAL_LOG=$E2E_DIR/serial.log
QEMU_LOG=$E2E_DIR/qemu.log
BUILD_LOG=$E2E_DIR/build.log
TOOLS_LOG=$E2E_DIR/host-tools.log
DEB_CACHE=$E2E_DIR/debs
STAGE=$E2E_DIR/build.tmp

# Packages on top of minbase. dbus + libpam-systemd give ssh sessions a logind session like a
# normal Debian install; procps/netbase/less are the small things tests and humans expect;
# iputils-ping (in every Debian and Lima image) is the red-team test's ICMP attempt.
GUEST_PACKAGES=(
  systemd systemd-sysv udev dbus libpam-systemd kmod
  linux-image-amd64 initramfs-tools
  openssh-server sudo python3
  iproute2 netbase ca-certificates curl iputils-ping
  tar findutils procps less
)
# The tool sandbox's root filesystem: curl and ping are the red-team test's tools in a container.
TOOL_ROOTFS_PACKAGES=(curl iputils-ping)
# Left out of the tool rootfs, as Debian's -slim images leave them out (the copyright files
# stay): about a third of its bytes and of its entries, which Podman's import and every
# container made from the image (vfs storage: a full copy) would otherwise go through.
TOOL_ROOTFS_SLIM=(/usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/groff /usr/share/lintian/overrides)
# What they keep of those (dpkg's path-include): the copyright files, and glibc's locale aliases.
TOOL_ROOTFS_KEEP=('/usr/share/doc/*/copyright' /usr/share/locale/locale.alias)
HOST_PACKAGES=(debootstrap qemu-system-x86 qemu-utils e2fsprogs openssh-client)

log() { printf '[vm.sh] %s\n' "$*" >&2; }
# The words joined by commas (debootstrap's --include).
commas() {
  local IFS=,
  echo "$*"
}
die() { printf '[vm.sh] error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# Seconds since an earlier `now` (integer; good enough for minutes-long steps).
now() { date +%s; }
since() { echo $(($(now) - $1)); }

# qemu splits option values on ',' and takes ',,' as a literal comma.
qemu_escape() { printf '%s' "${1//,/,,}"; }

ssh_opts() {
  # No known_hosts: every build makes new host keys, and the port is reused across VMs.
  printf '%s\n' -i "$KEY" -p "$(cat "$PORTFILE")" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o IdentitiesOnly=yes -o LogLevel=ERROR
}

# The qemu pid if the VM is running. Checks the process is still qemu, so a stale pid file
# whose number was reused by something else is never reported (or killed) as the VM.
running_pid() {
  [[ -s $PIDFILE ]] || return 1
  local pid
  pid=$(tr -dc 0-9 <"$PIDFILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q qemu-system || return 1
  echo "$pid"
}

# One invocation at a time may build, start or stop (CI may run jobs in parallel on a box).
take_lock() {
  mkdir -p "$E2E_DIR"
  chmod 700 "$E2E_DIR" # it holds the private key
  exec 9>"$E2E_DIR/lock"
  flock -n 9 || die "another vm.sh is working in $E2E_DIR"
}

# ---------------------------------------------------------------------------------------------
# build

ensure_host_tools() {
  local cmd pkg have=1 missing=()
  for cmd in debootstrap qemu-system-x86_64 mkfs.ext4 ssh ssh-keygen; do
    command -v "$cmd" >/dev/null || have=0
  done
  ((have)) && return 0
  for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [[ $EUID -eq 0 ]] || die "missing host tools; as root: apt-get install ${missing[*]}"
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # --no-remove: never let apt make room by removing something the host already has.
  local install=(apt-get install -y --no-install-recommends --no-remove)
  # Without `apt-get update` first: on a warm machine the lists are there, and it saves time.
  "${install[@]}" "${missing[@]}" >>"$TOOLS_LOG" 2>&1 && return 0
  apt-get update >>"$TOOLS_LOG" 2>&1 || true
  "${install[@]}" "${missing[@]}" >>"$TOOLS_LOG" 2>&1 && return 0

  # A host that already has qemu-utils from bookworm-backports (newer qemu-img) cannot take
  # bookworm's qemu-system-x86: the new qemu-utils Breaks qemu-system-common << 8.0. Take the
  # qemu packages from backports too, through a private apt source list and lists directory
  # under $E2E_DIR, so the host's apt configuration stays exactly as it was.
  log "stable qemu-system-x86 does not install; trying $SUITE-backports (private apt lists)"
  local mirror apt=$E2E_DIR/apt
  mirror=$(apt_uri_for_suite "$SUITE" || echo http://deb.debian.org/debian)
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  printf 'deb %s %s main\n' "$mirror" "$SUITE" "$mirror" "$SUITE-updates" "$mirror" "$SUITE-backports" \
    >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update >>"$TOOLS_LOG" 2>&1 || die "apt-get update (backports) failed; see $TOOLS_LOG"
  # -t, not pkg/suite: qemu's own dependencies (qemu-system-data, seabios) must come from
  # backports too, at the versions the new qemu requires.
  apt-get "${opts[@]}" install -y --no-install-recommends --no-remove -t "$SUITE-backports" "${missing[@]}" >>"$TOOLS_LOG" 2>&1 ||
    die "could not install ${missing[*]}; see $TOOLS_LOG"
}

# The first URI the host's apt uses for SUITE, from one-line (*.list) and deb822 (*.sources)
# files; the same files apt itself reads (so *.disabled and the like are ignored).
apt_uri_for_suite() {
  local suite=$1 f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # deb [opt=val ...] URI SUITE COMPONENTS...
    uri=$(awk -v s="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit }
      }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # Paragraphs of "Key: value" lines; take URIs of an enabled deb paragraph listing SUITE.
    uri=$(awk -v s="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = suites = uris = ""; enabled = "yes"
      }
      BEGIN { enabled = "yes" }
      /^#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0
        else if (key == "suites") suites = $0
        else if (key == "uris") uris = $0
        else if (key == "enabled") enabled = tolower($0)
      }
      END { if (!found) flush() }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return 0; }
  done
  return 1
}

# Unmount whatever debootstrap (or an interrupted build) left mounted below DIR, deepest first,
# so that `rm -rf` never reaches into the host's /proc, /sys or /dev.
umount_below() {
  local dir mnt
  dir=$(realpath -m "$1")
  awk -v d="$dir/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

cleanup_stage() {
  [[ -d $STAGE ]] || return 0
  umount_below "$STAGE"
  rm -rf --one-file-system "$STAGE"
}

# Everything that decides the image's contents, hashed. The key is not in it: it has its own
# check, and `--force` makes a new one.
image_recipe() {
  {
    declare -p SUITE IMAGE_SIZE VM_HOSTNAME VM_USER WORKSPACE_TAG WORKSPACE_MOUNT GUEST_PACKAGES
    declare -f configure_rootfs
  } | sha256sum | cut -c1-16
}

# EXIT trap while building: on failure show where it broke, then always clean the staging dir.
build_exit() {
  local rc=$?
  if ((rc != 0)); then
    log "build failed (exit $rc); last lines of $BUILD_LOG:"
    tail -n 25 "$BUILD_LOG" >&2 || true
  fi
  cleanup_stage
}

# Everything below runs inside the freshly debootstrapped tree ROOT.
configure_rootfs() {
  local root=$1 mirror=$2 security=${3:-} guest_mirror guest_security

  echo "$VM_HOSTNAME" >"$root/etc/hostname"
  cat >"$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$VM_HOSTNAME
::1		localhost ip6-localhost ip6-loopback
EOF

  # The kernel is booted with root=/dev/vda rw, so no fsck pass (it cannot check a rw root).
  cat >"$root/etc/fstab" <<'EOF'
/dev/vda	/	ext4	errors=remount-ro	0	0
EOF

  # The guest reaches the mirror through qemu's user-mode NAT; a mirror on the host's loopback
  # (an apt-cacher, say) is the host's 10.0.2.2 from inside.
  guest_mirror=$(sed -E 's#//(127\.0\.0\.1|localhost)([:/])#//10.0.2.2\2#' <<<"$mirror")
  {
    echo "deb $guest_mirror $SUITE main"
    echo "deb $guest_mirror $SUITE-updates main"
    if [[ -n $security ]]; then
      guest_security=$(sed -E 's#//(127\.0\.0\.1|localhost)([:/])#//10.0.2.2\2#' <<<"$security")
      echo "deb $guest_security $SUITE-security main"
    fi
  } >"$root/etc/apt/sources.list"

  # Networking: systemd-networkd, DHCP on the virtio NIC (eth0 with net.ifnames=0, en* if a
  # predictable name is used after all). DNS: qemu user-mode's built-in resolver, as a plain
  # file (no systemd-resolved to start, nothing to go wrong).
  mkdir -p "$root/etc/systemd/network"
  cat >"$root/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
  rm -f "$root/etc/resolv.conf"
  echo "nameserver 10.0.2.3" >"$root/etc/resolv.conf"

  # The user Lima would create: passwordless sudo, locked password, key-only ssh.
  chroot "$root" useradd --create-home --shell /bin/bash --groups sudo --comment "sandbox e2e" "$VM_USER"
  echo "$VM_USER ALL=(ALL:ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/90-$VM_USER"
  chmod 0440 "$root/etc/sudoers.d/90-$VM_USER"
  chroot "$root" visudo -cq -f "/etc/sudoers.d/90-$VM_USER"

  local home
  for home in "/home/$VM_USER" /root; do
    install -d -m 700 "$root$home/.ssh"
    install -m 600 "$KEY.pub" "$root$home/.ssh/authorized_keys"
  done
  chroot "$root" chown -R "$VM_USER:$VM_USER" "/home/$VM_USER/.ssh"

  cat >"$root/etc/ssh/sshd_config.d/sandbox-e2e.conf" <<'EOF'
# Keys only (root too: Debian's default prohibit-password).
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF

  # The read-only workspace. Not an fstab line: without `--workspace` there is no 9p device,
  # and a nofail fstab mount would still fail and leave the system "degraded" on every plain
  # boot. Instead udev starts the mount unit when a 9p device tagged "workspace" appears (the
  # driver announces its mount_tag with a change uevent; coldplug re-announces it), so the
  # unit runs exactly when the share exists. The options are Lima's for a read-only 9p mount.
  mkdir -p "$root$WORKSPACE_MOUNT"
  local unit
  unit=$(chroot "$root" systemd-escape --path --suffix=mount "$WORKSPACE_MOUNT")
  cat >"$root/etc/systemd/system/$unit" <<EOF
[Unit]
Description=Host workspace, read-only over virtio-9p (tag $WORKSPACE_TAG)

[Mount]
What=$WORKSPACE_TAG
Where=$WORKSPACE_MOUNT
Type=9p
Options=trans=virtio,version=9p2000.L,ro,nofail
EOF
  cat >"$root/etc/udev/rules.d/90-sandbox-workspace.rules" <<EOF
ACTION!="remove", SUBSYSTEM=="virtio", DRIVER=="9pnet_virtio", ATTR{mount_tag}=="$WORKSPACE_TAG", TAG+="systemd", ENV{SYSTEMD_WANTS}+="$unit"
EOF

  # Services. sshd is enabled by its package; say so anyway. A serial getty on ttyS0 (the
  # console=ttyS0 generator would add one too), so the serial log ends with a login prompt.
  chroot "$root" systemctl enable ssh.service systemd-networkd.service serial-getty@ttyS0.service
  # apt's daily timers would grab the dpkg lock right after boot, racing the tests' apt-get.
  chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer
  # qemu boots the kernel and initrd copied out at build time (-kernel/-initrd), never the
  # guest's /boot, so regenerating the guest's initrd is dead work: fuse3's initramfs hook alone
  # made the provisioning's first apt install spend 4 minutes in update-initramfs under TCG.
  sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$root/etc/initramfs-tools/update-initramfs.conf"
  grep -qx 'update_initramfs=no' "$root/etc/initramfs-tools/update-initramfs.conf"

  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/tmp/*
}

cmd_build() {
  local force=0
  while (($#)); do
    case $1 in
    --force) force=1 ;;
    *) die "build: unknown argument $1" ;;
    esac
    shift
  done

  take_lock
  local t0 t mirror security root
  t0=$(now)
  # Even with a cached image: after `build`, `start` must work.
  ensure_host_tools
  local recipe
  recipe=$(image_recipe)
  if ((!force)) && [[ -s $IMAGE && -s $KERNEL && -s $INITRD && -s $KEY ]]; then
    if [[ $(cat "$RECIPE" 2>/dev/null) == "$recipe" ]]; then
      log "image cached: $IMAGE (recipe $recipe; use --force to rebuild)"
      return 0
    fi
    log "the cached image was built from another recipe ($(cat "$RECIPE" 2>/dev/null || echo unknown), now $recipe): rebuilding"
  fi
  [[ $EUID -eq 0 ]] || die "build needs root (debootstrap, chroot, file ownership in the image)"
  running_pid >/dev/null && die "the VM is running; stop it before rebuilding its image"
  : >"$BUILD_LOG"
  rm -f "$RECIPE"

  mirror=${E2E_MIRROR:-$(apt_uri_for_suite "$SUITE" || echo http://deb.debian.org/debian)}
  security=$(apt_uri_for_suite "$SUITE-security" || true)
  log "mirror: $mirror${security:+ (security: $security)}"

  # Build in a staging directory and move the results into place at the end, so an
  # interrupted build never leaves something that looks like a cache hit.
  cleanup_stage
  trap build_exit EXIT
  mkdir -p "$STAGE" "$DEB_CACHE"
  root=$STAGE/rootfs

  if [[ ! -s $KEY || $force -eq 1 ]]; then
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C "sandbox-e2e" -f "$KEY"
  fi

  log "debootstrap $SUITE (minbase + ${#GUEST_PACKAGES[@]} packages); log: $BUILD_LOG"
  t=$(now)
  local include
  include=$(commas "${GUEST_PACKAGES[@]}")
  if ! debootstrap --variant=minbase --include="$include" --cache-dir="$DEB_CACHE" \
    "$SUITE" "$root" "$mirror" >>"$BUILD_LOG" 2>&1; then
    # debootstrap keeps the details of a failed package in its own log inside the target.
    [[ -f $root/debootstrap/debootstrap.log ]] && cat "$root/debootstrap/debootstrap.log" >>"$BUILD_LOG"
    die "debootstrap failed; see $BUILD_LOG"
  fi
  umount_below "$root" # debootstrap normally unmounts its /proc and /sys; make sure
  log "debootstrap: $(since "$t") s"

  t=$(now)
  # Not `|| die`: that would switch off set -e inside the function. A failure exits through
  # build_exit, which shows the log.
  log "configuring the rootfs"
  configure_rootfs "$root" "$mirror" "$security" >>"$BUILD_LOG" 2>&1

  local kernels initrds
  kernels=("$root"/boot/vmlinuz-*)
  initrds=("$root"/boot/initrd.img-*)
  [[ ${#kernels[@]} -eq 1 && -f ${kernels[0]} ]] || die "expected one kernel in $root/boot"
  [[ ${#initrds[@]} -eq 1 && -f ${initrds[0]} ]] || die "expected one initrd in $root/boot"
  cp "${kernels[0]}" "$STAGE/vmlinuz"
  cp "${initrds[0]}" "$STAGE/initrd.img"
  log "configure: $(since "$t") s (kernel $(basename "${kernels[0]}"))"

  # A sparse raw image filled straight from the directory: no loop device, no mount, so it
  # works in an unprivileged-ish container too.
  t=$(now)
  truncate -s "$IMAGE_SIZE" "$STAGE/image.raw"
  mkfs.ext4 -q -F -L sandbox-root -d "$root" "$STAGE/image.raw" >>"$BUILD_LOG" 2>&1 ||
    die "mkfs.ext4 failed; see $BUILD_LOG"
  log "mkfs.ext4 -d: $(since "$t") s"

  mv -f "$STAGE/vmlinuz" "$KERNEL"
  mv -f "$STAGE/initrd.img" "$INITRD"
  mv -f "$STAGE/image.raw" "$IMAGE"
  echo "$recipe" >"$RECIPE"
  cleanup_stage
  trap - EXIT

  log "built $IMAGE ($IMAGE_SIZE sparse, $(du -h "$IMAGE" | cut -f1) used) in $(since "$t0") s"
}

# ---------------------------------------------------------------------------------------------
# start / ssh / stop / status

write_ssh_config() {
  local port=$1
  cat >"$SSH_CONFIG" <<EOF
# Written by tests/e2e/vm.sh start. Use: ssh -F $SSH_CONFIG $VM_HOSTNAME
Host $VM_HOSTNAME
  HostName 127.0.0.1
  Port $port
  User $VM_USER
  IdentityFile $KEY
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  # One connection for the many short commands of run.sh and redteam.sh: a new handshake costs
  # about 0.7 s against an emulated CPU.
  ControlMaster auto
  ControlPath $E2E_DIR/ssh-%C
  ControlPersist 120
EOF
}

cmd_start() {
  local workspace="" persist=0
  while (($#)); do
    case $1 in
    --workspace)
      (($# >= 2)) || die "--workspace needs a directory"
      workspace=$2
      shift
      ;;
    --workspace=*) workspace=${1#*=} ;;
    --persist) persist=1 ;;
    *) die "start: unknown argument $1" ;;
    esac
    shift
  done

  take_lock
  local pid
  if pid=$(running_pid); then
    die "already running (pid $pid, ssh port $(cat "$PORTFILE" 2>/dev/null || echo '?')); stop it first"
  fi
  [[ -s $IMAGE && -s $KERNEL && -s $INITRD && -s $KEY ]] || die "no image in $E2E_DIR; run: $0 build"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing; run: $0 build"
  rm -f "$PIDFILE"

  local port=${E2E_SSH_PORT:-2222}
  # qemu would fail on a busy port too, but only with a terse hostfwd error.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port is already in use; set E2E_SSH_PORT"
  fi
  echo "$port" >"$PORTFILE"
  rm -f "$E2E_DIR"/ssh-*
  write_ssh_config "$port"

  # shellcheck disable=SC2054 # the commas are qemu's option syntax, not array separators
  local args=(
    -name "$VM_HOSTNAME"
    # -nodefaults: no CD-ROM, VGA, parallel port or monitor; only the devices listed here.
    -nodefaults -machine q35 -accel tcg
    # -cpu max: the guest gets every instruction TCG can emulate (SSE4.2, AVX2...), so later
    # userland (Node.js and the like) does not trip on a bare qemu64 CPU.
    -cpu "$CPU_MODEL" -smp "$CPUS" -m "$MEM"
    -kernel "$KERNEL" -initrd "$INITRD"
    # net.ifnames=0: the NIC is eth0 (the networkd config also matches en*).
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0"
    -drive "file=$(qemu_escape "$IMAGE"),format=raw,if=virtio"
    # Only the guest's sshd is forwarded, and only on the host's loopback.
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22"
    -device virtio-net-pci,netdev=n0
    # Entropy for sshd and TLS right from early boot.
    -device virtio-rng-pci
    -display none
    -serial "file:$(qemu_escape "$SERIAL_LOG")"
    -daemonize -pidfile "$PIDFILE"
  )
  # -snapshot: writes go to a temporary overlay that qemu discards on exit, so every start
  # begins from the clean image. --persist writes to the image itself.
  ((persist)) || args+=(-snapshot)
  if [[ -n $workspace ]]; then
    [[ -d $workspace ]] || die "--workspace $workspace: not a directory"
    workspace=$(realpath "$workspace")
    # What Lima's qemu driver does for a read-only mount: 9p with security_model=none (the
    # guest sees the host's owners and modes) and readonly=on, enforced by qemu itself.
    args+=(-virtfs "local,path=$(qemu_escape "$workspace"),mount_tag=$WORKSPACE_TAG,security_model=none,readonly=on")
  fi

  local mode="-snapshot"
  ((persist)) && mode="persistent"
  log "booting (TCG, $mode${workspace:+, workspace $workspace}); serial console: $SERIAL_LOG"
  local t0
  t0=$(now)
  # TMPDIR: where -snapshot puts its overlay (unlinked at once, but keep it under E2E_DIR).
  mkdir -p "$E2E_DIR/tmp"
  # 9>&-: the daemonized qemu must not inherit the lock, or it would hold it until it exits.
  if ! TMPDIR=$E2E_DIR/tmp qemu-system-x86_64 "${args[@]}" >"$QEMU_LOG" 2>&1 9>&-; then
    cat "$QEMU_LOG" >&2
    die "qemu failed to start"
  fi
  pid=$(running_pid) || die "qemu exited right away; see $QEMU_LOG"

  local opts
  mapfile -t opts < <(ssh_opts)
  until ssh "${opts[@]}" -o BatchMode=yes -o ConnectTimeout=5 "$VM_USER@127.0.0.1" true 2>/dev/null; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$SERIAL_LOG" >&2 || true
      rm -f "$PIDFILE"
      die "qemu exited during boot (serial log above)"
    fi
    if (($(since "$t0") >= BOOT_TIMEOUT)); then
      log "no ssh after ${BOOT_TIMEOUT} s; serial console tail:"
      tail -n 40 "$SERIAL_LOG" >&2 || true
      die "boot timed out; the VM is still running (pid $pid): $0 stop"
    fi
    sleep 1
  done

  log "ssh up after $(since "$t0") s (pid $pid)"
  cat <<EOF
ssh ${opts[*]} $VM_USER@127.0.0.1
ssh -F $SSH_CONFIG $VM_HOSTNAME
EOF
}

cmd_ssh() {
  [[ ${1:-} == -- ]] && shift
  running_pid >/dev/null || die "not running; run: $0 start"
  # `--` so that command words starting with '-' are not taken as ssh options.
  if (($#)); then
    exec ssh -F "$SSH_CONFIG" "$VM_HOSTNAME" -- "$@"
  fi
  exec ssh -F "$SSH_CONFIG" "$VM_HOSTNAME"
}

# Where this machine's own traffic to package registries goes through a TLS-inspecting proxy,
# the VM needs that CA too, as a company VM would; on an ordinary machine there is nothing to copy.
cmd_trust_host_cas() {
  running_pid >/dev/null || die "not running; run: $0 start"
  local ca
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [[ -e $ca ]] || continue
    ssh -F "$SSH_CONFIG" "$VM_HOSTNAME" -- "sudo tee /usr/local/share/ca-certificates/host-$(basename "$ca") >/dev/null" <"$ca"
    ssh -F "$SSH_CONFIG" "$VM_HOSTNAME" -- 'sudo update-ca-certificates >/dev/null 2>&1'
  done
}

cmd_stop() {
  take_lock
  local pid waited=0 grace=$STOP_GRACE
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE" "$PORTFILE"
    log "not running"
    return 0
  fi
  # A clean poweroff first (the guest flushes its disk; matters with --persist). If ssh cannot
  # even deliver it (a VM still booting, or hung), waiting the full grace period is pointless.
  log "powering off (pid $pid)"
  if ! ssh -F "$SSH_CONFIG" -o BatchMode=yes -o ConnectTimeout=5 "$VM_HOSTNAME" sudo systemctl poweroff \
    >/dev/null 2>&1; then
    ((grace > 5)) && grace=5
  fi
  while kill -0 "$pid" 2>/dev/null && ((waited < grace)); do
    sleep 1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after ${grace} s; killing pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    sleep 3
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE" "$PORTFILE"
  # The multiplexing master's socket (its connection died with the VM).
  rm -f "$E2E_DIR"/ssh-*
  log "stopped after ${waited} s"
}

# A minbase Debian, as `sandbox`'s podman role would debootstrap in the VM but slimmed as
# Debian's -slim images are, built here from the same mirror and .deb cache as the image (the
# guest doing it under TCG would take minutes). Prints the archive's path.
cmd_rootfs() {
  # Named for its recipe, so that an archive built with other packages is not reused.
  local recipe out mirror stage=$E2E_DIR/rootfs.tmp include
  recipe=$({ declare -p SUITE TOOL_ROOTFS_PACKAGES TOOL_ROOTFS_SLIM TOOL_ROOTFS_KEEP; declare -f cmd_rootfs; } | sha256sum | cut -c1-12)
  out=$E2E_DIR/tool-rootfs-$recipe.tar.gz
  if [[ -s $out ]]; then
    echo "$out"
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "rootfs needs root (debootstrap)"
  mirror=${E2E_MIRROR:-$(apt_uri_for_suite "$SUITE" || echo http://deb.debian.org/debian)}
  umount_below "$stage" 2>/dev/null || true
  rm -rf "$stage"
  mkdir -p "$stage" "$DEB_CACHE"
  include=$(commas "${TOOL_ROOTFS_PACKAGES[@]}")
  if ! debootstrap --variant=minbase --include="$include" --cache-dir="$DEB_CACHE" "$SUITE" "$stage/root" "$mirror" \
    >>"$BUILD_LOG" 2>&1; then
    umount_below "$stage"
    die "debootstrap (tool rootfs) failed; see $BUILD_LOG"
  fi
  umount_below "$stage"
  rm -rf "$stage/root"/var/cache/apt/archives/*.deb "$stage/root"/var/lib/apt/lists/*
  # Files only: the folders stay, as on the -slim images (a package's postinst may expect
  # /usr/share/man/man1).
  local dir keep=()
  for dir in "${TOOL_ROOTFS_KEEP[@]}"; do keep+=(! -path "$stage/root$dir"); done
  for dir in "${TOOL_ROOTFS_SLIM[@]}"; do
    [[ -d $stage/root$dir ]] || continue
    find "$stage/root$dir" -mindepth 1 ! -type d "${keep[@]}" -delete
  done
  # And so they stay out of what apt installs in a container later.
  {
    printf 'path-exclude %s/*\n' "${TOOL_ROOTFS_SLIM[@]}"
    printf 'path-include %s\n' "${TOOL_ROOTFS_KEEP[@]}"
  } >"$stage/root/etc/dpkg/dpkg.cfg.d/90slim"
  tar -C "$stage/root" --numeric-owner -czf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$stage"
  echo "$out"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    echo "running (pid $pid), ssh on 127.0.0.1:$(cat "$PORTFILE"); ssh -F $SSH_CONFIG $VM_HOSTNAME"
    return 0
  fi
  if [[ -s $IMAGE ]]; then echo "stopped; image $IMAGE"; else echo "stopped; image not built"; fi
  return 3
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
  build) cmd_build "$@" ;;
  start) cmd_start "$@" ;;
  ssh) cmd_ssh "$@" ;;
  trust-host-cas) cmd_trust_host_cas "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  rootfs) cmd_rootfs "$@" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
  esac
}

main "$@"
