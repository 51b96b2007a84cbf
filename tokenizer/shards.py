"""The one reader of token shards, memory-mapped: every format ``pack`` writes and the ones it reads.

* :func:`open_shard` maps one file, its format detected from the file itself: datatrove ``.ds`` (dtype
  from ``.ds.metadata`` or the ``.ds.index`` size), Megatron ``.bin`` + ``.idx``, llm.c ``.bin`` (header
  magic), nanoGPT raw uint16 ``.bin``; :func:`split_shards` lists ``DIR/train/*`` (or ``DIR/train.bin``).
* :func:`open_shards` opens a ``pack`` output split (``manifest.json``) as one token stream: shards
  concatenated in manifest order (``tokens(a, b)`` crosses shard boundaries, as documents may).
  ``block(i, seq_len)`` is the non-overlapping slice ``[i * (seq_len + 1), (i + 1) * (seq_len + 1))``;
  with ``pack --seq-len L`` these are exactly the samples datatrove's ``DatatroveFolderDataset(seq_len=L)``
  serves. (The trainer's sampler, ``trainer/data.py``, draws *windows* at any offset instead.)

Files are mapped read-only and lazily, so objects are cheap to create and to hand to DataLoader workers.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpusmill.tokenizer.formats import LLMC_HEADER_BYTES, LLMC_MAGIC, MEGATRON_DTYPE_CODES, MEGATRON_MAGIC

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MEGATRON_DTYPES = {code: dt for dt, code in MEGATRON_DTYPE_CODES.items()}
LLMC_MAGICS = {magic: dt for dt, (magic, _) in LLMC_MAGIC.items()}

# ---------------------------------------------------------------------------------------------------
# single files, format detected from the file


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


# ---------------------------------------------------------------------------------------------------
# a pack output split: manifest + shards as one stream


@dataclass
class Shard:
    path: Path
    num_tokens: int
    offset: int  # bytes before the first token (llm.c header)
    dtype: np.dtype
    num_pieces: int
    first_piece_continued: bool

    _mm: np.ndarray | None = None

    def __getstate__(self):  # pickled (e.g. to DataLoader workers) without the mapped data
        return {**self.__dict__, "_mm": None}

    @property
    def tokens(self) -> np.ndarray:
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=self.dtype.newbyteorder("<"), mode="r", offset=self.offset, shape=(self.num_tokens,))
        return self._mm


class TokenShards:
    """One split of a pack output: a read-only token stream over memory-mapped shards."""

    def __init__(self, manifest_path: str | Path, split: str = "train"):
        self.manifest_path = Path(manifest_path)
        self.manifest = json.loads(self.manifest_path.read_text())
        if split not in self.manifest["splits"]:
            raise KeyError(f"no split {split!r} in {self.manifest_path} (has {sorted(self.manifest['splits'])})")
        self.split = split
        self.info = self.manifest["splits"][split]
        self.format = self.manifest["format"]
        self.dtype = np.dtype(self.manifest["dtype"])
        self.eos_id = self.manifest["eos_id"]
        self.eos_position = self.manifest["eos_position"]
        root = self.manifest_path.parent
        offset = LLMC_HEADER_BYTES if self.format == "llmc" else 0
        self.shards = [
            Shard(root / self.info["dir"] / s["file"], s["num_tokens"], offset, self.dtype, s["num_pieces"], s["first_piece_continued"])
            for s in self.info["shards"]
        ]
        self._starts = np.cumsum([0] + [s.num_tokens for s in self.shards]).astype(np.int64)
        self.num_tokens = int(self._starts[-1])

    def __len__(self) -> int:
        return self.num_tokens

    def __repr__(self) -> str:
        return f"TokenShards({self.manifest_path.parent}, split={self.split!r}, format={self.format}, shards={len(self.shards)}, tokens={self.num_tokens:,})"

    # -- raw access ---------------------------------------------------------------------------------
    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of the split's stream as int64 (crossing shard boundaries as needed)."""
        if not 0 <= start <= stop <= self.num_tokens:
            raise IndexError(f"token range [{start}, {stop}) outside [0, {self.num_tokens})")
        out = np.empty(stop - start, dtype=np.int64)
        k = int(np.searchsorted(self._starts, start, "right")) - 1
        pos = start
        while pos < stop:
            s0 = int(self._starts[k])
            take = min(stop, int(self._starts[k + 1])) - pos
            out[pos - start:pos - start + take] = self.shards[k].tokens[pos - s0:pos - s0 + take]
            pos += take
            k += 1
        return out

    # -- blocks (non-overlapping) and random slices ---------------------------------------------------
    def num_blocks(self, seq_len: int) -> int:
        """How many non-overlapping blocks of ``seq_len + 1`` tokens the split holds."""
        return self.num_tokens // (seq_len + 1)

    def block(self, i: int, seq_len: int) -> np.ndarray:
        """Block ``i``: tokens ``[i * (seq_len+1), (i+1) * (seq_len+1))``, int64."""
        n = self.num_blocks(seq_len)
        if not 0 <= i < n:
            raise IndexError(f"block {i} outside [0, {n}) for seq_len {seq_len}")
        return self.tokens(i * (seq_len + 1), (i + 1) * (seq_len + 1))

    def iter_blocks(self, seq_len: int, start: int = 0) -> Iterator[np.ndarray]:
        for i in range(start, self.num_blocks(seq_len)):
            yield self.block(i, seq_len)

    def random_slices(self, rng: np.random.Generator, batch: int, seq_len: int) -> np.ndarray:
        """``batch`` windows of ``seq_len + 1`` tokens at uniform random offsets: int64[batch, seq_len+1]."""
        if self.num_tokens < seq_len + 1:
            raise ValueError(f"split has {self.num_tokens} tokens, fewer than seq_len + 1 = {seq_len + 1}")
        starts = rng.integers(0, self.num_tokens - seq_len, size=batch)
        return np.stack([self.tokens(int(s), int(s) + seq_len + 1) for s in starts])

    # -- documents ----------------------------------------------------------------------------------
    def iter_documents(self, chunk_tokens: int = 1 << 22) -> Iterator[np.ndarray]:
        """Each document's tokens with its EOS/EOT, in stream order (boundaries found from the EOS id,
        which document text never produces)."""
        eos, append = self.eos_id, self.eos_position == "append"
        carry = np.empty(0, dtype=np.int64)
        for a in range(0, self.num_tokens, chunk_tokens):
            buf = np.concatenate([carry, self.tokens(a, min(self.num_tokens, a + chunk_tokens))])
            cuts = np.flatnonzero(buf == eos)
            if append:
                bounds = cuts + 1
            else:
                bounds = cuts
            prev = 0
            for b in bounds.tolist():
                if b > prev:
                    yield buf[prev:b]
                prev = b
            carry = buf[prev:]
        if len(carry):
            yield carry


def open_shards(path: str | Path, split: str = "train") -> TokenShards:
    """Open a split of a ``pack`` output directory (or its ``manifest.json``)."""
    p = Path(path)
    return TokenShards(p / MANIFEST if p.is_dir() else p, split)
