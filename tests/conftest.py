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


@pytest.fixture(autouse=True, scope="session")
def _private_style_cache(tmp_path_factory):
    """Keep the tests' prepared styles out of the user's cache folder."""
    import os

    old = os.environ.get("STYLEBLIT_CACHE")
    os.environ["STYLEBLIT_CACHE"] = str(tmp_path_factory.mktemp("styleblit-cache"))
    yield
    if old is None:
        os.environ.pop("STYLEBLIT_CACHE", None)
    else:
        os.environ["STYLEBLIT_CACHE"] = old


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``gpu`` when there is no CUDA device (or no CuPy)."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    from blit import gpu

    reason = gpu._unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA device: {reason}")
    for item in marked:
        item.add_marker(skip)
