"""Give a container build this machine's pip settings without copying anything of them into the image.

Used by docker/build-image.sh. Reads pip's effective configuration (``pip config list``: the
config files and ``PIP_*`` variables) and writes into OUT_DIR:

- ``pip.conf``: the same settings, with every local path rewritten to a URL on a loopback HTTP
  server, and the CA bundle pointed at ``/run/secrets/ca.crt``. The build mounts it as the
  secret ``pip.conf`` (the Dockerfiles set ``PIP_CONFIG_FILE`` to it when present);
- ``ca.crt``: the CA bundle pip uses (mounted as the secret ``ca.crt``);
- ``www/``: links to the local folders and files the settings name (find-links, ``file://``
  indexes, constraints), served read-only by ``python3 -m http.server`` on 127.0.0.1 while the
  build runs with the host's network.

Secrets are mounted only while a RUN step runs, so unlike ``podman build --volume`` (which leaves
empty mount points in the layers) nothing of them is in the image.
Usage: python3 docker/pip_for_build.py OUT_DIR PORT
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

PATH_KEYS = {"find-links", "index-url", "extra-index-url", "constraint", "requirement"}


def effective_settings() -> dict[tuple[str, str], str]:
    """(section, key) -> value as pip resolves it; environment variables override the files."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    files: dict[tuple[str, str], str] = {}
    env: dict[tuple[str, str], str] = {}
    for line in out.stdout.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.rpartition(".")
        value = value.strip().strip("'\"")
        if section == ":env:":
            env[("global", key)] = value
        elif section:
            files[(section, key)] = value
    return {**files, **env}


def serve(path: str, www: Path, base_url: str) -> str:
    """Link ``path`` (a file or folder) under ``www`` and return its URL."""
    local = path[len("file://") :] if path.startswith("file://") else path
    if not local.startswith("/") or not os.path.exists(local):
        return path  # a URL or a missing path: leave as is
    root = local
    if local.rstrip("/").endswith("/simple"):  # a simple index links to ../../files: serve its parent
        root = os.path.dirname(local.rstrip("/"))
    link = www / root.lstrip("/")
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(root)
    return base_url + local + ("/" if os.path.isdir(local) and not local.endswith("/") else "")


def main(out_dir: str, port: str) -> None:
    out = Path(out_dir)
    www = out / "www"
    www.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    conf = configparser.ConfigParser(interpolation=None)
    for (section, key), value in effective_settings().items():
        if key == "cert":
            if os.path.isfile(value):
                shutil.copyfile(value, out / "ca.crt")
            value = "/run/secrets/ca.crt"
        elif key in PATH_KEYS:
            value = " ".join(serve(item, www, base_url) for item in shlex.split(value))
        if not conf.has_section(section):
            conf.add_section(section)
        conf.set(section, key, value)
    if not conf.has_section("global"):
        conf.add_section("global")
    conf.set("global", "trusted-host", "127.0.0.1")  # the loopback server speaks plain HTTP
    with open(out / "pip.conf", "w") as fh:
        conf.write(fh)


if __name__ == "__main__":
    main(*sys.argv[1:3])
