"""Clinical covariates and omics of the demo cohort (rules 7-9 of :mod:`wsi_ssl.synthetic.cohort`).

Drawn from a random stream of their own (``SeedSequence([seed, CLINICAL_STREAM])``), so adding
them changed no slide's pixels and no draw of rules 1-6; only the event times gained the
clinical log-hazard. Per patient:

7. ``age`` ~ N(62, 10) years, rounded: log-hazard + 0.15 (age - 62) (only the covariates show it).
   ``stage`` I/II/III: the tumour burden as a clinician stages it, ``tf + N(0, 0.08)`` cut at
   0.22 and 0.40 (shared: the slide shows the same tumour fraction). ``grade`` 1/2/3: grade 3
   with probability 0.75 for a biomarker-positive patient, 0.15 otherwise, else 1 or 2 evenly
   (shared: the slide shows the high-grade nuclei). Stage and grade add no hazard of their own.
8. Omics: a latent ``z`` ~ N(0, 1) adds 2.0 z to the log-hazard (only the omics show it); 50
   features ``g00``-``g49``: g00-g04 = 1.5 z + N(0, 1), g05-g09 = 1.5 (2b - 1) + N(0, 1)
   (shared with the biomarker), the rest N(0, 1) noise.
9. Missing on purpose: age 10%, stage 15%, grade 10% of patients (empty cells); 20% of patients
   have no omics row at all, and 2% of the remaining omics values are empty.

The clinical-only part ``eta_clin`` is as strong as the slide's part (standard deviation 2.5
for both over 2,000 patients). With the first version's weights (0.07 per year, 0.9 z, loadings
0.9; sd 1.1) a perfect reading of it could add at most ~0.05 of C to a perfect reading of the
slide on the quickstart's 40 patients, less than the noise of a 40-patient C-index, so no model
could show on the demo what fusion adds. Loadings of 1.5 put the g00-g04 and g05-g09 blocks
above the noise floor of a 50-feature PCA on ~32 training patients (at 0.9 their eigenvalues sit
at its edge).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLINICAL_STREAM = 20261207
AGE_MEAN, AGE_SD, HAZARD_AGE = 62.0, 10.0, 0.15
STAGE_NOISE, STAGE_CUTS = 0.08, (0.22, 0.40)
HAZARD_OMICS, OMICS_DIM, OMICS_LOADING = 2.0, 50, 1.5
MISSING = {"age": 0.10, "stage": 0.15, "grade": 0.10}
OMICS_ABSENT, OMICS_CELL_MISSING = 0.20, 0.02
CLINICAL_COLUMNS = ("age", "stage", "grade")


@dataclass(frozen=True)
class PatientClinical:
    age: float | None
    stage: str | None
    grade: int | None
    omics: tuple[float, ...] | None  # None: the patient has no omics row
    log_hazard: float  # the covariate/omics-only part of the planted risk


def clinical_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, CLINICAL_STREAM]))


def draw_clinical(rng: np.random.Generator, tumor_fraction: float, biomarker: int) -> PatientClinical:
    """One patient's covariates and omics (rules 7-9); always the same number of draws."""
    age = float(round(rng.normal(AGE_MEAN, AGE_SD)))
    burden = tumor_fraction + rng.normal(0.0, STAGE_NOISE)
    stage = "I" if burden < STAGE_CUTS[0] else "II" if burden < STAGE_CUTS[1] else "III"
    high = rng.random() < (0.75 if biomarker else 0.15)
    low_grade = 1 + int(rng.random() < 0.5)
    grade = 3 if high else low_grade
    z = float(rng.normal())
    omics = rng.normal(size=OMICS_DIM)
    omics[:5] += OMICS_LOADING * z
    omics[5:10] += OMICS_LOADING * (2 * biomarker - 1)
    cell_missing = rng.random(OMICS_DIM) < OMICS_CELL_MISSING
    miss = {k: rng.random() < p for k, p in MISSING.items()}
    absent = rng.random() < OMICS_ABSENT
    values = tuple(float("nan") if m else round(float(v), 4) for v, m in zip(omics, cell_missing))
    return PatientClinical(
        age=None if miss["age"] else age,
        stage=None if miss["stage"] else stage,
        grade=None if miss["grade"] else grade,
        omics=None if absent else values,
        log_hazard=HAZARD_AGE * (age - AGE_MEAN) + HAZARD_OMICS * z,
    )


def clinical_cells(c: PatientClinical | None) -> list[str]:
    """The slide table's age, stage, grade cells (empty where missing)."""
    if c is None:
        return ["", "", ""]
    return ["" if c.age is None else f"{c.age:g}", c.stage or "", "" if c.grade is None else str(c.grade)]


def write_omics(path: Path, patients: Sequence[tuple[str, PatientClinical | None]]) -> Path:
    """``omics.csv``: patient_id, g00..g49; patients without omics have no row; missing values empty."""
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["patient_id", *[f"g{j:02d}" for j in range(OMICS_DIM)]])
        for pid, c in patients:
            if c is not None and c.omics is not None:
                writer.writerow([pid, *["" if np.isnan(v) else f"{v:.4f}" for v in c.omics]])
    tmp.replace(path)
    return path
