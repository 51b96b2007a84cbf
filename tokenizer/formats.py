"""On-disk token shard formats: writers (and the byte layouts the reader in ``shards.py`` relies on).

Three formats, each readable by the tool that defined it: ``ds`` (datatrove ``DocumentTokenizer``,
read by datatrove and nanotron), ``megatron`` (Megatron-LM ``IndexedDataset`` ``.bin`` / ``.idx``) and
``llmc`` (karpathy/llm.c ``.bin``). Shards are fixed-size (``shard_tokens`` each but the last; a
document that does not fit continues in the next shard as a second "piece"), and every file is written
under a temporary name and renamed when complete. Byte layouts and their upstream sources:
docs/tokenizer.md, "Shard formats".
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from corpusmill.atomic import temporary_name, write_bytes

FORMATS = ("ds", "megatron", "llmc")

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {
    np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
    np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7, np.dtype(np.uint16): 8,
}
LLMC_HEADER_INTS = 256
LLMC_HEADER_BYTES = LLMC_HEADER_INTS * 4
LLMC_MAGIC = {np.dtype(np.uint16): (20240520, 1), np.dtype(np.uint32): (20240801, 7)}


def token_dtype(fmt: str, vocab_size: int) -> np.dtype:
    """The token dtype each format's own reader expects for this vocabulary size."""
    if fmt == "megatron":
        return np.dtype(np.uint16 if vocab_size < 65500 else np.int32)
    if fmt in ("ds", "llmc"):
        return np.dtype(np.uint16 if vocab_size <= 65536 else np.uint32)
    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")


def eos_position(fmt: str) -> str:
    """``"append"``: EOS after each document (ds, megatron); ``"prepend"``: EOT before it (llm.c)."""
    return "prepend" if fmt == "llmc" else "append"


def shard_filename(fmt: str, split: str, index: int, shuffled: bool = False) -> str:
    if fmt == "ds":  # datatrove's {name}_{rank:05d}_{shuffled|unshuffled}.ds
        return f"{split}_{index:05d}_{'shuffled' if shuffled else 'unshuffled'}.ds"
    if fmt == "megatron":
        return f"{split}_{index:05d}.bin"
    return f"{split}_{index:06d}.bin"  # llm.c's fineweb_train_000001.bin style


def megatron_idx_bytes(lengths: np.ndarray, dtype: np.dtype) -> bytes:
    """Megatron ``.idx`` contents for one sequence per document (``lengths`` in tokens)."""
    lengths = np.asarray(lengths, dtype=np.int32)
    n = len(lengths)
    pointers = np.zeros(n, dtype=np.int64)
    if n > 1:
        pointers[1:] = np.cumsum(lengths[:-1], dtype=np.int64) * np.dtype(dtype).itemsize
    doc_idx = np.arange(n + 1, dtype=np.int64)
    header = MEGATRON_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", MEGATRON_DTYPE_CODES[np.dtype(dtype)])
    header += struct.pack("<Q", n) + struct.pack("<Q", n + 1)
    return header + lengths.astype("<i4").tobytes() + pointers.astype("<i8").tobytes() + doc_idx.astype("<i8").tobytes()


def llmc_header(num_tokens: int, dtype: np.dtype) -> bytes:
    if num_tokens >= 2**31:
        raise ValueError("llm.c shards hold fewer than 2^31 tokens; lower --shard-tokens")
    magic, version = LLMC_MAGIC[np.dtype(dtype)]
    h = np.zeros(LLMC_HEADER_INTS, dtype="<i4")
    h[0], h[1], h[2] = magic, version, num_tokens
    return h.tobytes()


def ds_metadata_text(tokenizer_name: str, token_size: int, count: int) -> str:
    """datatrove's ``TokenizedFile.write_final_metadata`` layout."""
    try:
        import humanize

        human = humanize.metric(count, unit="T")
    except ImportError:  # humanize comes with datatrove; keep the writer usable without it
        human = f"{count} T"
    return "\n".join([f"{tokenizer_name}|{token_size}", str(count), human])


