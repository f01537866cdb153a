#!/usr/bin/env bash
# Runs every fuzz property of the workspace for longer than `cargo test` does: the same
# proptest properties (every test whose name contains `fuzz`, in bowline-config,
# bowline-model and bowline-proxy), optimised, CASES cases each, THREADS at a time, and
# prints each one's cases and time. What it runs is what
#
#   PROPTEST_CASES=$CASES cargo test --release -p bowline-config -p bowline-model \
#       -p bowline-proxy fuzz -- --test-threads=2
#
# runs, one property per process so that each can be timed.
#
#   CASES    cases per property (default 100000)
#   THREADS  properties run at once (default 2)
#   FILTER   only properties whose name contains this (default: all fuzz properties)
#   LTO      the release profile's LTO for this build (default off: linking four test
#            binaries with the workspace's fat LTO takes longer than many runs)
#
# A failure is shrunk by proptest, printed, and saved in the crate's regression file
# (see fuzz/README.md), which later runs and `cargo test` replay first.
set -euo pipefail

cd "$(dirname "$0")/.."
CASES=${CASES:-100000}
THREADS=${THREADS:-2}
FILTER=${FILTER:-}
export CARGO_PROFILE_RELEASE_LTO=${LTO:-off}

packages=(-p bowline-config -p bowline-model -p bowline-proxy)
# The library tests hold most properties; the xDS conversions are an integration test.
targets=(--lib --test fuzz_xds)

echo "building the fuzz properties (release, LTO ${CARGO_PROFILE_RELEASE_LTO})..."
executables=$(
    cargo test --release "${packages[@]}" "${targets[@]}" --no-run --message-format=json |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | sort -u
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One line per property: executable <tab> test name.
for exe in $executables; do
    "$exe" --list --format=terse fuzz 2>/dev/null | sed -n 's/: test$//p' |
        grep -F -- "$FILTER" | sed "s|^|$exe\t|" || true
done >"$work/properties"
count=$(wc -l <"$work/properties")
if [ "$count" -eq 0 ]; then
    echo "no fuzz properties match '$FILTER'" >&2
    exit 1
fi
echo "running $count properties, $CASES cases each, $THREADS at a time"

# Seconds since the epoch, with fractions; and the difference of two of them.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Runs one property; prints its result line, and its output if it fails.
run_one() {
    local exe=$1 name=$2 crate start status
    crate=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
    start=$(now)
    if PROPTEST_CASES=$CASES "$exe" --exact "$name" --test-threads=1 >"$work/$crate.$name.log" 2>&1; then
        status=ok
    else
        status=FAILED
    fi
    printf '%-6s %8ss %9s cases  %-14s %s\n' "$status" "$(elapsed "$start" "$(now)")" \
        "$CASES" "$crate" "$name" | tee -a "$work/results"
    if [ "$status" = FAILED ]; then
        sed 's/^/    /' "$work/$crate.$name.log"
    fi
    return 0
}

started=$(now)
while IFS=$'\t' read -r exe name; do
    while [ "$(jobs -rp | wc -l)" -ge "$THREADS" ]; do
        wait -n
    done
    run_one "$exe" "$name" &
done <"$work/properties"
wait

failed=$(grep -c '^FAILED' "$work/results" || true)
printf '\n%d properties, %d cases in all, %ss wall clock; %d failed\n' \
    "$count" "$((count * CASES))" "$(elapsed "$started" "$(now)")" "$failed"
[ "$failed" -eq 0 ]
