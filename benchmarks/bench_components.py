"""Connected components: the many-task rounds (curation/dedup/components.py) vs the one-task
in-memory cluster_table (scipy), on generated duplicate graphs; prints a markdown table.

    .venv/bin/python benchmarks/bench_components.py --docs 100000,400000 --tasks 4

``--runs RUN[,RUN...]`` instead: the cluster phases and the marker's look-ups on the kept run
directories of ``bench_dedup_growth.py --keep`` (their ``_dedup`` work directory is reused), each
task a fresh process; prints CPU seconds and peak RSS (ru_maxrss) per phase, largest task.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.curation.dedup.clusters import build_clusters
from corpusmill.curation.dedup.components import run_components
from corpusmill.curation.dedup.lsh import DOCS_SCHEMA, EDGE


def make_workdir(path: Path, docs: int, seed: int = 0, bands: int = 14) -> tuple[int, int]:
    """``docs`` documents in 2 doc tables; 20% are in duplicate clusters (sizes 2..50, geometric),
    one cluster of 1% of the corpus; each cluster's bucket edges are paths in random order in each of
    ``bands`` band files (as the bucket phase writes them), a third of the clusters also exact."""
    rng = np.random.default_rng(seed)
    keys = np.array([(r << 32) | i for r in range(2) for i in range(docs // 2)], np.uint64)
    perm = rng.permutation(keys.size)
    dup = perm[: keys.size // 5]
    sizes = []
    left = dup.size - keys.size // 100
    sizes.append(keys.size // 100)
    while left > 1:
        s = min(left, 2 + int(rng.geometric(0.25)))
        sizes.append(s)
        left -= s
    (path / "sig" / "docs").mkdir(parents=True)
    (path / "edges" / "done").mkdir(parents=True)
    (path / "sig" / "done").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"survivor": "first", "minhash": None, "exact": True}))
    for r in range(2):
        k = keys[keys >> np.uint64(32) == r]
        n = k.size
        pq.write_table(pa.table({"key": pa.array(k), "id": [f"d{r}-{i}" for i in range(n)],
                                 "source_file": [f"s{i % 97}.jsonl" for i in range(n)],
                                 "position": pa.array(np.arange(n, dtype=np.int64)),
                                 "length": pa.array(rng.integers(1, 100, n))}, schema=DOCS_SCHEMA),
                       path / "sig" / "docs" / f"r{r:05d}.parquet", row_group_size=10_000)
        (path / "sig" / "done" / f"r{r:05d}.json").write_text(json.dumps({"world_size": 2}))
    jobs = {}
    off = 0
    clusters = []
    for s in sizes:
        clusters.append(keys[dup[off:off + s]])
        off += s
    for b in range(bands):
        es = []
        for c in clusters:
            o = c[rng.permutation(c.size)]
            es.append(np.stack([o[:-1], o[1:]], 1))
        jobs[f"minhash-b{b:03d}-p000"] = np.concatenate(es)
    jobs["exact-p000"] = np.concatenate([np.stack([c[:-1], c[1:]], 1) for c in clusters[::3]])
    for j, e in jobs.items():
        rec = np.empty(len(e), EDGE)
        rec["a"], rec["b"] = e[:, 0], e[:, 1]
        rec.tofile(path / "edges" / f"{j}.bin")
        (path / "edges" / "done" / f"{j}.json").write_text("{}")
    (path / "edges" / "jobs.json").write_text(json.dumps({"jobs": list(jobs)}))
    return int(dup.size), int(sum(len(e) for e in jobs.values()))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(code: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; (CPU s, peak RSS MB) of that process."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status, ru = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError(f"phase failed ({status}): {code}")
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


MARK = """
import sys, pyarrow.dataset as ds
from corpusmill.curation.dedup.clusters import ClusterLookup
run = sys.argv[1] if len(sys.argv) > 1 else {run!r}
lk = ClusterLookup(run + "/_dedup")
t = ds.dataset(run + "/_predup/curated", format="parquet").to_table(columns=["id", "source_file"])
n = 0
for b in t.to_batches(max_chunksize=10000):
    for i, sf in zip(b.column(0).to_pylist(), b.column(1).to_pylist()):
        n += lk.get(i, sf) is not None
print("marker look-ups", t.num_rows, "in clusters", n)
"""


def run_phases(run: Path, tasks: int) -> dict:
    """Each cluster phase (and the marker's look-ups) on ``run/_dedup``, task by task, fresh processes."""
    from corpusmill.curation.dedup.components import converged_round

    work = str(run / "_dedup")
    res: dict[str, list] = {}

    def phase(name: str, ph: str, n: int, r: int = 0) -> None:
        for t in range(n):
            c, m = _child(f"from corpusmill.curation.dedup.components import run_task; "
                          f"run_task({work!r}, {ph!r}, {t}, {n}, round={r})")
            res.setdefault(name, []).append((c, m))

    phase("clusters-prepare", "prepare", 1)
    phase("clusters-init", "init", tasks)
    r = 0
    while converged_round(work, tasks) is None:
        phase("clusters-rounds", "round", tasks, r)
        r += 1
    for ph in ("labels", "survivors", "mapping"):
        phase(f"clusters-{ph}", ph, tasks)
    c, m = _child(MARK.format(run=str(run)))
    res["marker look-ups"] = [(c, m)]
    return {k: (round(sum(c for c, _ in v), 2), round(max(m for _, m in v), 1)) for k, v in res.items()} | {"rounds": r}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="100000,400000")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--max-records", type=int, default=200_000)
    ap.add_argument("--runs", default="", help="kept run directories of bench_dedup_growth.py (phase mode)")
    a = ap.parse_args()
    print(f"python {sys.version.split()[0]}, load {os.getloadavg()}")
    if a.runs:
        for run in a.runs.split(","):
            out = run_phases(Path(run), a.tasks)
            print(json.dumps({"run": run, "tasks": a.tasks, "load": os.getloadavg(), "phases (CPU s, peak RSS MB)": out}))
        return
    print("| docs | docs in clusters | edge records (all bands) | one task (scipy) CPU s | rounds | many tasks CPU s | "
          "many / one | CPU µs per edge record | same mapping |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in [int(x) for x in a.docs.split(",")]:
        root = Path(tempfile.mkdtemp())
        try:
            dups, edges = make_workdir(root / "w", n)
            shutil.copytree(root / "w", root / "ref")
            c0 = cpu()
            build_clusters(root / "ref")
            one = cpu() - c0
            c0 = cpu()
            meta = run_components(root / "w", a.tasks, max_records=a.max_records)
            many = cpu() - c0
            same = all(pq.read_table(root / "w" / "clusters" / f"part-{p:05d}.parquet").equals(
                pq.read_table(root / "ref" / "clusters" / f"part-{p:05d}.parquet")) for p in range(meta["partitions"]))
            print(f"| {n:,} | {dups:,} | {edges:,} | {one:.2f} | {meta['rounds']} | {many:.2f} | {many / one:.1f}x | "
                  f"{1e6 * many / edges:.2f} | {same} |")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
