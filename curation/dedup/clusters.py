"""Clusters and survivors: the rule, the mapping format, and the one-task in-memory reference path.

``cluster_table`` (edges + identities -> mapping, scipy's ``connected_components``) and
``build_clusters`` (the cluster phase in one process) are the reference the many-task path
(:mod:`~corpusmill.curation.dedup.components`) is tested against. Two clusterings: *exact* (exact-key
edges) and *dedup* (all edges). Survivor (``DedupConfig.survivor``): ``first`` = smallest
``(source_file or "", position or -1, id)``; ``longest`` = most normalised code points, then ``first``.
Verdicts: ``keep`` (the dedup survivor), ``exact_duplicate`` (not its exact cluster's survivor),
``near_duplicate`` (the others). Output ``WORK/clusters/part-*.parquet`` (:data:`MAPPING_SCHEMA`),
partitioned by ``xxh3_64(source_file) % partitions``, then ``_meta.json``; :class:`ClusterLookup` holds
the rows of the shards it is asked about. Rationale and memory: docs/dedup.md.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpusmill.curation.dedup import storage
from corpusmill.curation.dedup.lsh import (
    DOCS_SCHEMA,
    EDGE,
    SURVIVOR_RULES,
    _tmp_name,
    atomic_write_json,
    check_signatures_complete,
    load_config,
    read_json,
)
from corpusmill.curation.dedup.normalize import sorted_unique

__all__ = [
    "UnionFind",
    "connected_components",
    "cluster_table",
    "build_clusters",
    "ClusterLookup",
    "ClusterInfo",
    "MAPPING_SCHEMA",
    "KEEP",
    "EXACT_DUPLICATE",
    "NEAR_DUPLICATE",
    "partition_of",
    "ROWS_PER_PARTITION",
]

KEEP = "keep"
ROWS_PER_PARTITION = 20_000  # mapping rows per partition: the clusters-mapping task holds one partition
MAPPING_ROW_GROUP = 2_048  # the marker reads a shard's rows by row group (source_file statistics)
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

MAPPING_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_file", pa.string()),
        pa.field("position", pa.int64()),
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("cluster_size", pa.int64(), nullable=False),
        pa.field("exact_cluster", pa.string(), nullable=False),
        pa.field("exact_cluster_size", pa.int64(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
    ]
)


class UnionFind:
    """Disjoint sets over arbitrary hashable items (union by size, path halving)."""

    def __init__(self) -> None:
        self.parent: dict = {}
        self.size: dict = {}

    def find(self, x):
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)

    def components(self) -> dict:
        """item -> root"""
        return {x: self.find(x) for x in list(self.parent)}


def _unique_edges(edges: np.ndarray) -> np.ndarray:
    """(E, 2) uint64 with a < b, sorted, without repeats (the same pair is found by several bands)."""
    if edges.size == 0:
        return np.empty((0, 2), dtype=np.uint64)
    e = np.ascontiguousarray(edges, dtype=np.uint64).reshape(-1, 2)
    e = np.sort(e, axis=1)
    order = np.lexsort((e[:, 1], e[:, 0]))
    e = e[order]
    keep = np.ones(len(e), dtype=bool)
    keep[1:] = (e[1:, 0] != e[:-1, 0]) | (e[1:, 1] != e[:-1, 1])
    return e[keep]


def connected_components(
    edges: np.ndarray, nodes: np.ndarray | None = None, *, use_scipy: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Components of an undirected graph given as (E, 2) uint64 edges.

    Returns ``(nodes, labels)``: the sorted node keys (``nodes`` if given, else every key that
    appears in an edge) and an int64 component label per node (labels are arbitrary but equal
    within a component)."""
    e = np.ascontiguousarray(edges, dtype=np.uint64).reshape(-1, 2)
    if nodes is None:
        nodes = sorted_unique(e.ravel().copy())
    else:
        nodes = np.asarray(nodes, dtype=np.uint64)
    n = nodes.size
    if n == 0:
        return nodes, np.empty(0, dtype=np.int64)
    ia = np.searchsorted(nodes, e[:, 0])
    ib = np.searchsorted(nodes, e[:, 1])
    if use_scipy:
        try:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components as _cc
        except ImportError:  # pragma: no cover - scipy comes with datasketch
            use_scipy = False
    if use_scipy:
        g = coo_matrix((np.ones(ia.size, dtype=np.int8), (ia, ib)), shape=(n, n))
        _, labels = _cc(g, directed=False)
        return nodes, labels.astype(np.int64)
    uf = UnionFind()
    for a, b in zip(ia.tolist(), ib.tolist()):
        uf.union(a, b)
    labels = np.array([uf.find(i) for i in range(n)], dtype=np.int64)
    return nodes, labels


