"""Signature and bucket phases on a work directory: per-task sorted run files, merged per band into
candidate edges (verified first when ``DedupConfig.verify`` asks). Engine-agnostic; the work
directory is a local path or an fsspec URL (:mod:`corpusmill.curation.dedup.storage`).

Work directory layout::

    WORK/config.json                                         DedupConfig (every phase checks it)
    WORK/sig/minhash/b{band:03d}/r{rank:05d}-{run:04d}.bin   sorted RECORDs (band key, doc key)
    WORK/sig/exact/r{rank:05d}-{run:04d}.bin                 sorted RECORDs (exact key, doc key)
    WORK/sig/full/r{rank:05d}.bin, sig/shingles/r{rank:05d}.{bin,idx}   for verification only
    WORK/sig/docs/r{rank:05d}.parquet                        doc key -> id, source_file, position, length
    WORK/sig/done/r{rank:05d}.json                           task completion marker (+ counts)
    WORK/edges/{job}.bin, edges/done/{job}.json, edges/jobs.json   candidate edges (EDGE pairs)

A doc key is ``rank << 32 | i`` (the i-th document signed by task ``rank``). Memory: a signature task
holds ``max_buffer_docs`` documents before it spills a sorted run; a bucket job holds one window of
about ``window_records`` records (equal slices of the uniform 64-bit key range, found in every run by
binary search with positioned reads), which always contains whole buckets. See docs/dedup.md.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.curation.dedup import storage
from corpusmill.curation.dedup.storage import AtomicWriter, join
from corpusmill.curation.dedup.exact import EXACT_MODES, exact_key, exact_key_from_codepoints
from corpusmill.curation.dedup.minhash import MinHashConfig, MinHasher
from corpusmill.curation.dedup.normalize import normalize_codepoints, shingles_from_codepoints
from corpusmill.curation.dedup.records import EDGE, RECORD
from corpusmill.curation.dedup.verify import VERIFY_MODES, VerifyStore, fingerprint, verified_edges

__all__ = [
    "DedupConfig",
    "SURVIVOR_RULES",
    "RECORD",
    "EDGE",
    "SignatureWriter",
    "bucket_jobs",
    "run_bucket_job",
    "merge_sorted_runs",
    "chain_edges",
    "sort_records",
    "doc_key",
    "atomic_write_bytes",
    "atomic_write_json",
    "read_json",
]


_U64_RANGE = 1 << 64
#: records per bucket-job window, the job's memory bound (~300 B per record at the peak, measured);
#: 100 k instead of 2 M: the same CPU, a flat peak RSS from 100 k documents on (benchmarks/RESULTS.md)
WINDOW_RECORDS = 100_000
#: documents a signature task buffers before it spills a sorted run (~1.4 KB each with verification,
#: measured); 50 k instead of 100 k: the same CPU, 70 MB less peak RSS per worker
MAX_BUFFER_DOCS = 50_000
DOCS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.uint64(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_file", pa.string()),
        pa.field("position", pa.int64()),
        pa.field("length", pa.int64()),  # normalised code points (the "longest" survivor rule)
    ]
)
#: how a cluster's survivor is chosen (corpusmill.curation.dedup.clusters): the first in corpus order (``first``,
#: the default, as datatrove), or the most normalised text, then the first (``longest``)
SURVIVOR_RULES = ("first", "longest")


@dataclass(frozen=True)
class DedupConfig:
    """What the dedup phases compute. ``minhash=None`` disables near-duplicate detection,
    ``exact=False`` exact-duplicate detection."""

    minhash: MinHashConfig | None = field(default_factory=MinHashConfig)
    exact: bool = True
    exact_mode: str = "normalized"
    survivor: str = "first"
    #: candidate verification (corpusmill.curation.dedup.verify): "off" (FineWeb parity), "signature", "exact"
    verify: str = "off"
    verify_threshold: float | None = None  # None: the band scheme's own threshold (1/b)**(1/r)

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {self.verify!r}")
        if self.verify != "off" and self.minhash is None:
            raise ValueError("verify needs MinHash dedup (it checks MinHash candidates)")
        if self.verify_threshold is not None and not 0.0 < self.verify_threshold <= 1.0:
            raise ValueError(f"verify_threshold must be in (0, 1], got {self.verify_threshold}")
        if self.exact_mode not in EXACT_MODES:
            raise ValueError(f"exact_mode must be one of {EXACT_MODES}, got {self.exact_mode!r}")
        if self.survivor not in SURVIVOR_RULES:
            raise ValueError(f"survivor must be one of {', '.join(SURVIVOR_RULES)}, got {self.survivor!r}")
        if self.minhash is None and not self.exact:
            raise ValueError("DedupConfig with neither minhash nor exact dedup does nothing")

    def to_dict(self) -> dict:
        return {
            "minhash": self.minhash.to_dict() if self.minhash else None,
            "exact": self.exact,
            "exact_mode": self.exact_mode,
            "survivor": self.survivor,
            "verify": self.verify,
            "verify_threshold": self.verify_threshold,
        }

    @property
    def threshold(self) -> float:
        """The verification threshold in use."""
        if self.verify_threshold is not None:
            return self.verify_threshold
        return self.minhash.threshold if self.minhash else 1.0

    @classmethod
    def from_dict(cls, d: dict) -> DedupConfig:
        mh = d.get("minhash")
        return cls(
            minhash=MinHashConfig.from_dict(mh) if mh else None,
            exact=bool(d.get("exact", True)),
            exact_mode=d.get("exact_mode", "normalized"),
            survivor=d.get("survivor", "first"),  # work directories written before the option: "first"
            verify=d.get("verify", "off"),
            verify_threshold=d.get("verify_threshold"),
        )


# --- small file helpers ------------------------------------------------------------------------------


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Local path or fsspec URL; the file appears complete or not at all."""
    storage.write_bytes(str(path), data)


