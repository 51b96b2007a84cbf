"""Trainer throughput vs a minimal nanoGPT-style loop, and speculative vs plain decoding (CPU).

    .venv/bin/python benchmarks/bench_trainer.py [--threads N] [--steps 60] [--rounds 3]
        [--steps-32k 25] [--rounds-32k 1] [--skip-training | --skip-speculative]

Part 1 - training tokens/s at the `tiny` preset's model and batch (2 x 128, 8 x 128 tokens), at a
4,096- and a 32,768-token vocabulary. The reference is written inline below the way nanoGPT's
train.py does it: a plain GPT module, torch.optim.AdamW, np.memmap random windows, clip_grad_norm_,
loss.item() every step; run as nanoGPT runs (denormals not flushed) and with
torch.set_flush_denormal(True) as our trainer does. Every run is a fresh process (those settings
are process-wide); the runs alternate in rounds (ref, ref+ftz, ours, ...) so a noisy neighbour on
the shared cores hits all of them. Reported: tokens/s from the median wall time of a step (all
rounds, first 5 steps of each run dropped) and tokens per CPU-second (process time per step, median
over rounds): compare the second when other jobs share the cores, as wall time then measures them too.

Part 2 - decoding tokens/s: a 4-layer 256-wide byte-level target and a 1-layer 64-wide draft, both
trained here (400 steps of 4 x 256 bytes) on a book from ../shared/data, then 200 new tokens from
each of 3 prompts: plain greedy vs greedy speculative (k draft tokens per round; outputs must be
identical), and plain vs speculative sampling at temperature 0.8, top-k 50.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corpusmill.trainer.data import write_token_dir  # noqa: E402
from corpusmill.trainer.sample import generate, speculative_generate  # noqa: E402
from corpusmill.trainer.train import load_model, train  # noqa: E402

BOOK = REPO.parent / "shared" / "data" / "books" / "pg1661_adventures-of-sherlock-holmes.txt"
# the `tiny` preset's model and batch; two vocabulary sizes (the LM head dominates at 32k)
CONF = dict(n_layer=2, n_head=2, n_embd=128, seq_len=128, batch_size=8, vocab=4096, lr=3e-3)
CONF_32K = dict(CONF, vocab=32768)


# --- the reference: nanoGPT-style, inline -------------------------------------------------------


class RefBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class RefGPT(nn.Module):
    def __init__(self, vocab, seq_len, n_layer, n_head, n_embd):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(seq_len, n_embd)
        self.h = nn.ModuleList(RefBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=False)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for b in self.h:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def reference_step_times(conf: dict, train_bin: str, steps: int, flush_denormal: bool) -> tuple[list[float], float]:
    """The nanoGPT-style loop; (wall seconds of each step after the first 5, CPU seconds per step)."""
    torch.set_flush_denormal(flush_denormal)
    torch.manual_seed(0)
    c = conf
    model = RefGPT(c["vocab"], c["seq_len"], c["n_layer"], c["n_head"], c["n_embd"])
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(0.9, 0.95))
    data = np.memmap(train_bin, dtype=np.uint16, mode="r")
    times, cpu0 = [], time.process_time()
    for step in range(steps):
        if step == 5:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        ix = torch.randint(len(data) - c["seq_len"] - 1, (c["batch_size"],))  # nanoGPT get_batch
        x = torch.stack([torch.from_numpy(data[i : i + c["seq_len"]].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + c["seq_len"]].astype(np.int64)) for i in ix])
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t0)
    return times[5:], (time.process_time() - cpu0) / (steps - 5)


def ours_step_times(conf: dict, data_dir: str, out: str, steps: int) -> tuple[list[float], float]:
    """corpusmill.trainer.train; (wall seconds of each step after the first 5, from metrics.jsonl; CPU seconds per
    step: a run of `steps` minus a run of 5, which cancels setup, evaluation and checkpointing)."""
    c, cpu = conf, []
    for n in (2, 5, steps):  # the first run only warms up (first-call costs of a fresh process)
        t = time.process_time()
        train(dict(data_dir=data_dir, out_dir=out, n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"],
                   seq_len=c["seq_len"], batch_size=c["batch_size"], lr=c["lr"], max_steps=n, warmup_steps=10,
                   eval_interval=0, eval_batches=1, ckpt_interval=10**9, plot=False, quiet=True, device="cpu",
                   dtype="float32"))
        cpu.append(time.process_time() - t)
    tokens = c["batch_size"] * c["seq_len"]
    rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [tokens / r["tokens_per_s"] for r in rows if r["kind"] == "train"][5:], (cpu[2] - cpu[1]) / (steps - 5)


def _isolated(threads, fn, *args):
    """Runs in a fresh process: flush-denormal and malloc settings are process-wide and must not leak."""
    if threads:
        torch.set_num_threads(threads)
    return fn(*args)


def bench_training(tmp: Path, conf: dict, steps: int, rounds: int, threads: int | None) -> dict:
    text = np.frombuffer(BOOK.read_bytes(), dtype=np.uint8).astype(np.int64)
    toks = ((text[:-1] * 257 + text[1:] * 31) % conf["vocab"]).astype(np.uint16)  # a stream of `vocab` ids
    data = write_token_dir(tmp / f"tok{conf['vocab']}", [toks[:-20000]], [toks[-20000:]], vocab_size=conf["vocab"])
    train_bin = tmp / f"train{conf['vocab']}.bin"
    toks[:-20000].tofile(train_bin)
    tokens = conf["batch_size"] * conf["seq_len"]
    wall = {"ref": [], "ref_ftz": [], "ours": []}
    cpu = {k: [] for k in wall}
    ctx = mp.get_context("spawn")
    for r in range(rounds):
        for key, fn, args in (("ref", reference_step_times, (conf, str(train_bin), steps, False)),
                              ("ref_ftz", reference_step_times, (conf, str(train_bin), steps, True)),
                              ("ours", ours_step_times, (conf, str(data), str(tmp / f"ours{r}"), steps))):
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                w, c = pool.submit(_isolated, threads, fn, *args).result()
            wall[key] += w
            cpu[key].append(c)
    out = {k: {"wall_tokens_per_s": tokens / statistics.median(wall[k]),
               "cpu_tokens_per_s": tokens / statistics.median(cpu[k])} for k in wall}
    print(f"\n== training throughput, CPU, {threads or torch.get_num_threads()} thread(s): {conf}, {rounds} round(s) x {steps} steps")
    print(f"  {'':42s} {'wall tokens/s':>14s} {'per CPU-second':>15s}")
    for k, name in (("ref", "nanoGPT-style loop (as nanoGPT: no FTZ)"), ("ref_ftz", "nanoGPT-style loop + flush_denormal"),
                    ("ours", "corpusmill.trainer.train")):
        print(f"  {name:42s} {out[k]['wall_tokens_per_s']:14,.0f} {out[k]['cpu_tokens_per_s']:15,.0f}")
    for k, name in (("ref", "ref"), ("ref_ftz", "ref+ftz")):
        print(f"  ratio ours / {name:8s}: wall {out['ours']['wall_tokens_per_s'] / out[k]['wall_tokens_per_s']:.2f}x, "
              f"CPU time {out['ours']['cpu_tokens_per_s'] / out[k]['cpu_tokens_per_s']:.2f}x")
    return out


def bench_speculative(tmp: Path, new_tokens: int = 200) -> dict:
    text = np.frombuffer(BOOK.read_bytes(), dtype=np.uint8).astype(np.uint16)
    data = write_token_dir(tmp / "bytes", [text[:-30000]], [text[-30000:]], vocab_size=256)
    common = dict(data_dir=str(data), seq_len=256, batch_size=4, eval_interval=0, eval_batches=8, plot=False,
                  quiet=True, warmup_steps=20, ckpt_interval=10**9)
    t0 = time.perf_counter()
    rt = train(dict(common, out_dir=str(tmp / "target"), n_layer=4, n_head=4, n_embd=256, max_steps=400, lr=3e-3))
    rd = train(dict(common, out_dir=str(tmp / "draft"), n_layer=1, n_head=2, n_embd=64, max_steps=400, lr=3e-3))
    print(f"\n== greedy decoding, byte-level models trained here ({time.perf_counter() - t0:.0f}s): target "
          f"{rt['num_params'] / 1e6:.2f}M params (4 x 256), val {rt['final_val_loss']:.2f} nats/byte; draft "
          f"{rd['num_params'] / 1e6:.3f}M (1 x 64), val {rd['final_val_loss']:.2f}; {torch.get_num_threads()} thread(s)")
    target, _ = load_model(tmp / "target")
    draft, _ = load_model(tmp / "draft")
    prompts = [b"To Sherlock Holmes she is always ", b"It was a dark night, and ", b"\"My dear Watson,\" said he, "]
    total = new_tokens * len(prompts)

    def run(fn):
        outs, stats, wall, cpu = [], [], 0.0, 0.0
        for p in prompts:
            t, c = time.perf_counter(), time.process_time()
            o = fn(list(p))
            wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
            o, st = o if isinstance(o, tuple) else (o, {})
            outs.append(o)
            stats.append(st)
        return outs, stats, total / wall, total / cpu

    generate(target, list(prompts[0]), 8, temperature=0)  # warm-up
    plain_out, _, plain_wall, plain_cpu = run(lambda ids: generate(target, ids, new_tokens, temperature=0))
    print(f"  {'':22s} {'tokens/s wall':>13s} {'per CPU-s':>10s} {'speedup wall/CPU':>17s}")
    print(f"  {'plain greedy':22s} {plain_wall:13.1f} {plain_cpu:10.1f}")
    out = {"plain": {"wall_tokens_per_s": plain_wall, "cpu_tokens_per_s": plain_cpu}, "speculative": {}}
    for k in (1, 2, 3, 4, 6):
        outs, stats, w, c = run(lambda ids: speculative_generate(target, draft, ids, new_tokens, num_draft=k, temperature=0))
        assert outs == plain_out, "speculative output differs from greedy"
        acc = sum(s["accepted"] for s in stats) / sum(s["drafted"] for s in stats)
        per_fwd = total / sum(s["target_forwards"] for s in stats)
        out["speculative"][k] = {"wall_tokens_per_s": w, "cpu_tokens_per_s": c, "speedup_wall": w / plain_wall,
                                 "speedup_cpu": c / plain_cpu, "acceptance": acc, "tokens_per_target_forward": per_fwd}
        print(f"  {f'speculative k={k}':22s} {w:13.1f} {c:10.1f} {w / plain_wall:8.2f}x/{c / plain_cpu:.2f}x  "
              f"acceptance {acc:.0%}, {per_fwd:.2f} tokens per target forward, output == greedy")
    print(f"  greedy sample: {bytes(plain_out[0]).decode('utf-8', 'replace')[:150]!r}")

    # sampled decoding (temperature 0.8, top-k 50): output differs run to run, the distribution is the target's
    def sampled(fn):
        g = torch.Generator().manual_seed(0)
        return run(lambda ids: fn(ids, g))

    outs, _, sw, sc = sampled(lambda ids, g: generate(target, ids, new_tokens, temperature=0.8, top_k=50, generator=g))
    print(f"  {'plain sampled T=0.8':22s} {sw:13.1f} {sc:10.1f}")
    out["sampled"] = {"plain": {"wall_tokens_per_s": sw, "cpu_tokens_per_s": sc}}
    for k in (2, 4):
        _, stats, w, c = sampled(lambda ids, g: speculative_generate(target, draft, ids, new_tokens, num_draft=k,
                                                                      temperature=0.8, top_k=50, generator=g))
        acc = sum(s["accepted"] for s in stats) / sum(s["drafted"] for s in stats)
        per_fwd = total / sum(s["target_forwards"] for s in stats)
        out["sampled"][k] = {"wall_tokens_per_s": w, "cpu_tokens_per_s": c, "speedup_wall": w / sw, "speedup_cpu": c / sc,
                             "acceptance": acc, "tokens_per_target_forward": per_fwd}
        print(f"  {f'speculative T=0.8 k={k}':22s} {w:13.1f} {c:10.1f} {w / sw:8.2f}x/{c / sc:.2f}x  "
              f"acceptance {acc:.0%}, {per_fwd:.2f} tokens per target forward")
    print(f"  sampled: {bytes(outs[0]).decode('utf-8', 'replace')[:150]!r}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps-32k", type=int, default=25, help="steps per run at vocabulary 32,768 (0: skip)")
    ap.add_argument("--rounds-32k", type=int, default=1)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-speculative", action="store_true")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, python {platform.python_version()}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench_trainer_") as d:
        tmp = Path(d)
        if not args.skip_training:
            bench_training(tmp, CONF, args.steps, args.rounds, args.threads)
            if args.steps_32k:
                bench_training(tmp, CONF_32K, args.steps_32k, args.rounds_32k, args.threads)
        if not args.skip_speculative:
            bench_speculative(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
