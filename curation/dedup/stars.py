"""Large-star / small-star rounds over sorted edge files (the first half of the many-task cluster phase).

Edge records ``(u, v)`` partitioned by a hash of ``u``; each task streams a k-way merge of its sorted
runs in bounded windows (``max_records``), links neighbours to the smallest node of a star (Kiveris
et al., 2014) and routes its output to the next round's partitions as sorted run files. Exact-graph
keys carry bit 63. A large-star round whose input is a star forest has converged
(:func:`converged_round`). All IO goes through fsspec (:class:`_Dir`). Driver and the phases after
the rounds: :mod:`~corpusmill.curation.dedup.components`.
"""

from __future__ import annotations

import io
import json
import uuid

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.curation.dedup.lsh import EDGE

__all__ = ["REC", "GBIT", "DEFAULT_MAX_RECORDS", "MAX_ROUNDS", "converged_round"]

REC = np.dtype([("u", "<u8"), ("v", "<u8")])
GBIT = np.uint64(1 << 63)
DEFAULT_MAX_RECORDS = 500_000  # ~8 MB of records per task (full from ~100 k documents on 2 tasks; raise it for big runs)
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

    def put_table(self, path: str, table: pa.Table, **kw) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, **kw)
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


