"""Safe inputs: a recipe cannot execute code, and crafted ids, URLs or file names cannot make a run write
outside its output directory. See docs/reliability.md ("Safe inputs") for what is and is not covered.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusmill.curation.accounting import shard_key
from corpusmill.pipelines.recipe import RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]


def curate(recipe: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "corpusmill.cli", "curate", str(recipe), *args]
    p = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise AssertionError(f"curate {recipe} did not finish in {timeout} s") from None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def _minimal(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "a.jsonl").write_text('{"text": "hello"}\n')
    return f"inputs: [{{path: {tmp_path / 'data'}, reader: jsonl}}]\noutput: {{dir: {tmp_path / 'out'}}}\n"


# ------------------------------------------------------------------------------------------ recipes cannot run code


@pytest.mark.parametrize(
    "payload",
    [
        "name: !!python/object/apply:os.system ['touch {mark}']",
        "name: !!python/object/new:subprocess.Popen [['touch', '{mark}']]",
        "name: !!python/name:os.system",
        "name: !!python/module:os",
        "stages: [{{stage: extract, extractor: !!python/object/apply:os.system ['touch {mark}']}}]",
    ],
    ids=["apply", "new", "name", "module", "in-a-stage"],
)
def test_python_yaml_tags_are_refused(tmp_path, payload):
    mark = tmp_path / "PWNED"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(_minimal(tmp_path) + payload.format(mark=mark) + "\n")
    res = curate(recipe)
    assert res.returncode == 2 and "not valid (safe) YAML" in res.stderr, res.stderr[-2000:]
    assert not mark.exists()
    assert not (tmp_path / "out").exists(), "nothing was written"


def test_beam_options_in_a_recipe_cannot_run_commands(tmp_path):
    """Beam's --environment_config is a shell command line (the subprocess SDK harness runs it with
    shell=True): a recipe could run anything. Recipes may only set deployment options."""
    mark = tmp_path / "PWNED"
    recipe = tmp_path / "r.yaml"
    args = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=beam:env:harness_subprocess_python:v1",
            f"--environment_config=touch {mark}; exec python -m apache_beam.runners.worker.sdk_worker_main"]
    recipe.write_text(_minimal(tmp_path) + "engine: {beam: {args: " + json.dumps(args) + "}}\n")
    res = curate(recipe, "--engine", "beam", timeout=120)
    assert res.returncode == 2 and "cannot be set in a recipe" in res.stderr, res.stderr[-2000:]
    assert not mark.exists()
    for bad in (["--environment_config=sh -c x"], ["--setup_file=./setup.py"], ["--requirements_file", "r.txt"],
                ["--extra_package=x.tar.gz"], ["--runner", "FlinkRunner"], ["--sdk_location=http://x"], ["oops"]):
        with pytest.raises(RecipeError, match="engine.beam.args"):
            parse_recipe({"inputs": [{"path": str(tmp_path / "data"), "reader": "jsonl"}], "output": {"dir": "o"},
                          "engine": {"beam": {"args": bad}}})
    ok = ["--runner=DataflowRunner", "--project", "p", "--region=europe-west1", "--temp_location=gs://b/tmp",
          "--max_num_workers=20", "--no_use_public_ips", "--experiments=use_runner_v2"]
    r = parse_recipe({"inputs": [{"path": str(tmp_path / "data"), "reader": "jsonl"}], "output": {"dir": "o"},
                      "engine": {"beam": {"args": ok}}})
    assert r.beam["args"] == ok


def test_yaml_alias_bombs_and_deep_nesting_are_refused_quickly(tmp_path):
    base = _minimal(tmp_path)
    levels = ['  - &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"  - &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text(base + "description:\n" + "\n".join(levels) + "\n")
    (tmp_path / "deep.yaml").write_text(base + "description: " + "[" * 5000 + "]" * 5000 + "\n")
    for name, msg in (("bomb.yaml", "YAML aliases are expanded"), ("deep.yaml", "nested too deeply")):
        res = curate(tmp_path / name, timeout=60)
        assert res.returncode == 2 and msg in res.stderr, (name, res.stderr[-2000:])


# every call that can run code or unpickle, in the packages a recipe drives; each one reviewed
BUILTINS = {"eval", "exec", "compile", "__import__"}  # called by bare name (model.eval() is not eval)
ALWAYS = {"import_module", "unsafe_load", "full_load", "Unpickler", "load_model"}
UNPICKLERS = {"pickle", "dill", "cloudpickle", "marshal", "torch", "joblib", "shelve"}
REVIEWED = {
    # (file, call): why it is safe
    ("curation/registry.py", "import_module"): "module named by the fixed STAGES table, never by the recipe",
    ("corpusmill/cli.py", "import_module"): "fixed COMMAND_MODULES list",
    ("curation/assets.py", "subprocess.run"): "pip download of one pinned wheel (fixed name, sha256 checked)",
    ("curation/filters/language.py", "load_model"): "fastText binary model (its own format, not pickle)",
    ("curation/filters/quality.py", "load_model"): "fastText binary model (its own format, not pickle)",
    ("corpusmill/tools/toxicity_train.py", "load_model"): "fastText model it has just trained (train-classifier command)",
    ("trainer/cli.py", "load_model"): "corpusmill.trainer.train.load_model, see below",
    ("trainer/export.py", "load_model"): "corpusmill.trainer.train.load_model of the checkpoint the user exports (corpusmill export), see below",
    ("trainer/train.py", "torch.load"): "torch.load(weights_only=False) of the trainer's own ckpt.pt, a pickle: "
                                        "named by a train config's out_dir or `sample --checkpoint`, never by a recipe",
}


def _calls(path: Path) -> set[tuple[str, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else None
        kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if name in ALWAYS:
            found.add((str(path.relative_to(REPO)), name))
        elif name in BUILTINS and isinstance(f, ast.Name):
            found.add((str(path.relative_to(REPO)), name))
        elif name in ("load", "loads") and (
            owner in UNPICKLERS
            or (owner == "yaml" and "Safe" not in kw.get("Loader", ""))
            or (owner in ("np", "numpy") and kw.get("allow_pickle") == "True")
        ):
            found.add((str(path.relative_to(REPO)), f"{owner}.{name}"))
        elif (owner == "os" and name in ("system", "popen", "execv", "execvp")) or (
            owner == "subprocess" and name in ("run", "Popen", "call", "check_call", "check_output")
        ):
            found.add((str(path.relative_to(REPO)), f"{owner}.{name}"))
    return found


def test_no_unreviewed_code_loading_in_the_packages():
    """eval / exec / pickle-like loads / subprocess / dynamic imports anywhere in curation, pipelines,
    schemas, tokenizer and trainer: each one is in REVIEWED with the reason it is safe."""
    found = set()
    for pkg in ("curation", "pipelines", "schemas", "tokenizer", "trainer"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            found |= _calls(path)
    unreviewed = sorted(found - set(REVIEWED))
    assert not unreviewed, f"review these (can they run code named by a recipe?): {unreviewed}"
    assert found >= {("curation/registry.py", "import_module")}, "the scanner finds what it should"


# ------------------------------------------------------------------------------------------ nothing escapes RUN/

CRAFTED_FILES = [
    "x..%2f..%2fescape.jsonl",
    "a b&c;$(touch pwned).jsonl",
    "名前 ü\u202e.jsonl",
    "x" * 230 + ".jsonl",
    "new\nline.jsonl",
    "-rf.jsonl",
]
HIDDEN = "..%2f..%2fhidden.jsonl"  # names starting with "." are not picked up from a directory


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_crafted_ids_urls_and_file_names_cannot_write_outside_the_run(tmp_path):
    sandbox = tmp_path / "sandbox"
    data = sandbox / "data" / "webtext"
    data.mkdir(parents=True)
    doc = {"id": "../../etc/x", "url": "../../../../tmp/evil", "text": "evil " * 20, "source_file": "../../x",
           "position": "/etc/passwd", "title": "/../../t", "shard": "../s"}
    for name in CRAFTED_FILES + [HIDDEN]:
        (data / name).write_text(json.dumps(doc) + "\n" + json.dumps({**doc, "id": "/abs/path"}) + "\n")
    # WARC records with hostile URIs and record ids
    (sandbox / "data" / "warc").mkdir()
    recs = b""
    for i, uri in enumerate(["http://x/../../../../tmp/evil", "file:///../../etc/passwd", "../../../escape"]):
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body><p>" + b"hello world " * 30 + b"</p></body></html>"
        head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\nWARC-Record-ID: <../../rec{i}>\r\n"
                f"Content-Length: {len(http)}\r\n\r\n").encode()
        recs += gzip.compress(head + http + b"\r\n\r\n")
    (sandbox / "data" / "warc" / "w..%2f..%2f.warc.gz").write_bytes(recs)
    run_dir = sandbox / "deep" / "er" / "run"
    recipe = sandbox / "r.yaml"
    recipe.write_text(
        "inputs:\n  - {path: webtext, reader: jsonl, glob: '*'}\n  - {path: warc, reader: warc}\n"
        "stages: [{stage: extract}]\noutput: {dir: out}\nengine: {tasks: 2, workers: 2}\n"
    )
    before = _snapshot(sandbox)
    res = curate(recipe, "--data-root", str(sandbox / "data"), "--output", str(run_dir))
    assert res.returncode == 0, res.stderr[-4000:]
    new = _snapshot(sandbox) - before
    outside = sorted(p for p in new if not p.startswith("deep/er/run") and p not in ("deep", "deep/er"))
    assert not outside, f"files created outside the run directory: {outside}"
    assert not Path("/etc/x").exists() and not (REPO / "pwned").exists() and not (sandbox / "pwned").exists()
    for sub in ("curated", "dropped", "manifest"):
        names = [p.name for p in (run_dir / sub).iterdir()]
        assert len(names) == len(CRAFTED_FILES) + 1, sub
        for n in names:
            assert "/" not in n and "\n" not in n and not n.startswith("..") and len(n) < 200, n
    import duckdb

    rows = duckdb.sql(f"SELECT source_file, id, url FROM read_parquet('{run_dir}/curated/*.parquet')").fetchall()
    assert {r[0] for r in rows} == {f"webtext/{n}" for n in CRAFTED_FILES} | {"warc/w..%2f..%2f.warc.gz"}
    assert all(len(r[1]) == 16 for r in rows), "ids are our own hashes, never the input's"
    assert "../../../../tmp/evil" in {r[2] for r in rows}, "hostile URLs are kept as plain data"


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=0, max_size=400))
def test_shard_keys_are_always_plain_file_names(name):
    key = shard_key(name)
    assert key and "/" not in key and "\\" not in key and "\x00" not in key
    assert not key.startswith(".") and len(key) <= 160
    assert key.isascii()
    assert shard_key(name) == key and shard_key(name + "x") != key


def test_overwrite_never_deletes_a_directory_that_is_not_a_run(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(_minimal(tmp_path).replace(str(tmp_path / "out"), str(precious)))
    res = curate(recipe, "--overwrite")
    assert res.returncode == 2 and "not a corpusmill run directory" in res.stderr, res.stderr[-2000:]
    assert (precious / "thesis.tex").read_text() == "years of work"
    # a run directory (or an empty one) is overwritten as before
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recipe.write_text(_minimal(tmp_path).replace(str(tmp_path / "out"), str(run_dir)))
    assert curate(recipe, "--overwrite").returncode == 0
    assert curate(recipe, "--overwrite").returncode == 0 and (run_dir / "recipe.json").exists()


def test_recipe_loading_is_pure_data(tmp_path):
    """Loading a recipe evaluates nothing: ${VAR} is plain substitution, a stage name must be registered."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(_minimal(tmp_path) + "name: ${HOME:-x}__import__('os').system('touch pwned')\n")
    r = load_recipe(recipe)
    assert "__import__" in r.name and not (tmp_path / "pwned").exists()
    with pytest.raises(RecipeError, match="unknown stage"):
        parse_recipe({"inputs": [{"path": str(tmp_path / "data"), "reader": "jsonl"}], "output": {"dir": "o"},
                      "stages": [{"stage": "os.system"}]})
    with pytest.raises(RecipeError, match="unknown reader"):
        parse_recipe({"inputs": [{"path": str(tmp_path / "data"), "reader": "pickle"}], "output": {"dir": "o"}})
