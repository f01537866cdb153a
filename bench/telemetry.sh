#!/usr/bin/env bash
# What telemetry costs bowline-proxy: the harness's one-hop scenario with telemetry off
# (envoy-1hop.yaml.tmpl) and on (bench/configs/bowline-telemetry.yaml.tmpl: Istio's standard
# metrics and 1 % Zipkin tracing), back to back with the same settings, each run with its
# own `direct` row. The harness has one slot for a custom one-hop proxy, hence two runs —
# alternated, one repetition each, PAIRS times (off, on, off, on, …), so that a drift of the
# machine during the run weighs on both rows alike.
#
#   bench/telemetry.sh                         # 5 pairs
#   PAIRS=1 TPUT_SECS=3 bench/telemetry.sh     # a quick look
#
# Each pair's rows are in $out/off-N and $out/on-N; the summary at the end gives each
# pair's CPU per request and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${BENCH_HARNESS:-$root/../shared/bench}
out=${BENCH_OUT:-${TMPDIR:-/tmp}/bowline-telemetry-bench}
mkdir -p "$out"
export SCENARIOS=direct,bowline SKIP_STARTUP=${SKIP_STARTUP:-1} REPS=1
pairs=${PAIRS:-5}
for n in $(seq 1 "$pairs"); do
    BENCH_OUT=$out/off-$n CUSTOM_CONFIG=$harness/configs/envoy-1hop.yaml.tmpl bench/run.sh
    BENCH_OUT=$out/on-$n CUSTOM_CONFIG=$root/bench/configs/bowline-telemetry.yaml.tmpl bench/run.sh
done
# bowline's row of each run: req/s and proxy CPU µs per request (results.csv columns 8, 14).
row() { awk -F, '$2=="bowline"{print $8, $14}' "$1/results.csv"; }
echo "pair  off: req/s  µs/req   on: req/s  µs/req   on/off"
for n in $(seq 1 "$pairs"); do
    read -r off_rps off_us < <(row "$out/off-$n")
    read -r on_rps on_us < <(row "$out/on-$n")
    awk -v n="$n" -v a="$off_rps" -v b="$off_us" -v c="$on_rps" -v d="$on_us" \
        'BEGIN { printf "%4d  %10.0f %7.2f  %10.0f %7.2f   %+.1f%%\n", n, a, b, c, d, (d / b - 1) * 100 }'
done | tee "$out/pairs.txt"
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
off_med=$(awk '{ print $3 }' "$out/pairs.txt" | median)
on_med=$(awk '{ print $5 }' "$out/pairs.txt" | median)
awk -v a="$off_med" -v b="$on_med" 'BEGIN { printf "median µs/req: off %.2f, on %.2f (%+.1f%%)\n", a, b, (b / a - 1) * 100 }'
echo "results: $out/off-N and $out/on-N"
