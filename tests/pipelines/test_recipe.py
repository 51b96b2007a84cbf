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


# ----------------------------------------------------------------------- parameter types and ranges (#14 defect 6)


def _recipe(tmp_path: Path, stage: dict | None = None, options: dict | None = None, **top) -> dict:
    (tmp_path / "data").mkdir(exist_ok=True)
    data = {"inputs": [{"path": str(tmp_path / "data"), "reader": "jsonl", "options": options or {}}],
            "output": {"dir": str(tmp_path / "out")}, "stages": [stage] if stage else []}
    data.update(top)
    return data


@pytest.mark.parametrize(
    "stage, options, top, message",
    [
        ({"stage": "gopher_quality", "min_doc_words": "fifty"}, None, {},
         "stages[0].gopher_quality.min_doc_words: expected an integer >= 0, got 'fifty'"),
        ({"stage": "gopher_quality", "min_doc_words": 50.5}, None, {}, "min_doc_words: expected an integer"),
        ({"stage": "gopher_quality", "min_doc_words": True}, None, {}, "min_doc_words: expected an integer"),
        ({"stage": "gopher_quality", "max_symbol_word_ratio": 1.5}, None, {}, "max_symbol_word_ratio: expected a number in [0, 1]"),
        ({"stage": "toxicity", "threshold": 5}, None, {}, "stages[0].toxicity.threshold: expected a number in [0, 1], got 5"),
        ({"stage": "language_id", "min_score": "high"}, None, {}, "stages[0].language_id.min_score"),
        ({"stage": "fineweb", "short_line_length": -3}, None, {}, "short_line_length: expected an integer >= 0"),
        ({"stage": "c4", "filter_javascript": "yes"}, None, {}, "filter_javascript: expected true or false"),
        ({"stage": "gopher_quality", "stop_words": 7}, None, {}, "stop_words: expected a list"),
        ({"stage": "minhash_dedup", "num_perm": 0}, None, {}, "num_perm: expected an integer >= 1"),
        ({"stage": "gopher_repetition", "per_language": {"fr": {"dup_line_frac": "lots"}}}, None, {},
         "per_language.fr.dup_line_frac: expected a number in [0, 1]"),
        (None, {"max_line_bytes": -1}, {}, "inputs[0].options.max_line_bytes: expected an integer >= 1, got -1"),
        (None, {"max_line_bytes": "big"}, {}, "inputs[0].options.max_line_bytes: expected an integer >= 1, got 'big'"),
        (None, {"text_field": 3}, {}, "inputs[0].options.text_field: expected a string"),
        (None, None, {"output": {"dir": 123}}, "output.dir: expected a path string, got 123"),
        (None, None, {"output": {"dir": "o", "compression": 5}}, "output.compression"),
    ],
)
def test_every_parameter_has_a_type_and_range(tmp_path, stage, options, top, message):
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe(tmp_path, stage, options, **top))
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_valid_parameters_still_load(tmp_path):
    for stage in ({"stage": "gopher_quality", "min_doc_words": 50, "max_doc_words": None, "min_avg_word_length": 3},
                  {"stage": "toxicity", "threshold": 0.8, "action": "tag"},
                  {"stage": "language_id", "languages": ["en", "fr"], "min_score": {"default": 0.6, "hr": 0.3}},
                  {"stage": "fineweb", "line_punct_thr": 0.1, "stop_chars": [".", "!"]},
                  {"stage": "gopher_repetition", "top_n_grams": [[2, 0.2], [3, 0.18]]},
                  {"stage": "minhash_dedup", "threshold": 0.8, "num_perm": 128}):
        parse_recipe(_recipe(tmp_path, stage, {"max_line_bytes": 1 << 20}))


def test_model_paths_must_be_readable_model_files(tmp_path):
    not_a_model = tmp_path / "passwd"
    not_a_model.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for path, msg in ((not_a_model, "is not a fastText model"), (tmp_path / "nope.bin", "does not exist")):
        with pytest.raises(RecipeError) as e:
            parse_recipe(_recipe(tmp_path, {"stage": "language_id", "model_path": str(path)}))
        assert f"stages[0].language_id.model_path: {path}" in str(e.value) and msg in str(e.value), str(e.value)
        with pytest.raises(RecipeError, match="toxicity.model_path"):
            parse_recipe(_recipe(tmp_path, {"stage": "toxicity", "scorer": "fasttext", "model_path": str(path)}))
    model = tmp_path / "m.ftz"
    model.write_bytes((793712314).to_bytes(4, "little") + b"\x0c\x00\x00\x00" + b"\0" * 64)
    parse_recipe(_recipe(tmp_path, {"stage": "language_id", "model_path": str(model)}))


def test_the_expanded_recipe_size_is_bounded_in_bytes(tmp_path):
    """Few values, but each a long string repeated by aliases: a 300 kB file that would expand to ~1 GB."""
    base = f"inputs: [{{path: {tmp_path}, reader: jsonl}}]\noutput: {{dir: {tmp_path / 'out'}}}\n"
    lines = ["  - &a0 '" + "x" * 100_000 + "'"]
    lines += [f"  - &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 8)]
    p = tmp_path / "big.yaml"
    p.write_text(base + "description:\n" + "\n".join(lines) + "\n")
    assert p.stat().st_size < 300_000
    with pytest.raises(RecipeError, match="bytes once YAML aliases are expanded"):
        load_recipe(p)
