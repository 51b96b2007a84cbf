"""Shared test fixtures.

Tests read the real shared data in place: ``../shared/data`` from the repo root, or the directory
named by ``CORPUSMILL_SHARED_DATA``. Nothing of it is copied into the repo.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    env = os.environ.get("CORPUSMILL_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.fail(f"shared test data not found at {d}; set CORPUSMILL_SHARED_DATA")
    return d


@pytest.fixture(autouse=True, scope="session")
def _keep_tools_out_of_home(tmp_path_factory):
    """Point the caches tools write to by default at a temporary folder, and stay offline."""
    tmp = tmp_path_factory.mktemp("home-caches")
    for var, sub in [("HF_HOME", "hf"), ("TLDEXTRACT_CACHE", "tld")]:
        os.environ.setdefault(var, str(tmp / sub))
    # Ray's socket paths must stay under 107 bytes: a short folder of its own
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="cmray-", dir="/tmp"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    yield


def run_cli(*args: str, check: bool = True, timeout: int = 1500):
    """Run ``corpusmill ARGS`` in a subprocess from the repo root, as a user would."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "corpusmill.cli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"corpusmill {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return res
