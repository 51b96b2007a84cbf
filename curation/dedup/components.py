"""Connected components and survivors as many tasks over sorted files (no task holds the graph).

Large-star / small-star rounds (Kiveris et al., 2014) over edge records ``(u, v)`` partitioned by
``u``; each task streams a k-way merge of its sorted runs in bounded windows, so a task holds at most
``max_records`` records whatever the component sizes. Both clusterings run together: exact-graph
keys carry bit 63. A round whose input is a star forest (checked group by group) has converged.
Then ``labels`` (node -> component min), ``survivors`` (per component: the rule's minimum, reduced
from per-task partial minima) and ``mapping`` (``WORK/clusters/part-*.parquet``, as
:func:`~corpusmill.curation.dedup.clusters.build_clusters`). All IO goes through fsspec.
Phases: ``init``, ``round`` r = 0, 1, ... (until converged), ``labels``, ``survivors``, ``mapping``;
each is ``run_task(workdir, phase, task, tasks)`` for every task, phases in order. See docs/dedup.md.
"""

from __future__ import annotations

import io
import json
import uuid

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusmill.curation.dedup.clusters import (
    EXACT_DUPLICATE,
    KEEP,
    MAPPING_SCHEMA,
    NEAR_DUPLICATE,
    partition_of,
)
from corpusmill.curation.dedup.lsh import EDGE

__all__ = ["REC", "run_task", "run_components", "converged_round", "PHASES"]

REC = np.dtype([("u", "<u8"), ("v", "<u8")])
GBIT = np.uint64(1 << 63)
PHASES = ("prepare", "init", "round", "labels", "survivors", "mapping")
DEFAULT_MAX_RECORDS = 4_000_000  # ~64 MB of records per task
MAX_ROUNDS = 64


# --- files ---------------------------------------------------------------------------------------