def atomic_write_json(path: str | Path, obj) -> None:
    storage.write_json(str(path), obj)


def read_json(path: str | Path):
    return storage.read_json(str(path))


def _write_records(path: str, records: np.ndarray) -> None:
    with AtomicWriter(path) as w:
        w.write(np.ascontiguousarray(records).view(np.uint8))


def save_config(workdir: str | Path, config: DedupConfig) -> None:
    """Write WORK/config.json, or check that the one there is the same."""
    path = join(workdir, "config.json")
    if storage.exists(path):
        existing = DedupConfig.from_dict(read_json(path))
        if existing != config:
            raise ValueError(
                f"{path} was written with {existing}, not {config}: use a new work directory "
                "(signatures of different configs cannot be merged)"
            )
        return
    atomic_write_json(path, config.to_dict())


def load_config(workdir: str | Path) -> DedupConfig:
    path = join(workdir, "config.json")
    if not storage.exists(path):
        raise FileNotFoundError(f"{path} missing: run the dedup signature phase first")
    return DedupConfig.from_dict(read_json(path))


# --- records and edges -------------------------------------------------------------------------------


def doc_key(rank: int, index: int) -> int:
    if not (0 <= rank < 1 << 32 and 0 <= index < 1 << 32):
        raise ValueError(f"doc key out of range: rank {rank}, index {index}")
    return rank << 32 | index


def sort_records(records: np.ndarray) -> np.ndarray:
    """Records sorted by (h, g, key)."""
    order = np.lexsort((records["key"], records["g"], records["h"]))
    return records[order]


def chain_edges(records: np.ndarray) -> np.ndarray:
    """Edges between consecutive records of sorted ``records`` that share a key (h, g): a bucket of
    k documents gives the k-1 edges of a path, which connects it as well as all k(k-1)/2 pairs."""
    if records.size < 2:
        return np.empty(0, dtype=EDGE)
    same = (records["h"][1:] == records["h"][:-1]) & (records["g"][1:] == records["g"][:-1])
    idx = np.flatnonzero(same)
    out = np.empty(idx.size, dtype=EDGE)
    a = records["key"][idx]
    b = records["key"][idx + 1]
    out["a"] = np.minimum(a, b)
    out["b"] = np.maximum(a, b)
    return out


