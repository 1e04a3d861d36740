#!/usr/bin/env bash
# Fuzz sandbox's parsers of hostile input with afl.rs on stable Rust, each for a fixed time, then
# report crashes and hangs per target. Not run in CI (see README.md).
#
#   fuzz/run.sh [TARGET...]      targets: tar upper dotenv profile (default: all, one after another)
#
# Environment: FUZZ_SECONDS (per target, default 600), FUZZ_TIMEOUT_MS (per execution, default
# 1000: a slower input is saved as a hang), FUZZ_MEMORY_MB (default 1024), FUZZ_NO_BUILD=1 (reuse
# the last build), CARGO_TARGET_DIR. Output: fuzz/out/<target>/default/{crashes,hangs,queue};
# a previous run's output is moved to fuzz/out/<target>.prev first.
# Exit status: 0 when no target found a crash or hang, 1 when one did, 2 on a setup error.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

all_targets=(tar upper dotenv profile)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "run.sh: unknown target \`$t\` (${all_targets[*]})" >&2; exit 2; }
done

seconds=${FUZZ_SECONDS:-600}
timeout_ms=${FUZZ_TIMEOUT_MS:-1000}
memory_mb=${FUZZ_MEMORY_MB:-1024}
target_dir=${CARGO_TARGET_DIR:-$here/target}

command -v cargo-afl >/dev/null || { echo "run.sh: cargo-afl not found: cargo install cargo-afl" >&2; exit 2; }

if [[ ${FUZZ_NO_BUILD:-0} != 1 ]]; then
    cargo afl build --release --bins
fi

# The harnesses make a temporary directory per input: keep that in memory when possible.
scratch_root=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && scratch_root=/dev/shm

# afl-fuzz checks the machine's core_pattern and CPU governor, which a container cannot change;
# several fuzzers may share the cores.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

mkdir -p out
status=0
summary=()
for t in "${targets[@]}"; do
    out=out/$t
    if [[ -d $out ]]; then
        rm -rf "$out.prev"
        mv "$out" "$out.prev"
    fi
    scratch=$(mktemp -d "$scratch_root/sandbox-fuzz-$t.XXXXXX")
    dict=()
    [[ -f dict/$t.dict ]] && dict=(-x "dict/$t.dict")
    echo "== $t: ${seconds}s, ${timeout_ms} ms per input, seeds/$t -> $out" >&2
    start=$(date +%s)
    # -V: stop after that many seconds; -t: an input slower than this is a hang.
    TMPDIR=$scratch cargo afl fuzz -i "seeds/$t" -o "$out" -V "$seconds" -t "$timeout_ms" -m "$memory_mb" \
        "${dict[@]}" "$target_dir/release/$t" >"out/$t.log" 2>&1 || {
        echo "run.sh: afl-fuzz failed for $t; see fuzz/out/$t.log:" >&2
        tail -n 20 "out/$t.log" >&2
        status=2
    }
    wall=$(($(date +%s) - start))
    rm -rf "$scratch"
    crashes=$(find "$out/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
    hangs=$(find "$out/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
    stats=$out/default/fuzzer_stats
    field() { sed -n "s/^$1 *: *//p" "$stats" 2>/dev/null; }
    summary+=("$(printf '%-8s %4ss wall  execs %-10s corpus %-6s edges %-6s cover %-7s crashes %s  hangs %s' \
        "$t" "$wall" "$(field execs_done)" "$(field corpus_count)" "$(field edges_found)" "$(field bitmap_cvg)" \
        "$crashes" "$hangs")")
    if ((crashes + hangs > 0)); then
        [[ $status == 0 ]] && status=1
        find "$out/default/crashes" "$out/default/hangs" -name 'id:*' 2>/dev/null | sed 's/^/  found: fuzz\//' >&2
    fi
done

printf '%s\n' "${summary[@]}"
if ((status == 1)); then
    echo "crashes or hangs found: reproduce with \`fuzz/target/release/TARGET < FILE\`;" \
        "minimise with \`cargo afl tmin\`" >&2
fi
exit "$status"
