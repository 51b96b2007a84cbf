"""Memory-mapped reader for packed token shards (every format ``pack`` writes).

The trainer's entry point::

    from corpusmill.tokenizer.shards import open_shards

    ds = open_shards("data/tokens", split="train")     # a pack output dir, or its manifest.json
    ds.num_tokens                                      # tokens in the split (all shards)
    x = ds.window(i, seq_len)                          # int64[seq_len + 1], the i-th of ds.num_windows(seq_len)
    xb = ds.random_windows(rng, batch, seq_len)        # int64[batch, seq_len + 1] at random offsets
    for x in ds.iter_windows(seq_len): ...             # sequential, non-overlapping
    inputs, targets = xb[:, :-1], xb[:, 1:]

The split is one continuous token stream: shards are concatenated in manifest order (``tokens(a, b)``
reads across shard boundaries, as documents may). ``window(i, seq_len)`` is the stream slice
``[i * (seq_len + 1), (i + 1) * (seq_len + 1))``. When ``pack --seq-len L`` was used, every shard holds a
multiple of ``L + 1`` tokens, so these windows are exactly the ones datatrove's
``DatatroveFolderDataset(seq_len=L)`` serves from the ``.ds`` files (which never cross files).
``random_windows`` draws start offsets uniformly over ``[0, num_tokens - seq_len - 1]`` (nanoGPT style).

Files are opened with ``np.memmap`` (read-only) lazily, so an object is cheap to create and can be
handed to DataLoader workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpusmill.tokenizer.formats import LLMC_HEADER_BYTES

MANIFEST = "manifest.json"


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

    # -- windows ------------------------------------------------------------------------------------
    def num_windows(self, seq_len: int) -> int:
        """How many non-overlapping windows of ``seq_len + 1`` tokens the split holds."""
        return self.num_tokens // (seq_len + 1)

    def window(self, i: int, seq_len: int) -> np.ndarray:
        """Window ``i``: tokens ``[i * (seq_len+1), (i+1) * (seq_len+1))``, int64."""
        n = self.num_windows(seq_len)
        if not 0 <= i < n:
            raise IndexError(f"window {i} outside [0, {n}) for seq_len {seq_len}")
        return self.tokens(i * (seq_len + 1), (i + 1) * (seq_len + 1))

    def iter_windows(self, seq_len: int, start: int = 0) -> Iterator[np.ndarray]:
        for i in range(start, self.num_windows(seq_len)):
            yield self.window(i, seq_len)

    def random_windows(self, rng: np.random.Generator, batch: int, seq_len: int) -> np.ndarray:
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
