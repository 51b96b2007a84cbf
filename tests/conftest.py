"""Shared test fixtures.

Tests read the real shared data in place: ``../shared/data`` from the repo root, or the directory
named by ``CORPUSMILL_SHARED_DATA``. Nothing of it is copied into the repo.

Runs several tests compare against are made once per session and are read-only for the tests:
``default_run`` (examples/default.yaml on the local datatrove executor, the reference the other
engines, executors, stores and schedules must reproduce) and ``default_beam_run`` (the same recipe
on Beam). A test that needs its own run writes it under its own ``tmp_path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = REPO / "examples" / "default.yaml"
# how the reference run is scheduled (the recipe's own 4 tasks on 2 workers, spelled out): a test that
# compares another executor or store against it runs with the same flags
REFERENCE_ARGS = ("--tasks", "4", "--workers", "2")


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


def run_cli(*args: str, check: bool = True, timeout: int = 1500, env: dict | None = None):
    """Run ``corpusmill ARGS`` in a subprocess from the repo root, as a user would (``env``: extra variables)."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    res = subprocess.run([sys.executable, "-m", "corpusmill.cli", *args], cwd=REPO, env=full_env,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"corpusmill {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return res


def run_cli_parallel(*commands: tuple[str, ...], timeout: int = 1500, env: dict | None = None):
    """Independent ``corpusmill`` commands at once, each in its own subprocess, as ``run_cli`` (results in
    order). On two cores one run leaves a core idle in its serial parts (start-up, planning, accounting)."""
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = [pool.submit(run_cli, *c, timeout=timeout, env=env) for c in commands]
        return [f.result() for f in futures]


@dataclass(frozen=True)
class CliRun:
    """A finished ``corpusmill curate`` run: its output directory and what the command printed."""

    out: Path
    stdout: str
    stderr: str


def _fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _shared_run(out: Path, *args: str):
    res = run_cli("curate", *args, "--output", str(out))
    before = _fingerprint(out)
    yield CliRun(out, res.stdout, res.stderr)
    assert _fingerprint(out) == before, f"a test wrote into or deleted from the shared run {out}"


@pytest.fixture(scope="session")
def default_run(shared_data, tmp_path_factory):
    """The reference: ``corpusmill curate examples/default.yaml`` over all of the shared data on the local
    datatrove executor (REFERENCE_ARGS), once per session. Read-only (checked when the session ends)."""
    yield from _shared_run(tmp_path_factory.mktemp("reference") / "datatrove", str(DEFAULT_RECIPE),
                           "--data-root", str(shared_data), *REFERENCE_ARGS)


@pytest.fixture(scope="session")
def default_beam_run(shared_data, tmp_path_factory):
    """examples/default.yaml over all of the shared data on Beam (local runner, 2 worker processes), once
    per session. Read-only (checked when the session ends)."""
    yield from _shared_run(tmp_path_factory.mktemp("reference") / "beam", str(DEFAULT_RECIPE), "--engine", "beam",
                           "--data-root", str(shared_data), "--direct_running_mode=multi_processing",
                           "--direct_num_workers=2")
