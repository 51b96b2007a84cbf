"""The pipe end to end: the mixed recipe over all of ../shared/data, from the CLI.

Checks the accounting identity per shard and over the run, that DuckDB reads every output, stable ids,
resume (a rerun skips finished work), Ray parity, the Slurm script, and corrupted inputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from corpusmill.schemas import read_schema_metadata

REPO = Path(__file__).resolve().parents[2]
MIXED = REPO / "examples" / "mixed.yaml"


def curate(recipe: Path, data_root: Path, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "corpusmill.cli", "curate", str(recipe), "--data-root", str(data_root), "--output", str(out), *extra]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if check and res.returncode != 0:
        raise AssertionError(f"curate failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return res


def q(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.fixture(scope="module")
def mixed_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "run"
    res = curate(MIXED, shared_data, out, "--workers", "2", "--tasks", "4")
    return out, res


def test_mixed_recipe_accounts_for_every_document(mixed_run, shared_data):
    out, res = mixed_run
    m = f"{out}/manifest/*.parquet"
    rows = q(f"SELECT shard, read, kept, dropped, errored, dropped_by, errored_by FROM read_parquet('{m}')")
    shards = {r[0] for r in rows}
    # every input file of the recipe has a manifest row
    expected = {
        "warc/CC-MAIN-2020-34_sample.warc.gz", "warc/CC-MAIN-2024-22_whirlwind.warc.gz",
        "warc/CC-MAIN-2024-22_whirlwind.warc.wet.gz",
        "wikipedia/enwiki-pages-articles1-shortened.xml.bz2", "wikipedia/enwiki-table-markup.xml.bz2",
        "wikipedia/bgwiki-pages-articles-shortened.UTF-16.xml.bz2",
    } | {f"books/{p.name}" for p in (shared_data / "books").glob("*.txt")} \
      | {f"webtext/{p.name}" for p in (shared_data / "webtext").glob("*.json*.gz")}
    assert shards == expected
    for shard, read, kept, dropped, errored, dropped_by, errored_by in rows:
        assert read == kept + dropped + errored, shard
        assert dropped == sum(d["count"] for d in dropped_by)
        assert errored == sum(d["count"] for d in errored_by)
        assert errored == 0, (shard, errored_by)  # the real shared files are clean
    # the Parquet files hold exactly what the manifest says
    kept = q(f"SELECT count(*) FROM read_parquet('{out}/curated/*.parquet')")[0][0]
    assert kept == sum(r[2] for r in rows)
    rej = q(f"SELECT count(*) FROM read_parquet('{out}/dropped/*.parquet')")[0][0]
    assert rej == sum(r[3] + r[4] for r in rows)
    # counts by source print, and known totals from PROVENANCE hold
    assert "source_kind" in res.stdout and "accounting: read" in res.stdout
    by = dict(q(f"SELECT shard, read FROM read_parquet('{m}')"))
    assert by["wikipedia/enwiki-pages-articles1-shortened.xml.bz2"] == 206
    assert by["webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"] == 697
    assert by["warc/CC-MAIN-2020-34_sample.warc.gz"] == 16
    # PROVENANCE: enwiki 206 pages (205 in ns0, 100 redirects, one of them outside ns0), bgwiki 3 pages (1 in ns0)
    wiki = dict(q(f"SELECT reason, count(*) FROM read_parquet('{out}/dropped/*.parquet') WHERE reason LIKE 'wiki_%' GROUP BY 1"))
    assert wiki == {"wiki_redirect": 99, "wiki_namespace": 3}


def test_outputs_carry_schema_versions_and_unique_ids(mixed_run):
    out, _ = mixed_run
    for sub, name, version in (("curated", "curated", "2.0"), ("dropped", "dropped", "2.0"), ("manifest", "manifest", "1.1")):
        files = sorted((out / sub).glob("*.parquet"))
        assert files
        for f in files:
            assert read_schema_metadata(f) == (name, version)
    assert not list(out.rglob(".tmp-*")), "temporary files left behind"
    n, distinct = q(
        f"""SELECT count(*), count(DISTINCT id) FROM (
              SELECT id FROM read_parquet('{out}/curated/*.parquet')
              UNION ALL SELECT id FROM read_parquet('{out}/dropped/*.parquet'))"""
    )[0]
    assert n == distinct


def test_rerun_skips_finished_work_and_ids_are_stable(mixed_run, shared_data):
    out, _ = mixed_run
    before = {p: p.stat().st_mtime_ns for p in out.glob("curated/*.parquet")}
    ids_before = q(f"SELECT list(id ORDER BY id) FROM read_parquet('{out}/curated/*.parquet')")[0][0]
    res = curate(MIXED, shared_data, out, "--workers", "2", "--tasks", "4")
    assert "accounting: read" in res.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("curated/*.parquet")} == before
    # a fresh run elsewhere (different task count) gives the same ids
    other = out.parent / "again"
    curate(MIXED, shared_data, other, "--workers", "1", "--tasks", "1")
    assert q(f"SELECT list(id ORDER BY id) FROM read_parquet('{other}/curated/*.parquet')")[0][0] == ids_before


def test_changed_recipe_refuses_old_output(mixed_run, shared_data, tmp_path):
    out, _ = mixed_run
    changed = tmp_path / "changed.yaml"
    changed.write_text(MIXED.read_text().replace("extractor: resiliparse", "extractor: trafilatura"))
    res = curate(changed, shared_data, out, check=False)
    assert res.returncode == 2 and "different recipe" in res.stderr


@pytest.mark.slow
def test_ray_executor_gives_identical_documents(mixed_run, shared_data, tmp_path):
    out, _ = mixed_run
    ray_out = tmp_path / "ray"
    curate(MIXED, shared_data, ray_out, "--executor", "ray", "--workers", "2", "--tasks", "4")
    sql = "SELECT id, md5(text) FROM read_parquet('{}/curated/*.parquet') ORDER BY id"
    assert q(sql.format(ray_out)) == q(sql.format(out))
    sql = "SELECT id, stage, reason FROM read_parquet('{}/dropped/*.parquet') ORDER BY id"
    assert q(sql.format(ray_out)) == q(sql.format(out))


def test_slurm_writes_a_launch_script(shared_data, tmp_path):
    out = tmp_path / "slurm"
    res = curate(REPO / "examples" / "books.yaml", shared_data, out, "--executor", "slurm", "--tasks", "3")
    script = out / "logs" / "curate" / "launch_script.slurm"
    assert script.exists(), res.stdout + res.stderr
    text = script.read_text()
    assert "#SBATCH --array=0-2" in text and "launch_pickled_pipeline" in text
    assert (out / "logs" / "curate" / "executor.pik").exists()


def _corrupt_copy(shared_data: Path, dst: Path) -> None:
    """A data dir with damaged copies of real files next to intact ones."""
    (dst / "warc").mkdir(parents=True)
    (dst / "wikipedia").mkdir()
    raw = (shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    shutil.copy(shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz", dst / "warc" / "intact.warc.gz")
    (dst / "warc" / "truncated.warc.gz").write_bytes(raw[: int(len(raw) * 0.6)])
    flipped = bytearray(raw)
    mid = len(raw) // 2
    for i in range(mid, mid + 64):
        flipped[i] ^= 0xFF
    (dst / "warc" / "flipped.warc.gz").write_bytes(bytes(flipped))
    (dst / "warc" / "empty.warc.gz").write_bytes(b"")
    wiki = (shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2").read_bytes()
    (dst / "wikipedia" / "cut.xml.bz2").write_bytes(wiki[: len(wiki) // 2])


def test_corrupt_inputs_are_counted_and_the_run_goes_on(shared_data, tmp_path):
    data = tmp_path / "data"
    _corrupt_copy(shared_data, data)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "inputs:\n"
        "  - {path: warc, glob: '*.warc.gz', reader: warc}\n"
        "  - {path: wikipedia, glob: '*.xml.bz2', reader: wikipedia}\n"
        "stages: [{stage: extract}]\n"
        "output: {dir: out}\n"
        "engine: {tasks: 2, workers: 2}\n"
    )
    out = tmp_path / "out"
    res = curate(recipe, data, out)
    m = f"{out}/manifest/*.parquet"
    rows = {r[0]: r[1:] for r in q(f"SELECT shard, read, kept, dropped, errored FROM read_parquet('{m}')")}
    assert set(rows) == {"warc/intact.warc.gz", "warc/truncated.warc.gz", "warc/flipped.warc.gz",
                         "warc/empty.warc.gz", "wikipedia/cut.xml.bz2"}
    for shard, (read, kept, dropped, errored) in rows.items():
        assert read == kept + dropped + errored, shard
    assert rows["warc/truncated.warc.gz"][3] >= 1
    assert rows["warc/flipped.warc.gz"][3] >= 1
    assert rows["wikipedia/cut.xml.bz2"][3] >= 1
    assert rows["warc/empty.warc.gz"][0] == 0
    # flipped bytes damage one record: every other record of the intact file is still read, same ids
    intact = rows["warc/intact.warc.gz"][0]
    assert rows["warc/flipped.warc.gz"][0] >= intact - 1
    errs = q(f"SELECT source_file, position, error FROM read_parquet('{out}/dropped/*.parquet') WHERE status = 'error'")
    assert errs and all(e[0] and e[1] is not None and e[2] for e in errs)
    assert "accounting: read" in res.stdout
