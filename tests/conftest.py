"""Fixtures shared by every stage's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WSI_SSL_SHARED_DATA", ROOT.parent / "shared" / "data"))

# Tests run on 2 cores beside each other; keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real files in ../shared/data; tests that need them skip with the reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA
