#!/usr/bin/env bash
# Benchmarks bowline-proxy beside Envoy 1.40, nginx, HAProxy and a direct connection, in one
# run of the shared loopback harness (../shared/bench, see its README), proxy pinned to one
# core. bowline-proxy starts from the very bootstrap Envoy uses (envoy-1hop.yaml.tmpl).
#
#   bench/run.sh                                     # the full run behind bench/RESULTS.md
#   REPS=1 TPUT_SECS=3 LAT_SECS=3 STARTUP_RUNS=2 bench/run.sh    # a quick smoke run
#
# Needs: nginx haproxy wrk (apt), oha (cargo install oha), Envoy in .venv-envoy (.ci/run or
# examples/quickstart/run.sh installs it). Every knob of the harness passes through.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${BENCH_HARNESS:-$root/../shared/bench}
[ -x "$harness/run.sh" ] || { echo "bench harness not found at $harness (set BENCH_HARNESS)" >&2; exit 2; }

cargo build --release --quiet -p bowline-proxy-bin
export ENVOY_VENV=${ENVOY_VENV:-${BOWLINE_ENVOY_VENV:-$root/.venv-envoy}}
export CUSTOM_NAME=${CUSTOM_NAME:-bowline}
export CUSTOM_CONFIG=${CUSTOM_CONFIG:-$harness/configs/envoy-1hop.yaml.tmpl}
export CUSTOM_CMD=${CUSTOM_CMD:-"$root/target/release/bowline-proxy -c {{config}} --concurrency 1 -l warning"}
# The two-hop mTLS pair: the very configs of the harness's Envoy pair (HTTP/1.1 between the
# sidecars, the client checking the server's SPIFFE id and the server the client's), the
# client's protocol placeholders filled as the harness fills them for envoy-mtls2.
pair=$(mktemp -d "${TMPDIR:-/tmp}/bowline-bench.XXXXXX")
mkdir -p "$pair"
sed -e 's/{{peer_protocol_options}}//' -e 's|{{peer_alpn}}|"http/1.1"|' \
  "$harness/configs/envoy-mtls-client.yaml.tmpl" >"$pair/mtls-client.yaml.tmpl"
export CUSTOM2_CLIENT_CONFIG=${CUSTOM2_CLIENT_CONFIG:-$pair/mtls-client.yaml.tmpl}
export CUSTOM2_SERVER_CONFIG=${CUSTOM2_SERVER_CONFIG:-$harness/configs/envoy-mtls-server.yaml.tmpl}
export CUSTOM2_CLIENT_CMD=${CUSTOM2_CLIENT_CMD:-"$root/target/release/bowline-proxy -c {{config}} --concurrency 1 -l warning"}
export CUSTOM2_SERVER_CMD=${CUSTOM2_SERVER_CMD:-"$root/target/release/bowline-proxy -c {{config}} --concurrency 1 -l warning"}
export SCENARIOS=${SCENARIOS:-direct,envoy,nginx,haproxy,$CUSTOM_NAME,envoy-mtls2,$CUSTOM_NAME-mtls2}
exec "$harness/run.sh"
