"""A generated demo cohort: slides, a slide table, and outcomes planted in the tissue.

Rules (per patient; all of a patient's slides share them):

1. Tumour fraction ``tf`` (tumour share of tissue area) is spread evenly over
   [TF_LOW, TF_HIGH] (stratified: one draw per equal-width bin, shuffled), so even a
   24-slide cohort spans the range. Each slide jitters it by N(0, 0.02).
2. Biomarker ``b`` ~ Bernoulli(sigmoid((tf - 0.30) / 0.05)): rises steeply with tumour fraction.
3. The biomarker is written into tumour morphology, subtly: ``b = 1`` slides have high-grade
   foci covering 75% of their tumour (patches a few hundred microns across), ``b = 0`` slides
   none. High-grade nuclei are larger (radius 6.5-9.0 vs 4.2-5.8 um), pleomorphic, with a dark
   nucleolus, spaced wider (22 vs 15 um) and only slightly darker; the stain, the glands and
   the nuclear share of the tumour are the same as in low-grade tumour. So the label is in
   nuclear size and shape (seen in most tumour tiles of a positive slide), not in colour;
   tumour fraction carries it too, through rule 2.
4. Survival: event time T ~ Exponential(rate = exp(eta) / 60 months) with log-hazard
   ``eta = 12 * (tf - 0.325) + 1.5 * b + eta_clin`` (``eta_clin``: the covariate/omics-only part,
   rules 7-8); censoring C ~ Exponential(mean 170 months) capped at
   240 months (end of follow-up), independent of everything; ``time = min(T, C)``,
   ``event = T <= C`` (about a third censored). On 2,000 planned patients the C-index of the
   slide's part (``tf``, ``b``) alone is 0.76, of ``eta_clin`` alone 0.74, of the whole ``eta`` 0.91.
5. TIL score: lymphocyte aggregates take a share ``lf`` ~ U(0.05, 0.45) of the non-tumour,
   non-fat tissue, and lymphocytes infiltrate the stroma with density rising with ``lf``;
   ``til_score = 100 * lymphocyte area / (lymphocyte + stroma area)`` measured on the slide's
   class map, plus N(0, 2) reading noise, clipped to [0, 100].
6. Per slide, independently: stain (H/E vectors, strengths, glass tint), fat share
   U(0.05, 0.15), tissue shape, pen marks (probability 0.25) and an edge artefact (0.25).
7-9. Clinical covariates (age, stage, grade) and a 50-d omics vector, some missing on purpose:
   :mod:`wsi_ssl.synthetic.clinical` (slide table columns, and ``omics.csv`` beside it).

Everything derives from ``seed``: the same seed gives a byte-identical CSV and identical pixels.
"""

from __future__ import annotations

import csv
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wsi_ssl.synthetic.clinical import (
    CLINICAL_COLUMNS,
    PatientClinical,
    clinical_cells,
    clinical_rng,
    draw_clinical,
    write_omics,
)
from wsi_ssl.synthetic.slide_writer import write_slide

TF_LOW, TF_HIGH = 0.05, 0.60
BIOMARKER_MIDPOINT, BIOMARKER_WIDTH = 0.30, 0.05
HAZARD_TF, HAZARD_TF_CENTRE, HAZARD_BIOMARKER, BASE_MONTHS = 12.0, 0.325, 1.5, 60.0
CENSOR_MEAN_MONTHS, FOLLOW_UP_MONTHS = 170.0, 240.0
PEN_PROBABILITY, EDGE_PROBABILITY = 0.25, 0.25
CSV_COLUMNS = (
    "slide_id",
    "patient_id",
    "path",
    "biomarker",
    "tumor_fraction",
    "til_score",
    "time",
    "event",
    "mpp",
    *CLINICAL_COLUMNS,
)


@dataclass(frozen=True)
class SlidePlan:
    """Everything needed to write one slide of the cohort (a picklable job)."""

    slide_id: str
    patient_id: str
    path: str
    seed: int
    tumor_fraction: float
    high_grade: bool
    lymph_fraction: float
    pen_marks: bool
    edge_artifacts: bool
    width: int
    height: int
    mpp: float
    levels: int
    jpeg_quality: int
    compression: str
    til_noise: float = 0.0  # reading noise added to this slide's TIL score (rule 5)
    skip_existing: bool = True


