"""Fuzzing whole runs: mutated real files of several readers, curated with a random recipe within the
schema (stages and parameter values in their documented ranges, tasks, compression, dedup or not).

After each run: it completed; per shard read = kept + dropped + errored and the Parquet rows match the
manifest; the records the sink wrote are exactly the reader's records (same positions, no loss, no
duplicate ids); no file outside the run directory was created, changed or removed.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import RUN_EXAMPLES, decompress_any, fuzz_settings, gzip_members, mutate, mutations, read_checked

SOURCES = {
    # name in the input dir: (reader, shared file, how it is stored)
    "cc.warc.gz": ("warc", "warc/CC-MAIN-2020-34_sample.warc.gz", "members"),
    "wet.warc.wet.gz": ("wet", "warc/CC-MAIN-2024-22_whirlwind.warc.wet.gz", "members"),
    "dolma.jsonl.gz": ("jsonl", "webtext/dolma_cc_en_head-0091.jsonl.gz", "gzip"),
    "enwiki.xml": ("wikipedia", "wikipedia/enwiki-table-markup.xml.bz2", "plain"),
    "bgwiki.xml": ("wikipedia", "wikipedia/bgwiki-pages-articles-shortened.UTF-16.xml.bz2", "plain"),
    "book.txt": ("books", "books/pg972_devils-dictionary.OLD-dvldc10.txt", "plain"),
}

STAGES = {
    "gopher_quality": {"min_doc_words": st.integers(0, 200), "max_avg_word_length": st.floats(3, 20),
                       "min_alpha_words_ratio": st.floats(0, 1), "min_stop_words": st.integers(0, 5)},
    "gopher_repetition": {"dup_line_frac": st.floats(0, 1), "dup_para_frac": st.floats(0, 1)},
    "c4": {"filter_no_terminal_punct": st.booleans(), "max_word_length": st.integers(10, 2000),
           "filter_curly_bracket": st.booleans()},
    "fineweb": {"line_punct_thr": st.floats(0, 1), "short_line_thr": st.floats(0, 1),
                "char_duplicates_ratio": st.floats(0, 1), "new_line_ratio": st.floats(0, 1)},
    "stop_words": {"min_stop_words": st.integers(0, 5)},
    "exact_dedup": {},
}


@st.composite
def stage_specs(draw):
    names = draw(st.lists(st.sampled_from(sorted(STAGES)), max_size=4, unique=True))
    specs = []
    for name in names:
        params = {k: draw(v) for k, v in STAGES[name].items() if draw(st.booleans())}
        specs.append({"stage": name, **params})
    # dedup runs after the per-document stages
    return sorted(specs, key=lambda s: s["stage"] == "exact_dedup")


def _snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        for f in filenames:
            p = d / f
            st_ = p.lstat()
            out[str(p)] = (st_.st_size, st_.st_mtime_ns)
        out[str(d)] = ("dir",)
    return out


@fuzz_settings(RUN_EXAMPLES)
@given(
    files=st.lists(st.tuples(st.sampled_from(sorted(SOURCES)), st.booleans(), mutations), min_size=1, max_size=3,
                   unique_by=lambda t: t[0]),
    stages=stage_specs(),
    tasks=st.integers(1, 3),
    extract=st.booleans(),
)
def test_fuzz_random_recipes_on_damaged_files(shared_data, tmp_path_factory, files, stages, tasks, extract):
    from corpusmill.pipelines.recipe import parse_recipe
    from corpusmill.pipelines.run import run_recipe

    sandbox = tmp_path_factory.mktemp("fuzz-run")
    data_dir, out = sandbox / "data", sandbox / "run"
    data_dir.mkdir()
    (sandbox / "bystander.txt").write_text("not corpusmill's")
    inputs, expected = [], {}
    for name, damage, ops in files:
        reader, rel, how = SOURCES[name]
        if how == "members":
            members = gzip_members((shared_data / rel).read_bytes())
            if damage:
                k = ops[0][1] % len(members)
                members[k] = mutate(members[k], ops)
            data = b"".join(gzip.compress(m) for m in members)
        else:
            data = decompress_any(shared_data / rel)
            if damage:
                data = mutate(data, ops)
            if how == "gzip":
                data = gzip.compress(data)
        (data_dir / name).write_bytes(data)
        inputs.append({"path": name, "reader": reader})
        expected[name] = {d.metadata["position"] for d in read_checked(reader, data, name)}
    recipe_stages = list(stages)
    if extract and any(SOURCES[n][0] == "warc" for n, _, _ in files):
        recipe_stages.insert(0, {"stage": "extract"})
    before = _snapshot(sandbox, out)
    recipe = parse_recipe(
        {
            "name": "fuzz",
            "data_root": str(data_dir),
            "inputs": inputs,
            "stages": recipe_stages,
            "output": {"dir": str(out)},
            "engine": {"executor": "local", "tasks": tasks, "workers": 1},
        }
    )
    run_recipe(recipe)
    assert _snapshot(sandbox, out) == before, "a file outside the run directory changed"
    manifests = {r["shard"]: r for r in pq.read_table(out / "manifest").to_pylist()}
    assert sorted(manifests) == sorted(expected)
    rows = {}
    for sub in ("curated", "dropped"):
        for r in pq.read_table(out / sub, columns=["id", "source_file", "position"]).to_pylist():
            assert r["id"] not in rows, "duplicate id"
            rows[r["id"]] = r
    for shard, man in manifests.items():
        assert man["read"] == man["kept"] + man["dropped"] + man["errored"]
        positions = [r["position"] for r in rows.values() if r["source_file"] == shard]
        assert len(positions) == man["read"]
        assert set(positions) == expected[shard], shard  # exactly the reader's records
