"""Train the GPT of trainer/model.py on packed token shards: ``train("tiny", {"data_dir": "runs/x/tokens",
"out_dir": "runs/x/model"})``, ``corpusmill train CONFIG.yaml --set key=value``, or on several processes /
GPUs ``torchrun --standalone --nproc_per_node 2 -m corpusmill.trainer.train CONFIG.yaml --set key=value``.

One optimizer step sees ``batch_size * grad_accum`` windows of ``seq_len + 1`` tokens; with N processes
each runs ``grad_accum / N`` of the micro-batches and DDP averages the gradients, so the global batch (and
the loss curve, up to float summation order) does not depend on N. Written to ``out_dir``: ``ckpt.pt``
(model, optimizer, step, sampler position, RNG states of every rank; replaced atomically; resuming from it
continues the exact loss curve of an uninterrupted run), ``config.json``, ``metrics.jsonl`` and
``metrics.csv`` (one row per step: loss, lr, grad norm, tokens/s, MFU when ``peak_flops`` is set; one per
evaluation: val_loss) and ``loss_curve.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from corpusmill.atomic import atomic_path
from corpusmill.trainer.config import TrainConfig, load_config
from corpusmill.trainer.data import TokenWindows, read_manifest_vocab, split_shards, to_tensors
from corpusmill.trainer.model import GPT, GPTConfig

CKPT_NAME = "ckpt.pt"
CSV_FIELDS = ["kind", "step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens_seen", "elapsed_s"]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over warmup_steps, then cosine decay to min_lr at lr_decay_steps (default max_steps)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = cfg.lr_decay_steps or cfg.max_steps
    if step >= decay_steps:
        return cfg.min_lr
    ratio = (step - cfg.warmup_steps) / max(1, decay_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


# --- distributed setup --------------------------------------------------------------------------


class Dist:
    """Rank, world size and device; set up from torchrun's environment variables when present."""

    def __init__(self, device_pref: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if device_pref == "auto":
            device_pref = "cuda" if torch.cuda.is_available() else "cpu"
        if device_pref == "cuda" and self.world > 1:
            device_pref = f"cuda:{self.local_rank}"
        self.device = torch.device(device_pref)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            self.owns_group = True
        self.enabled = self.world > 1
        self.master = self.rank == 0

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t /= self.world
        return t

    def close(self):
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def keep_freed_memory() -> bool:
    """Let glibc keep freed large blocks for reuse instead of unmapping them (CPU training only).

    PyTorch's CPU allocator has no cache: every step's logits (batch x seq x vocab floats, 131 MB at a
    32k vocabulary) and their gradients are fresh allocations above glibc's mmap threshold, so each
    step unmapped and page-faulted them again: 140k faults and 1.85 s/step for the tiny model at 32k
    vocabulary on these CPUs, 0 faults and 0.97 s/step with this. Process-wide; Linux/glibc only.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


# --- checkpoints --------------------------------------------------------------------------------


def rng_state(device: torch.device) -> dict:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        s["cuda"] = torch.cuda.get_rng_state(device)
    return s


def set_rng_state(s: dict, device: torch.device) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if device.type == "cuda" and "cuda" in s:
        torch.cuda.set_rng_state(s["cuda"], device)


def atomic_torch_save(obj, path: Path) -> None:
    """Write to a temporary name beside ``path``, fsync, then rename over it."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete half-written files (``.NAME.tmp-PID...``) left in out_dir by a trainer killed while saving,
    unless that process is still alive (a concurrent run in the same out_dir would be a user error,
    but its files are not ours to delete)."""
    for p in out_dir.glob(".*.tmp-*"):
        pid = p.name.rsplit(".tmp-", 1)[1].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue  # not one of ours
        try:
            os.kill(int(pid), 0)
            continue  # alive
        except ProcessLookupError:
            p.unlink(missing_ok=True)
        except PermissionError:
            continue  # alive, another user's


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a training out_dir holding ckpt.pt."""
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}")
    return p


def load_model(path: str | Path, device="cpu") -> tuple[GPT, dict]:
    """The GPT stored in a checkpoint (file or out_dir), in eval mode, and the checkpoint's metadata."""
    ckpt = torch.load(resolve_checkpoint(path), map_location=device, weights_only=False)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


# --- metrics ------------------------------------------------------------------------------------