def _tmp(path: Path) -> Path:
    return temporary_name(path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_bytes(path, data)


class ShardWriter:
    """Write one split's token stream into fixed-size shards of one format.

    Call :meth:`add` with blocks of whole documents (EOS/EOT already in place) and their lengths;
    :meth:`close` returns one dict per shard for the manifest.
    """

    def __init__(self, out_dir: Path, split: str, fmt: str, dtype: np.dtype, shard_tokens: int,
                 tokenizer_name: str = "corpusmill", shuffled: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        if shard_tokens < 1:
            raise ValueError("shard_tokens must be >= 1")
        if fmt == "llmc" and shard_tokens >= 2**31:
            raise ValueError("llm.c shards hold fewer than 2^31 tokens")
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split, self.fmt, self.dtype = split, fmt, np.dtype(dtype)
        self.shard_tokens, self.tokenizer_name, self.shuffled = shard_tokens, tokenizer_name, shuffled
        self.shards: list[dict] = []
        self._f = None
        self._n = 0  # tokens in the open shard
        self._ends: list[int] = []  # piece ends in the open shard
        self._continued = False  # does the open shard start with the tail of a document

    def _open(self) -> None:
        self._path = self.dir / shard_filename(self.fmt, self.split, len(self.shards), self.shuffled)
        self._f = open(_tmp(self._path), "wb")
        if self.fmt == "llmc":
            self._f.write(b"\0" * LLMC_HEADER_BYTES)  # filled in by _finish
        self._n, self._ends = 0, []

    def add(self, tokens: np.ndarray, lengths) -> None:
        """Append documents: ``tokens`` is their concatenation, ``lengths`` their sizes (summing to len(tokens))."""
        tokens = np.asarray(tokens)
        if tokens.dtype != self.dtype:
            tokens = tokens.astype(self.dtype)
        ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
        if len(ends) and ends[-1] != len(tokens):
            raise ValueError("lengths do not sum to the number of tokens")
        start, total = 0, len(tokens)
        while start < total:
            if self._f is None:
                self._open()
            stop = min(total, start + self.shard_tokens - self._n)
            self._f.write(tokens[start:stop].astype(self.dtype.newbyteorder("<"), copy=False).tobytes())
            inside = ends[np.searchsorted(ends, start, "right"):np.searchsorted(ends, stop, "right")]
            self._ends.extend((inside - start + self._n).tolist())
            cut = not len(inside) or inside[-1] != stop  # a document continues past this block's end
            if cut:
                self._ends.append(stop - start + self._n)
            self._n += stop - start
            start = stop
            if self._n == self.shard_tokens:
                self._finish()
                self._continued = cut
            elif cut:  # not at a shard boundary: the piece is still open, extend it with the next block
                raise ValueError("a block must end at a document boundary")

    def _finish(self) -> None:
        f, path, n = self._f, self._path, self._n
        if self.fmt == "llmc":
            f.seek(0)
            f.write(llmc_header(n, self.dtype))
        f.close()
        pieces = np.diff(np.asarray([0] + self._ends, dtype=np.int64))
        if self.fmt == "ds":
            write_bytes_atomic(path.with_name(path.name + ".index"), np.asarray(self._ends, dtype="<u8").tobytes())
            write_bytes_atomic(path.with_name(path.name + ".metadata"),
                               ds_metadata_text(self.tokenizer_name, self.dtype.itemsize, n).encode())
        elif self.fmt == "megatron":
            write_bytes_atomic(path.with_suffix(".idx"), megatron_idx_bytes(pieces, self.dtype))
        os.replace(_tmp(path), path)
        self.shards.append({
            "file": path.name,
            "num_tokens": int(n),
            "num_pieces": int(len(pieces)),
            "first_piece_continued": bool(self._continued),
        })
        self._f = None
        self._continued = False

    def close(self) -> list[dict]:
        if self._f is not None and self._n > 0:
            self._finish()
        elif self._f is not None:
            self._f.close()
            os.unlink(_tmp(self._path))
            self._f = None
        return self.shards
