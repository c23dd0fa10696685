"""``wsi-ssl evaluate`` end to end on the demo patch set: outputs, cache, shards, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from wsi_ssl.cli import main


def _two_encoders(out: Path, encoders: list[Path], patches: Path, *extra: str) -> list[str]:
    """``wsi-ssl evaluate`` of both test encoders on the demo patch set (1.0 um/px) into ``out``."""
    enc = [a for e in encoders[:2] for a in ("--encoder", str(e))]
    return ["evaluate", *enc, "--dataset", "csv", "--data", str(patches), "--mpp", "1.0", "--out", str(out), *extra]


def test_two_encoders_side_by_side_and_cached(
    tmp_path: Path, demo_patches: Path, encoders: list[Path], fast: list[str]
) -> None:
    out = tmp_path / "eval"
    argv = _two_encoders(out, encoders, demo_patches, *fast)
    assert main(argv) == 0
    merged = json.loads((out / "results.json").read_text())
    assert merged["encoders"] == ["enc_a", "enc_b"]
    run = merged["results"][0]
    assert run["seeds"] == [0, 1, 2, 3, 4]
    assert set(run["protocols"]) == {"linear", "knn", "fewshot_1", "fewshot_4"}
    lin = run["protocols"]["linear"]
    assert len(lin["per_seed"]) == 5
    assert lin["metrics"]["balanced_accuracy"]["mean"] == pytest.approx(
        np.mean([s["balanced_accuracy"] for s in lin["per_seed"]])
    )
    assert set(run["robustness"]["shifts"]) == {"hed_strong", "jpeg_q50"}
    assert 0.0 <= run["robustness_index"]["value"] <= 1.0  # the demo set has a site column
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 4 and {r["encoder"] for r in rows} == {"enc_a", "enc_b"}
    html = (out / "report.html").read_text()
    assert "enc_a" in html and "enc_b" in html and html.count("data:image/png;base64") >= 4
    assert {p.name for p in (out / "plots").iterdir()} >= {"fewshot.png", "robustness.png", "confusion_enc_a.png"}
    # a second run reads every embedding from the cache
    cached = sorted((out / "cache").glob("*.h5"))
    assert len(cached) == 2 * 5  # per encoder: train, val, test, and the test split under 2 shifts
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert main([*argv, "--set", "protocols=[knn]"]) == 0
    assert [p.stat().st_mtime_ns for p in sorted((out / "cache").glob("*.h5"))] == stamps


def test_shard_takes_its_encoder(tmp_path: Path, demo_patches: Path, encoders: list[Path], fast: list[str]) -> None:
    out = tmp_path / "eval"
    argv = _two_encoders(out, encoders, demo_patches)
    argv += [
        "--shard",
        "1/2",
        "--set",
        "protocols=[knn]",
        "--set",
        "robustness.shifts=[]",
        "--set",
        "seeds=[0]",
        *fast,
    ]
    assert main(argv) == 0
    assert [p.name for p in (out / "runs").iterdir()] == ["enc_b"]


def test_bad_inputs_exit_2(
    tmp_path: Path, demo_patches: Path, encoders: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate", "--encoder", str(encoders[0]), "--out", str(tmp_path / "o")]
    assert main([*base, "--dataset", "csv", "--data", str(demo_patches)]) == 2
    assert "needs --mpp" in capsys.readouterr().err
    assert main([*base, "--dataset", "crc", "--data", str(tmp_path)]) == 2
    assert "NCT-CRC-HE-100K" in capsys.readouterr().err
    assert main([*base, "--dataset", "imagenet", "--data", str(tmp_path)]) == 2
    assert "unknown dataset kind" in capsys.readouterr().err
    assert (
        main([*base, "--dataset", "csv", "--data", str(demo_patches), "--mpp", "1", "--set", "robustness.shifts=[fog]"])
        == 2
    )
    assert "unknown ['fog']" in capsys.readouterr().err


def test_stain_normalisation_option(tmp_path: Path, demo_patches: Path, encoders: list[Path], fast: list[str]) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--encoder", str(encoders[0]), "--dataset", "csv", "--data", str(demo_patches), "--mpp", "1",
            "--out", str(out), *fast, "--set", "seeds=[0]", "--set", "protocols=[linear]",
            "--set", "robustness.shifts=[hed_strong]"]  # fmt: skip
    assert main([*argv, "--set", "stain_norm.method=reinhard"]) == 0
    run = json.loads((out / "runs" / "enc_a" / "results.json").read_text())
    assert run["stain_norm"].startswith("reinhard:patch ")  # fitted on a training patch, recorded
    normalised = set((out / "cache").glob("*.h5"))
    assert main(argv) == 0  # without normalisation: other features, other cache entries
    assert len(set((out / "cache").glob("*.h5")) - normalised) == 4
