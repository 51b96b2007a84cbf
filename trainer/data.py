"""Training windows over token shards: a deterministic sampler (files are read by
:mod:`corpusmill.tokenizer.shards`, the one reader of every shard format), plus small shard writers for
tests and benchmarks.

A *window* here is any ``seq_len + 1`` consecutive tokens inside one shard, at any offset (they may span
documents, as in nanoGPT); ``tokenizer.shards`` calls its non-overlapping ``seq_len + 1`` slices *blocks*.
Which windows a step uses is a pure function of ``(seed, step, micro_step)``, so the
sampler's whole state is the step number: resuming at step ``s`` draws exactly the batches an
uninterrupted run would have drawn, and each DDP rank draws its share of the same global batch.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import numpy as np

from corpusmill.tokenizer.formats import LLMC_MAGIC, MEGATRON_DTYPE_CODES, MEGATRON_MAGIC
from corpusmill.tokenizer.shards import open_shard, split_shards

log = logging.getLogger(__name__)

MEGATRON_DTYPES = {v: k for k, v in MEGATRON_DTYPE_CODES.items()}
LLMC_MAGICS = {magic: dt for dt, (magic, _) in LLMC_MAGIC.items()}


def read_manifest_vocab(data_dir: str | Path) -> int | None:
    p = Path(data_dir) / "manifest.json"
    if not p.is_file():
        return None
    try:
        v = json.loads(p.read_text()).get("vocab_size")
    except (ValueError, AttributeError):
        return None
    return int(v) if v is not None else None


class TokenWindows:
    """Windows of ``seq_len + 1`` tokens over a list of shards, addressed by one flat index.

    Window ``i`` starts at the i-th valid offset when the shards' valid offsets are laid end to end.
    """

    def __init__(self, shards: list[str | Path], seq_len: int):
        self.paths = [Path(p) for p in shards]
        self.seq_len = seq_len
        self.arrays = [open_shard(p) for p in self.paths]
        w = seq_len + 1
        self.valid = np.array([max(len(a) - w + 1, 0) for a in self.arrays], dtype=np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.valid)])
        self.n_windows = int(self.cum[-1])
        self.n_tokens = int(sum(len(a) for a in self.arrays))
        if self.n_windows == 0:
            raise ValueError(f"no shard among {[str(p) for p in self.paths]} holds {w} tokens (seq_len + 1)")
        skipped = [str(p) for p, v in zip(self.paths, self.valid) if v == 0]
        if skipped:
            log.warning("shards shorter than seq_len + 1 = %d tokens are not used: %s", w, skipped)

    def max_token(self) -> int:
        return int(max(int(a.max()) for a in self.arrays if len(a)))

    def window(self, i: int) -> np.ndarray:
        s = int(np.searchsorted(self.cum, i, side="right")) - 1
        off = int(i - self.cum[s])
        return np.asarray(self.arrays[s][off : off + self.seq_len + 1], dtype=np.int64)

    def batch(self, starts: np.ndarray) -> np.ndarray:
        """(len(starts), seq_len + 1) int64 array of the windows with these flat indices."""
        return np.stack([self.window(int(i)) for i in starts])

    # --- the two ways windows are chosen -------------------------------------------------------

    def random_starts(self, seed: int, step: int, micro: int, n: int) -> np.ndarray:
        """Training: n window indices drawn uniformly, a pure function of (seed, step, micro)."""
        rng = np.random.default_rng([seed, step, micro])
        return rng.integers(0, self.n_windows, size=n)

    def eval_starts(self, n: int) -> np.ndarray:
        """Evaluation: n windows spread evenly over the split, the same every time."""
        if n >= self.n_windows:
            return np.arange(self.n_windows)
        return np.linspace(0, self.n_windows - 1, n).round().astype(np.int64)


def to_tensors(batch: np.ndarray, device="cpu"):
    """Split (B, seq_len + 1) windows into inputs x and next-token targets y."""
    import torch

    t = torch.from_numpy(batch)
    x, y = t[:, :-1], t[:, 1:]
    if str(device).startswith("cuda"):
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.contiguous(), y.contiguous()


# --- writers (tests, benchmarks, examples) ---------------------------------------------------------


def write_datatrove(path: str | Path, docs: list, token_size: int = 2, tokenizer: str = "test") -> Path:
    """``path`` ends in .ds; writes .ds, .ds.index and .ds.metadata for these documents."""
    path = Path(path)
    dt = "<u2" if token_size == 2 else "<u4"
    toks = np.concatenate([np.asarray(d, dtype=dt) for d in docs]) if docs else np.zeros(0, dt)
    toks.tofile(path)
    np.cumsum([len(d) for d in docs]).astype("<u8").tofile(path.with_name(path.name + ".index"))
    path.with_name(path.name + ".metadata").write_text(f"{tokenizer}|{token_size}\n{len(toks)}\n{len(toks)} tokens\n")
    return path


def write_megatron(path: str | Path, docs: list, dtype=np.uint16) -> Path:
    """``path`` ends in .bin; writes the .bin and its .idx (one sequence per document)."""
    path = Path(path)
    dtype = np.dtype(dtype)
    code = {np.dtype(v): k for k, v in MEGATRON_DTYPES.items()}[dtype]
    arrs = [np.asarray(d, dtype=dtype.newbyteorder("<")) for d in docs]
    with open(path, "wb") as f:
        for a in arrs:
            f.write(a.tobytes())
    lengths = np.array([len(a) for a in arrs], dtype="<i4")
    pointers = np.concatenate([[0], np.cumsum(lengths[:-1].astype(np.int64) * dtype.itemsize)]).astype("<i8")
    doc_idx = np.arange(len(arrs) + 1, dtype="<i8")
    with open(path.with_suffix(".idx"), "wb") as f:
        f.write(MEGATRON_MAGIC)
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", code))
        f.write(struct.pack("<Q", len(arrs)))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(lengths.tobytes())
        f.write(pointers[: len(arrs)].tobytes())
        f.write(doc_idx.tobytes())
    return path


def write_llmc(path: str | Path, tokens, magic: int = 20240520) -> Path:
    """``path`` ends in .bin; llm.c's header + tokens (uint16 for 20240520, uint32 for 20240801)."""
    path = Path(path)
    toks = np.asarray(tokens, dtype=LLMC_MAGICS[magic]).astype(np.dtype(LLMC_MAGICS[magic]).newbyteorder("<"))
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = magic, 1 if magic == 20240520 else 7, len(toks)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(toks.tobytes())
    return path


def write_token_dir(directory: str | Path, train_docs: list, val_docs: list, vocab_size: int | None = None,
                    fmt: str = "datatrove") -> Path:
    """A DIR/train, DIR/val (+ manifest.json) layout with one shard per split, in format
    ``datatrove`` (.ds), ``megatron`` (.bin + .idx) or ``llmc`` (.bin with header)."""
    d = Path(directory)
    for split, docs in (("train", train_docs), ("val", val_docs)):
        (d / split).mkdir(parents=True, exist_ok=True)
        if fmt == "datatrove":
            write_datatrove(d / split / "shard_00000.ds", docs)
        elif fmt == "megatron":
            write_megatron(d / split / "shard_00000.bin", docs)
        elif fmt == "llmc":
            write_llmc(d / split / "shard_00000.bin", np.concatenate([np.asarray(x) for x in docs]))
        else:
            raise ValueError(f"unknown format {fmt!r}")
    if vocab_size is not None:
        (d / "manifest.json").write_text(json.dumps({"vocab_size": int(vocab_size)}))
    return d
