"""The demo cohort: slide table, determinism, the planted signal, and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tiffslide
from scipy.stats import spearmanr

from wsi_ssl.cli import main
from wsi_ssl.synthetic import load_truth, make_cohort, truth_path_for
from wsi_ssl.synthetic.cohort import plan_cohort

TINY = {"width": 512, "height": 384, "levels": 2}
COLUMNS = ["slide_id", "patient_id", "path", "biomarker", "tumor_fraction", "til_score", "time", "event"]


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cohort(tmp_path_factory.mktemp("cohort"), 6, seed=11, slides_per_patient=2, **TINY)


def test_cohort_writes_slides_truth_and_table(tiny_cohort: Path) -> None:
    rows = _rows(tiny_cohort)
    assert len(rows) == 6
    assert list(rows[0])[: len(COLUMNS)] == COLUMNS
    assert len({r["slide_id"] for r in rows}) == 6
    assert len({r["patient_id"] for r in rows}) == 3  # two slides per patient
    for r in rows:
        slide = tiny_cohort.parent / r["path"]
        assert slide.is_file() and truth_path_for(slide).is_file()
        assert r["biomarker"] in {"0", "1"} and r["event"] in {"0", "1"}
        assert float(r["time"]) > 0 and 0 <= float(r["til_score"]) <= 100
        truth = load_truth(truth_path_for(slide))
        assert float(r["tumor_fraction"]) == pytest.approx(truth.tumor_fraction, abs=1e-4)
    by_patient: dict[str, set[tuple[str, str, str]]] = {}
    for r in rows:  # outcomes are per patient
        by_patient.setdefault(r["patient_id"], set()).add((r["biomarker"], r["time"], r["event"]))
    assert all(len(v) == 1 for v in by_patient.values())


def test_same_seed_gives_byte_identical_cohort_with_any_worker_count(tiny_cohort: Path, tmp_path: Path) -> None:
    again = make_cohort(tmp_path, 6, seed=11, slides_per_patient=2, workers=2, **TINY)
    assert again.read_bytes() == tiny_cohort.read_bytes()
    for r in _rows(again):
        assert (tmp_path / r["path"]).read_bytes() == (tiny_cohort.parent / r["path"]).read_bytes()


def test_rerun_keeps_finished_slides_and_redoes_missing_ones(tmp_path: Path) -> None:
    csv_path = make_cohort(tmp_path, 3, seed=2, **TINY)
    first = csv_path.read_bytes()
    slides = [tmp_path / r["path"] for r in _rows(csv_path)]
    stamps = [s.stat().st_mtime_ns for s in slides]
    truth_path_for(slides[1]).unlink()  # as if killed between the slide and its truth
    assert make_cohort(tmp_path, 3, seed=2, **TINY).read_bytes() == first
    assert slides[0].stat().st_mtime_ns == stamps[0] and slides[2].stat().st_mtime_ns == stamps[2]
    assert slides[1].stat().st_mtime_ns != stamps[1] and truth_path_for(slides[1]).is_file()
    make_cohort(tmp_path, 3, seed=2, overwrite=True, **TINY)
    assert slides[0].stat().st_mtime_ns != stamps[0]
    # Other arguments are other slides: a changed size is regenerated, not reused.
    make_cohort(tmp_path, 3, seed=2, width=640, height=384, levels=2)
    assert tiffslide.TiffSlide(slides[0]).dimensions == (640, 384)


def test_other_seed_gives_another_cohort(tiny_cohort: Path) -> None:
    plans, _ = plan_cohort(
        Path("x"), 6, seed=12, slides_per_patient=2, mpp=0.5, jpeg_quality=90, compression="jpeg", **TINY
    )
    rows = _rows(tiny_cohort)
    assert [p.tumor_fraction for p in plans] != [float(r["tumor_fraction"]) for r in rows]


def test_planted_signal_biomarker_survival_and_censoring() -> None:
    """Rules 1-4 of the cohort, checked on 400 planned patients (no rendering)."""
    plans, outcomes = plan_cohort(
        Path("x"),
        400,
        seed=0,
        width=512,
        height=384,
        mpp=0.5,
        levels=1,
        slides_per_patient=1,
        jpeg_quality=90,
        compression="jpeg",
    )
    tf = np.array([p.tumor_fraction for p in plans])
    out = [outcomes[p.patient_id] for p in plans]
    biomarker = np.array([o.biomarker for o in out])
    time = np.array([o.time for o in out])
    event = np.array([o.event for o in out])
    assert biomarker[tf > 0.4].mean() > 0.9 and biomarker[tf < 0.2].mean() < 0.1
    assert all(p.high_grade == bool(o.biomarker) for p, o in zip(plans, out))  # label in morphology
    assert spearmanr(tf, biomarker).statistic > 0.7
    assert spearmanr(tf[event == 1], time[event == 1]).statistic < -0.5
    assert 0.2 < 1 - event.mean() < 0.4  # about 30% censored


def test_til_score_follows_the_lymphocyte_share(tmp_path: Path) -> None:
    csv_path = make_cohort(tmp_path, 5, seed=3, **TINY)
    plans, _ = plan_cohort(
        tmp_path, 5, seed=3, slides_per_patient=1, mpp=0.5, jpeg_quality=90, compression="jpeg", **TINY
    )
    til = [float(r["til_score"]) for r in _rows(csv_path)]
    assert spearmanr([p.lymph_fraction for p in plans], til).statistic > 0.8


def test_demo_cohort_command_prints_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo-cohort",
            "--out",
            str(tmp_path / "demo"),
            "--slides",
            "2",
            "--seed",
            "5",
            "--width",
            "512",
            "--height",
            "384",
            "--mpp",
            "0.25",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "2 slides" in lines[0] and "slides.csv" in lines[0]
    rows = _rows(tmp_path / "demo" / "slides.csv")
    assert len(rows) == 2 and rows[0]["mpp"] == "0.25"


def test_demo_cohort_command_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--slides"):
        main(["demo-cohort", "--out", str(tmp_path), "--slides", "0"])


def test_high_grade_foci_cover_the_planned_share_of_tumour() -> None:
    """Rule 3: a biomarker-positive slide's high-grade foci cover HIGH_GRADE_SHARE of its tumour."""
    from wsi_ssl.synthetic.nuclei import HIGH_GRADE_SHARE, high_grade_foci, jittered_points, points_in
    from wsi_ssl.synthetic.truth import STROMA, TUMOR

    labels = np.full((1200, 1600), STROMA, np.uint8)
    labels[200:1000, 300:1400] = TUMOR
    focus = high_grade_foci(np.random.default_rng(0), labels, 0.5)
    points = points_in(jittered_points(np.random.default_rng(1), labels.shape, 10.0), labels, TUMOR)
    share = focus(points).mean()
    assert abs(share - HIGH_GRADE_SHARE) < 0.05 and 0 < share < 1  # foci, not the whole tumour
