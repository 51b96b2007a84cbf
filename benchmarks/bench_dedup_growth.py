"""Dedup growth benchmark: ``corpusmill curate`` (exact_dedup -> minhash_dedup) on generated corpora of
growing size, CPU and memory of the whole process tree per phase, precision / recall vs ground truth.

    .venv/bin/python benchmarks/dedup_corpus.py /tmp/corpus --docs 1000000          # once
    .venv/bin/python benchmarks/bench_dedup_growth.py /tmp/corpus --sizes 10000,100000,1000000 \\
        --verify false,true --tasks 2 --workers 2 --out /tmp/growth

Each size is a prefix of the corpus (its first shards; document i does not depend on the size). A
run is one ``corpusmill curate`` subprocess; a monitor samples every process of its tree (the CLI,
datatrove's forkserver and its workers, the multiprocessing manager) from /proc every 0.2 s:

- CPU: utime + stime of each process, the increase between two samples charged to the phase that
  is running (a phase starts when its ``logs/<phase>`` directory appears: curate, signatures,
  buckets, clusters-prepare, clusters-init, clusters-round* (reported together as clusters-rounds),
  clusters-labels, clusters-survivors, clusters-mapping, final); a process that ends loses at most
  its last 0.2 s;
- memory: VmHWM (peak RSS) of each process per phase (at each phase change the peaks of the living
  processes are reset through /proc/PID/clear_refs, so a process that lives through several phases
  is charged per phase); a worker that lives less than 0.2 s may be missed (the cluster tasks also
  record the records they held, ``task_stats``);
- datatrove's own per-step times (``logs/<phase>/stats.json``), for the profile of each phase.

Results are printed as JSON lines and appended to ``--out``/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(d))
    return out


def tree(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (own, not waited-for children)


def hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_hwm(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def write_recipe(path: Path, inputs: Path, out: Path, verify: str, tasks: int, workers: int) -> None:
    v = {"false": "false", "true": "true", "exact": "exact"}[verify]
    path.write_text(
        f"""name: growth
inputs:
  - path: {inputs}
    reader: jsonl
stages:
  - stage: exact_dedup
  - stage: minhash_dedup
    verify: {v}
output:
  dir: {out}
engine:
  executor: local
  tasks: {tasks}
  workers: {workers}
"""
    )


def phase_key(name: str) -> str:
    """Log directory -> reported phase: the star rounds (``clusters-round000``...) are one phase."""
    return "clusters-rounds" if name.startswith("clusters-round") else name


def monitored_run(cmd: list[str], out: Path, interval: float = 0.2) -> dict:
    """Run ``cmd`` and charge CPU and peak RSS of its process tree to the phase that is running (the
    newest ``out/logs/<phase>`` directory; every cluster phase is a datatrove run of its own)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(out.parent / f"{out.name}.stderr", "w"))
    last_cpu: dict[int, float] = {}
    cpu: dict[str, float] = {"startup": 0.0}
    peak: dict[str, dict[int, float]] = {"startup": {}}
    started: dict[str, float] = {}  # log directory -> first seen
    order: list[str] = []  # reported phases in run order
    phase = "startup"
    logs = out / "logs"
    while True:
        done = proc.poll() is not None
        try:
            names = [n for n in os.listdir(logs) if n not in started and (logs / n).is_dir()]
        except OSError:
            names = []
        for n in sorted(names):
            started[n] = time.perf_counter() - t0
        current = phase_key(max(started, key=started.get)) if started else "startup"
        pids = tree(proc.pid) if not done else []
        if current != phase:
            phase = current
            if phase not in cpu:
                cpu[phase], peak[phase] = 0.0, {}
                order.append(phase)
            for pid in pids:
                reset_hwm(pid)
        for pid in pids:
            c = cpu_seconds(pid)
            if c is None:
                continue
            cpu[phase] += c - last_cpu.get(pid, 0.0)
            last_cpu[pid] = c
            h = hwm_mb(pid)
            if h is not None:
                key = -1 if pid == proc.pid else pid
                peak[phase][key] = max(peak[phase].get(key, 0.0), h)
        if done:
            break
        time.sleep(interval)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}); see {out.parent / (out.name + '.stderr')}")
    first: dict[str, float] = {}
    for n, t in started.items():
        first[phase_key(n)] = min(first.get(phase_key(n), t), t)
    res = {"wall_s": round(wall, 1), "phases": {}}
    for i, p in enumerate(order):
        end = first[order[i + 1]] if i + 1 < len(order) else wall
        workers = {k: v for k, v in peak[p].items() if k != -1}
        steps: dict[str, float] = {}
        cc_stats: dict[str, float] = {}
        runs = [n for n in started if phase_key(n) == p]
        for n in runs:
            stats_file = logs / n / "stats.json"
            if stats_file.exists():
                for st in json.loads(stats_file.read_text()):
                    t = st.get("time_stats") or {}
                    name = st.get("name", "?")
                    steps[name] = round(steps.get(name, 0.0) + float(t.get("total", 0.0)), 2)
        if p.startswith("clusters-") and p != "clusters-prepare":  # the tasks' own figures (cc/done)
            for n in runs:
                done_dir = out / "_dedup" / "cc" / "done" / n.removeprefix("clusters-")
                for f in done_dir.glob("t*.json") if done_dir.exists() else ():
                    for k, v in json.loads(f.read_text()).items():
                        if k.startswith("max_") and isinstance(v, (int, float)):
                            cc_stats[k] = max(cc_stats.get(k, 0), v)
        res["phases"][p] = {
            "wall_s": round(end - first[p], 1),
            "cpu_s": round(cpu[p], 1),
            "peak_rss_worker_mb": round(max(workers.values()), 1) if workers else None,
            "peak_rss_cli_mb": round(peak[p].get(-1, 0.0), 1),
            "workers": len(workers),
            "runs": len(runs),
            "step_seconds": steps,
            **({"task_stats": cc_stats} if cc_stats else {}),
        }
    res["startup_cpu_s"] = round(cpu["startup"], 1)
    res["cpu_s"] = round(sum(cpu.values()), 1)
    return res