class _Dir:
    """A work directory on any fsspec file system; files appear atomically (temporary name, then move)."""

    def __init__(self, workdir) -> None:
        self.fs, root = fsspec.core.url_to_fs(str(workdir))
        self.root = root.rstrip("/")

    def p(self, *parts) -> str:
        return "/".join((self.root,) + parts)

    def put(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, path)

    def put_json(self, path: str, obj) -> None:
        self.put(path, json.dumps(obj, sort_keys=True).encode())

    def get_json(self, path: str):
        with self.fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def ls(self, path: str, suffix: str = "") -> list[str]:
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.endswith(suffix) and not n.rsplit("/", 1)[-1].startswith(".tmp-"))

    def rm_glob(self, pattern: str) -> None:
        for f in self.fs.glob(pattern):
            self.fs.rm(f)

    def put_table(self, path: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.put(path, buf.getvalue())

    def get_table(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as fh:
            return pq.read_table(fh)


def _part(x: np.ndarray, tasks: int) -> np.ndarray:
    """Destination task of node keys (a multiplicative hash: doc keys are rank << 32 | row)."""
    with np.errstate(over="ignore"):
        return ((x * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)) % np.uint64(tasks)


def _uniq(rec: np.ndarray) -> np.ndarray:
    rec = np.sort(rec)
    if rec.size > 1:
        keep = np.ones(rec.size, dtype=bool)
        keep[1:] = rec[1:] != rec[:-1]
        rec = rec[keep]
    return rec


class _Writer:
    """Routes edges to destination tasks as sorted, de-duplicated run files
    ``{base}/d{dest}/t{task}-{k}.bin``; spills when ``limit`` records are buffered."""

    def __init__(self, d: _Dir, base: str, task: int, tasks: int, limit: int, route: str) -> None:
        self.d, self.base, self.task, self.tasks, self.limit, self.route = d, base, task, tasks, max(1, limit), route
        self.buf: list[np.ndarray] = []
        self.buffered = 0
        self.runs = 0
        self.records = 0
        self.max_buffered = 0
        d.rm_glob(f"{base}/d*/t{task:05d}-*.bin")  # a rerun of this task replaces its files

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Undirected edges a-b (self-loops dropped), as records for the next operation."""
        keep = a != b
        a, b = a[keep], b[keep]
        if not a.size:
            return
        if self.route == "small":  # grouped at the larger end, pointing to the smaller
            rec = np.empty(a.size, REC)
            rec["u"], rec["v"] = np.maximum(a, b), np.minimum(a, b)
        else:  # large star and labels: both directions
            rec = np.empty(2 * a.size, REC)
            rec["u"], rec["v"] = np.concatenate([a, b]), np.concatenate([b, a])
        self.buf.append(rec)
        self.buffered += rec.size
        self.max_buffered = max(self.max_buffered, self.buffered)
        if self.buffered >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        rec = np.concatenate(self.buf)
        self.buf, self.buffered = [], 0
        dest = _part(rec["u"], self.tasks)
        for t in np.unique(dest).tolist():
            run = _uniq(rec[dest == t])
            self.records += run.size
            self.d.put(f"{self.base}/d{t:05d}/t{self.task:05d}-{self.runs:05d}.bin", run.tobytes())
        self.runs += 1


class _Run:
    def __init__(self, d: _Dir, path: str, block: int) -> None:
        self.fh = d.fs.open(path, "rb")
        self.block = block
        self.buf = np.empty(0, REC)
        self.done = False

    def fill(self) -> None:
        if not self.buf.size and not self.done:
            data = self.fh.read(self.block * REC.itemsize)
            self.buf = np.frombuffer(data, dtype=REC)
            if len(data) < self.block * REC.itemsize:
                self.done = True
                self.fh.close()


def _windows(d: _Dir, paths: list[str], max_records: int, held: list | None = None):
    """Sorted windows of the merge of sorted runs; each run holds at most one block in memory.
    ``held[0]`` is raised to the most records held at once (blocks + window)."""
    if not paths:
        return
    runs = [_Run(d, p, max(1, max_records // (8 * len(paths)))) for p in paths]
    while True:
        for r in runs:
            r.fill()
        live = [r for r in runs if r.buf.size]
        if not live:
            return
        if held is not None:
            held[0] = max(held[0], sum(r.buf.size for r in live))
        bound = np.array(min((int(r.buf[-1]["u"]), int(r.buf[-1]["v"])) for r in live), dtype=REC)
        parts = []
        for r in live:
            k = int(np.searchsorted(r.buf, bound, side="right"))
            parts.append(r.buf[:k])
            r.buf = r.buf[k:]
        yield np.sort(np.concatenate(parts))


class _Groups:
    """Streams sorted (u, v) windows as groups by u: for every record, its group's first (smallest) v;
    carries the open group across windows and drops duplicate records."""

    def __init__(self) -> None:
        self.last = None  # last record seen
        self.first_v = None  # first v of the open group
        self.count = 0  # records of the open group so far

    def window(self, rec: np.ndarray):
        """-> (rec, fv, starts, closed_counts, closed_u, closed_fv): records without duplicates, the
        first v of each record's group, the mask of group starts, and the groups that closed."""
        if self.last is not None and rec.size and rec[0] == self.last:
            rec = rec[1:]
        if not rec.size:
            return rec, np.empty(0, np.uint64), np.empty(0, bool), np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.uint64)
        keep = np.ones(rec.size, dtype=bool)
        keep[1:] = rec[1:] != rec[:-1]
        rec = rec[keep]
        u, v = rec["u"], rec["v"]
        n = rec.size
        start = np.ones(n, dtype=bool)
        start[1:] = u[1:] != u[:-1]
        cont = self.last is not None and u[0] == self.last["u"]
        if cont:
            start[0] = False
        idx = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        fv = v[idx]
        head = int(np.argmax(start)) if start.any() else n  # records before it continue the open group
        if cont:
            fv[:head] = self.first_v
        # closed groups: the carried one (if it ends here) and every group that starts and ends here
        starts = np.flatnonzero(start)
        ends = np.append(starts[1:], n)
        counts = ends - starts
        cu, cfv = u[starts], v[starts]
        if cont:
            self.count += head
        closed_counts, closed_u, closed_fv = counts[:-1], cu[:-1], cfv[:-1]
        if starts.size:
            if self.last is not None:  # the carried group closes here
                closed_counts = np.append(self.count, closed_counts)
                closed_u = np.append(self.last["u"], closed_u)
                closed_fv = np.append(self.first_v, closed_fv)
            self.first_v, self.count = cfv[-1], int(counts[-1])
        self.last = rec[-1]
        return rec, fv, start, closed_counts, closed_u.astype(np.uint64), closed_fv.astype(np.uint64)

    def close(self):
        if self.last is None:
            return np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.uint64)
        return np.array([self.count]), np.array([self.last["u"]], np.uint64), np.array([self.first_v], np.uint64)


def _violations(counts, u, fv) -> int:
    """Groups that are neither a star root (every neighbour larger) nor a leaf (one, smaller neighbour)."""
    return int(np.count_nonzero(~((fv > u) | ((counts == 1) & (fv < u)))))


# --- phases --------------------------------------------------------------------------------------


def _cc(d: _Dir) -> str:
    return d.p("cc")


def _done(d: _Dir, phase: str, task: int) -> str:
    return d.p("cc", "done", phase, f"t{task:05d}.json")


def _all_done(d: _Dir, phase: str, tasks: int) -> list[dict]:
    paths = [_done(d, phase, t) for t in range(tasks)]
    missing = [p for p in paths if not d.exists(p)]
    if missing:
        raise RuntimeError(f"dedup cluster phase {phase!r} incomplete: {len(missing)} of {tasks} tasks missing ({missing[0]})")
    return [d.get_json(p) for p in paths]


