"""Driver for benches/scan.sh: builds the corpus, plants secrets, runs each tool, prints figures."""
import argparse, json, os, random, shutil, statistics, string, subprocess, sys, sysconfig, time

p = argparse.ArgumentParser()
p.add_argument("--sandbox", required=True)
p.add_argument("--gitleaks", required=True)
p.add_argument("--config", required=True)
p.add_argument("--work", required=True)
p.add_argument("--target-mb", type=int, default=200)
p.add_argument("--runs", type=int, default=3)
args = p.parse_args()

corpus = os.path.join(args.work, "corpus")
rng = random.Random(7)

def rand(alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))

ALNUM = string.ascii_letters + string.digits
# Synthetic secrets in well-known formats (not real credentials), each on its own line.
PLANTS = [
    lambda: f'GITHUB_TOKEN = "ghp_{rand(ALNUM, 36)}"',
    lambda: f"aws_access_key_id = AKIA{rand(string.ascii_uppercase + '234567', 16)}",
    lambda: f'stripe_key = "sk_live_{rand(ALNUM, 32)}"',
    lambda: f'SLACK_WEBHOOK = "https://hooks.slack.com/services/T{rand(string.ascii_uppercase + string.digits, 8)}/B{rand(string.ascii_uppercase + string.digits, 8)}/{rand(ALNUM, 24)}"',
    lambda: f'gitlab_token = "glpat-{rand(ALNUM, 20)}"',
    lambda: f'npm_token = "npm_{rand(ALNUM, 36)}"',
]

def build_corpus():
    if os.path.isdir(corpus):
        return
    tmp = corpus + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree("/usr/include", os.path.join(tmp, "include"), symlinks=True)
    stdlib = sysconfig.get_paths()["stdlib"]
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs if os.path.isfile(os.path.join(d, f)))
    for d, dirs, files in os.walk(stdlib):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith(".py") or total > args.target_mb * 1_000_000:
                continue
            src = os.path.join(d, f)
            dst = os.path.join(tmp, "python", os.path.relpath(src, stdlib))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
            total += os.path.getsize(dst)
    # Plant 60 secrets in random files at random lines; remember where.
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))
    planted = []
    for i in range(60):
        path = rng.choice(files)
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
        at = rng.randrange(len(lines))
        lines.insert(at, PLANTS[i % len(PLANTS)]().encode())
        with open(path, "wb") as fh:
            fh.write(b"\n".join(lines))
        planted = [(f, l + 1 if f == path and l >= at else l) for f, l in planted]
        planted.append((path, at + 1))
    with open(os.path.join(args.work, "planted.json"), "w") as fh:
        json.dump([(os.path.relpath(f, tmp), l) for f, l in planted], fh)
    os.rename(tmp, corpus)

def corpus_bytes(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))

def run(cmd, out=None):
    """Wall time and peak RSS (KiB) of one command; stdout goes to the file `out`."""
    stdout = open(out, "w") if out else subprocess.DEVNULL
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if out:
        stdout.close()
    wall = time.perf_counter() - t
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)

