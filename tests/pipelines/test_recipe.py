"""Recipe loading and validation: safe YAML, errors that name the bad key, path resolution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from corpusmill.pipelines.recipe import RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_examples_load(shared_data):
    for name in ("mixed", "cc-warc", "wikipedia", "books", "multilingual"):
        r = load_recipe(REPO / "examples" / f"{name}.yaml", {"data_root": str(shared_data)})
        assert r.inputs and r.output_dir
        assert all(Path(i.path).exists() for i in r.inputs)


def test_relative_paths_resolve_against_recipe(tmp_path):
    (tmp_path / "data" / "books").mkdir(parents=True)
    p = _write(
        tmp_path,
        """
        data_root: data
        inputs: [{path: books, reader: books}]
        output: {dir: out}
        """,
    )
    r = load_recipe(p)
    assert r.inputs[0].path == str(tmp_path / "data" / "books")


@pytest.mark.parametrize(
    "snippet, key",
    [
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o}\nbogus: 1", "bogus"),
        ("inputs: [{path: x, reader: nope}]\noutput: {dir: o}", "inputs[0].reader"),
        ("inputs: [{path: x, reader: warc, colour: red}]\noutput: {dir: o}", "colour"),
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o, codec: x}", "codec"),
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o}\nengine: {tasks: 0}", "engine.tasks"),
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o}\nengine: {executor: spark}", "engine.executor"),
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o}\nstages: [{stage: nope}]", "stages[0].stage"),
        ("inputs: [{path: x, reader: warc}]\noutput: {dir: o}\nstages: [{stage: extract, extracter: x}]", "extracter"),
        ("inputs: [{path: x, reader: warc, options: {bogus_opt: 1}}]\noutput: {dir: o}", "bogus_opt"),
        ("inputs: []\noutput: {dir: o}", "inputs"),
    ],
)
def test_errors_name_the_bad_key(tmp_path, snippet, key):
    with pytest.raises(RecipeError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_recipe(_write(tmp_path, snippet))


def test_yaml_cannot_run_code(tmp_path):
    p = _write(tmp_path, "inputs: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="safe"):
        load_recipe(p)


def test_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("CM_TEST_ROOT", str(tmp_path))
    r = parse_recipe({"data_root": "${CM_TEST_ROOT}", "inputs": [{"path": "a", "reader": "books"}], "output": {"dir": "${CM_OUT:-o}"}})
    assert r.data_root == str(tmp_path)
    assert r.output_dir.endswith("/o")
    with pytest.raises(RecipeError, match="CM_UNSET_VAR"):
        parse_recipe({"data_root": "${CM_UNSET_VAR}", "inputs": [{"path": "a", "reader": "books"}], "output": {"dir": "o"}})


def test_hash_ignores_engine_and_output_dir():
    base = {"inputs": [{"path": "a", "reader": "books"}], "output": {"dir": "o1"}, "engine": {"tasks": 1}}
    other = {"inputs": [{"path": "a", "reader": "books"}], "output": {"dir": "o2"}, "engine": {"tasks": 4}}
    assert parse_recipe(base).hash() == parse_recipe(other).hash()
    changed = {"inputs": [{"path": "a", "reader": "books"}], "output": {"dir": "o1"}, "stages": ["extract"]}
    assert parse_recipe(base).hash() != parse_recipe(changed).hash()