class _Run:
    """A sorted run file read with positioned (local) or ranged (object store) reads, never loaded
    or memory-mapped whole: resident memory stays the window. Acts as a sequence of its ``h`` values
    for bisect."""

    def __init__(self, path: str):
        self.path = path
        self.reader = storage.RandomReader(path)
        size = self.reader.size
        if size % RECORD.itemsize:
            self.reader.close()
            raise ValueError(f"{path}: size {size} is not a multiple of {RECORD.itemsize} (truncated run?)")
        self.n = size // RECORD.itemsize

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return int.from_bytes(self.reader.read_range(i * RECORD.itemsize, i * RECORD.itemsize + 8), "little")

    def read(self, start: int, end: int) -> np.ndarray:
        return np.frombuffer(self.reader.read_range(start * RECORD.itemsize, end * RECORD.itemsize), dtype=RECORD)

    def close(self) -> None:
        self.reader.close()


def merge_sorted_runs(
    paths: Iterable[str | Path],
    lo: int = 0,
    hi: int = _U64_RANGE,
    window_records: int = WINDOW_RECORDS,
) -> Iterator[np.ndarray]:
    """Yield the records of sorted run files with ``lo <= h < hi`` as sorted in-memory windows of about
    ``window_records`` records, in increasing ``h`` order (a k-way merge, streaming)."""
    opened: list[_Run] = []
    try:
        for p in paths:
            opened.append(_Run(str(p)))
        runs = [r for r in opened if len(r)]
        if not runs or hi <= lo:
            return
        starts = [bisect.bisect_left(r, lo) for r in runs]
        ends = [bisect.bisect_left(r, hi) if hi < _U64_RANGE else len(r) for r in runs]
        total = sum(e - s for s, e in zip(starts, ends))
        if total == 0:
            return
        n_windows = max(1, -(-total // max(1, window_records)))
        bounds = [lo + (hi - lo) * k // n_windows for k in range(n_windows)] + [hi]
        pos = list(starts)
        for k in range(n_windows):
            upper = bounds[k + 1]
            pieces = []
            for i, r in enumerate(runs):
                end = ends[i] if k == n_windows - 1 else bisect.bisect_left(r, upper, pos[i], ends[i])
                if end > pos[i]:
                    piece = r.read(pos[i], end)
                    h = piece["h"]
                    if h.size > 1 and not bool(np.all(h[1:] >= h[:-1])):
                        raise ValueError(f"run file {r.path} is not sorted")
                    pieces.append(piece)
                pos[i] = end
            if pieces:
                yield sort_records(np.concatenate(pieces)) if len(pieces) > 1 else pieces[0]
    finally:
        for r in opened:
            r.close()


# --- signature phase ---------------------------------------------------------------------------------


class SignatureWriter:
    """Signature phase of one task: feed it every document of the task (:meth:`add`), then
    :meth:`close`. Writes sorted run files, the task's doc table and its completion marker.

    Rerunning a task (same rank) first deletes that task's files, so reruns are safe."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        config: DedupConfig | None = None,
        rank: int = 0,
        world_size: int = 1,
        max_buffer_docs: int = MAX_BUFFER_DOCS,
    ):
        self.workdir = join(workdir)
        self.config = config or DedupConfig()
        self.rank = rank
        self.world_size = world_size
        self.max_buffer_docs = max(1, int(max_buffer_docs))
        self.hasher = MinHasher(self.config.minhash) if self.config.minhash else None
        self.n_bands = self.config.minhash.num_bands if self.config.minhash else 0
        save_config(self.workdir, self.config)
        self._clean()
        nb = self.max_buffer_docs
        self._keys = np.empty(nb, dtype=np.uint64)
        self._bands = np.empty((nb, self.n_bands, 2), dtype=np.uint64)
        self._has_sig = np.zeros(nb, dtype=bool)
        self._exact = np.empty((nb, 2), dtype=np.uint64)
        self._has_exact = np.zeros(nb, dtype=bool)
        self._n = 0
        self._runs = 0
        self._rows: dict[str, list] = {name: [] for name in DOCS_SCHEMA.names}
        self._docs_file = AtomicWriter(join(self.workdir, "sig", "docs", f"r{rank:05d}.parquet"))
        self._docs_writer = pq.ParquetWriter(self._docs_file.f, DOCS_SCHEMA)
        self.verify = self.config.verify if self.hasher is not None else "off"
        self._vfiles: dict = {}
        if self.verify == "signature":
            self._fp = np.zeros((nb, self.config.minhash.num_perm), dtype=np.uint32)
            self._vfiles["full"] = AtomicWriter(join(self.workdir, "sig", "full", f"r{rank:05d}.bin"))
        elif self.verify == "exact":
            self._shingles: list = []
            self._shingle_end = 0
            self._vfiles["shingles"] = AtomicWriter(join(self.workdir, "sig", "shingles", f"r{rank:05d}.bin"))
            self._vfiles["idx"] = AtomicWriter(join(self.workdir, "sig", "shingles", f"r{rank:05d}.idx"))
            self._vfiles["idx"].write(np.zeros(1, dtype=np.uint64).tobytes())
        self.seen = 0
        self.signed = 0
        self.minhashed = 0
        self.exact_keyed = 0
        self._closed = False

    def _rank_files(self) -> list[str]:
        pat = re.compile(rf"r{self.rank:05d}(-\d+)?\.(bin|idx|parquet|json)$")
        return [p for p in storage.listdir(join(self.workdir, "sig"), recursive=True) if pat.match(p.rsplit("/", 1)[-1])]

    def _clean(self) -> None:
        for p in self._rank_files():
            storage.remove(p)

    def add(self, doc_id: str, text: str, source_file: str | None = None, position: int | None = None) -> bool:
        """Sign one document. Returns False when it has nothing to sign (no words: never a duplicate)."""
        self.seen += 1
        z = normalize_codepoints(text)
        sig = sig_keys = None
        if self.hasher is not None and z.size:
            sig = self.hasher.signature_from_codepoints(z)
            if sig is not None:
                sig_keys = self.hasher.band_keys(sig)
        ekey = None
        if self.config.exact:
            ekey = exact_key_from_codepoints(z) if self.config.exact_mode == "normalized" else exact_key(text, "raw")
        if sig_keys is None and ekey is None:
            return False
        i = self._n
        key = doc_key(self.rank, self.signed)
        self._keys[i] = key
        if sig_keys is not None:
            self._bands[i] = sig_keys
            self._has_sig[i] = True
            self.minhashed += 1
        else:
            self._has_sig[i] = False
        if self.verify == "signature":
            self._fp[i] = fingerprint(sig) if sig_keys is not None else 0
        elif self.verify == "exact":
            self._shingles.append(shingles_from_codepoints(z, self.config.minhash.n_grams) if sig_keys is not None
                                  else np.empty(0, dtype=np.uint64))
        if ekey is not None:
            self._exact[i] = ekey
            self._has_exact[i] = True
            self.exact_keyed += 1
        else:
            self._has_exact[i] = False
        rows = self._rows
        rows["key"].append(key)
        rows["id"].append(str(doc_id))
        rows["source_file"].append(source_file)
        rows["position"].append(None if position is None else int(position))
        rows["length"].append(int(z.size))
        self.signed += 1
        self._n += 1
        if self._n >= self.max_buffer_docs:
            self._flush()
        return True

    def _flush(self) -> None:
        n = self._n
        if n == 0:
            return
        run = self._runs
        keys = self._keys[:n]
        if self.n_bands:
            m = self._has_sig[:n]
            k = keys[m]
            if k.size:
                for j in range(self.n_bands):
                    rec = np.empty(k.size, dtype=RECORD)
                    rec["h"] = self._bands[:n, j, 0][m]
                    rec["g"] = self._bands[:n, j, 1][m]
                    rec["key"] = k
                    _write_records(join(self.workdir, "sig", "minhash", f"b{j:03d}", f"r{self.rank:05d}-{run:04d}.bin"),
                                   sort_records(rec))
        if self.config.exact:
            m = self._has_exact[:n]
            if m.any():
                rec = np.empty(int(m.sum()), dtype=RECORD)
                rec["h"] = self._exact[:n, 0][m]
                rec["g"] = self._exact[:n, 1][m]
                rec["key"] = keys[m]
                _write_records(join(self.workdir, "sig", "exact", f"r{self.rank:05d}-{run:04d}.bin"), sort_records(rec))
        self._docs_writer.write_table(pa.table(self._rows, schema=DOCS_SCHEMA))
        if self.verify == "signature":
            self._vfiles["full"].write(self._fp[:n].tobytes())
        elif self.verify == "exact":
            ends = self._shingle_end + np.cumsum([x.size for x in self._shingles], dtype=np.uint64)
            self._vfiles["shingles"].write(b"".join(x.tobytes() for x in self._shingles))
            self._vfiles["idx"].write(ends.astype(np.uint64).tobytes())
            self._shingle_end = int(ends[-1]) if ends.size else self._shingle_end
            self._shingles = []
        self._rows = {name: [] for name in DOCS_SCHEMA.names}
        self._runs += 1
        self._n = 0

    def close(self) -> dict:
        if self._closed:
            return self.stats()
        self._flush()
        for w in self._vfiles.values():
            w.commit()
        self._docs_writer.close()
        self._docs_file.commit()
        self._closed = True
        stats = self.stats()
        atomic_write_json(join(self.workdir, "sig", "done", f"r{self.rank:05d}.json"), stats)
        return stats

    def stats(self) -> dict:
        return {
            "rank": self.rank,
            "world_size": self.world_size,
            "seen": self.seen,
            "signed": self.signed,
            "minhashed": self.minhashed,
            "exact_keyed": self.exact_keyed,
            "runs": self._runs,
        }

    def __enter__(self) -> SignatureWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # leave no half-written task behind; a rerun starts clean anyway
            try:
                for w in self._vfiles.values():
                    w.abort()
                self._docs_writer.close()
            finally:
                self._docs_file.abort()


def check_signatures_complete(workdir: str | Path) -> int:
    """Number of signature tasks; raises if any task of the run has no completion marker."""
    done_dir = join(workdir, "sig", "done")
    done = [p for p in storage.listdir(done_dir) if re.search(r"/r\d+\.json$", p)]
    if not done:
        raise FileNotFoundError(f"no finished signature task in {done_dir}")
    world = {read_json(p)["world_size"] for p in done}
    if len(world) != 1:
        raise RuntimeError(f"signature tasks ran with different world sizes {sorted(world)} in {workdir}")
    ws = world.pop()
    have = {int(p.rsplit("/", 1)[-1][1:-5]) for p in done}
    missing = sorted(set(range(ws)) - have)
    if missing:
        raise RuntimeError(f"signature phase incomplete: tasks {missing[:10]} of {ws} have not finished")
    return ws


# --- bucket phase ------------------------------------------------------------------------------------


def bucket_jobs(config: DedupConfig, parts: int = 1) -> list[str]:
    """Names of the bucket jobs: one per (band, hash-range part), plus one per part for exact keys."""
    jobs = []
    if config.minhash:
        jobs += [f"minhash-b{j:03d}-p{p:03d}" for j in range(config.minhash.num_bands) for p in range(parts)]
    if config.exact:
        jobs += [f"exact-p{p:03d}" for p in range(parts)]
    return jobs


_JOB = re.compile(r"^(minhash-b(?P<band>\d{3})|exact)-p(?P<part>\d{3})$")


def run_bucket_job(workdir: str | os.PathLike, job: str, parts: int = 1, window_records: int = WINDOW_RECORDS) -> int:
    """Merge the sorted runs of one job and write its candidate edges. Returns the number of edges."""
    workdir = join(workdir)
    m = _JOB.match(job)
    if not m:
        raise ValueError(f"bad bucket job name {job!r}")
    part = int(m["part"])
    if m["band"] is not None:
        run_dir = join(workdir, "sig", "minhash", f"b{int(m['band']):03d}")
    else:
        run_dir = join(workdir, "sig", "exact")
    paths = [p for p in storage.listdir(run_dir) if re.search(r"/r[^/]*\.bin$", p)]
    lo = _U64_RANGE * part // parts
    hi = _U64_RANGE * (part + 1) // parts
    n_edges = 0
    n_records = 0
    config = load_config(workdir)
    store = None
    if m["band"] is not None and config.verify != "off":
        store = VerifyStore(workdir, config.verify, config.minhash.num_perm)
    try:
        with AtomicWriter(join(workdir, "edges", f"{job}.bin")) as out:
            for window in merge_sorted_runs(paths, lo, hi, window_records):
                n_records += window.size
                if store is None:
                    edges = chain_edges(window)
                else:
                    edges = verified_edges(window, store, config.verify, config.threshold)
                if edges.size:
                    out.write(edges.view(np.uint8))
                    n_edges += edges.size
    finally:
        if store is not None:
            store.close()
    atomic_write_json(
        join(workdir, "edges", "done", f"{job}.json"), {"job": job, "records": n_records, "edges": n_edges, "runs": len(paths)}
    )
    return n_edges
