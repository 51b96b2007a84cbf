"""One run-level progress view: shards done / total, documents, MB, docs/s and ETA in one line every N
seconds when stderr is not a terminal (rich's live bar on a terminal); datatrove's own output goes to
RUN/logs/run.log unless -v."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corpusmill.pipelines.progress import RunState

REPO = Path(__file__).resolve().parents[2]


def _curate(data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CORPUSMILL_PROGRESS_EVERY="1")
    cmd = [sys.executable, "-m", "corpusmill.cli", *flags, "curate", str(REPO / "examples" / "books.yaml"),
           "--data-root", str(data), "--output", str(out), "--tasks", "2", "--workers", "2"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def three_books(shared_data, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("three-books")
    (d / "books").mkdir()
    for f in sorted((shared_data / "books").glob("*.txt"))[:3]:
        (d / "books" / f.name).symlink_to(f)
    return d


@pytest.mark.slow
def test_quiet_run_level_view_and_verbose_chatter(three_books, tmp_path):
    res = _curate(three_books, tmp_path / "q")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if re.match(r"\d\d:\d\d:\d\d ", ln)]
    assert lines, res.stderr
    assert re.search(r"shards 3/3, [\d,]+ docs, [\d.]+/[\d.]+ MB, [\d,]+ docs/s", lines[-1]), lines[-1]
    assert "Launching pipeline" not in res.stderr and "INFO" not in res.stderr, res.stderr[-2000:]
    log = (tmp_path / "q" / "logs" / "run.log").read_text()
    assert "Launching pipeline" in log
    assert str(tmp_path / "q" / "logs" / "run.log") in res.stderr
    s = RunState(str(tmp_path / "q"), 3, None).snapshot()
    assert s["shards"] == 3 and s["phase"] == ("curate", 2, 2) and s["docs"] > 0

    loud = _curate(three_books, tmp_path / "v", "-v")
    assert loud.returncode == 0 and "Launching pipeline" in loud.stderr
    assert not (tmp_path / "v" / "logs" / "run.log").exists()
