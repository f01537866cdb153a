#!/usr/bin/env bash
# Istio's bookinfo on a local kind (or k3d) cluster with bowline as the mesh:
#   1. creates the cluster if it does not exist (kind: CLUSTER, default "bowline");
#   2. creates the plug-in CA Secret `cacerts` with openssl (Istio's layout: a root and an
#      intermediate; ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem);
#   3. builds both images (deploy/docker/build.sh) and loads them into the cluster;
#   4. installs the CRDs and the control plane (the Helm chart when helm is on PATH, else
#      deploy/crds + deploy/kubernetes) and waits for it;
#   5. labels `default` with istio-injection=enabled, applies bookinfo (BOOKINFO, a path or
#      URL; default: Istio's release-1.24 sample), waits for its rollouts;
#   6. curls productpage from the ratings pod.
# Needs docker, kubectl, openssl, and kind or k3d. Each wait is bounded (TIMEOUT, default
# 300s); nothing is deleted afterwards (`kind delete cluster --name bowline`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${CLUSTER:-bowline}
HUB=${HUB:-ghcr.io/bowline-mesh}
TAG=${TAG:-0.1.0}
NAMESPACE=bowline-system
TIMEOUT=${TIMEOUT:-300s}
BOOKINFO=${BOOKINFO:-https://raw.githubusercontent.com/istio/istio/release-1.24/samples/bookinfo/platform/kube/bookinfo.yaml}
export HUB TAG

log() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

for tool in docker kubectl openssl; do
  have "$tool" || { echo "bookinfo.sh: $tool is required" >&2; exit 1; }
done
if [ -n "${CLUSTER_TOOL:-}" ]; then
  tool=$CLUSTER_TOOL
elif have kind; then
  tool=kind
elif have k3d; then
  tool=k3d
else
  echo "bookinfo.sh: needs kind or k3d on PATH" >&2
  exit 1
fi

log "cluster $CLUSTER ($tool)"
case "$tool" in
  kind)
    if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
      kind create cluster --name "$CLUSTER" --wait "$TIMEOUT"
    fi
    kubectl config use-context "kind-$CLUSTER"
    ;;
  k3d)
    if ! k3d cluster list "$CLUSTER" >/dev/null 2>&1; then
      k3d cluster create "$CLUSTER" --wait --timeout "$TIMEOUT"
    fi
    kubectl config use-context "k3d-$CLUSTER"
    ;;
  *)
    echo "bookinfo.sh: CLUSTER_TOOL must be kind or k3d, not $tool" >&2
    exit 1
    ;;
esac

log "plug-in CA (Secret $NAMESPACE/cacerts)"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
if ! kubectl -n "$NAMESPACE" get secret cacerts >/dev/null 2>&1; then
  ca=$(mktemp -d)
  trap 'rm -rf "$ca"' EXIT
  cat >"$ca/root.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3
[dn]
O = bowline
CN = Root CA
[v3]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
CNF
  cat >"$ca/intermediate.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = bowline
CN = Intermediate CA
L = cluster
[v3]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = URI:spiffe://cluster.local/ns/bowline-system/sa/bowline
CNF
  # EC P-256 keys in PKCS#8, which bowline's CA (rcgen) reads.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/root-key.pem"
  openssl req -x509 -new -key "$ca/root-key.pem" -config "$ca/root.cnf" -sha256 \
    -days 3650 -out "$ca/root-cert.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/ca-key.pem"
  openssl req -new -key "$ca/ca-key.pem" -config "$ca/intermediate.cnf" -out "$ca/ca.csr"
  openssl x509 -req -in "$ca/ca.csr" -CA "$ca/root-cert.pem" -CAkey "$ca/root-key.pem" \
    -CAcreateserial -days 730 -sha256 -extfile "$ca/intermediate.cnf" -extensions v3 \
    -out "$ca/ca-cert.pem"
  cat "$ca/ca-cert.pem" "$ca/root-cert.pem" >"$ca/cert-chain.pem"
  openssl verify -CAfile "$ca/root-cert.pem" "$ca/ca-cert.pem"
  kubectl -n "$NAMESPACE" create secret generic cacerts \
    --from-file=ca-cert.pem="$ca/ca-cert.pem" \
    --from-file=ca-key.pem="$ca/ca-key.pem" \
    --from-file=root-cert.pem="$ca/root-cert.pem" \
    --from-file=cert-chain.pem="$ca/cert-chain.pem"
fi

log "images $HUB/bowline:$TAG and $HUB/bowline-proxy:$TAG"
if [ -z "${SKIP_BUILD:-}" ]; then
  "$ROOT/deploy/docker/build.sh"
fi
for image in "$HUB/bowline:$TAG" "$HUB/bowline-proxy:$TAG"; do
  case "$tool" in
    kind) kind load docker-image "$image" --name "$CLUSTER" ;;
    k3d) k3d image import "$image" --cluster "$CLUSTER" ;;
  esac
done

log "bowline"
if have helm; then
  helm upgrade --install bowline "$ROOT/deploy/helm/bowline" --namespace "$NAMESPACE" \
    --set hub="$HUB" --set tag="$TAG" --wait --timeout "$TIMEOUT"
else
  kubectl apply -f "$ROOT/deploy/crds/crds.yaml"
  kubectl wait --for=condition=Established --timeout="$TIMEOUT" \
    -f "$ROOT/deploy/crds/crds.yaml"
  kubectl apply -f "$ROOT/deploy/kubernetes/"
  if [ "$HUB/bowline:$TAG" != "ghcr.io/bowline-mesh/bowline:0.1.0" ]; then
    kubectl -n "$NAMESPACE" set image deployment/bowline bowline="$HUB/bowline:$TAG"
  fi
fi
kubectl -n "$NAMESPACE" rollout status deployment/bowline --timeout="$TIMEOUT"

log "bookinfo in default (istio-injection=enabled)"
kubectl label namespace default istio-injection=enabled --overwrite
kubectl apply -n default -f "$BOOKINFO"
for deployment in details-v1 ratings-v1 reviews-v1 reviews-v2 reviews-v3 productpage-v1; do
  kubectl -n default rollout status "deployment/$deployment" --timeout="$TIMEOUT"
done
ratings=$(kubectl -n default get pod -l app=ratings -o jsonpath='{.items[0].metadata.name}')
containers=$(kubectl -n default get pod "$ratings" \
  -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')
case " $containers " in
  *" bowline-proxy "*) echo "ratings pod $ratings has the bowline-proxy sidecar" ;;
  *) echo "bookinfo.sh: ratings pod $ratings was not injected ($containers)" >&2; exit 1 ;;
esac

log "productpage from the ratings pod"
for attempt in $(seq 1 30); do
  if kubectl -n default exec "$ratings" -c ratings -- \
    curl -sS --max-time 5 productpage:9080/productpage | grep -o '<title>.*</title>'; then
    echo "bookinfo is served through bowline"
    exit 0
  fi
  echo "attempt $attempt: productpage not reachable yet"
  sleep 5
done
echo "bookinfo.sh: productpage did not answer from the ratings pod" >&2
exit 1
