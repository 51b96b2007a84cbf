"""The default web recipe over all of ../shared/data: datatrove from the CLI, then Beam (local runner,
2 worker processes) on the same input must give exactly the same corpus."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "examples" / "default.yaml"
STAGE_ORDER = ["read", "extract", "language_id", "gopher_repetition", "gopher_quality", "c4", "fineweb",
               "stop_words", "token_ratio", "toxicity", "exact_dedup", "minhash_dedup"]


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.fixture(scope="module")
def datatrove_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "dt"
    res = run_cli("curate", str(DEFAULT), "--data-root", str(shared_data), "--output", str(out), "--workers", "2")
    return out, res


@pytest.mark.slow
def test_default_recipe_accounts_and_summarises(datatrove_run):
    out, res = datatrove_run
    man = rows(f"SELECT read, kept, dropped, errored, dropped_by FROM read_parquet('{out}/manifest/*.parquet')")
    assert len(man) == 16
    for read, kept, dropped, errored, by in man:
        assert read == kept + dropped + errored
        assert dropped == sum(d["count"] for d in by)
    stages = {r[0] for r in rows(f"SELECT DISTINCT stage FROM read_parquet('{out}/dropped/*.parquet')")}
    assert stages <= set(STAGE_ORDER)
    # the real data exercises most stages, dedup included
    assert {"language_id", "gopher_repetition", "gopher_quality", "exact_dedup", "minhash_dedup"} <= stages
    # the summary names every stage and reason that dropped something
    for stage, reason in rows(f"SELECT DISTINCT stage, reason FROM read_parquet('{out}/dropped/*.parquet')"):
        assert stage in res.stdout and reason in res.stdout
    assert "accounting: read" in res.stdout
    # kept documents carry their signals, language and dedup fields
    n, with_lang, with_signals, with_size = rows(
        f"""SELECT count(*), count(language), count(*) FILTER (WHERE cardinality(signals) > 0),
                   count(dedup_cluster_size) FROM read_parquet('{out}/curated/*.parquet')""")[0]
    assert n > 0 and with_lang == n and with_signals == n and with_size == n
    # no intermediate output leaks into the final directories
    assert not list(out.glob("curated/.tmp-*")) and not list(out.glob("dropped/.tmp-*"))


@pytest.mark.slow
def test_beam_matches_datatrove_on_default_recipe(datatrove_run, shared_data, tmp_path):
    dt, _ = datatrove_run
    bm = tmp_path / "beam"
    res = run_cli("curate", str(DEFAULT), "--engine", "beam", "--data-root", str(shared_data), "--output", str(bm),
                  "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert "accounting: read" in res.stdout
    kept = ("SELECT id, text, signals, language, language_score, toxicity, dedup_cluster, dedup_cluster_size "
            "FROM read_parquet('{}/curated/*.parquet') ORDER BY id")
    assert rows(kept.format(bm)) == rows(kept.format(dt))
    dropped = ("SELECT id, status, stage, reason, signals, dedup_cluster, dedup_cluster_size "
               "FROM read_parquet('{}/dropped/*.parquet') ORDER BY id")
    assert rows(dropped.format(bm)) == rows(dropped.format(dt))
    man = "SELECT shard, read, kept, dropped, errored, dropped_by FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard"
    assert rows(man.format(bm)) == rows(man.format(dt))
    assert rows(f"SELECT DISTINCT engine FROM read_parquet('{bm}/manifest/*.parquet')") == [("beam",)]
