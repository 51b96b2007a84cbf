"""The run's Parquet loads with HF `datasets` (curated and dropped), `corpusmill export-dataset` writes the
Hub layout, and runs written with schema 1.x (``signals`` as a map) still work in stats, report and export.

The run is the one tests/stats/test_stats.py builds (examples/default.yaml over the shared data). The 1.x
run is that run rewritten the way the 1.x writer stored it: ``signals`` as ``map<string, double>``
(sorted keys) and ``corpusmill.schema_version`` 1.0.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.cli import main
from corpusmill.curation.rows import signals_dict
from corpusmill.schemas import CURATED_VERSION, SIGNALS_TYPE_V1, read_schema_metadata
from corpusmill.schemas.meta import KEY_VERSION

datasets = pytest.importorskip("datasets")

_spec = importlib.util.spec_from_file_location("_stats_run", Path(__file__).with_name("test_stats.py"))
_stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_stats)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data) -> Path:
    return _stats.build_run(tmp_path_factory, shared_data)


@pytest.fixture(scope="module")
def v1_run(run_dir, tmp_path_factory) -> Path:
    old = tmp_path_factory.mktemp("v1") / "run"
    old.mkdir()
    for src in run_dir.iterdir():  # everything but the documents as is (manifests, recipe, shards, tokenizer)
        if src.name not in ("curated", "dropped", "_predup", "_dedup", "logs") and not src.name.startswith("."):
            (shutil.copytree if src.is_dir() else shutil.copy)(src, old / src.name)
    for sub in ("curated", "dropped"):
        (old / sub).mkdir()
        for f in sorted((run_dir / sub).glob("*.parquet")):
            t = pq.read_table(f)
            i = t.schema.get_field_index("signals")
            pairs = [sorted(signals_dict(v).items()) or None for v in t.column("signals").to_pylist()]
            meta = dict(t.schema.metadata)
            meta[KEY_VERSION] = b"1.0"
            schema = t.schema.set(i, t.schema.field(i).with_type(SIGNALS_TYPE_V1)).with_metadata(meta)
            t = t.set_column(i, schema.field(i), pa.array(pairs, type=SIGNALS_TYPE_V1)).replace_schema_metadata(meta)
            pq.write_table(t, old / sub / f.name)
    return old


def _load(pattern: str, cache: Path):
    return datasets.load_dataset("parquet", data_files=pattern, split="train", cache_dir=str(cache))


def test_datasets_loads_curated_and_dropped(run_dir, tmp_path):
    for sub, name in (("curated", "curated"), ("dropped", "dropped")):
        f = next((run_dir / sub).glob("*.parquet"))
        assert read_schema_metadata(f) == (name, CURATED_VERSION)
        ds = _load(f"{run_dir}/{sub}/*.parquet", tmp_path / "cache")
        expected = sum(pq.read_metadata(p).num_rows for p in (run_dir / sub).glob("*.parquet"))
        assert ds.num_rows == expected > 0
        with_signals = [r for r in ds.select_columns(["id", "signals"]) if r["signals"]]
        assert with_signals and all(set(e) == {"key", "value"} for e in with_signals[0]["signals"])
    kept = {r["id"] for r in _load(f"{run_dir}/curated/*.parquet", tmp_path / "cache").select_columns(["id"])}
    man = pa.concat_tables(pq.read_table(p, columns=["kept"]) for p in (run_dir / "manifest").glob("*.parquet"))
    assert len(kept) == sum(man.column("kept").to_pylist())


def _stats_json(run: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["stats", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_old_runs_give_the_same_stats_and_a_report(run_dir, v1_run, capsys, tmp_path):
    assert read_schema_metadata(next((v1_run / "curated").glob("*.parquet")))[1] == "1.0"
    new, old = _stats_json(run_dir, capsys), _stats_json(v1_run, capsys)
    assert new.pop("run_dir") != old.pop("run_dir")
    for k in new:
        assert old.get(k) == new[k], f"stats table {k} differs between the 1.x and 2.x layouts"
    # the docs' DuckDB queries run on both
    q = "SELECT outcome, count(*) FROM signals_long WHERE signal = 'gopher_quality.mean_word_length' GROUP BY 1 ORDER BY 1"
    outs = []
    for run in (run_dir, v1_run):
        capsys.readouterr()
        assert main(["stats", str(run), "--sql", q, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0]
    assert main(["report", str(v1_run), "--out", str(tmp_path / "r.html")]) == 0
    assert "gopher_quality" in (tmp_path / "r.html").read_text()


def test_export_dataset_hub_layout_from_new_and_old_runs(run_dir, v1_run, tmp_path, capsys):
    rows = {}
    for tag, run in (("new", run_dir), ("old", v1_run)):
        out = tmp_path / f"hub-{tag}"
        assert main(["export-dataset", str(run), str(out), "--max-shard-mb", "1"]) == 0
        data = sorted(p.name for p in (out / "data").iterdir())
        n = len(data)
        assert data == [f"train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        card = (out / "README.md").read_text()
        assert card.startswith("---\nconfigs:\n- config_name: default\n") and "path: dropped/train-*.parquet" in card
        man = pa.concat_tables(pq.read_table(p) for p in (run / "manifest").glob("*.parquet"))
        read, kept = sum(man.column("read").to_pylist()), sum(man.column("kept").to_pylist())
        assert f"{read:,} documents read, {kept:,} kept" in card and "## Recipe" in card and '"name": "default"' in card
        # a cache per export: datasets keys a local folder's cache by its name, not by its files
        cur = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / f"c-{tag}"))
        drp = datasets.load_dataset(str(out), "dropped", split="train", cache_dir=str(tmp_path / f"c-{tag}"))
        assert cur.num_rows == kept and cur.num_rows + drp.num_rows == read
        rows[tag] = sorted((r["id"], json.dumps(r["signals"])) for r in cur.select_columns(["id", "signals"]))
    assert rows["new"] == rows["old"]
    capsys.readouterr()
    assert main(["export-dataset", str(run_dir), str(tmp_path / "hub-new")]) == 2
    assert "already exists" in capsys.readouterr().err
