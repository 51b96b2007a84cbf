"""Every subcommand, given bad input, says what is wrong in one line and exits with code 2 before work starts.

See docs/reliability.md ("Clear errors"). Each case runs the real ``corpusmill`` command in a subprocess.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DOLMA = SHARED / "webtext" / "dolma_cc_en_head-0091.jsonl.gz"


def corpusmill(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), CORPUSMILL_LID_MODEL=str(cwd / "no-such-lid.bin"))
    return subprocess.run([sys.executable, "-m", "corpusmill.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("cli")
    (t / "empty").mkdir()
    (t / "tok").mkdir()
    (t / "tok" / "tokenizer.json").write_text("{}")
    (t / "notes.txt").write_text("not a model\n")
    gz = t / "gz"
    gz.mkdir()
    shutil.copy(DOLMA, gz / "docs.jsonl")  # gzip bytes under a plain .jsonl name
    (t / "gz.yaml").write_text(f"inputs: [{{path: {gz}, reader: jsonl}}]\noutput: {{dir: {t / 'gz-run'}}}\n")
    (t / "bad.parquet").write_bytes(b"PAR1 not really")
    plain = t / "plain"
    plain.mkdir()
    (plain / "a.jsonl").write_text('{"text": "hello world"}\n')
    (t / "lid.yaml").write_text(f"inputs: [{{path: {plain}, reader: jsonl}}]\nstages: [language_id]\n"
                                f"output: {{dir: {t / 'lid-run'}}}\nengine: {{tasks: 2, workers: 2}}\n")
    (t / "labels.csv").write_text("text,label\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "text": ["hello world"]}), t / "good.parquet")
    return {"t": t}


def cases(t: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (arguments, words the one error line must contain)."""
    return {
        "curate-gzip-named-jsonl": (["curate", str(t / "gz.yaml")], ["docs.jsonl", "looks gzip-compressed"]),
        # the default language-ID model ($CORPUSMILL_LID_MODEL here) is looked for before workers start
        "curate-missing-lid-model": (["curate", str(t / "lid.yaml")], ["no-such-lid.bin", "language-ID model"]),
        "curate-missing-recipe": (["curate", str(t / "nope.yaml")], ["nope.yaml"]),
        "pack-missing-tokenizer": (["pack", "--tokenizer", "nope", "--input", str(t / "good.parquet"), "--out",
                                    str(t / "pk")], ["nope", "tokenizer"]),
        "pack-tokenizer-not-a-tokenizer": (["pack", "--tokenizer", str(t / "empty"), "--input", str(t / "good.parquet"),
                                            "--out", str(t / "pk")], ["tokenizer.json", str(t / "empty")]),
        "pack-damaged-parquet": (["pack", "--tokenizer", str(t / "tok"), "--input", str(t / "bad.parquet"), "--out",
                                  str(t / "pk")], ["bad.parquet", "not a readable Parquet file"]),
        "pack-not-a-tokenizer-json": (["pack", "--tokenizer", str(t / "tok"), "--input", str(t / "good.parquet"),
                                       "--out", str(t / "pk")], ["tokenizer.json", "cannot be loaded"]),
        "pack-no-input": (["pack", "--tokenizer", str(t / "tok"), "--input", str(t / "none*.parquet"), "--out",
                           str(t / "pk")], ["none*.parquet"]),
        "pack-verify-missing": (["pack", "--verify", str(t / "nopack")], ["nopack"]),
        "train-tokenizer-no-input": (["train-tokenizer", "--input", str(t / "none/*.parquet"), "--vocab-size", "1000",
                                      "--out", str(t / "tok")], ["none/*.parquet"]),
        "tokenizer-report-missing": (["tokenizer-report", "--tokenizer", str(t / "nodir"), "--input",
                                      str(t / "bad.parquet")], ["nodir"]),
        "train-classifier-missing-input": (["train-classifier", "--input", str(t / "none.csv"), "--out",
                                            str(t / "m.bin")], ["none.csv"]),
        "train-missing-config": (["train", str(t / "nope.yaml")], ["nope.yaml"]),
        "train-missing-data": (["train", "tiny", "--data-dir", str(t / "nodata"), "--out-dir", str(t / "tr")],
                               ["nodata"]),
        "train-bad-override": (["train", "tiny", "--set", "max_steps=lots"], ["max_steps"]),
        "sample-missing-checkpoint": (["sample", "--checkpoint", str(t / "nockpt"), "--tokenizer",
                                       str(t / "notes.txt")], ["nockpt"]),
        "assets-not-a-model": (["assets", "--lid", str(t / "notes.txt")], ["notes.txt", "fastText"]),
        "stats-not-a-run": (["stats", str(t / "empty")], [str(t / "empty")]),
        "report-missing": (["report", str(t / "norun")], ["norun"]),
        "demo-missing-input": (["demo", "--input", str(t / "nodata"), "--out", str(t / "demo")], ["nodata"]),
    }


NAMES = list(cases(Path("/x")))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_line_and_exit_2(world, name):
    args, words = cases(world["t"])[name]
    res = corpusmill(*args)
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    problems = [line for line in err if "error" in line.lower()]
    assert len(problems) == 1, res.stderr[-3000:]
    for w in words:
        assert w in problems[0], problems[0]
    assert not (world["t"] / "gz-run").exists() and not (world["t"] / "lid-run").exists(), "checked before work starts"
