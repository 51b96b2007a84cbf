"""pip install is a way in: the wheel holds one top-level package with the example recipes, needs torch
only with the ``train`` extra, and `corpusmill demo` / `corpusmill examples` run from it, in a fresh
venv, from a directory outside the repository, on the shared data.

The venv is created without system site packages; the wheel is installed with ``--no-deps`` and the
dependencies come from this interpreter's site-packages through a ``.pth`` file. A full resolve would
download or copy ~80 packages (~2.3 GB with torch) per run; the .pth adds a plain directory to sys.path
(no editable-install hooks of the development venv run), so `corpusmill` is imported from the wheel.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def build_wheel(tmp: Path) -> Path:
    """The wheel of the tracked files (a copy of the source tree, so no build/ folder lands in the repo)."""
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True, text=True)
    (whl,) = dist.glob("corpusmill-*.whl")
    return whl


def deps_dir() -> Path:
    import pyarrow

    return Path(pyarrow.__file__).resolve().parent.parent


def make_venv(tmp: Path, whl: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(whl)], check=True)
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "zz-corpusmill-deps.pth").write_text(str(deps_dir()) + "\n")
    return venv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("build")
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_contents_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"corpusmill"}
    for ex in ("default", "mixed", "books", "wikipedia", "cc-warc", "multilingual"):
        assert f"corpusmill/examples/{ex}.yaml" in names
    assert "corpusmill/curation/data/token_ratio_thresholds.json" in names
    reqs = meta.get_all("Requires-Dist")
    torch = [r for r in reqs if r.replace(" ", "").lower().startswith("torch")]
    assert torch and all('extra=="train"' in r.replace(" ", "").replace("'", '"') for r in torch), torch
    assert "train" in meta.get_all("Provides-Extra")


@pytest.mark.slow
def test_demo_from_a_wheel_outside_the_repository(wheel, tmp_path, shared_data):
    venv = make_venv(tmp_path, wheel)
    work = tmp_path / "work"  # not inside the repository, no examples/ folder around
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CORPUSMILL_DATA", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"

    def run(*argv: str, timeout: int = 1500) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), cwd=work, env=env, capture_output=True, text=True, timeout=timeout)

    where = run(str(venv / "bin" / "python"), "-c", "import corpusmill, corpusmill.examples as e; print(corpusmill.__file__)")
    assert where.returncode == 0 and where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    ls = run("corpusmill", "examples")
    assert ls.returncode == 0 and "default" in ls.stdout and "multilingual" in ls.stdout
    cp = run("corpusmill", "examples", "copy", "books")
    assert cp.returncode == 0 and (work / "books.yaml").is_file()
    assert run("corpusmill", "examples", "copy", "books").returncode == 2  # never overwritten
    demo = run("corpusmill", "demo", "--input", str(shared_data), "--out", "demo", "--train-steps", "10")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = work / "demo"
    for p in ("run.json", "report.html", "tokenizer/tokenizer.json", "shards/manifest.json", "model/ckpt.pt"):
        assert (out / p).exists(), p
    assert "accounting" in demo.stdout and "report:" in demo.stdout


def test_train_commands_without_torch_name_the_extra(monkeypatch, capsys, tmp_path):
    from corpusmill.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)  # as in an install without the train extra
    for argv in (["train", "tiny"], ["sample", "--checkpoint", "x", "--tokenizer", "y"], ["export", "x", str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "corpusmill[train]" in err[0], err
