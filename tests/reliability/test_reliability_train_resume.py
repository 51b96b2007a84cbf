"""``corpusmill train`` killed with SIGKILL, then the very same command run again (no ``--resume``):
it continues from the last checkpoint and ends with the loss curve and weights of an uninterrupted run.

See docs/reliability.md ("Crash and resume"). A tiny model (2 layers, 48 wide) on a synthetic token
stream, 30 steps with a checkpoint every 10: a few seconds per run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))
SETS = ["n_layer=2", "n_head=2", "n_embd=48", "seq_len=32", "batch_size=4", "grad_accum=2", "max_steps=30",
        "warmup_steps=4", "eval_interval=10", "eval_batches=2", "ckpt_interval=10", "dropout=0.1", "threads=1",
        "plot=false", "log_interval=1"]


def cmd(data: Path, out: Path, *extra: str) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return [sys.executable, "-m", "corpusmill.cli", "train", "tiny", "--data-dir", str(data), "--out-dir", str(out),
            *sets, *extra]


def run(c: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(c, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from corpusmill.trainer.data import write_token_dir

    rng = np.random.default_rng(3)
    base = np.tile(rng.integers(0, 200, 50), 60)
    toks = np.where(rng.random(len(base)) < 0.1, rng.integers(0, 200, len(base)), base)
    return write_token_dir(tmp_path_factory.mktemp("tokens"), [toks[:1500], toks[1500:2700]], [toks[2700:]],
                           vocab_size=200)


def steps(out: Path) -> list[int]:
    done = []
    if (out / "metrics.jsonl").exists():
        for line in (out / "metrics.jsonl").read_text().splitlines():
            try:
                done.append(json.loads(line)["step"])
            except ValueError:  # a line being written
                pass
    return done


def curve(out: Path) -> list[tuple]:
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [(r["kind"], r["step"], r.get("loss"), r.get("val_loss"), r.get("lr"), r.get("grad_norm")) for r in recs]


@pytest.mark.slow
def test_rerunning_a_killed_train_command_resumes_to_the_same_curve(data, tmp_path):
    ref = run(cmd(data, tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "out"
    c = cmd(data, out)
    p = subprocess.Popen(c, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        t0 = time.time()
        while not ((out / "ckpt.pt").exists() and 12 <= max(steps(out), default=0) < 19):
            assert p.poll() is None, "train ended before it could be killed"
            assert time.time() - t0 < 300, "timed out waiting for the step-10 checkpoint"
            time.sleep(0.002)
        os.killpg(p.pid, signal.SIGSTOP)  # freeze: what is checked is what the kill leaves
        time.sleep(0.05)
        assert max(steps(out)) < 20
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] == 10
    res = run(c)  # the very same command
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stdout + res.stderr
    assert curve(out) == curve(tmp_path / "ref")
    a = torch.load(out / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "ref" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 30
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_checkpoint_of_another_model_in_out_dir_is_one_line_and_resume_false_starts_over(data, tmp_path):
    out = tmp_path / "out"
    assert run(cmd(data, out, "--set", "max_steps=10")).returncode == 0
    res = run(cmd(data, out, "--set", "n_embd=64"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "different model" in res.stderr.strip().splitlines()[-1]
    res = run(cmd(data, out, "--set", "n_embd=64", "--set", "resume=false"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert torch.load(out / "ckpt.pt", weights_only=False)["model_config"]["n_embd"] == 64
