"""``corpusmill stats`` on a real run: every table it prints is checked against the run's own files.

The run is built once per session (shared with tests/stats/test_report.py): ``corpusmill curate`` on
examples/default.yaml when it exists (else examples/mixed.yaml) over the shared data, then a small
tokenizer and a pack, so the token views have something to show. Expected numbers are computed here
with pyarrow straight from the manifests / Parquet / JSON, independently of the DuckDB views.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from corpusmill.cli import main
from corpusmill.curation.rows import signals_dict

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------
# the run (the same helper is in tests/stats/test_report.py; the session's basetemp lets both reuse it)


def recipe_path() -> Path:
    if os.environ.get("CORPUSMILL_STATS_TEST_RECIPE"):  # e.g. to try another recipe's signals
        return Path(os.environ["CORPUSMILL_STATS_TEST_RECIPE"])
    d = REPO / "examples" / "default.yaml"
    return d if d.exists() else REPO / "examples" / "mixed.yaml"


def build_run(tmp_path_factory, shared_data: Path) -> Path:
    if os.environ.get("CORPUSMILL_STATS_TEST_RUN"):  # a run built earlier by this helper (to iterate on tests)
        return Path(os.environ["CORPUSMILL_STATS_TEST_RUN"])
    run = tmp_path_factory.getbasetemp() / "stats-run"
    ready = run / ".stats-test-ready"
    if ready.exists():
        return run

    def cli(*argv: str) -> None:
        p = subprocess.run([sys.executable, "-m", "corpusmill.cli", *argv], cwd=REPO, capture_output=True, text=True)
        assert p.returncode == 0, f"corpusmill {argv[0]} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"

    cli("curate", str(recipe_path()), "--data-root", str(shared_data), "--output", str(run), "--overwrite")
    cur = f"{run}/curated/*.parquet"
    cli("train-tokenizer", "--input", cur, "--vocab-size", "512", "--max-bytes", "2000000",
        "--heldout-fraction", "0.2", "--no-progress", "--out", str(run / "tokenizer"))
    cli("pack", "--tokenizer", str(run / "tokenizer"), "--input", cur, "--out", str(run / "shards"),
        "--val-fraction", "0.1", "--shard-tokens", "500000", "--workers", "1", "--no-progress")
    ready.write_text("ok\n")
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data) -> Path:
    return build_run(tmp_path_factory, shared_data)


# ------------------------------------------------------------------------------------------------
# expected numbers, from the files themselves


def _table(run: Path, sub: str, columns: list[str]):
    files = sorted((run / sub).glob("*.parquet"))
    tables = [pq.read_table(f, columns=columns) for f in files]
    return [row for t in tables for row in t.to_pylist()]


@pytest.fixture(scope="module")
def expected(run_dir):
    man = _table(run_dir, "manifest", ["source_kind", "read", "kept", "dropped", "errored", "dropped_by", "errored_by",
                                        "kept_text_bytes"])
    by_source: dict[str, Counter] = {}
    reasons: Counter = Counter()
    for m in man:
        c = by_source.setdefault(m["source_kind"], Counter())
        for k in ("read", "kept", "dropped", "errored"):
            c[k] += m[k]
        for d in m["dropped_by"] or []:
            reasons[("dropped", d["stage"], d["reason"])] += d["count"]
        for d in m["errored_by"] or []:
            reasons[("error", d["stage"], d["reason"])] += d["count"]
    totals = Counter()
    for c in by_source.values():
        totals.update(c)
    totals["kept_text_bytes"] = sum(m["kept_text_bytes"] or 0 for m in man)
    cur = _table(run_dir, "curated", ["id", "signals", "toxicity", "dedup_cluster", "dedup_cluster_size"])
    drp = _table(run_dir, "dropped", ["id", "status", "stage", "reason", "signals", "toxicity", "dedup_cluster",
                                      "dedup_cluster_size"])
    file_reasons = Counter((r["status"], r["stage"], r["reason"]) for r in drp)
    signals: dict[str, list[tuple[str, float]]] = {}
    for r in cur:
        for k, v in signals_dict(r["signals"]).items():
            signals.setdefault(k, []).append(("kept", v))
    for r in drp:
        for k, v in signals_dict(r["signals"]).items():
            signals.setdefault(k, []).append(("dropped", v))
    docs = cur + drp
    return {
        "by_source": by_source,
        "reasons": reasons,
        "file_reasons": file_reasons,
        "totals": totals,
        "signals": signals,
        "toxicity_scored": sum(1 for r in docs if r["toxicity"] is not None),
        "in_clusters": sum(1 for r in docs if r["dedup_cluster"] is not None and (r["dedup_cluster_size"] or 0) > 1),
        "n_clusters": len({r["dedup_cluster"] for r in docs if r["dedup_cluster"] is not None and (r["dedup_cluster_size"] or 0) > 1}),
        "pack": json.loads((run_dir / "shards" / "manifest.json").read_text()),
        "tok_report": json.loads((run_dir / "tokenizer" / "report.json").read_text()),
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def stats_json(run_dir):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["stats", str(run_dir), "--json"]) == 0
    return json.loads(buf.getvalue())


# ------------------------------------------------------------------------------------------------
# the key tables


def test_by_source_equals_manifest_sums(stats_json, expected):
    got = {r["source_kind"]: r for r in stats_json["by_source"]}
    assert set(got) == set(expected["by_source"])
    for kind, c in expected["by_source"].items():
        for k in ("read", "kept", "dropped", "errored"):
            assert got[kind][k] == c[k], (kind, k)
    overview = {r["quantity"]: r["value"] for r in stats_json["overview"]}
    for k in ("read", "kept", "dropped", "errored", "kept_text_bytes"):
        assert overview[k] == expected["totals"][k], k


def test_drops_per_reason_equal_manifest_and_parquet(stats_json, expected):
    got = Counter({(r["status"], r["stage"], r["reason"]): r["documents"] for r in stats_json["drops"]})
    assert got == +expected["reasons"]
    # the manifests agree with the dropped Parquet rows, reason by reason
    assert +expected["file_reasons"] == +expected["reasons"]


def test_funnel_goes_from_read_to_kept(stats_json, expected):
    f = stats_json["funnel"]
    t = expected["totals"]
    assert f[0]["step"] == "read" and f[0]["documents"] == t["read"]
    assert f[-1]["step"] == "kept" and f[-1]["documents"] == t["kept"]
    steps = f[1:-1]
    assert sum(s["dropped"] + s["errored"] for s in steps) == t["dropped"] + t["errored"]
    left = t["read"]
    for s in steps:  # each step removes exactly what it dropped
        left -= s["dropped"] + s["errored"]
        assert s["documents"] == left
    assert left == t["kept"]
    # stage order follows the recipe (read first)
    recipe = json.loads(Path(stats_json["run_dir"], "recipe.json").read_text())["recipe"]
    order = [s["stage"] for s in steps if s["stage"] != "read"]
    assert order == [s["stage"] for s in recipe["stages"]]


def test_languages_cover_every_kept_document(stats_json, expected):
    rows = stats_json["by_language"]
    assert sum(r["documents"] for r in rows) == expected["totals"]["kept"]
    assert sum(r["tokens"] or 0 for r in rows) == expected["pack"]["total_tokens"]
    mb = sum(r["mb"] for r in rows)
    assert abs(mb * 1e6 - expected["totals"]["kept_text_bytes"]) <= 0.001 * 1e6 * len(rows)


def test_tokens_by_source_and_shards_equal_pack_manifest(stats_json, expected):
    pack = expected["pack"]
    assert sum(r["tokens"] or 0 for r in stats_json["by_source"]) == pack["total_tokens"]
    shards = stats_json["shards"]
    want = [(split, i, s["file"], s["num_tokens"]) for split, info in pack["splits"].items()
            for i, s in enumerate(info["shards"])]
    assert sorted((r["split"], r["shard_index"], r["file"], r["num_tokens"]) for r in shards) == sorted(want)
    overview = {r["quantity"]: r["value"] for r in stats_json["overview"]}
    assert overview["tokens"] == pack["total_tokens"]


def test_tokenizer_compression_from_report(stats_json, expected):
    rep = expected["tok_report"]
    rows = {(r["dimension"], r["value"]): r for r in stats_json["tokenizer"]}
    assert rows[("overall", "all")]["bytes_per_token"] == pytest.approx(rep["bytes_per_token"])
    for lang, g in rep["by_language"].items():
        assert rows[("language", lang)]["tokens"] == g["tokens"]
    for kind, g in rep["by_source_kind"].items():
        assert rows[("source_kind", kind)]["bytes"] == g["bytes"]


def test_signal_quantiles(stats_json, expected):
    rows = stats_json["signals"]
    sig = expected["signals"]
    if not sig:
        assert rows == []
        pytest.skip("the recipe computes no signals (examples/default.yaml not there yet)")
    n = Counter()
    for r in rows:
        n[r["signal"]] += r["n"]
    assert dict(n) == {k: len(v) for k, v in sig.items()}
    # one signal's kept median, recomputed with numpy
    name = max(sig, key=lambda k: sum(1 for o, _ in sig[k] if o == "kept"))
    kept = np.array([v for o, v in sig[name] if o == "kept"])
    row = next(r for r in rows if r["signal"] == name and r["outcome"] == "kept")
    assert row["p50"] == pytest.approx(float(np.quantile(kept, 0.5)), rel=1e-3, abs=1e-4)
    assert row["p1"] <= row["p5"] <= row["p25"] <= row["p50"] <= row["p75"] <= row["p95"] <= row["p99"]


def test_toxicity_and_dedup_tables(stats_json, expected):
    tox = stats_json["toxicity"]
    assert sum(r["kept"] + r["dropped_here"] + r["dropped_later"] for r in tox) == expected["toxicity_scored"]
    dd = stats_json["dedup"]
    assert sum(r["documents"] for r in dd) == expected["in_clusters"]
    assert sum(r["clusters"] for r in dd) == expected["n_clusters"]
    for r in dd:
        assert r["documents"] == r["size"] * r["clusters"]  # every member of a cluster is in the run


# ------------------------------------------------------------------------------------------------
# the command line


def test_text_output_prints_the_key_tables(run_dir, expected, capsys):
    rc, out, _ = run_cli(capsys, "stats", str(run_dir))
    assert rc == 0
    for title in ("Run totals", "Documents by source_kind", "by source_kind and language", "Funnel",
                  "by stage and reason", "Signal distributions", "Near-duplicate clusters", "Toxicity",
                  "Tokens per packed shard", "Tokenizer compression"):
        assert title in out, title
    assert f"{expected['totals']['read']:,}" in out


def test_sql_returns_the_right_counts(run_dir, expected, capsys):
    t = expected["totals"]
    rc, out, _ = run_cli(capsys, "stats", str(run_dir), "--json", "--sql",
                         "SELECT (SELECT count(*) FROM curated) AS kept, "
                         "(SELECT count(*) FROM documents WHERE status <> 'kept') AS rejected, "
                         "(SELECT sum(n) FROM drops) AS drops")
    assert rc == 0
    assert json.loads(out) == [{"kept": t["kept"], "rejected": t["dropped"] + t["errored"], "drops": t["dropped"] + t["errored"]}]
    rc, out, _ = run_cli(capsys, "stats", str(run_dir), "--sql",
                         "SELECT source_kind, count(*) AS n FROM curated GROUP BY 1 ORDER BY 1")
    assert rc == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["source_kind", "n"]
    kinds = [k for k, c in expected["by_source"].items() if c["kept"]]
    assert lines[-1] == f"({len(kinds)} row{'s' if len(kinds) != 1 else ''})"
    for k in kinds:
        assert any(line.split()[:2] == [k, f"{expected['by_source'][k]['kept']:,}"] for line in lines[2:-1]), k


def test_sql_error_and_not_a_run(run_dir, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "stats", str(run_dir), "--sql", "SELEC nonsense")
    assert rc == 1 and "syntax error" in err.lower()
    rc, _, err = run_cli(capsys, "stats", str(tmp_path))
    assert rc == 2 and "not a curation run" in err


def test_db_file_has_the_views(run_dir, expected, tmp_path, capsys):
    db = tmp_path / "sub" / "run.duckdb"
    rc, _, err = run_cli(capsys, "stats", str(run_dir), "--db", str(db), "--sql", "SELECT 1 AS x")
    assert rc == 0 and db.is_file() and str(db) in err
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the views hold absolute paths: they work from anywhere
    try:
        con = duckdb.connect(str(db), read_only=True)
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert {"curated", "dropped", "manifest", "documents", "drops", "drops_by_shard", "signals_long",
                "dedup_clusters", "shards", "shard_documents", "tokenizer_compression"} <= views
        t = expected["totals"]
        assert con.execute("SELECT count(*) FROM curated").fetchone()[0] == t["kept"]
        assert con.execute("SELECT sum(read) FROM manifest").fetchone()[0] == t["read"]
        assert con.execute("SELECT sum(num_tokens) FROM shards").fetchone()[0] == expected["pack"]["total_tokens"]
        con.close()
    finally:
        os.chdir(cwd)


def test_views_listing(run_dir, capsys):
    rc, out, _ = run_cli(capsys, "stats", str(run_dir), "--views", "--json")
    assert rc == 0
    v = json.loads(out)
    assert v["signals_long"] == ["id", "status", "drop_stage", "drop_reason", "source_kind", "language",
                                 "signal_stage", "signal", "value", "outcome"]
    assert v["drops"] == ["status", "stage", "reason", "n"]


def test_partial_run_directories(run_dir, tmp_path, capsys):
    """Only curated/dropped/manifest count; shards and tokenizer are optional; a run may keep nothing."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for sub in ("curated", "dropped", "manifest"):
        (bare / sub).symlink_to(run_dir / sub)
    (bare / "_predup").mkdir()  # dedup working directories are ignored
    rc, out, _ = run_cli(capsys, "stats", str(bare), "--json")
    assert rc == 0
    j = json.loads(out)
    assert "shards" not in j and "tokenizer" not in j
    assert all("tokens" not in r for r in j["by_source"])
    # --shards points at a pack elsewhere
    rc, out, _ = run_cli(capsys, "stats", str(bare), "--shards", str(run_dir / "shards"), "--json")
    assert rc == 0 and "shards" in json.loads(out)
    rc, _, err = run_cli(capsys, "stats", str(bare), "--shards", str(tmp_path))
    assert rc == 2 and "manifest.json" in err
    # a run that kept nothing: curated/ is empty, the views still have their columns
    empty = tmp_path / "empty"
    (empty / "curated").mkdir(parents=True)
    for sub in ("dropped", "manifest"):
        (empty / sub).symlink_to(run_dir / sub)
    rc, out, _ = run_cli(capsys, "stats", str(empty), "--json", "--sql",
                         "SELECT count(*) AS n, count(text) AS t FROM curated")
    assert rc == 0 and json.loads(out) == [{"n": 0, "t": 0}]
    rc, out, _ = run_cli(capsys, "stats", str(empty))
    assert rc == 0 and "Funnel" in out
