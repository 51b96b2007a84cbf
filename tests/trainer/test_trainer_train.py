"""trainer/train.py: exact resume, logs and plot, schedule, configs and the `corpusmill train` CLI."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os

import numpy as np
import pytest
import torch

from corpusmill.trainer.config import load_config, preset_names
from corpusmill.trainer.data import write_token_dir
from corpusmill.trainer.train import load_model, lr_at, train

@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """train(threads=1) and these tests set torch's process-wide thread count: give it back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


SMALL = dict(
    n_layer=2, n_head=2, n_embd=48, seq_len=32, batch_size=4, grad_accum=2, max_steps=20, warmup_steps=4,
    lr=3e-3, min_lr=3e-4, eval_interval=5, eval_batches=2, ckpt_interval=1000, dropout=0.1,
    threads=1, quiet=True, plot=False,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    rng = np.random.default_rng(3)
    # a learnable stream: a noisy repeated pattern, several documents
    base = np.tile(rng.integers(0, 200, 50), 40)
    noise = rng.random(len(base)) < 0.1
    toks = np.where(noise, rng.integers(0, 200, len(base)), base)
    return write_token_dir(tmp_path_factory.mktemp("tok"), [toks[:800], toks[800:1700]], [toks[1700:]], vocab_size=200)


def rows(out_dir, kind):
    recs = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in recs if r["kind"] == kind]


def test_resume_continues_the_exact_loss_curve(tmp_path, data_dir):
    """20 steps straight == 10 steps, stop, resume for 10 (dropout on, so RNG state matters too)."""
    a = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "a")))
    b1 = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "b"), stop_after_steps=10))
    assert b1["stopped_early"] and b1["steps"] == 10 and b1["final_val_loss"] is None
    # a crash after the checkpoint would have left rows past it: resuming must drop them
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "train", "step": 10, "loss": 123.0}) + "\n")
    b2 = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "b"), resume=True))
    assert not b2["stopped_early"] and b2["steps"] == 20

    la = [r["loss"] for r in rows(tmp_path / "a", "train")]
    lb = [r["loss"] for r in rows(tmp_path / "b", "train")]
    assert len(la) == len(lb) == 20
    assert la == lb  # bit-exact on CPU
    assert [r["grad_norm"] for r in rows(tmp_path / "a", "train")] == [r["grad_norm"] for r in rows(tmp_path / "b", "train")]
    va = [(r["step"], r["val_loss"]) for r in rows(tmp_path / "a", "eval")]
    assert va == [(r["step"], r["val_loss"]) for r in rows(tmp_path / "b", "eval")]
    assert [s for s, _ in va] == [0, 5, 10, 15, 20]
    assert a["final_val_loss"] == b2["final_val_loss"] and a["initial_val_loss"] == b2["initial_val_loss"]
    sa = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    sb = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    # and a different seed gives a different curve (the test is not vacuous)
    c = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "c"), seed=7, max_steps=3, eval_interval=0))
    assert [r["loss"] for r in rows(tmp_path / "c", "train")] != la[:3]
    assert c["final_val_loss"] is not None


def test_logs_checkpoint_plot_and_result(tmp_path, data_dir):
    r = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "o"), max_steps=12, dropout=0.0,
                   plot=True, peak_flops=1e12, pos_emb="rotary", ckpt_interval=5))
    out = tmp_path / "o"
    assert r["out_dir"] == str(out) and r["steps"] == 12 and r["tokens_seen"] == 12 * 4 * 2 * 32
    assert r["final_val_loss"] < r["initial_val_loss"]
    train_rows = rows(out, "train")
    assert [x["step"] for x in train_rows] == list(range(12))
    for x in train_rows:
        assert x["loss"] > 0 and x["lr"] > 0 and x["grad_norm"] > 0 and x["tokens_per_s"] > 0 and 0 < x["mfu"] < 1
    assert train_rows[0]["lr"] == pytest.approx(3e-3 / 4)  # warmup
    with open(out / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 + 4 and {"loss", "lr", "grad_norm", "tokens_per_s", "mfu", "val_loss"} <= set(table[0])
    png = (out / "loss_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert json.loads((out / "result.json").read_text())["final_val_loss"] == r["final_val_loss"]
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # atomic writes leave no temporaries
    model, meta = load_model(out)  # a directory or the file itself
    assert meta["step"] == 12 and meta["vocab_size"] == 200 and model.cfg.pos_emb == "rotary"
    ck = torch.load(out / "ckpt.pt", weights_only=False)
    assert {"model", "optimizer", "sampler", "rng", "step"} <= set(ck)
    assert {"python", "numpy", "torch"} <= set(ck["rng"][0]) and ck["sampler"]["step"] == 12
    # MFU is not logged without a known peak
    r2 = train(dict(SMALL, data_dir=str(data_dir), out_dir=str(tmp_path / "p"), max_steps=2, eval_interval=0))
    assert rows(tmp_path / "p", "train")[0]["mfu"] is None and r2["final_val_loss"] > 0


def test_lr_schedule_and_config():
    cfg = load_config("tiny", {"max_steps": 100, "warmup_steps": 10, "lr": 1e-3, "min_lr": 1e-4})
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(55, cfg) == pytest.approx(1e-4 + 0.5 * 0.9e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4) and lr_at(500, cfg) == pytest.approx(1e-4)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 120))
    assert {"tiny", "gpt2-124m"} <= set(preset_names())
    g = load_config("gpt2-124m")
    assert (g.n_layer, g.n_head, g.n_embd, g.seq_len, g.pad_vocab_multiple) == (12, 12, 768, 1024, 64)
    assert load_config("tiny", ["lr=3e-4", "pos_emb=rotary", "peak_flops=null"]).lr == 3e-4
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config("tiny", {"nope": 1})
    with pytest.raises(ValueError, match="pos_emb"):
        load_config("tiny", {"pos_emb": "alibi"})