def _survivor_groups(
    labels: np.ndarray, sf: list, pos: list, ids: list, length: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the row index of its group's survivor and the group's size. ``length`` given:
    the longest member survives (rule ``longest``), else / on ties the first in corpus order."""
    n = labels.size
    t = pa.table(
        {
            "label": pa.array(labels, type=pa.int64()),
            "neg_len": pa.array(np.zeros(n, np.int64) if length is None else -np.asarray(length, np.int64)),
            "sf": pa.array(["" if s is None else s for s in sf], type=pa.string()),
            "pos": pa.array([-1 if p is None else p for p in pos], type=pa.int64()),
            "id": pa.array(ids, type=pa.string()),
            "row": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    order = pc.sort_indices(
        t,
        sort_keys=[("label", "ascending"), ("neg_len", "ascending"), ("sf", "ascending"), ("pos", "ascending"),
                   ("id", "ascending")],
    )
    rows = t["row"].take(order).to_numpy()
    lab = labels[rows]
    first = np.ones(n, dtype=bool)
    first[1:] = lab[1:] != lab[:-1]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, n))
    surv_sorted = np.repeat(rows[starts], sizes)
    size_sorted = np.repeat(sizes, sizes)
    survivor = np.empty(n, dtype=np.int64)
    size = np.empty(n, dtype=np.int64)
    survivor[rows] = surv_sorted
    size[rows] = size_sorted
    return survivor, size


def cluster_table(
    identities: pa.Table,
    near_edges: np.ndarray,
    exact_edges: np.ndarray,
    *,
    survivor: str = "first",
    use_scipy: bool = True,
) -> pa.Table:
    """The mapping (:data:`MAPPING_SCHEMA`) for every document that has at least one edge.

    ``identities``: columns ``key`` (uint64), ``id``, ``source_file``, ``position`` and, for the
    ``longest`` survivor rule, ``length`` for (at least) every key in the edges. ``near_edges`` /
    ``exact_edges``: (E, 2) uint64 key pairs. Engine-agnostic:
    a Beam pipeline can call it with edges and identities collected after its GroupByKey."""
    near = _unique_edges(near_edges)
    exact = _unique_edges(exact_edges)
    all_edges = _unique_edges(np.concatenate([near, exact])) if near.size and exact.size else (near if near.size else exact)
    nodes, labels = connected_components(all_edges, use_scipy=use_scipy)
    if nodes.size == 0:
        return MAPPING_SCHEMA.empty_table()
    _, exact_labels = connected_components(exact, nodes=nodes, use_scipy=use_scipy)

    keys = identities["key"].to_numpy().astype(np.uint64, copy=False)
    order = np.argsort(keys, kind="stable")
    pos_in_ident = np.searchsorted(keys, nodes, sorter=order)
    if (pos_in_ident >= keys.size).any() or (keys[order[np.minimum(pos_in_ident, keys.size - 1)]] != nodes).any():
        raise ValueError("cluster_table: some edge keys have no identity")
    take = order[pos_in_ident]
    ident = identities.take(pa.array(take))
    ids = ident["id"].to_pylist()
    sf = ident["source_file"].to_pylist()
    pos = ident["position"].to_pylist()

    if survivor not in SURVIVOR_RULES:
        raise ValueError(f"survivor must be one of {', '.join(SURVIVOR_RULES)}, got {survivor!r}")
    length = None
    if survivor == "longest":
        if "length" not in ident.column_names or ident["length"].null_count:
            raise ValueError("the 'longest' survivor rule needs every document's length: signatures written "
                             "by an older corpusmill have none; rerun dedup in a new work directory")
        length = ident["length"].to_numpy()
    surv, size = _survivor_groups(labels, sf, pos, ids, length)
    esurv, esize = _survivor_groups(exact_labels, sf, pos, ids, length)
    rows = np.arange(nodes.size)
    verdict = np.where(surv == rows, KEEP, np.where(esurv != rows, EXACT_DUPLICATE, NEAR_DUPLICATE))
    ids_arr = np.array(ids, dtype=object)
    return pa.table(
        {
            "id": pa.array(ids, type=pa.string()),
            "source_file": pa.array(sf, type=pa.string()),
            "position": pa.array(pos, type=pa.int64()),
            "cluster": pa.array(ids_arr[surv].tolist(), type=pa.string()),
            "cluster_size": pa.array(size, type=pa.int64()),
            "exact_cluster": pa.array(ids_arr[esurv].tolist(), type=pa.string()),
            "exact_cluster_size": pa.array(esize, type=pa.int64()),
            "verdict": pa.array(verdict.tolist(), type=pa.string()),
        },
        schema=MAPPING_SCHEMA,
    )


def partition_of(source_file: str | None, partitions: int) -> int:
    if partitions <= 1:
        return 0
    return xxhash.xxh3_64_intdigest((source_file or "").encode("utf-8", "surrogatepass")) % partitions


# --- the cluster phase on a work directory -----------------------------------------------------------


def _read_edges(paths: Iterable[Path]) -> np.ndarray:
    """Unique edges of several edge files, deduplicated file by file (the bands of a cluster mostly
    repeat the same pairs), so the transient memory stays near the number of unique edges."""
    acc = np.empty((0, 2), dtype=np.uint64)
    for p in paths:
        if not p.stat().st_size:
            continue
        e = np.fromfile(p, dtype=EDGE)
        e = _unique_edges(np.stack([e["a"], e["b"]], axis=1))
        acc = _unique_edges(np.concatenate([acc, e])) if acc.size else e
    return acc


def _load_identities(workdir: Path, nodes: np.ndarray) -> pa.Table:
    """Doc table rows of the given keys. A doc key is ``rank << 32 | row`` of that task's doc table,
    so only the row groups holding a wanted row are read, one at a time."""
    tables = []
    ranks = sorted_unique(nodes >> np.uint64(32))
    for rank in ranks.tolist():
        path = workdir / "sig" / "docs" / f"r{rank:05d}.parquet"
        lo = np.searchsorted(nodes, np.uint64(rank << 32))
        hi = np.searchsorted(nodes, np.uint64((rank + 1) << 32))
        wanted = nodes[lo:hi]
        rows = (wanted & np.uint64(0xFFFFFFFF)).astype(np.int64)
        pf = pq.ParquetFile(path, pre_buffer=False)  # no pre-buffering / thread pool: less resident memory
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        bounds = np.concatenate(([0], np.cumsum(sizes)))
        group = np.searchsorted(bounds, rows, side="right") - 1
        for g in np.unique(group).tolist():
            sel = rows[group == g] - bounds[g]
            t = pf.read_row_group(g, use_threads=False).take(pa.array(sel))
            if not np.array_equal(t["key"].to_numpy().astype(np.uint64), wanted[group == g]):
                raise ValueError(f"{path}: doc table rows do not match their keys")
            tables.append(t)
    if not tables:
        return DOCS_SCHEMA.empty_table()
    return pa.concat_tables(tables, promote_options="default")  # doc tables of older versions lack "length"


def build_clusters(
    workdir: str | os.PathLike, rows_per_partition: int = ROWS_PER_PARTITION, *, use_scipy: bool = True
) -> dict:
    """Run the cluster phase on a work directory (after all bucket jobs). Returns counts."""
    workdir = Path(workdir)
    check_signatures_complete(workdir)
    edges_dir = workdir / "edges"
    jobs_file = edges_dir / "jobs.json"
    if not jobs_file.exists():
        raise FileNotFoundError(f"{jobs_file} missing: run the bucket phase first")
    jobs = read_json(jobs_file)["jobs"]
    missing = [j for j in jobs if not (edges_dir / "done" / f"{j}.json").exists()]
    if missing:
        raise RuntimeError(f"bucket phase incomplete: {len(missing)} of {len(jobs)} jobs missing, e.g. {missing[:5]}")
    near = _read_edges(edges_dir / f"{j}.bin" for j in jobs if j.startswith("minhash-"))
    exact = _read_edges(edges_dir / f"{j}.bin" for j in jobs if j.startswith("exact-"))
    nodes = sorted_unique(np.concatenate([near.ravel(), exact.ravel()]))
    identities = _load_identities(workdir, nodes)
    table = cluster_table(identities, near, exact, survivor=load_config(workdir).survivor, use_scipy=use_scipy)

    out_dir = workdir / "clusters"
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "_meta.json"
    meta_path.unlink(missing_ok=True)
    for old in out_dir.glob("part-*.parquet"):
        old.unlink()
    partitions = max(1, -(-table.num_rows // max(1, rows_per_partition)))
    parts = np.array([partition_of(s, partitions) for s in table["source_file"].to_pylist()], dtype=np.int64)
    for p in range(partitions):
        sub = table.filter(pa.array(parts == p)) if partitions > 1 else table
        sub = sub.sort_by([("source_file", "ascending"), ("position", "ascending"), ("id", "ascending")])
        path = out_dir / f"part-{p:05d}.parquet"
        tmp = _tmp_name(path)
        pq.write_table(sub, tmp, row_group_size=MAPPING_ROW_GROUP)
        os.replace(tmp, path)
    verdicts = table["verdict"].to_pylist()
    meta = {
        "partitions": partitions,
        "docs_in_clusters": table.num_rows,
        "clusters": sum(1 for v in verdicts if v == KEEP),
        "exact_duplicates": sum(1 for v in verdicts if v == EXACT_DUPLICATE),
        "near_duplicates": sum(1 for v in verdicts if v == NEAR_DUPLICATE),
        "minhash_edges": int(near.shape[0]),
        "exact_edges": int(exact.shape[0]),
    }
    atomic_write_json(meta_path, meta)
    return meta


@dataclass(frozen=True)
class ClusterInfo:
    cluster: str
    cluster_size: int
    verdict: str
    exact_cluster: str
    exact_cluster_size: int


class ClusterLookup:
    """Looks documents up in the cluster mapping, holding only the rows of the shards it was asked
    about (LRU of ``cache_shards``). A mapping partition is sorted by source_file and written in row
    groups of :data:`MAPPING_ROW_GROUP` rows, so a shard's rows are read from the row groups whose
    source_file statistics include it, not the whole partition: memory O(rows of a shard), whatever
    the size of the corpus or of a partition."""

    def __init__(self, workdir: str | os.PathLike, cache_shards: int = 2):
        self.dir = storage.join(str(workdir), "clusters")  # a local path or an fsspec URL
        meta_path = storage.join(self.dir, "_meta.json")
        if not storage.exists(meta_path):
            raise FileNotFoundError(f"{meta_path} missing: run the dedup cluster phase first")
        self.meta = storage.read_json(meta_path)
        self.partitions = int(self.meta["partitions"])
        self.cache_shards = max(1, cache_shards)
        self._cache: OrderedDict[str, dict[str, ClusterInfo]] = OrderedDict()

    def _shard(self, source_file: str) -> dict[str, ClusterInfo]:
        d = self._cache.get(source_file)
        if d is not None:
            self._cache.move_to_end(source_file)
            return d
        t = self._read_shard(partition_of(source_file, self.partitions), source_file)
        cols = [t[c].to_pylist() for c in ("id", "cluster", "cluster_size", "verdict", "exact_cluster", "exact_cluster_size")]
        d = {i: ClusterInfo(c, s, v, ec, es) for i, c, s, v, ec, es in zip(*cols)}
        self._cache[source_file] = d
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return d

    def get(self, doc_id: str, source_file: str | None = None) -> ClusterInfo | None:
        """The document's cluster info, or None when it is in no cluster."""
        return self._shard(source_file or "").get(str(doc_id))

    def table(self) -> pa.Table:
        """The whole mapping (for reports and tests; not bounded)."""
        return pa.concat_tables(self._read(p) for p in range(self.partitions))

    def _read(self, p: int) -> pa.Table:
        fs, path = storage.fs_of(storage.join(self.dir, f"part-{p:05d}.parquet"))
        with fs.open(path, "rb") as f:
            return pq.ParquetFile(f, pre_buffer=False).read(use_threads=False)

    def _read_shard(self, p: int, source_file: str) -> pa.Table:
        """Rows of partition ``p`` whose source_file is ``source_file`` ("" also matches a missing one)."""
        fs, path = storage.fs_of(storage.join(self.dir, f"part-{p:05d}.parquet"))
        with fs.open(path, "rb") as f:
            pf = pq.ParquetFile(f, pre_buffer=False)
            col = pf.schema_arrow.get_field_index("source_file")
            parts = []
            for g in range(pf.metadata.num_row_groups):
                st = pf.metadata.row_group(g).column(col).statistics
                if st is not None and st.has_min_max and not (st.min <= source_file <= st.max):
                    if not (source_file == "" and (not st.has_null_count or st.null_count)):
                        continue  # no row of this shard in the row group
                t = pf.read_row_group(g, use_threads=False)
                parts.append(t.filter(pc.equal(pc.fill_null(t["source_file"], ""), source_file)))
        return pa.concat_tables(parts) if parts else MAPPING_SCHEMA.empty_table()