def prefix_inputs(corpus: Path, docs: int, dest: Path, per: int) -> int:
    if docs % per:
        raise SystemExit(f"--sizes: {docs} is not a multiple of the shard size {per}")
    dest.mkdir(parents=True, exist_ok=True)
    for k in range(docs // per):
        name = f"part-{k:05d}.jsonl"
        if not (corpus / "docs" / name).exists():
            raise SystemExit(f"{corpus / 'docs' / name} missing: generate a corpus of at least {docs} documents")
        if not (dest / name).exists():
            os.symlink(corpus / "docs" / name, dest / name)
    return per


def quality(run: Path, docs: int, per: int, seed: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from dedup_corpus import evaluate, run_survivors, truth_arrays

    group, kind = truth_arrays(docs, seed)
    return evaluate(run_survivors(str(run), per, docs), group, kind)


def quality_other_mode(run: Path, docs: int, per: int, seed: int, verify: str) -> dict:
    """Quality of another ``verify`` mode from the same signatures: the run's signature files are
    copied, the bucket and cluster phases rerun in this process with the other mode (the signature
    phase does not depend on it, except for the files verification reads)."""
    import numpy as np

    from corpusmill.curation.dedup.clusters import ClusterLookup, build_clusters
    from corpusmill.curation.dedup.lsh import bucket_jobs, load_config, run_bucket_job, save_config

    sys.path.insert(0, str(Path(__file__).parent))
    from dedup_corpus import evaluate, run_survivors, truth_arrays

    work = run.parent / f"{run.name}-as-{verify}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(run / "_dedup" / "sig", work / "sig")
    mode = {"false": "off", "true": "signature", "exact": "exact"}[verify]
    from dataclasses import replace

    save_config(work, replace(load_config(run / "_dedup"), verify=mode))
    for job in bucket_jobs(load_config(work)):
        run_bucket_job(work, job)
    (work / "edges" / "jobs.json").write_text(json.dumps({"jobs": bucket_jobs(load_config(work)), "parts_per_band": 1}))
    build_clusters(work)
    t = ClusterLookup(work).table()
    idx_of = {}
    import pyarrow.dataset as ds
    import re as _re

    for sub in ("curated", "dropped"):
        tt = ds.dataset(f"{run}/{sub}", format="parquet").to_table(columns=["id", "source_file", "position"])
        for did, sf, pos in zip(*(tt[c].to_pylist() for c in ("id", "source_file", "position"))):
            idx_of[did] = int(_re.search(r"part-(\d+)", sf).group(1)) * per + int(pos)
    surv = np.arange(docs)
    for did, cl in zip(t["id"].to_pylist(), t["cluster"].to_pylist()):
        surv[idx_of[did]] = idx_of[cl]
    group, kind = truth_arrays(docs, seed)
    shutil.rmtree(work, ignore_errors=True)
    return evaluate(surv, group, kind)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--verify", default="false,true")
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/corpusmill-growth"))
    ap.add_argument("--shard-docs", type=int, default=10_000, help="as given to dedup_corpus.py")
    ap.add_argument("--seed", type=int, default=0, help="as given to dedup_corpus.py")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--also", default="", help="verify modes whose quality is computed from each run's signatures")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    cli = str(Path(sys.executable).parent / "corpusmill")
    for size in [int(s) for s in a.sizes.split(",")]:
        inputs = a.out / f"inputs-{size}"
        per = prefix_inputs(a.corpus, size, inputs, a.shard_docs)
        for verify in a.verify.split(","):
            run = a.out / f"run-{size}-{verify}"
            shutil.rmtree(run, ignore_errors=True)
            recipe = a.out / f"recipe-{size}-{verify}.yaml"
            write_recipe(recipe, inputs, run, verify, a.tasks, a.workers)
            load0 = os.getloadavg()
            res = monitored_run([cli, "curate", str(recipe)], run)
            row = {"docs": size, "verify": verify, "tasks": a.tasks, "workers": a.workers,
                   "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                   **res, "cpu_s_per_doc": res["cpu_s"] / size}
            row["disk_mb"] = {d: round(sum(p.stat().st_size for p in (run / d).rglob("*") if p.is_file()) / 1e6, 1)
                              for d in ("_dedup", "_predup", "curated", "dropped") if (run / d).exists()}
            row["quality"] = quality(run, size, per, a.seed)
            for other in [m for m in a.also.split(",") if m and m != verify]:
                if other != "false" and verify == "false":
                    continue  # an unverified run stored no signatures to verify with
                row[f"quality_as_{other}"] = quality_other_mode(run, size, per, a.seed, other)
            print(json.dumps(row), flush=True)
            with open(a.out / "results.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if not a.keep:
                shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
