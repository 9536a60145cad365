"""Shared fixtures. Tests that need ../shared/data skip where it is absent, but fail under CI=true."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PARP_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared speech data is missing: {path}")
        pytest.skip(f"shared speech data not found at {path} (set PARP_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def mboshi_dir() -> Path:
    return _shared("mboshi")


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    return _shared("fsdd")


@pytest.fixture(scope="session")
def language_dir():
    """``language_dir("yo")``: one language's folder of ../shared/data (skipped or failed like the others)."""
    return _shared
