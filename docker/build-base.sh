#!/usr/bin/env bash
# The images' base where no registry is reachable (CI, these machines): Debian bookworm with
# python3, python3-venv and ca-certificates, made by mmdebstrap from Debian's packages and
# imported into podman as localhost/wsi-ssl-base:bookworm (about 225 MB, 30-100 s).
# Kept in podman's storage: a second run does nothing. `--force` rebuilds it.
# Elsewhere the Dockerfiles' default BASE (python:3.11-slim-bookworm) plays this part.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
BASE_IMAGE="${BASE_IMAGE:-localhost/wsi-ssl-base:bookworm}"

if [[ "${1:-}" != "--force" ]] && podman image exists "$BASE_IMAGE"; then
  echo "[base] $BASE_IMAGE is already built"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$tmp/rootfs.tar"
podman import --quiet --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$BASE_IMAGE" >/dev/null
echo "[base] built $BASE_IMAGE in $((SECONDS - start)) s"
