"""The run directory: never write into or delete what corpusmill did not write; crash-safe marker; lock.

See docs/reliability.md ("Safe inputs" and "Crash and resume"). The disk-full cases mount a small tmpfs
(root only; skipped elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpusmill.pipelines.recipe import RecipeError, parse_recipe

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DOLMA = SHARED / "webtext" / "dolma_cc_en_head-0091.jsonl.gz"
BIG = SHARED / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def curate(recipe: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "corpusmill.cli", "curate", str(recipe), *args]
    p = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise AssertionError(f"curate {recipe} did not finish in {timeout} s") from None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def write_recipe(tmp_path: Path, out: Path | str, data: Path = DOLMA, name: str = "r.yaml") -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    if not (d / data.name).exists():
        shutil.copy(data, d / data.name)
    recipe = tmp_path / "recipes" / name
    recipe.parent.mkdir(exist_ok=True)
    recipe.write_text(f"inputs: [{{path: {d}, reader: jsonl}}]\noutput: {{dir: '{out}'}}\n")
    return recipe


def one_error_line(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, res.stderr[-3000:]
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------- defect 1: output safety


def test_a_non_empty_directory_that_is_not_a_run_is_refused_and_untouched(tmp_path):
    home = tmp_path / "docs"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    res = curate(write_recipe(tmp_path, home))
    one_error_line(res, str(home), "not a corpusmill run")
    assert tree(home) == {"thesis.tex": b"years of work"}, "nothing may be written into a foreign directory"


def test_a_foreign_recipe_json_does_not_make_a_directory_a_run(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    (d / "recipe.json").write_text('{"ingredients": ["flour"]}')
    (d / "notes.md").write_text("keep me")
    before = tree(d)
    one_error_line(curate(write_recipe(tmp_path, d), "--overwrite"), "not a corpusmill run")
    assert tree(d) == before


@pytest.mark.slow
def test_overwrite_removes_only_what_the_run_wrote(tmp_path):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path, run)
    assert curate(recipe).returncode == 0
    (run / "my-notes.txt").write_text("mine")
    (run / "analysis").mkdir()
    (run / "analysis" / "plot.png").write_bytes(b"\x89PNG")
    (run / "curated" / "extra.parquet").write_bytes(b"x")  # inside a run subdirectory: the run's, removed
    res = curate(recipe, "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "my-notes.txt").read_text() == "mine"
    assert (run / "analysis" / "plot.png").read_bytes() == b"\x89PNG"
    assert not (run / "curated" / "extra.parquet").exists()
    assert (run / "run.json").exists() and list((run / "manifest").glob("*.parquet"))
    assert "my-notes.txt" in res.stderr, "--overwrite says which foreign entries it left alone"


def test_root_home_and_parents_of_the_recipe_are_refused(tmp_path, monkeypatch):
    from corpusmill.pipelines.run_dir import check_output_dir

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    recipe_dir = tmp_path / "proj" / "recipes"
    recipe_dir.mkdir(parents=True)
    (recipe_dir / "r.yaml").write_text("")
    src = str(recipe_dir / "r.yaml")
    data = {"inputs": [{"path": str(tmp_path), "reader": "jsonl"}]}
    for out, why in [("memory:///", "root"), (str(home), "home"), (str(tmp_path / "proj"), "recipe"),
                     (str(recipe_dir), "recipe")]:
        r = parse_recipe({**data, "output": {"dir": out}}, base_dir=recipe_dir, source=src)
        for overwrite in (False, True):
            with pytest.raises(RecipeError, match=why):
                check_output_dir(r, overwrite)
    assert sorted(os.listdir(home)) == [] and sorted(os.listdir(recipe_dir)) == ["r.yaml"]
    assert sorted(os.listdir(tmp_path / "proj")) == ["recipes"]


def test_root_directory_is_refused_without_touching_it():
    from corpusmill.pipelines.run_dir import refuse_dangerous_output

    for d in ("/", "//", "/.", os.path.expanduser("~")):
        with pytest.raises(RecipeError):
            refuse_dangerous_output(d, None)


def test_the_marker_names_the_run(tmp_path):
    run = tmp_path / "run"
    assert curate(write_recipe(tmp_path, run)).returncode == 0
    marker = json.loads((run / "recipe.json").read_text())
    assert marker["corpusmill_run"] == 1 and marker["recipe_hash"] and marker["run_id"]
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------- defect 7: crash safety


@pytest.mark.parametrize("content", [b"", b'{"corpusmill_run": 1, "recipe_ha'])
def test_an_empty_or_cut_recipe_json_from_a_crash_is_recovered(tmp_path, content):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path, run)
    assert curate(recipe).returncode == 0
    (run / "recipe.json").write_bytes(content)  # what a crash while writing the old marker left
    res = curate(recipe)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "JSONDecodeError" not in res.stderr
    assert json.loads((run / "recipe.json").read_text())["corpusmill_run"] == 1


def test_an_empty_recipe_json_in_a_directory_with_foreign_files_is_refused(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "recipe.json").write_bytes(b"")
    (d / "data.csv").write_text("a,b\n")
    one_error_line(curate(write_recipe(tmp_path, d), "--overwrite"), "not a corpusmill run")
    assert tree(d) == {"recipe.json": b"", "data.csv": b"a,b\n"}


@pytest.mark.slow
def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path, run)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from corpusmill.pipelines.recipe import load_recipe; "
         "from corpusmill.pipelines.run_dir import check_output_dir; "
         f"check_output_dir(load_recipe({str(recipe)!r}), False); print('locked', flush=True); time.sleep(120)"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = one_error_line(curate(recipe), "in use", f"pid {holder.pid}", os.uname().nodename)
        assert "started" in line
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (kill -9 releases the lock): the same command now runs
    res = curate(recipe)
    assert res.returncode == 0, res.stderr[-3000:]


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_before_the_marker_is_written_leaves_no_broken_recipe_json(tmp_path):
    with small_disk(tmp_path / "disk", "2m") as disk:
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        run = disk / "run"
        recipe = write_recipe(tmp_path, run)
        one_error_line(curate(recipe), "No space left", str(disk))
        assert not (run / "recipe.json").exists(), "a half-written marker was left behind"
        (disk / "filler").unlink()
        res = curate(recipe)
        assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_disk_full_mid_run_is_one_clear_message_and_the_rerun_finishes(tmp_path):
    with small_disk(tmp_path / "disk", "600k") as disk:
        run = disk / "run"
        recipe = write_recipe(tmp_path, run, data=BIG)
        shutil.copy(DOLMA, tmp_path / "data" / DOLMA.name)
        t0 = time.time()
        res = curate(recipe)
        one_error_line(res, "No space left", "rerun")
        assert time.time() - t0 < 240
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        res = curate(recipe)
        assert res.returncode == 0, res.stderr[-3000:]
        assert json.loads((run / "run.json").read_text())
