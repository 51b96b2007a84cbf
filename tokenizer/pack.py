"""Pack curated Parquet into token shards for training, and verify a pack.

``pack`` reads documents batch by batch, encodes them in threads (tiktoken) or worker processes (HF),
adds EOS, routes each to ``val`` or ``train`` by its id hash, writes fixed-size shards (optionally in a
seeded global shuffle), then ``{split}/documents.parquet`` and ``manifest.json``. Everything is built in
``OUT/.partial-<pid>/`` and moved into place at the end, manifest last; reruns give byte-identical files.
``verify`` checks shards against the manifest and re-encodes a seeded sample with HF ``tokenizers``.
The five steps and the checks in detail: docs/tokenizer.md, "Packing".
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import multiprocessing as mp
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill import atomic
from corpusmill.tokenizer.fast_encode import Encoder, _sanitize
from corpusmill.tokenizer.formats import (
    FORMATS, LLMC_HEADER_BYTES, LLMC_MAGIC, MEGATRON_DTYPE_CODES, MEGATRON_MAGIC, ShardWriter, eos_position, token_dtype,
)
from corpusmill.tokenizer.reader import expand_inputs, id_unit, iter_doc_batches, parquet_rows, prefetch
from corpusmill.tokenizer.shards import MANIFEST, open_shards

log = logging.getLogger(__name__)

DEFAULT_SHARD_TOKENS = 100_000_000
CHUNK_BYTES = 1 << 18  # text per encoding work unit
SPLITS = ("train", "val")

# ---------------------------------------------------------------------------------------------------
# encoding workers

_ENC: Encoder | None = None
_EOS: tuple[int, bool] = (0, True)


def _init_worker(tokenizer: str, backend: str, eos_id: int, append: bool) -> None:
    global _ENC, _EOS
    _ENC = Encoder(tokenizer, backend=backend)
    _EOS = (eos_id, append)


def _encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Encode documents; return (concatenated uint32 tokens with EOS/EOT, per-document lengths)."""
    eos, append = _EOS
    tt = _ENC.tt
    if tt is not None:
        # tiktoken straight into numpy buffers (no Python int per token; the GIL is released meanwhile)
        arrs = [tt.encode_to_numpy(_sanitize(t), disallowed_special=()) for t in texts]
        body = np.fromiter(map(len, arrs), dtype=np.int64, count=len(arrs))
        if not arrs:
            return np.zeros(0, np.uint32), body
        mark = np.array([eos], dtype=np.uint32)
        parts: list = [mark] * (2 * len(arrs))
        parts[(0 if append else 1)::2] = arrs  # one EOS after (before) each document
        return np.concatenate(parts), body + 1
    ids = _ENC.encode_batch(texts)
    body = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.uint32, count=int(body.sum()))
    ends = np.cumsum(body)
    flat = np.insert(flat, ends if append else ends - body, eos)  # one EOS after (before) each document
    return flat, body + 1


class _Spool:
    """A split's documents in arrival order, on disk, to be written out in a shuffled order."""

    def __init__(self, tmpdir: Path, split: str, dtype: np.dtype):
        self.path = tmpdir / f"{split}.spool"
        self.f = open(self.path, "wb")
        self.dtype = dtype
        self.lengths: list[np.ndarray] = []

    def add(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        self.f.write(tokens.astype(self.dtype).tobytes())
        self.lengths.append(lengths)

    def replay(self, writer: ShardWriter, order: np.ndarray, block_docs: int = 4096) -> None:
        self.f.close()
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        if not len(lengths):
            return
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        mm = np.memmap(self.path, dtype=self.dtype, mode="r")
        for a in range(0, len(order), block_docs):
            docs = order[a:a + block_docs]
            writer.add(np.concatenate([mm[starts[d]:starts[d] + lengths[d]] for d in docs]), lengths[docs])
        del mm


def _set_worker(encoder: Encoder, eos_id: int, append: bool) -> None:
    global _ENC, _EOS
    _ENC, _EOS = encoder, (eos_id, append)


def _ordered_map(fn, batches, workers: int, init_args: tuple, max_in_flight: int, encoder: Encoder):
    """``map(fn, batches)`` over a process pool, in order, with at most ``max_in_flight`` batches queued.

    ``encoder`` is this process's already built encoder (used in-process, and inherited by forked workers).
    """
    if workers <= 1:
        _set_worker(encoder, *init_args[2:])
        for b in batches:
            yield fn(b)
        return
    slots, stop = threading.Semaphore(max_in_flight), threading.Event()

    def feed():  # runs in the pool's task-feeding thread; stops early if the consumer failed
        for b in batches:
            while not slots.acquire(timeout=0.1):
                if stop.is_set():
                    return
            yield b

    if init_args[1] == "tiktoken":
        # tiktoken encodes without the GIL: threads in this process, no worker start-up, no copying of
        # texts and tokens between processes (measured: pack went from ~0.4x to ~0.8x its encoder alone)
        from concurrent.futures import ThreadPoolExecutor

        _set_worker(encoder, *init_args[2:])
        pending: deque = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="encode") as ex:
            try:
                for b in batches:
                    pending.append(ex.submit(fn, b))
                    if len(pending) >= max_in_flight:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for f in pending:
                    f.cancel()
        return
    # HF workers are spawned so they never inherit a tokenizers thread pool that calibration may have
    # started in this process
    ctx, initializer, initargs = mp.get_context("spawn"), _init_worker, init_args
    try:
        with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
            for r in pool.imap(fn, feed(), chunksize=1):
                slots.release()
                yield r
    finally:
        stop.set()