def median_run(cmd, **kw):
    results = [run(cmd, **kw) for _ in range(args.runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results), results[-1][2]

build_corpus()
planted = json.load(open(os.path.join(args.work, "planted.json")))
mb = corpus_bytes(corpus) / 1e6
nfiles = sum(len(fs) for _, _, fs in os.walk(corpus))
print(f"corpus: {mb:.1f} MB in {nfiles} files, {len(planted)} planted secrets; {os.cpu_count()} CPUs")

# Warm the page cache, then cat as the ceiling.
cat_cmd = ["sh", "-c", f"find '{corpus}' -type f -print0 | xargs -0 cat > /dev/null"]
run(cat_cmd)
cat_t, _, _ = median_run(cat_cmd)

sb_out = os.path.join(args.work, "sandbox.json")
gl_out = os.path.join(args.work, "gitleaks.json")
sb_cmd = [args.sandbox, "scan", "--config", args.config, "--no-ignore-files", "--format", "json", corpus]
gl_cmd = [args.gitleaks, "dir", corpus, "-c", args.config, "-f", "json", "-r", gl_out, "--no-banner", "--exit-code", "0", "--log-level", "error"]
sb_t, sb_rss, sb_code = median_run(sb_cmd, out=sb_out)
gl_t, gl_rss, gl_code = median_run(gl_cmd)
builtin_cmd = [args.sandbox, "scan", "--no-ignore-files", "--format", "json", corpus]
bi_out = os.path.join(args.work, "builtin.json")
bi_t, bi_rss, _ = median_run(builtin_cmd, out=bi_out)

empty = os.path.join(args.work, "empty")
os.makedirs(empty, exist_ok=True)
def startup(cmd, n=20):
    return statistics.mean(run(cmd)[0] for _ in range(n)) * 1000
sb_start = startup([args.sandbox, "scan", "--config", args.config, "--no-ignore-files", empty])
sb_start_builtin = startup([args.sandbox, "scan", "--no-ignore-files", empty])
gl_start = startup([args.gitleaks, "dir", empty, "-c", args.config, "--no-banner", "--exit-code", "0", "--log-level", "error"], 5)

# Peak RSS on a 1 GB tree: five hard-linked copies of the corpus.
big = os.path.join(args.work, "corpus-1g")
if not os.path.isdir(big):
    os.makedirs(big)
    for i in range(5):
        subprocess.run(["cp", "-al", corpus, os.path.join(big, f"copy{i}")], check=True)
big_mb = corpus_bytes(big) / 1e6
big_t, big_rss, _ = run([args.sandbox, "scan", "--config", args.config, "--no-ignore-files", "--format", "json", big], out=os.path.join(args.work, "big.json"))

def found(report, key_path, key_line, key_rule):
    data = json.load(open(report)) or []
    return {(os.path.relpath(f[key_path], corpus), f[key_line]) for f in data}, data

sb_set, sb_data = found(sb_out, "path", "line", "rule_id")
gl_set, gl_data = found(gl_out, "File", "StartLine", "RuleID")
bi_set, _ = found(bi_out, "path", "line", "rule_id")
planted_set = {tuple(p) for p in planted}
print()
print(f"{'tool':<34}{'wall s':>8}{'MB/s':>9}{'peak RSS MiB':>14}{'findings':>10}{'planted found':>15}")
def row(name, t, rss, n, s):
    print(f"{name:<34}{t:>8.2f}{mb / t:>9.1f}{rss / 1024:>14.1f}{n:>10}{len(planted_set & s):>11}/{len(planted_set)}")
row("cat (ceiling)", cat_t, 0, 0, set())
row("gitleaks 8.30.1 dir (its config)", gl_t, gl_rss, len(gl_data), gl_set)
row("sandbox scan (gitleaks config)", sb_t, sb_rss, len(sb_data), sb_set)
row("sandbox scan (built-in rules)", bi_t, bi_rss, len(json.load(open(bi_out))), bi_set)
print()
print(f"throughput ratio sandbox/gitleaks (same config): {gl_t / sb_t:.1f}x")
print(f"sandbox time / cat time: {sb_t / cat_t:.2f}x")
print(f"start-up on an empty directory: sandbox {sb_start:.1f} ms (gitleaks config), {sb_start_builtin:.1f} ms (built-in); gitleaks {gl_start:.0f} ms")
print(f"peak RSS on a {big_mb:.0f} MB tree: sandbox {big_rss / 1024:.1f} MiB ({big_t:.1f} s)")
missing_sb = planted_set - sb_set
missing_gl = planted_set - gl_set
print(f"planted secrets found: sandbox {len(planted_set) - len(missing_sb)}, gitleaks {len(planted_set) - len(missing_gl)}; "
      f"found by gitleaks but not sandbox: {sorted(planted_set & gl_set - sb_set)}")
