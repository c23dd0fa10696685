"""The images' lock file and podman settings agree with the project and with this machine.

These run everywhere (no podman needed, well under a second): a dependency added to
pyproject.toml without regenerating ``docker/requirements.lock`` would otherwise first show up as
a failed image build, and ulimits above the machine's hard limits as a container that won't start.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "docker" / "requirements.lock"
TORCH_LOCK = ROOT / "docker" / "requirements-torch.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if m := PIN.match(line):
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def image_requirements() -> list[Requirement]:
    """What the images install: the dependencies, the `transformers` extra and docker/lock.in."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["transformers"]]
    lines += [ln.split("#")[0].strip() for ln in (ROOT / "docker" / "lock.in").read_text().splitlines()]
    return [Requirement(ln) for ln in lines if ln]


def test_lock_pins_every_requirement_of_the_images_at_an_allowed_version() -> None:
    pins = locked()
    assert len(pins) > 50, "the lock pins the whole dependency tree, not only the direct dependencies"
    problems = []
    for req in image_requirements():
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} does not satisfy {req}")
    assert not problems, "docker/requirements.lock is stale; run `bash docker/lock.sh`: " + "; ".join(problems)


def test_torch_lock_is_the_part_of_the_lock_that_torch_installs_with() -> None:
    """The images' torch layer (requirements-torch.lock) pins exactly what the full lock pins."""
    full, torch_part = locked(), locked(TORCH_LOCK)
    assert {"torch", "torchvision"} <= torch_part.keys()
    assert {name: full.get(name) for name in torch_part} == torch_part


@pytest.mark.parametrize("lock", [LOCK, TORCH_LOCK], ids=lambda p: p.name)
def test_lock_holds_pins_only(lock: Path) -> None:
    """No index, find-links or local path of the machine that made it (those stay out of the images)."""
    text = lock.read_text()
    assert not re.search(r"^\s*-(-index-url|-extra-index-url|-find-links|i|f)\b", text, re.M)
    assert "file://" not in text and "/opt/" not in text


def test_containers_conf_ulimits_fit_this_machines_hard_limits() -> None:
    conf = tomllib.loads((ROOT / "docker" / "containers.conf").read_text())
    assert conf["engine"]["runtime"] == "runc" and conf["engine"]["cgroup_manager"] == "cgroupfs"
    hard = {"nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC}
    seen = set()
    for item in conf["containers"]["default_ulimits"]:
        name, _, values = item.partition("=")
        soft, _, hard_value = values.partition(":")
        limit = resource.getrlimit(hard[name])[1]
        if limit == resource.RLIM_INFINITY:
            continue
        assert int(soft) <= int(hard_value) <= limit, f"{item} exceeds this machine's hard {name} limit {limit}"
        seen.add(name)
    if not seen:
        pytest.skip("this machine sets no hard nofile/nproc limit")
