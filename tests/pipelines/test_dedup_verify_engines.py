"""Candidate verification (``minhash_dedup`` ``verify: true | exact``) gives the same clusters and
survivors on Beam as on datatrove, on real near-duplicates (the Gutenberg editions and dolma's pages)."""

from __future__ import annotations

import duckdb
import pytest
from conftest import run_cli_parallel

RECIPE = """
name: verify-{mode}
data_root: {data}
inputs:
  - path: books
    glob: "*.txt"
    reader: books
  - path: webtext
    glob: "dolma_CC-MAIN-*.jsonl.gz"
    reader: jsonl
stages:
  - stage: minhash_dedup
    verify: {mode}
output:
  dir: {out}
engine:
  executor: local
  tasks: 2
  workers: 2
"""


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["true", "exact"])
def test_beam_matches_datatrove_with_verification(shared_data, tmp_path, mode):
    outs, commands = {}, []
    for engine in ("datatrove", "beam"):
        out = tmp_path / engine
        recipe = tmp_path / f"{engine}.yaml"
        recipe.write_text(RECIPE.format(mode=mode, data=shared_data, out=out))
        extra = ["--engine", "beam", "--direct_running_mode=in_memory"] if engine == "beam" else []
        commands.append(("curate", str(recipe), *extra))
        outs[engine] = out
    run_cli_parallel(*commands)  # independent runs: side by side
    cols = {"curated": "id, dedup_cluster, dedup_cluster_size", "dropped": "id, status, stage, reason, dedup_cluster, dedup_cluster_size"}
    for part, c in cols.items():
        q = f"SELECT {c} FROM read_parquet('{{}}/{part}/*.parquet') ORDER BY id"
        assert rows(q.format(outs["beam"])) == rows(q.format(outs["datatrove"]))
    # the older Gutenberg editions are still caught with verification on
    dropped_books = rows(f"SELECT count(*) FROM read_parquet('{outs['datatrove']}/dropped/*.parquet') "
                         "WHERE source_file LIKE '%books%' AND stage = 'minhash_dedup'")[0][0]
    assert dropped_books == 2
