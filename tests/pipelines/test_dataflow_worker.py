"""Dataflow from a wheel, simulated offline: Beam's own stager (what DataflowRunner calls before
submitting) builds the artifacts for both documented routes (``--extra_package`` with corpusmill's
wheel, ``--setup_file=./pyproject.toml`` from a checkout); the staged wheel is installed into a clean
venv as a worker's boot does, and the Beam pipeline runs from that venv (FnApiRunner with two SDK worker
processes of that venv's Python). Its output equals a local datatrove run of the same recipe.

Worker venv: created without system site packages; the staged wheel is installed with ``--no-deps``,
the dependencies come from this interpreter's site-packages via a ``.pth`` (a real worker resolves them
from PyPI; that they do not include torch is checked on the staged packages' metadata).
"""

from __future__ import annotations

import email
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("_wheel_helpers", REPO / "tests" / "test_wheel.py")
_wheel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_wheel)
build_wheel, make_venv = _wheel.build_wheel, _wheel.make_venv

RECIPE = """
name: dataflow-sim
data_root: ${CORPUSMILL_DATA:-data}
inputs:
  - {path: webtext, glob: "dolma_cc_documents-000.json.gz", reader: jsonl, source_kind: web}
  - {path: books, glob: "pg1661_*.txt", reader: books}
stages:
  - {stage: language_id, min_score: 0.65}
  - {stage: gopher_repetition}
  - {stage: gopher_quality}
  - {stage: fineweb}
output: {dir: out}
engine: {executor: local, tasks: 2, workers: 2}
"""


def _requires(meta_bytes: bytes) -> list[str]:
    return email.message_from_bytes(meta_bytes).get_all("Requires-Dist") or []


def _no_torch_outside_train(reqs: list[str]) -> bool:
    torch = [r.replace(" ", "").replace("'", '"') for r in reqs if r.lower().startswith("torch")]
    return bool(torch) and all('extra=="train"' in r for r in torch)


def _rows(run: Path) -> list[tuple]:
    out = []
    for sub in ("curated", "dropped"):
        for f in sorted((run / sub).glob("*.parquet")):
            for r in pq.read_table(f).to_pylist():
                out.append((sub, r["id"], r.get("status"), r.get("stage"), r.get("reason"), r["text"],
                            json.dumps(r["signals"]), r["language"]))
    return sorted(out, key=lambda t: (t[0], t[1]))


@pytest.mark.slow
def test_staged_wheel_runs_the_pipeline_in_a_clean_worker_venv(tmp_path, shared_data):
    pytest.importorskip("build")
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.stager import Stager

    whl = build_wheel(tmp_path / "b")
    # 1. the artifacts DataflowRunner would upload, for both routes
    staged = {}
    for route, flags in (("wheel", [f"--extra_package={whl}"]),
                         ("setup", [f"--setup_file={tmp_path / 'b' / 'src' / 'pyproject.toml'}"])):
        d = tmp_path / f"staging-{route}"
        d.mkdir()
        opts = PipelineOptions(flags + ["--sdk_location=container", "--temp_location=/tmp", f"--staging_location={d}"])
        resources = Stager.create_job_resources(opts, str(d))
        staged[route] = {name: Path(path) for path, name, *_ in Stager.extract_staging_tuple_iter(resources)}
    wheels = [p for n, p in staged["wheel"].items() if n.endswith(".whl")]
    assert wheels and "extra_packages.txt" in staged["wheel"], staged["wheel"]
    sdist = staged["setup"].get("workflow.tar.gz")
    assert sdist is not None and sdist.is_file(), f"no sdist staged for --setup_file: {staged['setup']}"
    wheel_files = wheels
    with zipfile.ZipFile(wheel_files[0]) as z:
        assert _no_torch_outside_train(_requires(z.read(next(n for n in z.namelist() if n.endswith("METADATA")))))
    with tarfile.open(sdist) as t:
        pkg = next(m for m in t.getmembers() if m.name.count("/") == 1 and m.name.endswith("PKG-INFO"))
        assert _no_torch_outside_train(_requires(t.extractfile(pkg).read()))

    # 2. a worker: a clean venv with the staged wheel
    venv = make_venv(tmp_path, wheel_files[0])
    py = str(venv / "bin" / "python")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(textwrap.dedent(RECIPE))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([py, "-c", "import corpusmill; print(corpusmill.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    # 3. the Beam pipeline from the worker venv; the datatrove run from the development install
    beam = subprocess.run([py, "-m", "corpusmill.cli", "curate", str(recipe), "--engine", "beam", "--data-root",
                           str(shared_data), "--output", str(tmp_path / "beam"), "--workers", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert beam.returncode == 0, beam.stdout[-3000:] + beam.stderr[-3000:]
    local = subprocess.run([sys.executable, "-m", "corpusmill.cli", "curate", str(recipe), "--data-root",
                            str(shared_data), "--output", str(tmp_path / "local")],
                           cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    a, b = _rows(tmp_path / "beam"), _rows(tmp_path / "local")
    assert a == b and len(a) > 10
    assert json.loads((tmp_path / "beam" / "run.json").read_text())["engine"].startswith("beam")