# ---------------------------------------------------------------------------------------------------
# pack


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(
    tokenizer: str | Path,
    inputs,
    out: str | Path,
    fmt: str = "ds",
    seq_len: int | None = None,
    shard_tokens: int | None = None,
    val_fraction: float = 0.01,
    shuffle: bool = False,
    seed: int = 0,
    workers: int | None = None,
    encoder: str = "auto",
    batch_rows: int = 256,
    progress: bool = False,
) -> dict:
    """Pack ``inputs`` (Parquet globs) into ``out``; return the manifest (plus a ``stats`` entry)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    t0 = time.perf_counter()
    tokenizer = Path(tokenizer)
    tok_json = tokenizer / "tokenizer.json" if tokenizer.is_dir() else tokenizer
    paths = expand_inputs(inputs)
    out = Path(out)
    workers = (os.cpu_count() or 1) if workers is None else workers

    # one reading thread for the whole pack: its first batch is the calibration sample for backend="auto",
    # and it reads ahead while the encoder is built
    stream = prefetch(iter_doc_batches(paths, batch_rows=batch_rows))
    try:
        first = next(stream, None)
        probe = [t[:4000] for t in first.texts[:32]] if first else []
        enc = Encoder(tok_json, backend=encoder, check_texts=probe)
        dtype = token_dtype(fmt, enc.vocab_size)
        append = eos_position(fmt) == "append"
        shard_tokens = shard_tokens or DEFAULT_SHARD_TOKENS
        if seq_len:  # whole blocks per shard: datatrove's per-file samples == the stream's blocks
            shard_tokens = max(seq_len + 1, shard_tokens // (seq_len + 1) * (seq_len + 1))
        splits = SPLITS if val_fraction > 0 else SPLITS[:1]

        out.mkdir(parents=True, exist_ok=True)
        partial = out / f".partial-{os.getpid()}"
        _remove_dead_partials(out)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            manifest, t_encode = _pack_into(partial, out, itertools.chain([first] if first else [], stream), paths,
                                            tok_json, enc, fmt, dtype, append, seq_len, shard_tokens, val_fraction,
                                            splits, shuffle, seed, workers, progress)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        stream.close()  # stops the reading thread if the pack failed

    seconds = time.perf_counter() - t0
    text_bytes = sum(v["text_bytes"] for v in manifest["splits"].values())
    manifest["stats"] = {
        "seconds": round(seconds, 3),
        "encode_seconds": round(t_encode - t0, 3),
        "tokens_per_second": round(manifest["total_tokens"] / seconds),
        "mb_per_second": round(text_bytes / 1e6 / seconds, 3),
        "workers": workers,
    }
    log.info("packed %d docs, %d tokens (%s, %s) in %.1fs: %.0f tokens/s", manifest["total_documents"],
             manifest["total_tokens"], fmt, enc.backend, seconds, manifest["total_tokens"] / seconds)
    return manifest


def _string_array(values: list[str]) -> pa.Array:
    """An Arrow string array (large_string when over 2 GB) straight from UTF-8 buffers."""
    encoded = [v.encode("utf-8", "surrogatepass") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    large = offsets[-1] >= 2**31
    typ = pa.large_string() if large else pa.string()
    buf = pa.py_buffer(offsets if large else offsets.astype(np.int32))
    return pa.Array.from_buffers(typ, len(encoded), [None, buf, pa.py_buffer(b"".join(encoded))])


def _int64_array(values: list[int]) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.array(values, dtype=np.int64))])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_partials(out: Path) -> None:
    """Remove ``.partial-<pid>`` build folders left by killed packs (their process is gone)."""
    if not out.is_dir():
        return
    for d in out.glob(".partial-*"):
        pid = d.name.removeprefix(".partial-")
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _pack_into(partial, out, stream, paths, tok_json, enc, fmt, dtype, append, seq_len, shard_tokens, val_fraction,
               splits, shuffle, seed, workers, progress) -> tuple[dict, float]:
    """Build the pack in ``partial``, move it into ``out``; return (manifest, time encoding finished)."""
    tok_name = tok_json.parent.name or "corpusmill"
    writers = {s: ShardWriter(partial / s, s, fmt, dtype, shard_tokens, tok_name, shuffled=shuffle) for s in splits}
    docs = {s: {"id": [], "num_tokens": [], "text_bytes": [], "source_file": []} for s in splits}
    rows_per_file = {str(p): 0 for p in paths}
    empty = 0

    spool_dir = Path(tempfile.mkdtemp(prefix="spool-", dir=partial)) if shuffle else None
    spools = {s: _Spool(spool_dir, s, dtype) for s in splits} if shuffle else None
    meta: deque = deque()

    def batches():
        # work units of about CHUNK_BYTES of text, so the encoding threads stay evenly busy
        for b in stream:
            keep = [i for i, t in enumerate(b.texts) if t]
            rows, unit, size = len(b.ids), [], 0  # the batch's row count goes with its first unit
            for i in keep:
                unit.append(i)
                size += b.nbytes[i]
                if size >= CHUNK_BYTES:
                    meta.append((b, unit, rows, rows and rows - len(keep)))
                    yield [b.texts[j] for j in unit]
                    unit, size, rows = [], 0, 0
            if unit or rows:
                meta.append((b, unit, rows, rows and rows - len(keep)))
                yield [b.texts[j] for j in unit]

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=parquet_rows(paths), unit="doc", desc="packing", file=sys.stderr)
    init = (str(tok_json), enc.backend, enc.eos_id, append)
    for flat, lengths in _ordered_map(_encode, batches(), workers, init, 4 * max(1, workers), enc):
        b, keep, rows, n_empty = meta.popleft()
        rows_per_file[str(b.path)] += rows
        empty += n_empty
        is_val = np.array([val_fraction > 0 and id_unit(b.ids[i]) < val_fraction for i in keep], dtype=bool)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        for s in splits:
            sel = np.flatnonzero(is_val if s == "val" else ~is_val)
            if not len(sel):
                continue
            if len(sel) == len(keep):
                toks = flat
            else:
                toks = np.concatenate([flat[starts[j]:starts[j + 1]] for j in sel])
            (spools[s] if shuffle else writers[s]).add(toks, lengths[sel])
            d = docs[s]
            d["id"].extend(b.ids[keep[j]] for j in sel)
            d["num_tokens"].extend(lengths[sel].tolist())
            d["text_bytes"].extend(b.nbytes[keep[j]] for j in sel)
            d["source_file"].extend([str(b.path)] * len(sel))
        if bar is not None:
            bar.update(rows)
    if bar is not None:
        bar.close()
    t_encode = time.perf_counter()

    if shuffle:
        for k, s in enumerate(splits):
            n = sum(len(x) for x in spools[s].lengths)
            order = np.random.default_rng([seed, k]).permutation(n)
            spools[s].replay(writers[s], order)
            docs[s] = {c: [v[i] for i in order] for c, v in docs[s].items()}
        shutil.rmtree(spool_dir)

    manifest = {
        "format": fmt,
        "manifest_version": 1,
        "dtype": dtype.name,
        "token_bytes": dtype.itemsize,
        "vocab_size": enc.vocab_size,
        "eos_id": enc.eos_id,
        "eos_position": eos_position(fmt),
        "tokenizer": {"path": str(tok_json.resolve()), "sha256": _file_sha256(tok_json)},
        "encoder": enc.backend,
        "seq_len": seq_len,
        "shard_tokens": shard_tokens,
        "val_fraction": val_fraction,
        "split_rule": "val when blake2b-64(id) / 2^64 < val_fraction (corpusmill.tokenizer.reader.id_unit)",
        "shuffle": shuffle,
        "seed": seed if shuffle else None,
        "inputs": [{"path": str(Path(p).resolve()), "rows": rows_per_file[str(p)]} for p in paths],
        "empty_documents_skipped": empty,
        "splits": {},
    }
    for s in splits:
        shards = writers[s].close()
        d = docs[s]
        # built from buffers: pa.array of Python objects imports pandas on first use (~1 s) to check types
        table = pa.table({
            "id": _string_array(d["id"]),
            "num_tokens": _int64_array(d["num_tokens"]),
            "text_bytes": _int64_array(d["text_bytes"]),
            "source_file": _string_array(d["source_file"]).dictionary_encode(),
        })
        with atomic.atomic_path(partial / s / "documents.parquet") as tmp:
            pq.write_table(table, tmp)
        manifest["splits"][s] = {
            "dir": s,
            "num_tokens": int(sum(x["num_tokens"] for x in shards)),
            "num_documents": len(d["id"]),
            "text_bytes": int(sum(d["text_bytes"])),
            "num_blocks": (sum(x["num_tokens"] for x in shards) // (seq_len + 1)) if seq_len else None,
            "documents_file": f"{s}/documents.parquet",
            "shards": shards,
        }
        if not d["id"]:
            log.warning("split %r has no documents (val_fraction %s of %d documents); raise --val-fraction",
                        s, val_fraction, sum(len(x["id"]) for x in docs.values()))
    manifest["total_tokens"] = sum(v["num_tokens"] for v in manifest["splits"].values())
    manifest["total_documents"] = sum(v["num_documents"] for v in manifest["splits"].values())

    # move the finished splits into place, then commit with the manifest
    if (out / MANIFEST).exists():
        os.unlink(out / MANIFEST)
    for s in SPLITS:
        if (out / s).exists():
            shutil.rmtree(out / s)
    for s in splits:
        os.replace(partial / s, out / s)
    atomic.write_json(out / MANIFEST, manifest)
    return manifest, t_encode


# ---------------------------------------------------------------------------------------------------
# verify


def _check_shard_files(fmt: str, path: Path, info: dict, dtype: np.dtype, eos: int, errors: list[str]) -> None:
    """Sizes, headers and indexes of one shard against the manifest and its own tokens."""
    n = info["num_tokens"]
    size = path.stat().st_size
    if fmt == "llmc":
        head = np.fromfile(path, dtype="<i4", count=256)
        magic, version = LLMC_MAGIC[dtype]
        if head[0] != magic or head[1] != version or head[2] != n:
            errors.append(f"{path.name}: llm.c header {head[:3].tolist()} != [{magic}, {version}, {n}]")
        if size != LLMC_HEADER_BYTES + dtype.itemsize * n:
            errors.append(f"{path.name}: size {size} != 1024 + {dtype.itemsize} * {n}")
        return
    if size != dtype.itemsize * n:
        errors.append(f"{path.name}: size {size} != {dtype.itemsize} * {n} tokens")
        return
    toks = np.memmap(path, dtype=dtype.newbyteorder("<"), mode="r")
    if fmt == "ds":
        ends = np.fromfile(path.with_name(path.name + ".index"), dtype="<u8")
        meta = path.with_name(path.name + ".metadata").read_text().split("\n")
        if meta[1] != str(n) or not meta[0].endswith(f"|{dtype.itemsize}"):
            errors.append(f"{path.name}.metadata: {meta[:2]} disagrees with {n} tokens of {dtype.itemsize} bytes")
    else:
        raw = path.with_suffix(".idx").read_bytes()
        seq, docs = struct.unpack("<QQ", raw[18:34])
        if raw[:9] != MEGATRON_MAGIC or struct.unpack("<Q", raw[9:17])[0] != 1 or raw[17] != MEGATRON_DTYPE_CODES[dtype]:
            errors.append(f"{path.name}: bad .idx header")
            return
        lengths = np.frombuffer(raw, "<i4", seq, 34)
        pointers = np.frombuffer(raw, "<i8", seq, 34 + 4 * seq)
        doc_idx = np.frombuffer(raw, "<i8", docs, 34 + 12 * seq)
        if docs != seq + 1 or not np.array_equal(doc_idx, np.arange(seq + 1)):
            errors.append(f"{path.name}: document indices are not 0..{seq}")
        if not np.array_equal(pointers, np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)]) * dtype.itemsize):
            errors.append(f"{path.name}: sequence pointers disagree with lengths")
        ends = np.cumsum(lengths, dtype=np.int64)
    if len(ends) != info["num_pieces"] or (len(ends) and int(ends[-1]) != n):
        errors.append(f"{path.name}: index has {len(ends)} pieces ending at {ends[-1] if len(ends) else 0}, manifest {info['num_pieces']} / {n}")
        return
    # every piece but a cut-off last one ends with EOS, and EOS occurs nowhere else
    eos_at = np.flatnonzero(np.asarray(toks) == eos) + 1
    expect = ends if (len(ends) and toks[int(ends[-1]) - 1] == eos) else ends[:-1]
    if not np.array_equal(eos_at, expect):
        errors.append(f"{path.name}: EOS positions disagree with the index")


def verify(out: str | Path, samples: int = 200, seed: int = 0, check_text: bool = True) -> dict:
    """Check a pack (see module doc). Returns ``{"ok": bool, "errors": [...], ...}``."""
    out = Path(out)
    manifest_path = out / MANIFEST if out.is_dir() else out
    root = manifest_path.parent
    m = json.loads(manifest_path.read_text())
    fmt, dtype, eos = m["format"], np.dtype(m["dtype"]), m["eos_id"]
    errors: list[str] = []
    checked = {"shards": 0, "documents": 0, "sampled": 0, "tokens": 0}
    sample_ids: dict[str, tuple[str, np.ndarray]] = {}  # id -> (source file, stored tokens without EOS)
    rng = np.random.default_rng(seed)

    for split, info in m["splits"].items():
        for s in info["shards"]:
            _check_shard_files(fmt, root / info["dir"] / s["file"], s, dtype, eos, errors)
            checked["shards"] += 1
        if sum(s["num_tokens"] for s in info["shards"]) != info["num_tokens"]:
            errors.append(f"{split}: shard token counts do not add up to {info['num_tokens']}")
        ds = open_shards(manifest_path, split)
        if ds.num_tokens != info["num_tokens"]:
            errors.append(f"{split}: reader sees {ds.num_tokens} tokens, manifest {info['num_tokens']}")
        table = pq.read_table(root / info["documents_file"])
        want_lengths = table.column("num_tokens").to_numpy()
        ids = table.column("id").to_pylist()
        files = table.column("source_file").to_pylist()
        pick = set(rng.choice(len(ids), size=min(samples, len(ids)), replace=False).tolist()) if ids else set()
        n_docs = 0
        for k, doc in enumerate(ds.iter_documents()):
            if k >= len(want_lengths) or len(doc) != want_lengths[k]:
                errors.append(f"{split}: document {k} has {len(doc)} tokens, documents.parquet says "
                              f"{want_lengths[k] if k < len(want_lengths) else 'none'}")
                break
            if k in pick:
                body = doc[:-1] if m["eos_position"] == "append" else doc[1:]
                sample_ids[ids[k]] = (files[k], body.copy())
            n_docs += 1
        checked["documents"] += n_docs
        checked["tokens"] += ds.num_tokens
        if n_docs != info["num_documents"] and not any(e.startswith(f"{split}: document") for e in errors):
            errors.append(f"{split}: {n_docs} documents in shards, manifest says {info['num_documents']}")
    if m["total_tokens"] != sum(i["num_tokens"] for i in m["splits"].values()):
        errors.append("total_tokens disagrees with the splits")

    if check_text and sample_ids:
        texts = _texts_by_id(sorted({f for f, _ in sample_ids.values()}), set(sample_ids))
        enc = Encoder(m["tokenizer"]["path"], backend="hf")
        missing = set(sample_ids) - set(texts)
        if missing:
            errors.append(f"{len(missing)} sampled document ids not found in the inputs, e.g. {sorted(missing)[0]}")
        order = sorted(texts)
        ref = enc.encode_batch_hf([texts[i] for i in order])
        for doc_id, want in zip(order, ref):
            got = sample_ids[doc_id][1]
            if got.tolist() != want:
                errors.append(f"document {doc_id}: stored tokens differ from HF tokenizers' ids")
            elif enc.decode(got) != texts[doc_id]:
                errors.append(f"document {doc_id}: decoded text differs from the input text")
            checked["sampled"] += 1
    return {"ok": not errors, "errors": errors[:50], "num_errors": len(errors), "checked": checked, "format": fmt}


def _texts_by_id(paths: list[str], wanted: set[str]) -> dict[str, str]:
    found = {}
    for b in iter_doc_batches([Path(p) for p in paths], batch_rows=2048):
        for i, t in zip(b.ids, b.texts):
            if i in wanted:
                found[i] = t
        if len(found) == len(wanted):
            break
    return found
