"""The default web recipe over all of ../shared/data: datatrove from the CLI (the session's reference run,
``default_run`` in tests/conftest.py), then Beam (local runner, 2 worker processes, ``default_beam_run``)
on the same input must give exactly the same corpus."""

from __future__ import annotations

import duckdb
import pytest

STAGE_ORDER = ["read", "extract", "language_id", "gopher_repetition", "gopher_quality", "c4", "fineweb",
               "stop_words", "token_ratio", "toxicity", "exact_dedup", "minhash_dedup"]


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.mark.slow
def test_default_recipe_accounts_and_summarises(default_run):
    out, res = default_run.out, default_run
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
def test_beam_matches_datatrove_on_default_recipe(default_run, default_beam_run):
    dt, bm = default_run.out, default_beam_run.out
    assert "accounting: read" in default_beam_run.stdout
    kept = ("SELECT id, text, signals, language, language_score, toxicity, dedup_cluster, dedup_cluster_size "
            "FROM read_parquet('{}/curated/*.parquet') ORDER BY id")
    assert rows(kept.format(bm)) == rows(kept.format(dt))
    dropped = ("SELECT id, status, stage, reason, signals, dedup_cluster, dedup_cluster_size "
               "FROM read_parquet('{}/dropped/*.parquet') ORDER BY id")
    assert rows(dropped.format(bm)) == rows(dropped.format(dt))
    man = "SELECT shard, read, kept, dropped, errored, dropped_by FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard"
    assert rows(man.format(bm)) == rows(man.format(dt))
    assert rows(f"SELECT DISTINCT engine FROM read_parquet('{bm}/manifest/*.parquet')") == [("beam",)]


@pytest.mark.slow
def test_default_recipe_keeps_every_distinct_book(default_run, shared_data):
    """Issue 16, point 7: books are split into chapters and only web text meets C4's and FineWeb's line
    rules, so every distinct book survives (Sherlock Holmes used to fail gopher_long_doc, News from
    Nowhere c4 curly_bracket); of two editions of one book, one is kept and the other is a duplicate."""
    out = default_run.out
    kept = dict(rows(f"""SELECT source_file, count(*) FROM read_parquet('{out}/curated/*.parquet')
                         WHERE source_kind = 'book' GROUP BY ALL"""))
    dropped = rows(f"""SELECT source_file, stage, count(*) FROM read_parquet('{out}/dropped/*.parquet')
                       WHERE source_kind = 'book' GROUP BY ALL""")
    books = sorted(p.name for p in (shared_data / "books").glob("*.txt"))
    by_work: dict[str, list[str]] = {}
    for name in books:
        by_work.setdefault(name.split("_")[0], []).append(f"books/{name}")
    assert len(by_work) == 4
    for work, editions in by_work.items():
        survivors = [e for e in editions if kept.get(e)]
        assert len(survivors) == 1, (work, survivors)
        others = set(editions) - set(survivors)
        # the other edition goes as a duplicate, chapter by chapter (one table of contents fails Gopher's
        # alphabetic-word rule on its own)
        for f, stage, n in dropped:
            if f in others:
                assert stage in ("exact_dedup", "minhash_dedup") or n == 1, (f, stage, n)
    # no book text is dropped by a web rule any more
    assert not [d for d in dropped if d[1] in ("c4", "fineweb") or (d[1] == "gopher_quality" and d[2] > 1)]
    long_reasons = rows(f"""SELECT count(*) FROM read_parquet('{out}/dropped/*.parquet')
                            WHERE source_kind = 'book' AND reason = 'gopher_long_doc'""")
    assert long_reasons == [(0,)]
