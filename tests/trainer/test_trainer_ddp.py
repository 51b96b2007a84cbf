"""DDP on CPU: `torchrun --nproc_per_node 2 -m corpusmill.trainer.train` with the gloo backend.

What is checked, and why it can be: the global batch of a step is batch_size x grad_accum windows
chosen by (seed, step, micro-step) only, and with 2 processes rank r runs micro-steps r, r + 2, ...
So 2 processes x 1 micro-step see exactly the windows that 1 process x 2 micro-steps sees, and after
DDP's gradient all-reduce (a mean) every rank applies the same update as the single process. The
losses then agree up to float summation order (all-reduce vs. in-place accumulation), ~1e-7
relative per step; we allow 1e-4 over 6 steps. Weights staying in sync on both ranks follows: a rank
that drifted would change the all-reduced loss and validation loss, which must match too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from corpusmill.trainer.data import write_token_dir
from corpusmill.trainer.train import train

REPO = Path(__file__).resolve().parents[2]
CFG = dict(n_layer=2, n_head=2, n_embd=48, seq_len=32, batch_size=4, grad_accum=2, max_steps=6, warmup_steps=2,
           lr=3e-3, eval_interval=3, eval_batches=4, ckpt_interval=1000, threads=1, plot=False)


def losses(out_dir: Path, kind="train", key="loss"):
    recs = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in recs if r["kind"] == kind]


def test_ddp_two_processes_match_single_process(tmp_path):
    toks = np.random.default_rng(4).integers(0, 128, 6000)
    data = write_token_dir(tmp_path / "tok", [toks[:5000]], [toks[5000:]], vocab_size=128)
    single = train(dict(CFG, data_dir=str(data), out_dir=str(tmp_path / "single"), quiet=True))

    sets = [f"{k}={v}" for k, v in dict(CFG, data_dir=str(data), out_dir=str(tmp_path / "ddp")).items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    # `python -m torch.distributed.run` is the `torchrun` console script, minus the PATH lookup
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "corpusmill.trainer.train", "tiny"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 process(es) on cpu" in proc.stdout

    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["world_size"] == 2 and result["steps"] == 6
    np.testing.assert_allclose(losses(tmp_path / "ddp"), losses(tmp_path / "single"), rtol=1e-4)
    np.testing.assert_allclose(losses(tmp_path / "ddp", "eval", "val_loss"), losses(tmp_path / "single", "eval", "val_loss"), rtol=1e-4)
    np.testing.assert_allclose(result["final_val_loss"], single["final_val_loss"], rtol=1e-4)
    a = torch.load(tmp_path / "ddp" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "single" / "ckpt.pt", weights_only=False)
    assert len(a["rng"]) == 2  # both ranks' RNG states are in the checkpoint
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5)
