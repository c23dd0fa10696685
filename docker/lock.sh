#!/usr/bin/env bash
# Regenerate the images' lock files with pip-compile (pip-tools), for CPython 3.11 on linux x86_64
# (the images' Python and platform); run it with such a Python. It uses this machine's pip
# configuration (indexes, CA bundle) and writes no index or path into the files.
#  - docker/requirements.lock: the whole tree of pyproject.toml's dependencies + the
#    `transformers` extra + the torch pins of docker/lock.in, every package at one version.
#  - docker/requirements-torch.lock: the part of it that torch and torchvision install with. The
#    images install it in a layer of its own, so that a new dependency of the project rebuilds
#    only the (small) layer of the rest, not the gigabytes of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q 'pip-tools>=7.4'
compile=("$tools/venv/bin/pip-compile" --quiet --strip-extras --allow-unsafe
  --no-emit-index-url --no-emit-find-links --no-emit-options)
"${compile[@]}" --extra transformers --output-file docker/requirements.lock pyproject.toml docker/lock.in
{ echo "-c requirements.lock"; grep -E '^[a-z]' docker/lock.in; } > docker/torch.in
trap 'rm -rf "$tools" docker/torch.in' EXIT
"${compile[@]}" --output-file docker/requirements-torch.lock docker/torch.in