@dataclass(frozen=True)
class PatientOutcome:
    biomarker: int
    time: float
    event: int
    clinical: PatientClinical | None = None  # rules 7-9


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def plan_cohort(
    out_dir: Path,
    n_slides: int,
    *,
    seed: int,
    width: int,
    height: int,
    mpp: float,
    levels: int,
    slides_per_patient: int,
    jpeg_quality: int,
    compression: str,
) -> tuple[list[SlidePlan], dict[str, PatientOutcome]]:
    """Draw every patient's and slide's parameters (rules 1-6) without rendering anything."""
    if n_slides < 1:
        raise ValueError(f"n_slides must be >= 1, got {n_slides}")
    if slides_per_patient < 1:
        raise ValueError(f"slides_per_patient must be >= 1, got {slides_per_patient}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20240611]))
    crng = clinical_rng(seed)  # a stream of its own: the clinical draws change no slide
    n_patients = -(-n_slides // slides_per_patient)
    bins = rng.permutation(n_patients)
    tf_patient = TF_LOW + (TF_HIGH - TF_LOW) * (bins + rng.random(n_patients)) / n_patients
    plans: list[SlidePlan] = []
    outcomes: dict[str, PatientOutcome] = {}
    width_digits = max(3, len(str(n_slides - 1)))
    for p in range(n_patients):
        patient_id = f"P{p:0{width_digits}d}"
        tf = float(tf_patient[p])
        biomarker = int(rng.random() < _sigmoid((tf - BIOMARKER_MIDPOINT) / BIOMARKER_WIDTH))
        clinical = draw_clinical(crng, tf, biomarker)
        eta = HAZARD_TF * (tf - HAZARD_TF_CENTRE) + HAZARD_BIOMARKER * biomarker + clinical.log_hazard
        event_time = rng.exponential(BASE_MONTHS / math.exp(eta))
        censor_time = min(rng.exponential(CENSOR_MEAN_MONTHS), FOLLOW_UP_MONTHS)
        outcomes[patient_id] = PatientOutcome(
            biomarker=biomarker,
            time=round(float(min(event_time, censor_time)), 3),
            event=int(event_time <= censor_time),
            clinical=clinical,
        )
        lymph_fraction = float(rng.uniform(0.05, 0.45))
        for k in range(slides_per_patient):
            index = p * slides_per_patient + k
            if index >= n_slides:
                break
            slide_id = f"slide_{index:0{width_digits}d}"
            plans.append(
                SlidePlan(
                    slide_id=slide_id,
                    patient_id=patient_id,
                    path=str(out_dir / "slides" / f"{slide_id}.tiff"),
                    seed=int(rng.integers(2**31)),
                    tumor_fraction=float(np.clip(tf + rng.normal(0, 0.02), 0.02, 0.7)),
                    high_grade=bool(biomarker),
                    lymph_fraction=lymph_fraction,
                    pen_marks=bool(rng.random() < PEN_PROBABILITY),
                    edge_artifacts=bool(rng.random() < EDGE_PROBABILITY),
                    width=width,
                    height=height,
                    mpp=mpp,
                    levels=levels,
                    jpeg_quality=jpeg_quality,
                    compression=compression,
                    til_noise=float(rng.normal(0.0, 2.0)),
                )
            )
    return plans, outcomes


def render_planned(plan: SlidePlan) -> dict[str, float]:
    """Write one planned slide; return its measured class fractions (tissue shares)."""
    truth = write_slide(
        plan.path,
        width=plan.width,
        height=plan.height,
        mpp=plan.mpp,
        levels=plan.levels,
        seed=plan.seed,
        tumor_fraction=plan.tumor_fraction,
        pen_marks=plan.pen_marks,
        jpeg_quality=plan.jpeg_quality,
        compression=plan.compression,  # type: ignore[arg-type]
        high_grade=plan.high_grade,
        lymph_fraction=plan.lymph_fraction,
        edge_artifacts=plan.edge_artifacts,
        skip_existing=plan.skip_existing,
    )
    return truth.class_fractions()


def make_cohort(
    out_dir: str | Path,
    n_slides: int = 24,
    *,
    seed: int = 0,
    width: int = 4096,
    height: int = 3072,
    mpp: float = 0.5,
    levels: int = 3,
    slides_per_patient: int = 1,
    jpeg_quality: int = 90,
    compression: str = "jpeg",
    workers: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write ``out_dir/slides/<slide_id>.tiff`` (+ truth) and ``out_dir/slides.csv``; return the CSV.

    The CSV's ``path`` column is relative to the CSV's folder. ``workers > 1`` renders slides in
    parallel processes; the output does not depend on it. A rerun keeps slides already written
    with the same arguments (so an interrupted run resumes) unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    (out_dir / "slides").mkdir(parents=True, exist_ok=True)
    plans, outcomes = plan_cohort(
        out_dir,
        n_slides,
        seed=seed,
        width=width,
        height=height,
        mpp=mpp,
        levels=levels,
        slides_per_patient=slides_per_patient,
        jpeg_quality=jpeg_quality,
        compression=compression,
    )
    if overwrite:
        plans = [replace(plan, skip_existing=False) for plan in plans]
    if workers > 1 and len(plans) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(plans))) as pool:
            fractions = list(pool.map(render_planned, plans))
    else:
        fractions = [render_planned(plan) for plan in plans]
    csv_path = out_dir / "slides.csv"
    tmp = csv_path.with_name(".slides.csv.partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for plan, frac in zip(plans, fractions):
            outcome = outcomes[plan.patient_id]
            connective = frac["lymphocytes"] + frac["stroma"]
            til = 100.0 * frac["lymphocytes"] / connective if connective > 0 else 0.0
            writer.writerow(
                [
                    plan.slide_id,
                    plan.patient_id,
                    Path(plan.path).relative_to(out_dir).as_posix(),
                    outcome.biomarker,
                    f"{frac['tumor']:.4f}",
                    f"{min(max(til + plan.til_noise, 0.0), 100.0):.2f}",
                    f"{outcome.time:.3f}",
                    outcome.event,
                    f"{mpp:g}",
                    *clinical_cells(outcome.clinical),
                ]
            )
    tmp.replace(csv_path)
    write_omics(out_dir / "omics.csv", [(pid, o.clinical) for pid, o in outcomes.items()])
    return csv_path
