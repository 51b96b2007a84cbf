"""The sink never dies on one record: bad strings and odd field types become repaired (and counted) or
errored rows, on datatrove and on Beam, and every other record of the shard is written as usual."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

DOLMA = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

# (line, what must happen): "kept" = the record is kept (repaired where needed), "errored" = one error row
BAD_LINES = [
    ('{"text": "lone \\ud800 surrogate in the text", "url": "http://b.example/"}', "kept"),
    ('{"text": "a lone surrogate in a key", "k\\udc00ey": 1}', "kept"),
    ('{"text": "a lone surrogate in the url", "url": "http://c.example/\\ud800x"}', "kept"),
    ('{"text": "the url is a number", "url": 12345}', "kept"),
    ('{"text": "the url is a list", "url": ["http://a/", "http://b/"]}', "kept"),
    ('{"text": "the url is an object", "url": {"href": "http://a/"}}', "kept"),
    ('{"text": "the title is a list", "title": ["Part", "One"]}', "kept"),
    ('{"text": "the title is a number", "title": 1984}', "kept"),
    ('{"text": "metadata holds NaN and Infinity", "score": NaN, "w": [Infinity, 1]}', "kept"),
    ('{"text": "nested \\udfff surrogate", "meta": {"a\\ud801": ["x\\udc02"]}}', "kept"),
    ('{"text": 12}', "errored"),
]


def _strict_json(s: str):
    def refuse(c):
        raise ValueError(f"not JSON: {c}")

    return json.loads(s, parse_constant=refuse)


@pytest.fixture(scope="module")
def bad_jsonl(shared_data, tmp_path_factory) -> tuple[Path, list[str], dict[int, str]]:
    good = [ln for ln in gzip.decompress((shared_data / DOLMA).read_bytes()).decode().splitlines() if ln.strip()][:40]
    lines: list[str] = []
    expect: dict[int, str] = {}
    for i, g in enumerate(good):
        lines.append(g)
        if i % 3 == 1 and i // 3 < len(BAD_LINES):
            bad, what = BAD_LINES[i // 3]
            expect[len(lines)] = what
            lines.append(bad)
    assert len(expect) == len(BAD_LINES)
    root = tmp_path_factory.mktemp("bad-records")
    (root / "bad.jsonl").write_text("\n".join(lines) + "\n")
    return root, lines, expect


def _recipe(root: Path, out: Path, executor_engine: str):
    from corpusmill.pipelines.recipe import parse_recipe

    return parse_recipe(
        {
            "name": "bad-records",
            "data_root": str(root),
            "inputs": [{"path": "bad.jsonl", "reader": "jsonl"}],
            "stages": [{"stage": "gopher_quality"}],
            "output": {"dir": str(out)},
            "engine": {"executor": "local", "tasks": 1, "workers": 1},
        }
    )


@pytest.mark.parametrize("engine", ["datatrove", "beam"])
def test_bad_strings_and_field_types_never_stop_the_run(bad_jsonl, tmp_path, engine):
    from corpusmill.pipelines.run import run_recipe

    root, lines, expect = bad_jsonl
    out = tmp_path / "out"
    run_recipe(_recipe(root, out, engine), engine=engine)
    (man,) = pq.read_table(out / "manifest").to_pylist()
    assert man["read"] == len(lines) == man["kept"] + man["dropped"] + man["errored"]
    rows = {r["position"]: r for sub in ("curated", "dropped") for r in pq.read_table(out / sub).to_pylist()}
    assert sorted(rows) == list(range(len(lines)))
    for pos, row in rows.items():
        if row["metadata_json"] is not None:
            _strict_json(row["metadata_json"])  # valid JSON: no NaN / Infinity
        for col in ("text", "url", "title", "metadata_json"):
            assert row[col] is None or isinstance(row[col], str)
        if pos not in expect:  # every good line as it was (a dropped row holds the text's first 2,000 characters)
            full = json.loads(lines[pos])["text"]
            assert row["text"] == full if row.get("status") is None else full.startswith(row["text"])
    for pos, what in expect.items():
        row = rows[pos]
        if what == "errored":
            assert row["status"] == "error" and row["reason"], row
            continue
        # kept by the reader (a later filter may drop a four-word text: that is the filter's call)
        assert row.get("stage") in (None, "gopher_quality"), row
        repairs = _strict_json(row["metadata_json"])["cm_repairs"]
        assert repairs, row
    # the surrogate is replaced, the rest of the text kept
    assert rows[min(expect)]["text"] == "lone \ufffd surrogate in the text"
    by_text = {r["text"]: r for r in rows.values()}
    assert by_text["the url is a number"]["url"] == "12345"
    assert by_text["the title is a number"]["title"] == "1984"
    # a list-valued title does not vanish: the value is kept in metadata_json
    listed = by_text["the title is a list"]
    assert listed["title"] is None and _strict_json(listed["metadata_json"])["title_raw"] == ["Part", "One"]
    assert _strict_json(by_text["the url is an object"]["metadata_json"])["url_raw"] == {"href": "http://a/"}
    md = _strict_json(by_text["metadata holds NaN and Infinity"]["metadata_json"])
    assert md["score"] is None and md["w"] == [None, 1]
    # repairs are counted in the manifest: records repaired, per kind of repair
    assert dict(man["repaired"]) == {"lone_surrogate": 4, "url_not_string": 3, "title_not_string": 2, "nonfinite_number": 1}


def test_a_title_field_of_a_jsonl_line_is_the_title(tmp_path):
    from corpusmill.curation.readers import get_reader

    src = tmp_path / "t.jsonl"
    src.write_text('{"text": "x", "title": "Paris"}\n')
    with open(src, "rb") as fh:
        (rec,) = get_reader("jsonl").records(fh, str(src))
    assert rec.metadata["title"] == "Paris"


def test_the_manifest_counts_skipped_warc_records_by_type(shared_data, tmp_path):
    """The manifest reconciles with the archive: read + sum(skipped) = the number of WARC records."""
    from corpusmill.pipelines.recipe import parse_recipe
    from corpusmill.pipelines.run import run_recipe

    recipe = parse_recipe(
        {
            "name": "skipped",
            "data_root": str(shared_data / "warc"),
            "inputs": [{"path": "CC-MAIN-2020-34_sample.warc.gz", "reader": "warc"}],
            "stages": [],
            "output": {"dir": str(tmp_path / "out")},
            "engine": {"executor": "local", "tasks": 1, "workers": 1},
        }
    )
    run_recipe(recipe)
    (man,) = pq.read_table(tmp_path / "out" / "manifest").to_pylist()
    assert man["read"] == 16 and dict(man["skipped"]) == {"metadata": 16, "request": 17, "warcinfo": 1}
    assert dict(man["repaired"]) == {}
