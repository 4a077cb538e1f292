"""Shared pytest fixtures."""
from pathlib import Path

import pytest

#: The FaceBlit test material, beside the checkout: ../shared/data/faceblit.
FACEBLIT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faceblit"


@pytest.fixture(scope="session")
def faceblit_dir() -> Path:
    """The FaceBlit data folder (styles/, targets/, reference/); skips the test when absent."""
    if not FACEBLIT_DIR.is_dir():
        pytest.skip(f"FaceBlit test data not found at {FACEBLIT_DIR}")
    return FACEBLIT_DIR
