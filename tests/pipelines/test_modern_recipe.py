"""examples/modern.yaml end to end on all of ../shared/data (datatrove), and a recipe with the same stages
on the web text and books run by both engines: Beam must give exactly datatrove's corpus."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
MODERN = REPO / "examples" / "modern.yaml"
NEW_STAGES = ("url_filter", "quality", "decontaminate", "pii")


def rows(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.fixture(scope="module")
def modern_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("modern") / "dt"
    old = os.environ.get("CORPUSMILL_DATA")
    os.environ["CORPUSMILL_DATA"] = str(shared_data)
    try:
        res = run_cli("curate", str(MODERN), "--output", str(out), "--workers", "2")
    finally:
        if old is None:
            os.environ.pop("CORPUSMILL_DATA")
        else:
            os.environ["CORPUSMILL_DATA"] = old
    return out, res


@pytest.mark.slow
def test_modern_recipe_end_to_end(modern_run, tmp_path):
    out, res = modern_run
    assert "accounting: read" in res.stdout and ": OK" in res.stdout
    for read, kept, dropped, errored in rows(f"SELECT read, kept, dropped, errored FROM read_parquet('{out}/manifest/*.parquet')"):
        assert read == kept + dropped + errored
    by = dict(rows(f"SELECT stage || ':' || reason, count(*) FROM read_parquet('{out}/dropped/*.parquet') GROUP BY ALL"))
    assert by.get("url_filter:hard_blacklisted") == 2 and by.get("quality:low_quality", 0) > 0
    assert not any(k.startswith(("c4:", "fineweb:", "quality:", "url_filter:")) for k in
                   dict(rows(f"""SELECT stage || ':' || reason, count(*) FROM read_parquet('{out}/dropped/*.parquet')
                                 WHERE source_kind <> 'web' GROUP BY ALL""")))
    # every kept English web document carries its quality score (the stage is scoped to [en] and [web]);
    # every kept document its PII counts
    web = rows(f"""SELECT count(*), count(map_from_entries(signals)['quality.score']), count(map_from_entries(signals)['pii.emails'])
                   FROM read_parquet('{out}/curated/*.parquet') WHERE source_kind = 'web' AND language = 'en'""")[0]
    assert web[0] > 0 and web[0] == web[1] == web[2]
    assert rows(f"""SELECT count(*) FROM read_parquet('{out}/curated/*.parquet')
                    WHERE map_from_entries(signals)['pii.emails'] IS NULL OR (source_kind <> 'web' OR language <> 'en')
                      AND map_from_entries(signals)['quality.score'] IS NOT NULL""") == [(0,)]
    books = rows(f"""SELECT count(DISTINCT source_file), count(map_from_entries(signals)['quality.score']), count(map_from_entries(signals)['pii.phones'])
                     FROM read_parquet('{out}/curated/*.parquet') WHERE source_kind = 'book'""")[0]
    assert books[0] == 4 and books[1] == 0 and books[2] > 0  # every distinct book, one edition each
    # no e-mail address survives in the kept text
    assert rows(f"""SELECT count(*) FROM read_parquet('{out}/curated/*.parquet')
                    WHERE regexp_matches(text, '[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{{2,}}')
                      AND NOT regexp_matches(text, '@example\\.(com|org)')""") == [(0,)]
    report = tmp_path / "report.html"
    run_cli("report", str(out), "--out", str(report))
    html = report.read_text()
    assert "quality.score" in html and "min 0.00082" in html and "pii.phones" in html


def _engine_recipe(shared_data: Path, tmp: Path) -> Path:
    """modern.yaml's stages over the web text and the books, with an evaluation set quoting 3 web pages."""
    texts = []
    with gzip.open(shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    quotes = [" ".join(t.split()[100:140]) for t in texts if len(t.split()) > 400][:3]
    bench = tmp / "bench.jsonl"
    bench.write_text("".join(json.dumps({"question": q}) + "\n" for q in quotes))
    recipe = yaml.safe_load(MODERN.read_text())
    recipe["data_root"] = str(shared_data)
    recipe["inputs"] = [i for i in recipe["inputs"] if i["path"] in ("webtext", "books")]
    for st in recipe["stages"]:
        if st["stage"] == "decontaminate":
            st["eval_sets"] = [{"path": str(bench), "fields": ["question"], "name": "quoted"}]
    path = tmp / "modern-subset.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
def test_beam_matches_datatrove_on_modern_stages(shared_data, tmp_path):
    recipe = _engine_recipe(shared_data, tmp_path)
    dt, bm = tmp_path / "dt", tmp_path / "beam"
    run_cli("curate", str(recipe), "--output", str(dt), "--workers", "2")
    run_cli("curate", str(recipe), "--engine", "beam", "--output", str(bm),
            "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    kept = ("SELECT id, text, signals, metadata_json, language, dedup_cluster FROM read_parquet('{}/curated/*.parquet') "
            "ORDER BY id")
    assert rows(kept.format(bm)) == rows(kept.format(dt))
    dropped = "SELECT id, status, stage, reason, signals FROM read_parquet('{}/dropped/*.parquet') ORDER BY id"
    assert rows(dropped.format(bm)) == rows(dropped.format(dt))
    by = dict(rows(f"SELECT stage, count(*) FROM read_parquet('{dt}/dropped/*.parquet') GROUP BY ALL"))
    assert by.get("decontaminate", 0) >= 3 and by.get("quality", 0) > 0 and by.get("url_filter", 0) == 2
    # PII redaction happened, identically, in both engines
    n = rows(f"SELECT sum(map_from_entries(signals)['pii.emails'] + map_from_entries(signals)['pii.phones']) FROM read_parquet('{dt}/curated/*.parquet')")[0][0]
    assert n > 0