class Metrics:
    """metrics.jsonl + metrics.csv in out_dir (rank 0 only). Resuming drops rows at or after the resume step."""

    def __init__(self, out_dir: Path, resume_step: int | None):
        self.jsonl, self.csv = out_dir / "metrics.jsonl", out_dir / "metrics.csv"
        self.records: list[dict] = []
        if resume_step is not None and self.jsonl.is_file():
            for line in self.jsonl.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    if r["step"] < resume_step:
                        self.records.append(r)
        self._rewrite()

    def _rewrite(self):
        with open(self.jsonl, "w") as f:
            for r in self.records:
                f.write(json.dumps(r) + "\n")
        with open(self.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            for r in self.records:
                w.writerow({k: r.get(k, "") for k in CSV_FIELDS})

    def add(self, record: dict):
        self.records.append(record)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow({k: record.get(k, "") for k in CSV_FIELDS})

    def evals(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "eval"]


def plot_loss_curve(records: list[dict], path: Path, title: str = "") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no loss curve plot", file=sys.stderr)
        return None
    train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    evals = [(r["step"], r["val_loss"]) for r in records if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if train:
        s, l = zip(*train)
        ax.plot(s, l, color="tab:blue", alpha=0.3, lw=0.8, label="train loss")
        ema, smooth = l[0], []
        for v in l:
            ema = 0.9 * ema + 0.1 * v
            smooth.append(ema)
        ax.plot(s, smooth, color="tab:blue", lw=1.6, label="train loss (EMA 0.9)")
    if evals:
        s, l = zip(*evals)
        ax.plot(s, l, "o-", color="tab:orange", lw=1.6, ms=4, label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path


# --- the trainer --------------------------------------------------------------------------------


def _resolve_vocab(cfg: TrainConfig, train_w: TokenWindows, val_w: TokenWindows) -> int:
    vocab = cfg.vocab_size or read_manifest_vocab(cfg.data_dir)
    if vocab is None:
        vocab = max(train_w.max_token(), val_w.max_token()) + 1
        print(f"vocab_size not configured and no manifest.json: using max token id + 1 = {vocab}", file=sys.stderr)
    elif max(train_w.n_tokens, val_w.n_tokens) <= 1 << 27:  # cheap enough to check every token id
        top = max(train_w.max_token(), val_w.max_token())
        if top >= vocab:
            raise ValueError(f"token id {top} in {cfg.data_dir} is out of range for vocab_size {vocab}")
    return int(vocab)


@torch.no_grad()
def evaluate(model, windows: TokenWindows, cfg: TrainConfig, d: Dist, autocast) -> float:
    """Mean next-token loss over the same eval_batches * batch_size validation windows every time."""
    was_training = model.training
    model.eval()
    starts = windows.eval_starts(cfg.eval_batches * cfg.batch_size)
    chunks = [starts[i : i + cfg.batch_size] for i in range(0, len(starts), cfg.batch_size)]
    acc = torch.zeros(2, dtype=torch.float64, device=d.device)  # sum of losses x windows, windows
    for chunk in chunks[d.rank :: d.world]:
        x, y = to_tensors(windows.batch(chunk), d.device)
        with autocast:
            _, loss = model(x, y)
        acc[0] += loss.double() * len(chunk)
        acc[1] += len(chunk)
    if d.enabled:
        dist.all_reduce(acc)
    model.train(was_training)
    return float(acc[0] / acc[1])


def train(config: str | Path | dict | TrainConfig | None = None, overrides: dict | list | None = None) -> dict:
    """Train per ``config`` (dict, YAML path, preset name or TrainConfig) plus ``overrides``.

    Returns a dict: out_dir, checkpoint, metrics, plot, initial_val_loss (step 0), final_val_loss
    (after the last step; None when stopped early by stop_after_steps), final_train_loss, steps,
    tokens_seen, tokens_per_s (mean over this process's steps), num_params, vocab_size, elapsed_s.
    """
    cfg = load_config(config, overrides)
    if not cfg.data_dir:
        raise ValueError("data_dir is not set (DIR with train/ and val/ token shards)")
    t_start = time.time()
    d = Dist(cfg.device)
    try:
        return _train(cfg, d, t_start)
    finally:
        d.close()


def _train(cfg: TrainConfig, d: Dist, t_start: float) -> dict:
    say = (lambda *a: print(*a, flush=True)) if d.master and not cfg.quiet else (lambda *a: None)
    if cfg.grad_accum % d.world:
        raise ValueError(f"grad_accum {cfg.grad_accum} must be divisible by the number of processes {d.world}")
    local_accum = cfg.grad_accum // d.world
    out_dir = Path(cfg.out_dir)
    if d.master:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out_dir)
    if d.device.type == "cpu":
        torch.set_flush_denormal(True)  # denormals in AdamW's state slowed steps 3x on these CPUs
        keep_freed_memory()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    use_bf16 = cfg.dtype == "bfloat16" or (
        cfg.dtype == "auto" and d.device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    autocast = torch.autocast(device_type=d.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    train_w = TokenWindows(split_shards(cfg.data_dir, "train"), cfg.seq_len)
    try:
        val_w, val_split = TokenWindows(split_shards(cfg.data_dir, "val"), cfg.seq_len), "val"
    except (FileNotFoundError, ValueError) as e:  # a tiny corpus may leave no usable val split
        print(f"WARNING: {e}; validation loss is measured on the TRAIN split", file=sys.stderr, flush=True)
        val_w, val_split = train_w, "train (no usable val split)"
    vocab = _resolve_vocab(cfg, train_w, val_w)
    padded = -(-vocab // cfg.pad_vocab_multiple) * cfg.pad_vocab_multiple

    # the same initial weights on every rank (DDP would broadcast rank 0's anyway); then per-rank RNG
    torch.manual_seed(cfg.seed)
    mconf = GPTConfig(
        vocab_size=padded, seq_len=cfg.seq_len, n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
        dropout=cfg.dropout, bias=cfg.bias, pos_emb=cfg.pos_emb, rope_theta=cfg.rope_theta,
    )
    raw_model = GPT(mconf).to(d.device)
    optimizer = raw_model.configure_optimizer(cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), d.device.type)
    random.seed(cfg.seed + d.rank)
    np.random.seed(cfg.seed + d.rank)
    torch.manual_seed(cfg.seed + d.rank)

    # resume
    ckpt_path = out_dir / CKPT_NAME
    start_step, initial_val = 0, None
    if cfg.resume is True and not ckpt_path.is_file():
        raise FileNotFoundError(f"resume requested but {ckpt_path} does not exist")
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=d.device, weights_only=False)
        if ckpt["model_config"] != asdict(mconf):
            raise ValueError(f"{ckpt_path} holds a different model: {ckpt['model_config']} vs {asdict(mconf)}")
        if ckpt["sampler"]["seed"] != cfg.seed:
            raise ValueError(f"{ckpt_path} was trained with seed {ckpt['sampler']['seed']}, config says {cfg.seed}")
        raw_model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_step = ckpt["sampler"]["step"]
        initial_val = ckpt.get("initial_val_loss")
        states = ckpt["rng"]
        set_rng_state(states[d.rank] if len(states) == d.world else states[0], d.device)
        say(f"resumed from {ckpt_path} at step {start_step}")
        del ckpt
    metrics = Metrics(out_dir, start_step) if d.master else None
    if d.master:
        (out_dir / "config.json").write_text(json.dumps({**asdict(cfg), "vocab_size": vocab}, indent=2))

    model = torch.compile(raw_model) if cfg.compile else raw_model
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    eval_model = raw_model if not cfg.compile else model.module if d.enabled else model

    n_params = raw_model.num_params()
    flops_per_token = raw_model.estimate_flops_per_token()
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.seq_len
    say(
        f"GPT {n_params / 1e6:.2f}M params (vocab {vocab}{f', padded {padded}' if padded != vocab else ''}), "
        f"{d.world} process(es) on {d.device}{', bf16' if use_bf16 else ''}; train {train_w.n_tokens:,} tokens "
        f"in {len(train_w.paths)} shard(s), val {val_w.n_tokens:,}; {tokens_per_step:,} tokens/step"
    )

    def save_checkpoint(step: int):
        states = [None] * d.world
        if d.enabled:
            dist.all_gather_object(states, rng_state(d.device))
        else:
            states = [rng_state(d.device)]
        if d.master:
            atomic_torch_save(
                {
                    "model": raw_model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "model_config": asdict(mconf),
                    "train_config": asdict(cfg),
                    "vocab_size": vocab,
                    "sampler": {"seed": cfg.seed, "step": step, "grad_accum": cfg.grad_accum, "batch_size": cfg.batch_size},
                    "step": step,
                    "tokens_seen": step * tokens_per_step,
                    "initial_val_loss": initial_val,
                    "rng": states,
                    "world_size": d.world,
                },
                ckpt_path,
            )

    def record_eval(step: int) -> float:
        v = evaluate(eval_model, val_w, cfg, d, autocast)
        if metrics is not None:
            metrics.add({"kind": "eval", "step": step, "val_loss": v, "tokens_seen": step * tokens_per_step, "elapsed_s": round(time.time() - t_start, 3)})
        say(f"step {step:6d} | val loss {v:.4f}")
        return v

    model.train()
    step, last_loss, speeds, stopped = start_step, None, [], False
    while step < cfg.max_steps:
        if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps:
            stopped = True
            break
        if cfg.eval_interval and step % cfg.eval_interval == 0:
            v = record_eval(step)
            if step == 0:
                initial_val = v

        t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        loss_sum = torch.zeros((), device=d.device)
        for j in range(local_accum):
            micro = j * d.world + d.rank  # this rank's share of the global batch
            x, y = to_tensors(train_w.batch(train_w.random_starts(cfg.seed, step, micro, cfg.batch_size)), d.device)
            sync = not d.enabled or j == local_accum - 1  # all-reduce gradients on the last micro-step only
            with nullcontext() if sync else model.no_sync():
                with autocast:
                    _, loss = model(x, y)
                (loss / local_accum).backward()
            loss_sum += loss.detach().float()
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(raw_model.parameters(), max_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        last_loss = float(d.all_reduce_mean(loss_sum / local_accum))  # .item() waits for the GPU
        dt = time.perf_counter() - t0
        tps = tokens_per_step / dt
        speeds.append(tps)
        mfu = flops_per_token * tps / (cfg.peak_flops * d.world) if cfg.peak_flops else None
        if metrics is not None:
            metrics.add({
                "kind": "train", "step": step, "loss": last_loss, "lr": lr, "grad_norm": grad_norm,
                "tokens_per_s": round(tps, 1), "mfu": mfu, "tokens_seen": (step + 1) * tokens_per_step,
                "elapsed_s": round(time.time() - t_start, 3),
            })
        if step % cfg.log_interval == 0 or step == cfg.max_steps - 1:
            say(
                f"step {step:6d} | loss {last_loss:.4f} | lr {lr:.2e} | grad norm {grad_norm:.3f} | "
                f"{tps:,.0f} tok/s" + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
            )
        step += 1
        if step % cfg.ckpt_interval == 0 and step < cfg.max_steps:
            save_checkpoint(step)

    final_val = None
    if stopped:
        save_checkpoint(step)
        say(f"stopped after step {step} (stop_after_steps); resume with resume=true")
    else:
        final_val = record_eval(step) if cfg.eval_interval else evaluate(eval_model, val_w, cfg, d, autocast)
        if initial_val is None and metrics is not None:
            initial_val = next((r["val_loss"] for r in metrics.evals() if r["step"] == 0), None)
        save_checkpoint(step)
    plot = None
    if d.master and cfg.plot and metrics.records:
        plot = plot_loss_curve(metrics.records, out_dir / "loss_curve.png", title=f"{out_dir.name}: {n_params / 1e6:.2f}M params")
    result = {
        "out_dir": str(out_dir),
        "checkpoint": str(ckpt_path),
        "metrics": str(out_dir / "metrics.jsonl"),
        "plot": str(plot) if plot else None,
        "initial_val_loss": initial_val,
        "final_val_loss": final_val,
        "final_train_loss": last_loss,
        "steps": step,
        "stopped_early": stopped,
        "tokens_seen": step * tokens_per_step,
        "tokens_per_s": float(np.mean(speeds[1:] or speeds)) if speeds else None,
        "num_params": n_params,
        "vocab_size": vocab,
        "val_split": val_split,
        "world_size": d.world,
        "elapsed_s": round(time.time() - t_start, 3),
    }
    if d.master:
        (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    if final_val is not None:
        say(f"done: val loss {initial_val} -> {final_val:.4f} in {result['elapsed_s']:.1f}s; {ckpt_path}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m corpusmill.trainer.train", description="train the reference GPT (torchrun-ready)")
    p.add_argument("config", help="YAML config file or preset name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    train(args.config, args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
