"""Object storage for real: a moto S3 server started by the test (tests/pipelines/s3_server.py), read
and written through s3fs by a full recipe run; the bucket's run equals the local run (for the default
recipe, the session's reference run ``default_run``)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import REFERENCE_ARGS, run_cli, run_cli_parallel
from s3_server import s3_server  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[2]
DIRS = ("warc", "wikipedia", "books", "webtext")


def curate(recipe: Path, data_root: str, out: str, *flags: str) -> tuple[str, ...]:
    return ("curate", str(recipe), "--data-root", data_root, "--output", out, *flags)


def q(sql: str):
    return duckdb.sql(sql).fetchall()


def same_run(local: Path, fetched: Path) -> None:
    for sql in (
        "SELECT id, source_file, position, md5(text) FROM read_parquet('{}/curated/*.parquet') ORDER BY id",
        "SELECT id, stage, reason FROM read_parquet('{}/dropped/*.parquet') ORDER BY id",
        "SELECT shard, read, kept, dropped, errored, dropped_by FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard",
    ):
        a, b = q(sql.format(local)), q(sql.format(fetched))
        assert a and a == b, sql


@pytest.fixture(scope="module")
def bucket(s3_server, shared_data):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("corpusmill-test")
    for d in DIRS:
        for p in sorted((shared_data / d).iterdir()):
            if p.is_file() and p.name != "PROVENANCE.md":
                fs.put_file(str(p), f"corpusmill-test/data/{d}/{p.name}")
    return fs


FLAGS = ("--workers", "2", "--tasks", "3")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [
    pytest.param("mixed", id="no-dedup"),
    pytest.param("default", id="dedup"),
])
def test_recipe_on_s3_equals_local(s3_server, bucket, shared_data, tmp_path, request, recipe):
    path = REPO / "examples" / f"{recipe}.yaml"
    run = f"s3://corpusmill-test/run-{recipe}"
    if recipe == "default":  # dedup (signatures, buckets, components, the marker) through fsspec
        local = request.getfixturevalue("default_run").out  # the session's reference, with its flags
        run_cli(*curate(path, "s3://corpusmill-test/data", run, *REFERENCE_ARGS), timeout=900)
    else:  # two independent runs: side by side
        local = tmp_path / "local"
        run_cli_parallel(curate(path, str(shared_data), str(local), *FLAGS),
                         curate(path, "s3://corpusmill-test/data", run, *FLAGS), timeout=900)
    fetched = tmp_path / "fetched"
    bucket.get(run.removeprefix("s3://") + "/", str(fetched), recursive=True)
    assert (fetched / "run.json").exists()
    same_run(local, fetched)
    # nothing left under a temporary name
    assert not [p for p in bucket.find(run.removeprefix("s3://")) if "/.tmp" in p or ".tmp-" in p]