def converged_round(workdir, tasks: int) -> int | None:
    """The first large-star round whose input was a star forest (None: not yet)."""
    d = workdir if isinstance(workdir, _Dir) else _Dir(workdir)
    r = 0
    while d.exists(_done(d, f"round{r:03d}", 0)):
        if r % 2 == 0:
            stats = [d.get_json(_done(d, f"round{r:03d}", t)) for t in range(tasks) if d.exists(_done(d, f"round{r:03d}", t))]
            if len(stats) == tasks and sum(s["violations"] for s in stats) == 0:
                return r
        r += 1
    return None


def _init(d: _Dir, task: int, tasks: int, max_records: int) -> dict:
    """Bucket edge files (jobs task::tasks) -> round 0 input; exact edges go to both graphs."""
    jobs = d.get_json(d.p("edges", "jobs.json"))["jobs"]
    missing = [j for j in jobs if not d.exists(d.p("edges", "done", f"{j}.json"))]
    if missing:
        raise RuntimeError(f"bucket phase incomplete: {len(missing)} of {len(jobs)} jobs missing, e.g. {missing[:5]}")
    w = _Writer(d, d.p("cc", "r000"), task, tasks, max_records // 4, "large")
    block = max(1, max_records // 16)
    for j in jobs[task::tasks]:
        exact = j.startswith("exact-")
        path = d.p("edges", f"{j}.bin")
        with d.fs.open(path, "rb") as fh:
            while True:
                e = np.frombuffer(fh.read(block * EDGE.itemsize), dtype=EDGE)
                if not e.size:
                    break
                w.add(e["a"], e["b"])
                if exact:
                    w.add(e["a"] | GBIT, e["b"] | GBIT)
    w.flush()
    return {"records_out": w.records, "max_held": block + w.max_buffered}


def _round(d: _Dir, r: int, task: int, tasks: int, max_records: int) -> dict:
    """One large-star (even r) or small-star (odd r) step over partition ``task``."""
    if converged_round(d, tasks) is not None:  # an earlier round converged (fixed round lists, e.g. Slurm)
        return {"skipped": True, "violations": 0}
    large = r % 2 == 0
    paths = d.ls(d.p("cc", f"r{r:03d}", f"d{task:05d}"), ".bin")
    w = _Writer(d, d.p("cc", f"r{r + 1:03d}"), task, tasks, max_records // 4, "small" if large else "large")
    g = _Groups()
    violations = 0
    records_in = 0
    held = [0]
    for win in _windows(d, paths, max_records, held):
        rec, fv, start, counts, cu, cfv = g.window(win)
        records_in += rec.size
        u, v = rec["u"], rec["v"]
        if large:  # connect every larger neighbour to the group's minimum
            m = np.minimum(u, fv)
            sel = v > u
            w.add(v[sel], m[sel])
            violations += _violations(counts, cu, cfv)
        else:  # records hold smaller neighbours: connect the group and its node to the minimum
            w.add(v, fv)
            w.add(u[start], fv[start])
    if large:
        violations += _violations(*g.close())
    w.flush()
    if r >= 2:  # the input of two rounds back is no longer needed (the labels phase reads a converged round's input)
        d.rm_glob(d.p("cc", f"r{r - 2:03d}", f"d{task:05d}", "*.bin"))
    return {"violations": violations, "records_in": records_in, "records_out": w.records,
            "max_held": 2 * held[0] + w.max_buffered}


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


def _labels(d: _Dir, task: int, tasks: int, max_records: int, survivor: str) -> dict:
    """Node -> component label (its star's root) for partition ``task``; per-label partial minima of
    the survivor rule and the node records go to the label's survivors task."""
    r = converged_round(d, tasks)
    if r is None:
        raise RuntimeError(f"dedup connected components did not converge in the rounds run; run more rounds (max {MAX_ROUNDS})")
    g = _Groups()
    us, labs = [], []
    for win in _windows(d, d.ls(d.p("cc", f"r{r:03d}", f"d{task:05d}"), ".bin"), max_records):
        _, _, _, counts, cu, cfv = g.window(win)
        us.append(cu)
        labs.append(np.minimum(cu, cfv))
    _, cu, cfv = g.close()
    us.append(cu)
    labs.append(np.minimum(cu, cfv))
    u, lab = np.concatenate(us), np.concatenate(labs)
    for name in ("agg", "nodes"):
        d.rm_glob(d.p("cc", name, "d*", f"t{task:05d}.parquet"))
    if not u.size:
        return {"nodes": 0, "records_in": 0}
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
                d.put_table(d.p("cc", name, f"d{dst:05d}", f"t{task:05d}.parquet"), sub)
    return {"nodes": int(np.count_nonzero(u < GBIT)), "records_in": int(u.size)}


def _survivors(d: _Dir, task: int, tasks: int, rows_per_partition: int) -> dict:
    """Per label: the survivor (minimum of the partial minima) and the size; each node record gets
    them and goes to its mapping partition (by source_file)."""
    total = sum(s["nodes"] for s in _all_done(d, "labels", tasks))
    partitions = max(1, -(-total // max(1, rows_per_partition)))
    aggs = [d.get_table(p) for p in d.ls(d.p("cc", "agg", f"d{task:05d}"), ".parquet")]
    base = d.p("cc", "map")
    d.rm_glob(f"{base}/p*/t{task:05d}.parquet")
    if not aggs:
        return {"partitions": partitions, "clusters": 0, "exact_duplicates": 0}
    agg = pa.concat_tables(aggs)
    agg = agg.take(pc.sort_indices(agg, sort_keys=ORDER))
    first = _firsts(agg["label"].to_numpy())
    lab = agg["label"].to_numpy()[first]
    size = np.add.reduceat(agg["count"].to_numpy(), np.flatnonzero(first))
    surv = agg["id"].filter(pa.array(first))
    out = []
    for p in d.ls(d.p("cc", "nodes", f"d{task:05d}"), ".parquet"):
        with d.fs.open(p, "rb") as fh:
            pf = pq.ParquetFile(fh, pre_buffer=False)
            for gi in range(pf.metadata.num_row_groups):
                n = pf.read_row_group(gi, use_threads=False)
                i = np.searchsorted(lab, n["label"].to_numpy())
                out.append(n.select(["node", "id", "source_file", "position"])
                           .append_column("survivor", surv.take(pa.array(i)))
                           .append_column("size", pa.array(size[i])))
    t = pa.concat_tables(out)
    mp = np.array([partition_of(s, partitions) for s in t["source_file"].to_pylist()], dtype=np.int64)
    for p in np.unique(mp).tolist():
        d.put_table(f"{base}/p{p:05d}/t{task:05d}.parquet", t.filter(pa.array(mp == p)))
    exact = lab >= GBIT
    return {"partitions": partitions, "clusters": int(np.count_nonzero(~exact)),
            "exact_duplicates": int((size[exact] - 1).sum())}


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
        node = t["node"].to_numpy()
        ex = node >= GBIT
        near, exact = t.filter(pa.array(~ex)), t.filter(pa.array(ex))
        nn = near["node"].to_numpy()
        en = exact["node"].to_numpy() & ~GBIT
        ids = near["id"].to_numpy(zero_copy_only=False).astype(object)
        esurv, esize = ids.copy(), np.ones(nn.size, np.int64)
        if en.size:
            eo = np.argsort(en)
            j = np.minimum(np.searchsorted(en[eo], nn), en.size - 1)
            hit = en[eo][j] == nn
            src = eo[j[hit]]
            esurv[hit] = exact["survivor"].to_numpy(zero_copy_only=False).astype(object)[src]
            esize[hit] = exact["size"].to_numpy()[src]
        surv = near["survivor"].to_numpy(zero_copy_only=False).astype(object)
        verdict = np.where(surv == ids, KEEP, np.where(esurv != ids, EXACT_DUPLICATE, NEAR_DUPLICATE))
        m = pa.table({"id": near["id"], "source_file": near["source_file"], "position": near["position"],
                      "cluster": near["survivor"], "cluster_size": near["size"],
                      "exact_cluster": pa.array(esurv.tolist(), pa.string()),
                      "exact_cluster_size": pa.array(esize),
                      "verdict": pa.array(verdict.tolist(), pa.string())}, schema=MAPPING_SCHEMA)
        m = m.sort_by([("source_file", "ascending"), ("position", "ascending"), ("id", "ascending")])
        d.put_table(f"{out}/part-{p:05d}.parquet", m)
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
             max_records: int = DEFAULT_MAX_RECORDS, rows_per_partition: int = 100_000) -> dict:
    """Run task ``task`` of ``tasks`` of one phase; writes ``cc/done/<phase>/t<task>.json`` (its stats)."""
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
        stats = _survivors(d, task, tasks, rows_per_partition)
    elif phase == "mapping":
        stats = _mapping(d, task, tasks)
    else:
        raise ValueError(f"unknown cluster phase {phase!r}")
    name = f"round{round:03d}" if phase == "round" else phase
    d.put_json(_done(d, name, task), stats)
    return stats


def run_components(workdir, tasks: int, *, survivor: str | None = None, max_records: int = DEFAULT_MAX_RECORDS,
                   rows_per_partition: int = 100_000) -> dict:
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
