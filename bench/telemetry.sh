#!/usr/bin/env bash
# What telemetry costs bowline-proxy: the harness's one-hop scenario with telemetry off
# (envoy-1hop.yaml.tmpl) and on (bench/configs/bowline-telemetry.yaml.tmpl: Istio's standard
# metrics and 1 % Zipkin tracing), back to back with the same settings, each run with its
# own `direct` row. The harness has one slot for a custom one-hop proxy, hence two runs.
#
#   bench/telemetry.sh                      # 3 repetitions each
#   REPS=1 TPUT_SECS=3 bench/telemetry.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${BENCH_HARNESS:-$root/../shared/bench}
out=${BENCH_OUT:-${TMPDIR:-/tmp}/bowline-telemetry-bench}
mkdir -p "$out"
export SCENARIOS=direct,bowline SKIP_STARTUP=${SKIP_STARTUP:-1}
BENCH_OUT=$out/off CUSTOM_CONFIG=$harness/configs/envoy-1hop.yaml.tmpl bench/run.sh
BENCH_OUT=$out/on CUSTOM_CONFIG=$root/bench/configs/bowline-telemetry.yaml.tmpl bench/run.sh
echo "results: $out/off and $out/on"
