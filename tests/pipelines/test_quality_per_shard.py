"""``quality`` with ``top_fraction_per_shard`` in both engines, on the four dolma web-text shards and a book:
each shard keeps the best ceil(x * n) of the documents the stage judges, Beam decides exactly as datatrove,
every record is accounted for, a per-shard stage after dedup still sees whole shards, and a rerun that
redoes one shard decides it exactly as before."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli

from corpusmill.curation.accounting import manifest_path, shard_key
from corpusmill.curation.filters.quality import keep_count

FRACTION = 0.3
RECIPE = """
name: quality-per-shard
data_root: {data}
inputs:
  - {{path: webtext, glob: "dolma_*.gz", reader: jsonl, source_kind: web}}
  - {{path: books, glob: "pg1661_*.txt", reader: books, options: {{split: chapters}}}}
stages:
  - {{stage: gopher_repetition}}
{extra}  - {{stage: quality, top_fraction_per_shard: {fraction}, sources: [web]}}
output: {{dir: out}}
engine: {{executor: local, tasks: 2, workers: 2}}
"""


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


def _recipe(tmp: Path, data: Path, extra: str = "") -> Path:
    p = tmp / f"recipe{'-dedup' if extra else ''}.yaml"
    p.write_text(textwrap.dedent(RECIPE).format(data=data, extra=extra, fraction=FRACTION))
    return p


def _tables(run: Path) -> tuple[list, list]:
    kept = rows(f"SELECT id, text, signals, metadata_json FROM read_parquet('{run}/curated/*.parquet') ORDER BY id")
    dropped = rows(f"SELECT id, status, stage, reason, signals FROM read_parquet('{run}/dropped/*.parquet') ORDER BY id")
    return kept, dropped


def _check_per_shard(run: Path, n_web_shards: int = 4) -> None:
    """Per web shard: ceil(x * judged) kept by the stage, each kept score >= each dropped one (ties: the
    earlier position is kept); no book is scored; the manifest balances."""
    judged = rows(f"""
        SELECT source_file, position, map_from_entries(signals)['quality.score'] AS s, true FROM read_parquet('{run}/curated/*.parquet')
        WHERE map_from_entries(signals)['quality.score'] IS NOT NULL
        UNION ALL
        SELECT source_file, position, map_from_entries(signals)['quality.score'], false FROM read_parquet('{run}/dropped/*.parquet')
        WHERE stage = 'quality'""")
    by = defaultdict(list)
    for sf, pos, s, kept in judged:
        by[sf].append((s, pos, kept))
    assert len(by) == n_web_shards and all(sf.startswith("webtext/") for sf in by), sorted(by)
    for sf, docs in by.items():
        kept = [d for d in docs if d[2]]
        assert len(kept) == keep_count(len(docs), FRACTION), (sf, len(kept), len(docs))
        worst_kept = max((-s, pos) for s, pos, _ in kept)  # rank key: higher score first, then earlier position
        assert all((-s, pos) > worst_kept for s, pos, k in docs if not k), sf
    assert rows(f"SELECT DISTINCT reason FROM read_parquet('{run}/dropped/*.parquet') WHERE stage = 'quality'") == [("low_quality",)]
    bad = rows(f"SELECT shard FROM read_parquet('{run}/manifest/*.parquet') WHERE read <> kept + dropped + errored")
    assert bad == []
    books = rows(f"""SELECT count(*), count(map_from_entries(signals)['quality.score']) FROM read_parquet('{run}/curated/*.parquet')
                     WHERE source_kind = 'book'""")[0]
    assert books[0] > 0 and books[1] == 0


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qps")
    recipe = _recipe(tmp, shared_data)
    dt, bm = tmp / "dt", tmp / "beam"
    run_cli("curate", str(recipe), "--output", str(dt))
    run_cli("curate", str(recipe), "--engine", "beam", "--output", str(bm))
    return recipe, dt, bm


def test_beam_equals_datatrove_and_every_shard_keeps_its_top_fraction(runs):
    _, dt, bm = runs
    assert _tables(bm) == _tables(dt)
    for run in (dt, bm):
        _check_per_shard(run)
        read = rows(f"SELECT sum(read) FROM read_parquet('{run}/manifest/*.parquet')")[0][0]
        written = sum(len(t) for t in _tables(run))
        assert read == written and read > 700  # 727 web records and the book's chapters, each accounted for


def test_rerun_decides_a_redone_shard_as_before(runs, tmp_path):
    recipe, dt, _ = runs
    before = _tables(dt)
    sf = rows(f"SELECT shard FROM read_parquet('{dt}/manifest/*.parquet') WHERE shard LIKE 'webtext/%' ORDER BY shard")[0][0]
    key = shard_key(sf)
    # what a task killed while writing that shard leaves: no manifest, no outputs, no datatrove completion marker
    for p in (Path(manifest_path(str(dt), sf)), dt / "curated" / f"{key}.parquet", dt / "dropped" / f"{key}.parquet",
              *(dt / "logs" / "curate" / "completions").glob("*")):
        p.unlink(missing_ok=True)
    res = run_cli("-v", "curate", str(recipe), "--output", str(dt))
    assert "already done" in res.stdout + res.stderr
    assert _tables(dt) == before


@pytest.mark.slow
def test_per_shard_stage_after_dedup_sees_whole_shards(shared_data, tmp_path):
    """After exact dedup, Beam's documents come out of a join in no particular order: the stage's own
    grouping by shard still gives datatrove's decisions."""
    recipe = _recipe(tmp_path, shared_data, extra="  - {stage: exact_dedup}\n")
    dt, bm = tmp_path / "dt", tmp_path / "beam"
    run_cli("curate", str(recipe), "--output", str(dt))
    run_cli("curate", str(recipe), "--engine", "beam", "--output", str(bm))
    assert _tables(bm) == _tables(dt)
    _check_per_shard(dt)
