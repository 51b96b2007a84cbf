"""Connected components and survivors as many tasks over sorted files (no task holds the graph).

Star rounds (:mod:`~corpusmill.curation.dedup.stars`) until converged, then ``labels`` (node ->
component min), ``survivors`` (per component: the rule's minimum, reduced from per-task partial
minima) and ``mapping`` (``WORK/clusters/part-*.parquet``, as
:func:`~corpusmill.curation.dedup.clusters.build_clusters`). Every step holds a bounded number of
records or nodes (``max_records``), whatever the corpus or component sizes. All IO goes through fsspec.
Phases: ``init``, ``round`` r = 0, 1, ... (until converged), ``labels``, ``survivors``, ``mapping``;
each is ``run_task(workdir, phase, task, tasks)`` for every task, phases in order. See docs/dedup.md.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.curation.dedup.clusters import (
    EXACT_DUPLICATE,
    KEEP,
    MAPPING_ROW_GROUP,
    MAPPING_SCHEMA,
    NEAR_DUPLICATE,
    ROWS_PER_PARTITION,
    partition_of,
)
from corpusmill.curation.dedup.stars import (
    DEFAULT_MAX_RECORDS,
    GBIT,
    MAX_ROUNDS,
    REC,
    _all_done,
    _Dir,
    _done,
    _Groups,
    _init,
    _part,
    _round,
    _windows,
    converged_round,
)

__all__ = ["REC", "run_task", "run_components", "converged_round", "PHASES", "DEFAULT_MAX_RECORDS", "MAX_ROUNDS"]

PHASES = ("prepare", "init", "round", "labels", "survivors", "mapping")


def _identities(d: _Dir, keys: np.ndarray) -> pa.Table:
    """Doc-table rows (key, id, source_file, position, length) of sorted doc keys (rank << 32 | row)."""
    tables = []
    ranks = np.unique(keys >> np.uint64(32))
    for rank in ranks.tolist():
        lo, hi = np.searchsorted(keys, np.uint64(rank << 32)), np.searchsorted(keys, np.uint64((rank + 1) << 32))
        wanted = keys[lo:hi]
        rows = (wanted & np.uint64(0xFFFFFFFF)).astype(np.int64)
        with d.fs.open(d.p("sig", "docs", f"r{rank:05d}.parquet"), "rb") as fh:
            pf = pq.ParquetFile(fh, pre_buffer=False)
            sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
            bounds = np.concatenate(([0], np.cumsum(sizes)))
            group = np.searchsorted(bounds, rows, side="right") - 1
            for gi in np.unique(group).tolist():
                t = pf.read_row_group(gi, use_threads=False).take(pa.array(rows[group == gi] - bounds[gi]))
                if not np.array_equal(t["key"].to_numpy().astype(np.uint64), wanted[group == gi]):
                    raise ValueError(f"doc table r{rank:05d}: rows do not match their keys")
                if "length" not in t.column_names:
                    t = t.append_column("length", pa.nulls(t.num_rows, pa.int64()))
                tables.append(t.select(["key", "id", "source_file", "position", "length"]))
    return pa.concat_tables(tables) if tables else pa.table({"key": pa.array([], pa.uint64())})


def _order_columns(t: pa.Table, survivor: str) -> pa.Table:
    """The survivor rule as sort columns: (neg_len, sf, pos, id), smallest first."""
    if survivor == "longest":
        if t["length"].null_count:
            raise ValueError("the 'longest' survivor rule needs every document's length: signatures written "
                             "by an older corpusmill have none; rerun dedup in a new work directory")
        neg = pc.negate(t["length"].cast(pa.int64()))
    else:
        neg = pa.array(np.zeros(t.num_rows, np.int64))
    return pa.table({"neg_len": neg, "sf": pc.fill_null(t["source_file"], ""),
                     "pos": pc.fill_null(t["position"].cast(pa.int64()), -1), "id": t["id"]})


ORDER = [("label", "ascending"), ("neg_len", "ascending"), ("sf", "ascending"), ("pos", "ascending"), ("id", "ascending")]


def _firsts(sorted_labels: np.ndarray) -> np.ndarray:
    first = np.ones(sorted_labels.size, dtype=bool)
    first[1:] = sorted_labels[1:] != sorted_labels[:-1]
    return first


def _chunk_nodes(max_records: int) -> int:
    """Nodes the labels, survivors and mapping steps handle at once (~0.5 KB each with their identity,
    against 16 B per round record): the same memory budget as ``max_records``."""
    return max(64, max_records // 32)


def _sub(x: np.ndarray, parts: int) -> np.ndarray:
    """Sub-range of labels within a survivors task (a hash independent of :func:`_part`)."""
    with np.errstate(over="ignore"):
        return ((x * np.uint64(0xD6E8FEB86659FD93)) >> np.uint64(29)) % np.uint64(parts)


def _labels(d: _Dir, task: int, tasks: int, max_records: int, survivor: str) -> dict:
    """Node -> component label (its star's root) for partition ``task``, in chunks of
    :func:`_chunk_nodes` nodes; per chunk, the per-label partial minima of the survivor rule and the
    node records go to the label's survivors task."""
    r = converged_round(d, tasks)
    if r is None:
        raise RuntimeError(f"dedup connected components did not converge in the rounds run; run more rounds (max {MAX_ROUNDS})")
    for name in ("agg", "nodes"):
        d.rm_glob(d.p("cc", name, "d*", f"t{task:05d}-*.parquet"))
    chunk = _chunk_nodes(max_records)
    stats = {"nodes": 0, "records_in": 0, "chunks": 0, "max_nodes_held": 0}
    g = _Groups()
    us: list[np.ndarray] = []
    labs: list[np.ndarray] = []

    def emit(final: bool) -> None:
        u, lab = (np.concatenate(us), np.concatenate(labs)) if us else (np.empty(0, np.uint64),) * 2
        us.clear(), labs.clear()
        while u.size >= chunk or (final and u.size):
            _label_chunk(d, u[:chunk], lab[:chunk], task, tasks, stats["chunks"], survivor)
            stats["chunks"] += 1
            stats["max_nodes_held"] = max(stats["max_nodes_held"], min(chunk, u.size))
            u, lab = u[chunk:], lab[chunk:]
        if u.size:
            us.append(u), labs.append(lab)

    pending = 0
    for win in _windows(d, d.ls(d.p("cc", f"r{r:03d}", f"d{task:05d}"), ".bin"), max_records):
        _, _, _, counts, cu, cfv = g.window(win)
        us.append(cu)
        labs.append(np.minimum(cu, cfv))
        stats["records_in"] += int(counts.sum())
        stats["nodes"] += int(np.count_nonzero(cu < GBIT))
        pending += cu.size
        if pending >= chunk:
            emit(False)
            pending = sum(x.size for x in us)
    counts, cu, cfv = g.close()
    us.append(cu)
    labs.append(np.minimum(cu, cfv))
    stats["records_in"] += int(counts.sum())
    stats["nodes"] += int(np.count_nonzero(cu < GBIT))
    emit(True)
    return stats


def _label_chunk(d: _Dir, u: np.ndarray, lab: np.ndarray, task: int, tasks: int, k: int, survivor: str) -> None:
    raw = u & ~GBIT
    ident = _identities(d, np.unique(raw))
    keys = ident["key"].to_numpy().astype(np.uint64) if ident.num_rows else np.empty(0, np.uint64)
    take = np.searchsorted(keys, raw)
    if (take >= keys.size).any() or (keys[np.minimum(take, keys.size - 1)] != raw).any():
        raise ValueError("dedup clusters: some edge keys have no identity in the doc tables")
    ident = ident.take(pa.array(take))
    order = _order_columns(ident, survivor)
    t = pa.table({"label": pa.array(lab), "node": pa.array(u)})
    for c in order.column_names:
        t = t.append_column(c, order[c])
    t = t.append_column("source_file", ident["source_file"]).append_column("position", ident["position"].cast(pa.int64()))
    del ident, order
    t = t.take(pc.sort_indices(t, sort_keys=ORDER))
    first = _firsts(t["label"].to_numpy())
    starts = np.flatnonzero(first)
    count = np.diff(np.append(starts, t.num_rows))
    agg = t.take(pa.array(starts)).select(["label", "neg_len", "sf", "pos", "id"]).append_column("count", pa.array(count))
    dest_agg = _part(agg["label"].to_numpy(), tasks)
    dest = _part(t["label"].to_numpy(), tasks)
    nodes = t.select(["label", "node", "id", "source_file", "position"])
    for dst in range(tasks):
        for name, tab, where in (("agg", agg, dest_agg), ("nodes", nodes, dest)):
            sub = tab.filter(pa.array(where == dst))
            if sub.num_rows:
                d.put_table(d.p("cc", name, f"d{dst:05d}", f"t{task:05d}-{k:05d}.parquet"), sub)


def _survivors(d: _Dir, task: int, tasks: int, rows_per_partition: int, max_records: int) -> dict:
    """Per label: the survivor (minimum of the partial minima) and the size; each node record gets
    them and goes to its mapping partition (by source_file). Labels are reduced in sub-ranges of
    about :func:`_chunk_nodes` partial minima, and node records written in chunks of as many rows."""
    total = sum(s["nodes"] for s in _all_done(d, "labels", tasks))
    partitions = max(1, -(-total // max(1, rows_per_partition)))
    base = d.p("cc", "map")
    d.rm_glob(f"{base}/p*/t{task:05d}-*.parquet")
    agg_files = d.ls(d.p("cc", "agg", f"d{task:05d}"), ".parquet")
    node_files = d.ls(d.p("cc", "nodes", f"d{task:05d}"), ".parquet")
    stats = {"partitions": partitions, "clusters": 0, "exact_duplicates": 0, "sub_ranges": 0, "max_nodes_held": 0}
    if not agg_files:
        return stats
    chunk = _chunk_nodes(max_records)
    agg_rows = 0
    for f in agg_files:
        with d.fs.open(f, "rb") as fh:
            agg_rows += pq.ParquetFile(fh).metadata.num_rows
    parts = max(1, -(-agg_rows // chunk))
    stats["sub_ranges"] = parts
    out: list[pa.Table] = []
    held = 0
    runs = 0

    def flush() -> None:
        nonlocal held, runs
        if not out:
            return
        t = pa.concat_tables(out)
        out.clear()
        stats["max_nodes_held"] = max(stats["max_nodes_held"], held)
        held = 0
        mp = np.array([partition_of(s, partitions) for s in t["source_file"].to_pylist()], dtype=np.int64)
        for p in np.unique(mp).tolist():
            d.put_table(f"{base}/p{p:05d}/t{task:05d}-{runs:05d}.parquet", t.filter(pa.array(mp == p)))
        runs += 1

    for k in range(parts):
        tabs = []
        for f in agg_files:
            t = d.get_table(f)
            tabs.append(t.filter(pa.array(_sub(t["label"].to_numpy(), parts) == k)) if parts > 1 else t)
        agg = pa.concat_tables(tabs)
        del tabs
        if not agg.num_rows:
            continue
        agg = agg.take(pc.sort_indices(agg, sort_keys=ORDER))
        first = _firsts(agg["label"].to_numpy())
        lab = agg["label"].to_numpy()[first]
        size = np.add.reduceat(agg["count"].to_numpy(), np.flatnonzero(first))
        surv = agg["id"].filter(pa.array(first))
        del agg
        exact = lab >= GBIT
        stats["clusters"] += int(np.count_nonzero(~exact))
        stats["exact_duplicates"] += int((size[exact] - 1).sum())
        for p in node_files:
            with d.fs.open(p, "rb") as fh:
                pf = pq.ParquetFile(fh, pre_buffer=False)
                for gi in range(pf.metadata.num_row_groups):
                    n = pf.read_row_group(gi, use_threads=False)
                    if parts > 1:
                        n = n.filter(pa.array(_sub(n["label"].to_numpy(), parts) == k))
                    if not n.num_rows:
                        continue
                    i = np.searchsorted(lab, n["label"].to_numpy())
                    out.append(n.select(["node", "id", "source_file", "position"])
                               .append_column("survivor", surv.take(pa.array(i)))
                               .append_column("size", pa.array(size[i])))
                    held += n.num_rows
                    if held >= chunk:
                        flush()
    flush()
    return stats


def _mapping(d: _Dir, task: int, tasks: int) -> dict:
    """Mapping partitions task::tasks: join each node's dedup and exact clusters, write part files."""
    stats = _all_done(d, "survivors", tasks)
    partitions = stats[0]["partitions"]
    out = d.p("clusters")
    if task == 0:
        if d.exists(f"{out}/_meta.json"):
            d.fs.rm(f"{out}/_meta.json")
    rows = 0
    for p in range(task, partitions, tasks):
        files = d.ls(d.p("cc", "map", f"p{p:05d}"), ".parquet")
        t = pa.concat_tables([d.get_table(f) for f in files]) if files else None
        if t is None or not t.num_rows:
            d.put_table(f"{out}/part-{p:05d}.parquet", MAPPING_SCHEMA.empty_table())
            continue
        ex = t["node"].to_numpy() >= GBIT
        near, exact = t.filter(pa.array(~ex)), t.filter(pa.array(ex))
        del t
        nn = near["node"].to_numpy()
        en = exact["node"].to_numpy() & ~GBIT
        esurv, esize = near["id"], np.ones(nn.size, np.int64)
        if en.size:
            eo = np.argsort(en)
            j = np.minimum(np.searchsorted(en[eo], nn), en.size - 1)
            hit = en[eo][j] == nn
            src = eo[j]
            esurv = pc.coalesce(exact["survivor"].take(pa.array(src, mask=~hit)), near["id"])
            esize = np.where(hit, exact["size"].to_numpy()[src], 1)
        verdict = pc.if_else(pc.equal(near["survivor"], near["id"]), KEEP,
                             pc.if_else(pc.not_equal(esurv, near["id"]), EXACT_DUPLICATE, NEAR_DUPLICATE))
        m = pa.table({"id": near["id"], "source_file": near["source_file"], "position": near["position"],
                      "cluster": near["survivor"], "cluster_size": near["size"],
                      "exact_cluster": esurv, "exact_cluster_size": pa.array(esize, pa.int64()),
                      "verdict": verdict}, schema=MAPPING_SCHEMA)
        m = m.sort_by([("source_file", "ascending"), ("position", "ascending"), ("id", "ascending")])
        d.put_table(f"{out}/part-{p:05d}.parquet", m, row_group_size=MAPPING_ROW_GROUP)
        rows += m.num_rows
    if task == 0:
        r0 = _all_done(d, "labels", tasks)
        docs = sum(s["nodes"] for s in r0)
        clusters = sum(s["clusters"] for s in stats)
        exact_dups = sum(s["exact_duplicates"] for s in stats)
        meta = {"partitions": partitions, "docs_in_clusters": docs, "clusters": clusters,
                "exact_duplicates": exact_dups, "near_duplicates": docs - clusters - exact_dups, "tasks": tasks,
                "rounds": converged_round(d, tasks) + 1}
        d.put_json(f"{out}/_meta.json", meta)
    return {"rows": rows}


def run_task(workdir, phase: str, task: int, tasks: int, *, round: int = 0, survivor: str | None = None,
             max_records: int = DEFAULT_MAX_RECORDS, rows_per_partition: int = ROWS_PER_PARTITION) -> dict:
    """Run task ``task`` of ``tasks`` of one phase; writes ``cc/done/<phase>/t<task>.json`` (its stats)."""
    # Arrow's default pool (mimalloc/jemalloc) keeps freed chunks: the peak RSS of a task grew with the
    # corpus (survivors 179 -> 223 MB, 100 k -> 1 M) though the records held do not; the system pool
    # keeps it flat (benchmarks/RESULTS.md, dedup growth, 1 M). Restored after the task.
    prev = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return _run_task(workdir, phase, task, tasks, round=round, survivor=survivor, max_records=max_records,
                         rows_per_partition=rows_per_partition)
    finally:
        pa.set_memory_pool(prev)


def _run_task(workdir, phase: str, task: int, tasks: int, *, round: int, survivor: str | None, max_records: int,
              rows_per_partition: int) -> dict:
    d = _Dir(workdir)
    if phase == "prepare":  # one task, before init: no state of an earlier cluster run is reused
        if d.exists(d.p("cc")):
            d.fs.rm(d.p("cc"), recursive=True)
        return {}
    if phase == "init":
        stats = _init(d, task, tasks, max_records)
    elif phase == "round":
        stats = _round(d, round, task, tasks, max_records)
    elif phase == "labels":
        stats = _labels(d, task, tasks, max_records, survivor or d.get_json(d.p("config.json")).get("survivor", "first"))
    elif phase == "survivors":
        stats = _survivors(d, task, tasks, rows_per_partition, max_records)
    elif phase == "mapping":
        stats = _mapping(d, task, tasks)
    else:
        raise ValueError(f"unknown cluster phase {phase!r}")
    name = f"round{round:03d}" if phase == "round" else phase
    d.put_json(_done(d, name, task), stats)
    return stats


def run_components(workdir, tasks: int, *, survivor: str | None = None, max_records: int = DEFAULT_MAX_RECORDS,
                   rows_per_partition: int = ROWS_PER_PARTITION) -> dict:
    """All cluster phases in this process, task after task (tests, small inputs). Returns the meta."""
    d = _Dir(workdir)
    run_task(workdir, "prepare", 0, 1)
    kw = dict(survivor=survivor, max_records=max_records, rows_per_partition=rows_per_partition)
    for t in range(tasks):
        run_task(workdir, "init", t, tasks, **kw)
    r = 0
    while converged_round(workdir, tasks) is None:
        if r >= MAX_ROUNDS:
            raise RuntimeError(f"dedup connected components did not converge in {MAX_ROUNDS} rounds")
        for t in range(tasks):
            run_task(workdir, "round", t, tasks, round=r, **kw)
        r += 1
    for phase in ("labels", "survivors", "mapping"):
        for t in range(tasks):
            run_task(workdir, phase, t, tasks, **kw)
    return d.get_json(d.p("clusters", "_meta.json"))
