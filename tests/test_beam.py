"""The Beam engine: same corpus as the datatrove engine, and a Dataflow job graph built offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parent.parent
MIXED = REPO / "examples" / "mixed.yaml"


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1200)
    if check and res.returncode != 0:
        raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return res


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.mark.slow
def test_beam_multiprocessing_matches_datatrove(shared_data, tmp_path):
    dt, bm = tmp_path / "dt", tmp_path / "beam"
    run_cli("curate", str(MIXED), "--data-root", str(shared_data), "--output", str(dt), "--workers", "2", "--tasks", "2")
    res = run_cli("curate", str(MIXED), "--engine", "beam", "--data-root", str(shared_data), "--output", str(bm),
                  "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert "accounting: read" in res.stdout
    kept = "SELECT id, text, signals, language, dedup_cluster FROM read_parquet('{}/curated/*.parquet') ORDER BY id"
    assert rows(kept.format(bm)) == rows(kept.format(dt))
    dropped = "SELECT id, status, stage, reason FROM read_parquet('{}/dropped/*.parquet') ORDER BY id"
    assert rows(dropped.format(bm)) == rows(dropped.format(dt))
    man = "SELECT shard, read, kept, dropped, errored, dropped_by FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard"
    assert rows(man.format(bm)) == rows(man.format(dt))
    assert rows(f"SELECT DISTINCT engine FROM read_parquet('{bm}/manifest/*.parquet')") == [("beam",)]


def test_dataflow_dry_run_builds_every_stage(shared_data, tmp_path):
    pytest.importorskip("apache_beam.runners.dataflow")
    from pipelines.beam_engine import run_recipe_beam
    from pipelines.recipe import load_recipe

    recipe = load_recipe(MIXED, {"data_root": str(shared_data), "output_dir": str(tmp_path / "out")})
    summary = run_recipe_beam(
        recipe,
        ["--runner=DataflowRunner", "--dry_run=True", "--no_auth", "--sdk_location=container",
         "--project=corpusmill-test", "--region=us-central1", "--temp_location=gs://corpusmill-test/tmp"],
    )
    assert summary["dry_run"]
    graph = summary["result"].job.proto_pipeline
    names = {t.unique_name for t in graph.components.transforms.values()}
    for stage in ["ReadShard", "GroupByShard", "WriteShard"] + [f"Stage{i:02d}:{s.stage}" for i, s in enumerate(recipe.stages)]:
        assert any(n == stage or n.startswith(stage + "/") for n in names), (stage, sorted(names)[:50])
    assert not (tmp_path / "out").exists(), "a dry run must not write outputs"
