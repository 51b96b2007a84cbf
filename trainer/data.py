"""Token shards for training: a minimal memmap reader and a deterministic window sampler.

Formats (see ../shared/reference/shard-formats.md), detected per file:

* datatrove ``NAME.ds`` (+ ``NAME.ds.index`` uint64 cumulative document ends, optional
  ``NAME.ds.metadata`` "tokenizer|token_size"): raw little-endian uint16 or uint32 tokens.
* Megatron ``NAME.bin`` + ``NAME.idx`` (b"MMIDIDX\\x00\\x00" header, dtype code 8 = uint16, 4 = int32).
* llm.c ``NAME.bin``: 256 x int32 header, magic 20240520 (uint16) or 20240801 (uint32), [2] = token count.
* nanoGPT ``NAME.bin`` with neither an ``.idx`` nor an llm.c header: raw uint16.

Directory layout: ``DIR/train/*`` and ``DIR/val/*`` (or nanoGPT's ``DIR/train.bin`` / ``DIR/val.bin``),
and optionally ``DIR/manifest.json`` with a ``"vocab_size"`` key.

Windows are ``seq_len + 1`` consecutive tokens inside one shard (they may span documents, as in
nanoGPT). Which windows a step uses is a pure function of ``(seed, step, micro_step)``, so the
sampler's whole state is the step number: resuming at step ``s`` draws exactly the batches an
uninterrupted run would have drawn, and each DDP rank draws its share of the same global batch.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}
LLMC_MAGICS = {20240520: np.uint16, 20240801: np.uint32}
LLMC_HEADER_BYTES = 256 * 4


def _megatron_dtype(idx_path: Path) -> np.dtype:
    with open(idx_path, "rb") as f:
        head = f.read(len(MEGATRON_MAGIC) + 8 + 1)
    if head[: len(MEGATRON_MAGIC)] != MEGATRON_MAGIC:
        raise ValueError(f"{idx_path}: not a Megatron index (bad magic)")
    (version,) = struct.unpack("<Q", head[9:17])
    if version != 1:
        raise ValueError(f"{idx_path}: unsupported Megatron index version {version}")
    code = head[17]
    if code not in MEGATRON_DTYPES:
        raise ValueError(f"{idx_path}: unknown dtype code {code}")
    return np.dtype(MEGATRON_DTYPES[code])


def _datatrove_dtype(path: Path) -> np.dtype:
    meta = path.with_name(path.name + ".metadata")
    if meta.is_file():
        first = meta.read_text().splitlines()[0] if meta.stat().st_size else ""
        if "|" in first:
            size = int(first.rsplit("|", 1)[1])
            return np.dtype({2: "<u2", 4: "<u4"}[size])
    index = path.with_name(path.name + ".index")
    if index.is_file() and index.stat().st_size >= 8:
        n_tokens = int(np.memmap(index, dtype="<u8", mode="r")[-1])
        if n_tokens and path.stat().st_size == 4 * n_tokens:
            return np.dtype("<u4")
    return np.dtype("<u2")


def open_shard(path: str | Path) -> np.ndarray:
    """A read-only 1-D memmap of one shard's tokens, whatever its format."""
    path = Path(path)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint16)
    if path.suffix == ".ds":
        return np.memmap(path, dtype=_datatrove_dtype(path), mode="r")
    if path.suffix != ".bin":
        raise ValueError(f"{path}: not a token shard (.ds or .bin)")
    idx = path.with_suffix(".idx")
    if idx.is_file():  # Megatron
        return np.memmap(path, dtype=_megatron_dtype(idx).newbyteorder("<"), mode="r")
    size = path.stat().st_size
    if size >= LLMC_HEADER_BYTES:
        header = np.fromfile(path, dtype="<i4", count=3)
        magic, version, count = (int(x) for x in header)
        if magic in LLMC_MAGICS:
            dt = np.dtype(LLMC_MAGICS[magic]).newbyteorder("<")
            if size != LLMC_HEADER_BYTES + count * dt.itemsize:
                raise ValueError(f"{path}: llm.c header says {count} tokens, file has {size} bytes")
            return np.memmap(path, dtype=dt, mode="r", offset=LLMC_HEADER_BYTES, shape=(count,))
    return np.memmap(path, dtype="<u2", mode="r")  # nanoGPT: raw uint16


def list_shards(directory: str | Path) -> list[Path]:
    """Token shards in a directory (index/metadata side files and hidden temporaries skipped), by name."""
    d = Path(directory)
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix in (".ds", ".bin") and not p.name.startswith("."))


def split_shards(data_dir: str | Path, split: str) -> list[Path]:
    d = Path(data_dir)
    if (d / split).is_dir():
        shards = list_shards(d / split)
    elif (d / f"{split}.bin").is_file():
        shards = [d / f"{split}.bin"]
    else:
        shards = []
    if not shards:
        raise FileNotFoundError(f"no {split} shards in {d} (expected {d / split}/*.ds|*.bin or {d / split}.bin)")
    return shards


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