def test_gpt2_124m_preset_has_124m_parameters():
    from corpusmill.trainer.model import GPT, GPTConfig

    g = load_config("gpt2-124m")
    with torch.device("meta"):
        m = GPT(GPTConfig(vocab_size=50304, seq_len=g.seq_len, n_layer=g.n_layer, n_head=g.n_head, n_embd=g.n_embd))
    assert 123e6 < m.num_params() < 125e6


def test_cli_train(tmp_path, data_dir, capsys):
    from corpusmill.trainer.cli import add_subcommands

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"preset: tiny\ndata_dir: {data_dir}\nseq_len: 32\nn_embd: 32\nmax_steps: 4\neval_interval: 2\n"
                   "eval_batches: 1\nthreads: 1\nplot: false\n")
    p = argparse.ArgumentParser()
    add_subcommands(p.add_subparsers())
    args = p.parse_args(["train", str(cfg), "--out-dir", str(tmp_path / "cli"), "--set", "batch_size=2", "--set", "lr=1e-3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out  # progress lines, then the result as JSON
    result = json.loads(out[out.index("\n{") + 1 :])
    assert result["steps"] == 4 and math.isfinite(result["final_val_loss"])
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert saved["batch_size"] == 2 and saved["lr"] == 1e-3 and saved["n_embd"] == 32 and saved["vocab_size"] == 200


def test_val_split_too_small_falls_back_to_train(tmp_path, capsys):
    toks = np.random.default_rng(5).integers(0, 50, 2000)
    d = write_token_dir(tmp_path / "tok", [toks], [toks[:10]], vocab_size=50)  # val shorter than one window
    r = train(dict(SMALL, data_dir=str(d), out_dir=str(tmp_path / "o"), max_steps=2, eval_interval=0))
    assert r["val_split"].startswith("train") and math.isfinite(r["final_val_loss"])
    assert "validation loss is measured on the TRAIN split" in capsys.readouterr().err


def test_token_ids_beyond_the_vocabulary_are_refused(tmp_path):
    toks = np.arange(2000) % 100
    d = write_token_dir(tmp_path / "tok", [toks], [toks], vocab_size=50)
    with pytest.raises(ValueError, match="out of range for vocab_size 50"):
        train(dict(SMALL, data_dir=str(d), out_dir=str(tmp_path / "o"), max_steps=1))
    (d / "manifest.json").unlink()  # no manifest, no config value: max id + 1
    r = train(dict(SMALL, data_dir=str(d), out_dir=str(tmp_path / "o"), max_steps=1, eval_interval=0))
    assert r["vocab_size"] == 100


def test_half_written_checkpoints_of_dead_trainers_are_removed(tmp_path, data_dir):
    out = tmp_path / "o"
    out.mkdir()
    dead = out / ".ckpt.pt.tmp-999999999"  # above Linux's pid_max: no such process
    dead_png = out / ".loss.tmp-999999999.png"
    alive = out / f".ckpt.pt.tmp-{os.getppid()}"  # the test runner's parent: alive
    other = out / ".notes.tmp-draft"  # not named by a pid: not ours to delete
    for p in (dead, dead_png, alive, other):
        p.write_bytes(b"partial")
    train(dict(SMALL, data_dir=str(data_dir), out_dir=str(out), max_steps=1, eval_interval=0))
    assert not dead.exists() and not dead_png.exists() and alive.exists() and other.exists()
