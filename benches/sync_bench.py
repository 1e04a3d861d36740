"""Driver for benches/sync.sh."""
import argparse, os, shutil, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--sandbox", required=True)
p.add_argument("--gitleaks", required=True)
p.add_argument("--work", required=True)
p.add_argument("--files", type=int, default=10_000)
p.add_argument("--mb", type=int, default=200)
p.add_argument("--runs", type=int, default=3)
args = p.parse_args()

w = args.work
shutil.rmtree(w, ignore_errors=True)
os.makedirs(w)
upper = os.path.join(w, "upper")
# Content: real source text (this machine's /usr/include), cut into files of the target size.
sources = []
for d, _, fs in os.walk("/usr/include"):
    for f in sorted(fs):
        path = os.path.join(d, f)
        if os.path.isfile(path) and not os.path.islink(path):
            sources.append(path)
sources.sort()
blob = b"".join(open(s, "rb").read() for s in sources[:4000])
size = args.mb * 1_000_000 // args.files
offset = 0
for i in range(args.files):
    path = os.path.join(upper, f"pkg{i % 50:02d}", f"mod{i % 7}", f"file{i:05d}.c")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if offset + size > len(blob):
        offset = 0
    with open(path, "wb") as fh:
        fh.write(blob[offset:offset + size])
    offset += size
total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(upper) for f in fs)

# Each run gets a freshly made ext4 filesystem (a loop device) for everything it writes: on a
# filesystem where 10,000 files were just deleted, ext4 skips the recently freed inodes one by
# one when allocating new ones, and creating 10,000 files costs seconds more for whichever
# pipeline runs next. Without root (no loop devices) the runs share `w`, with that noise.
ROOT = os.geteuid() == 0 and shutil.which("mkfs.ext4") is not None

def fresh_fs(name):
    mnt = os.path.join(w, name)
    if os.path.ismount(mnt):
        subprocess.run(["umount", mnt], check=True)
    shutil.rmtree(mnt, ignore_errors=True)
    os.makedirs(mnt)
    if ROOT:
        img = os.path.join(w, name + ".img")
        with open(img, "wb") as fh:
            fh.truncate(2 << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    return mnt

def drop_fs(mnt):
    if ROOT and os.path.ismount(mnt):
        subprocess.run(["umount", mnt], check=True)
        os.remove(mnt + ".img")
    shutil.rmtree(mnt, ignore_errors=True)

def fresh_host(root):
    host = os.path.join(root, "host")
    os.makedirs(host)
    with open(os.path.join(host, "README.md"), "w") as fh:
        fh.write("# host project\n")
    return host

def timed(cmd, env=None, cwd=None):
    """Wall time and peak RSS (KiB) of `cmd`, measured by GNU time around it: `wait4` on a child of
    this Python process would report Python's own size at fork for a smaller child."""
    rss_file = os.path.join(w, "rss")
    t = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, _ = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    rss = int(open(rss_file).read().split()[-1])
    return elapsed, rss, os.waitstatus_to_exitcode(status), err

del blob, sources
sandbox_runs = []
for run in range(args.runs):
    fs = fresh_fs("fs-sandbox")
    # The state directory (baseline, stage, journal) lives beside the workspace, as under $HOME.
    home = os.path.join(fs, "home")
    os.makedirs(os.path.join(home, ".config/sandbox/profiles"), exist_ok=True)
    env = dict(os.environ, HOME=home, XDG_STATE_HOME=os.path.join(home, "state"), XDG_CONFIG_HOME=os.path.join(home, ".config"), NO_COLOR="1")
    host = fresh_host(fs)
    with open(os.path.join(home, ".config/sandbox/profiles/bench.yaml"), "w") as fh:
        fh.write(f"name: bench\nextends: default\nworkspaces: [{{host: {host}}}]\nsync: {{max_files: 20000, max_total_size: 1GiB, max_file_size: 10MiB}}\n")
    subprocess.run([args.sandbox, "baseline", host], env=env, check=True, stderr=subprocess.DEVNULL)
    t, rss, code, err = timed([args.sandbox, "--profile", "bench", "sync", "--from-dir", upper, "--to", host, "--yes"], env=env, cwd=home)
    if code != 0:
        sys.exit(f"sandbox sync failed ({code}): {err[-2000:]}")
    sandbox_runs.append((t, rss))
    drop_fs(fs)

prior = r'''
set -euo pipefail
STAGING="$1"; HOST="$2"; GITLEAKS="$3"
for ext in .env .pem .key .p12 .pfx .jks .keystore .secret .credentials; do
  if [ -n "$(find "$STAGING" -name "*$ext" -type f)" ]; then echo "blocked $ext"; exit 1; fi
done
find "$STAGING" -type f -size +10M | while read -r f; do echo "warning: large $f"; done
# --exit-code 0: a finding in these real sources must not stop the run being measured.
"$GITLEAKS" detect --source="$STAGING" --no-git --no-banner --exit-code 0 >/dev/null 2>&1
find "$STAGING" -type f | while read -r f; do
  if file -b "$f" | grep -qE 'ELF|Mach-O|executable|shared object'; then echo "warning: binary $f"; fi
done
find "$STAGING" -type f | while read -r f; do
  case "${f##*.}" in ts|js|json|md|yml|yaml|sh|css|html|svg|txt|map|mjs|cjs|jsx|tsx|lock|toml|cfg|ini|py|rs|go) ;; *) : ;; esac
done
find "$STAGING" -type f -exec du -b {} + > /dev/null
rsync -a --ignore-existing "$STAGING"/ "$HOST"/
'''
prior_script = os.path.join(w, "prior-art-gate.sh")
with open(prior_script, "w") as fh:
    fh.write(prior)
prior_runs = []
for run in range(args.runs):
    fs = fresh_fs("fs-prior")
    host = fresh_host(fs)
    staging = os.path.join(fs, "staging")
    shutil.copytree(upper, staging)  # the prior art rsyncs the upper into a staging dir first (not timed)
    t, rss, code, err = timed(["bash", prior_script, staging, host, args.gitleaks])
    if code != 0:
        sys.exit(f"prior-art pipeline failed ({code}): {err[-2000:]}")
    prior_runs.append((t, rss))
    drop_fs(fs)

st = statistics.median(t for t, _ in sandbox_runs)
pt = statistics.median(t for t, _ in prior_runs)
print(f"change set: {args.files} files, {total / 1e6:.1f} MB (real C sources), into a near-empty host; {os.cpu_count()} CPUs; median of {args.runs}")
print("each run on a fresh ext4 filesystem (loop device)" if ROOT else "runs share the work directory's filesystem (not root)")
print(f"{'pipeline':<44}{'wall s':>8}{'peak RSS MiB':>14}")
print(f"{'prior art (find + file + gitleaks + rsync)':<44}{pt:>8.2f}{max(r for _, r in prior_runs) / 1024:>14.1f}")
print(f"{'sandbox sync (plan + policy + scan + apply)':<44}{st:>8.2f}{max(r for _, r in sandbox_runs) / 1024:>14.1f}")
print(f"speed-up: {pt / st:.1f}x")
