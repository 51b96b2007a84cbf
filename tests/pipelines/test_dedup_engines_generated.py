"""Beam and datatrove give the same clusters, survivors and verdicts on the generated dedup corpus
(benchmarks/dedup_corpus.py: real sentences, planted exact and near copies with ground truth), under both
survivor rules, with candidate verification on; and every planted exact copy is rejected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run_cli_parallel

RECIPE = """
name: generated-{survivor}
data_root: {data}
inputs:
  - path: docs
    glob: "*.jsonl"
    reader: jsonl
stages:
  - stage: exact_dedup
  - stage: minhash_dedup
    verify: true
    survivor: {survivor}
output:
  dir: {out}
engine:
  executor: local
  tasks: 2
  workers: 2
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("generated") / "corpus"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "dedup_corpus.py"), str(out), "--docs", "3000",
                    "--shard-docs", "1000", "--processes", "1"], check=True, capture_output=True,
                   env={**os.environ, "CORPUSMILL_SHARED_DATA": str(shared_data)})
    return out


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.mark.slow
def test_engines_agree_on_the_generated_corpus_under_both_rules(corpus, tmp_path):
    outs, commands = {}, []
    for survivor in ("first", "longest"):
        for engine in ("datatrove", "beam"):
            out = tmp_path / f"{survivor}-{engine}"
            recipe = tmp_path / f"{survivor}-{engine}.yaml"
            recipe.write_text(RECIPE.format(survivor=survivor, data=corpus, out=out))
            extra = ["--engine", "beam", "--direct_running_mode=in_memory"] if engine == "beam" else []
            commands.append(("curate", str(recipe), *extra))
            outs[survivor, engine] = out
    run_cli_parallel(*commands[:2])
    run_cli_parallel(*commands[2:])
    cols = {"curated": "id, dedup_cluster, dedup_cluster_size",
            "dropped": "id, status, stage, reason, dedup_cluster, dedup_cluster_size"}
    truth = corpus / "truth.parquet"
    for survivor in ("first", "longest"):
        dt, bm = outs[survivor, "datatrove"], outs[survivor, "beam"]
        for part, c in cols.items():
            q = f"SELECT {c} FROM read_parquet('{{}}/{part}/*.parquet') ORDER BY id"
            assert rows(q.format(bm)) == rows(q.format(dt)), (survivor, part)
        # every planted exact copy is rejected (as an exact or near duplicate); rows are matched to the
        # ground truth by shard and position (document i is line i % 1000 of part-(i // 1000))
        missed = rows(f"SELECT count(*) FROM read_parquet('{truth}') t WHERE kind = 'exact' AND index NOT IN "
                      f"(SELECT 1000 * CAST(regexp_extract(source_file, 'part-(\\d+)', 1) AS BIGINT) + position "
                      f"FROM read_parquet('{dt}/dropped/*.parquet'))")[0][0]
        assert missed == 0, survivor
        kept = rows(f"SELECT count(*) FROM read_parquet('{dt}/curated/*.parquet')")[0][0]
        dropped = rows(f"SELECT count(*) FROM read_parquet('{dt}/dropped/*.parquet')")[0][0]
        assert kept + dropped == 3000
    # the rules pick different survivors somewhere (else this test would not tell them apart)
    q = "SELECT id FROM read_parquet('{}/curated/*.parquet') ORDER BY id"
    assert rows(q.format(outs["first", "datatrove"])) != rows(q.format(outs["longest", "datatrove"]))
