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

def fresh_host(name):
    host = os.path.join(w, name)
    shutil.rmtree(host, ignore_errors=True)
    os.makedirs(host)
    with open(os.path.join(host, "README.md"), "w") as fh:
        fh.write("# host project\n")
    return host

def timed(cmd, env=None, cwd=None):
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    return time.perf_counter() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status), err

home = os.path.join(w, "home")
os.makedirs(os.path.join(home, ".config/sandbox/profiles"), exist_ok=True)
env = dict(os.environ, HOME=home, XDG_STATE_HOME=os.path.join(home, "state"), XDG_CONFIG_HOME=os.path.join(home, ".config"), NO_COLOR="1")

sandbox_runs = []
for run in range(args.runs):
    host = fresh_host(f"host-sandbox")
    with open(os.path.join(home, ".config/sandbox/profiles/bench.yaml"), "w") as fh:
        fh.write(f"name: bench\nextends: default\nworkspaces: [{{host: {host}}}]\nsync: {{max_files: 20000, max_total_size: 1GiB, max_file_size: 10MiB}}\n")
    subprocess.run([args.sandbox, "baseline", host], env=env, check=True, stderr=subprocess.DEVNULL)
    t, rss, code, err = timed([args.sandbox, "--profile", "bench", "sync", "--from-dir", upper, "--to", host, "--yes"], env=env, cwd=home)
    if code != 0:
        sys.exit(f"sandbox sync failed ({code}): {err[-2000:]}")
    sandbox_runs.append((t, rss))

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
    host = fresh_host("host-prior")
    staging = os.path.join(w, "staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(upper, staging)  # the prior art rsyncs the upper into a staging dir first
    t, rss, code, err = timed(["bash", prior_script, staging, host, args.gitleaks])
    if code != 0:
        sys.exit(f"prior-art pipeline failed ({code}): {err[-2000:]}")
    prior_runs.append((t, rss))

st = statistics.median(t for t, _ in sandbox_runs)
pt = statistics.median(t for t, _ in prior_runs)
print(f"change set: {args.files} files, {total / 1e6:.1f} MB (real C sources), into a near-empty host; {os.cpu_count()} CPUs; median of {args.runs}")
print(f"{'pipeline':<44}{'wall s':>8}{'peak RSS MiB':>14}")
print(f"{'prior art (find + file + gitleaks + rsync)':<44}{pt:>8.2f}{max(r for _, r in prior_runs) / 1024:>14.1f}")
print(f"{'sandbox sync (plan + policy + scan + apply)':<44}{st:>8.2f}{max(r for _, r in sandbox_runs) / 1024:>14.1f}")
print(f"speed-up: {pt / st:.1f}x")
