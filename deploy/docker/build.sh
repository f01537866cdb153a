#!/usr/bin/env bash
# Builds both images from the repository root:
#   ${HUB:-ghcr.io/bowline-mesh}/bowline:${TAG:-0.1.0}
#   ${HUB:-ghcr.io/bowline-mesh}/bowline-proxy:${TAG:-0.1.0}
# More arguments go to each `docker build` (e.g. --build-arg PROFILE=tool, --push with buildx).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
hub=${HUB:-ghcr.io/bowline-mesh}
tag=${TAG:-0.1.0}
docker=${DOCKER:-docker}
export DOCKER_BUILDKIT=1
for image in bowline bowline-proxy; do
  echo "== $hub/$image:$tag"
  "$docker" build -f "$root/deploy/docker/Dockerfile.$image" -t "$hub/$image:$tag" "$@" "$root"
done
