#!/usr/bin/env bash
# Renders the bowline chart as `helm install` would put it into bowline-system, default values
# unless more helm arguments are given (e.g. `-f my-values.yaml`, `--set replicaCount=3`).
# Used by crates/kube/tests/deploy_manifests.rs to compare the chart with deploy/kubernetes/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec helm template bowline "$here/bowline" --namespace "${NAMESPACE:-bowline-system}" "$@"
