#!/usr/bin/env bash
# Build localhost/wsi-ssl:cpu or :gpu with podman on a machine with no image registry (CI, these
# machines); see docs/containers.md. Usage: bash docker/build-image.sh cpu|gpu [podman build options]
#
# - BASE: the local Debian base of docker/build-base.sh (built first when missing).
# - pip in the build reaches the package index the way this machine's pip does: its effective
#   configuration and CA bundle are build secrets (read-only, only while a RUN step runs), the
#   local folders they name (find-links, file:// indexes, constraints) are served read-only on
#   127.0.0.1 for the length of the build, and the build shares the host's network. None of it is
#   stored in a layer (`podman build --volume` would leave empty mount points in the image).
# - TORCH_INDEX: for cpu, PyTorch's CPU wheel index when it answers, else empty (torch comes from
#   the configured index: here PyPI's CUDA build, from this machine's local mirror). Set
#   TORCH_INDEX in the environment to choose.
# Layers are cached: a rebuild after a code change redoes only the last step, and a rebuild of
# an unchanged tree does nothing.
set -euo pipefail
flavour="${1:?usage: build-image.sh cpu|gpu [podman build options]}"
[[ "$flavour" == cpu || "$flavour" == gpu ]] || { echo "build-image.sh: cpu or gpu, not '$flavour'" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
BASE_IMAGE="${BASE_IMAGE:-localhost/wsi-ssl-base:bookworm}"
IMAGE="${IMAGE:-localhost/wsi-ssl:$flavour}"

[[ "$BASE_IMAGE" != localhost/* ]] || bash "$here/build-base.sh"

if [[ -z "${TORCH_INDEX+set}" ]]; then
  TORCH_INDEX=""
  if [[ "$flavour" == cpu ]]; then
    if curl -fsS --max-time 10 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
      TORCH_INDEX=https://download.pytorch.org/whl/cpu
    else
      echo "[image] PyTorch's CPU wheel index is unreachable: torch comes from the configured index (CUDA build)"
    fi
  fi
fi

# This machine's pip settings for the build's pip, as build secrets and a loopback server for the
# local folders they name (docker/pip_for_build.py); nothing of them is stored in a layer.
pipdir="$(mktemp -d)"
server=""
cleanup() { [[ -z "$server" ]] || kill "$server" 2>/dev/null || true; rm -rf "$pipdir"; }
trap cleanup EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 "$here/pip_for_build.py" "$pipdir" "$port"
python3 -m http.server --bind 127.0.0.1 --directory "$pipdir/www" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.2; done
secrets=(--secret "id=pip.conf,src=$pipdir/pip.conf")
[[ ! -f "$pipdir/ca.crt" ]] || secrets+=(--secret "id=ca.crt,src=$pipdir/ca.crt")

previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
start=$SECONDS
podman build --network host --layers \
  --file "$here/Dockerfile.$flavour" --ignorefile "$here/Dockerfile.$flavour.dockerignore" \
  --build-arg "BASE=$BASE_IMAGE" --build-arg "TORCH_INDEX=$TORCH_INDEX" \
  "${secrets[@]}" --tag "$IMAGE" "${@:2}" "$repo"
# The image this build replaced, with the cached layers only it used (a superseded code layer,
# or gigabytes of torch after a lock change), so that CI runs on one machine do not fill its disk.
# Other images are left alone; `podman rmi` refuses one still tagged elsewhere or used by a container.
current="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$previous" && "$previous" != "$current" ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || echo "[image] kept the previous $IMAGE ($previous): still tagged or in use"
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "[image] $IMAGE: $((size / 1000000)) MB, built in $((SECONDS - start)) s"
