"""Beam local runner vs datatrove local executor: the same recipe on the same input, docs/s and ratio.

    .venv/bin/python benchmarks/bench_engines.py [--recipe examples/default.yaml] [--data ../shared/data]
                                                 [--workers 2] [--repeat 1]

Each engine runs the whole recipe (readers, every stage, dedup phases, Parquet + manifests, the
accounting check) into a fresh directory; docs/s = records read / wall-clock seconds of the run,
process start-up included (that is what a user waits for).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent


def run(engine: str, recipe: str, data: str, out: Path, workers: int) -> float:
    cmd = [sys.executable, "-m", "corpusmill.cli", "curate", recipe, "--data-root", data, "--output", str(out),
           "--workers", str(workers)]
    if engine == "beam":
        cmd += ["--engine", "beam", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(REPO / "examples" / "default.yaml"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"recipe {Path(a.recipe).name}, workers {a.workers}")
    rates: dict[str, list[float]] = {"datatrove": [], "beam": []}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for i in range(a.repeat):
            for engine in ("datatrove", "beam"):  # alternate so load changes hit both
                out = Path(tmp) / f"{engine}-{i}"
                secs = run(engine, a.recipe, a.data, out, a.workers)
                read, kept = duckdb.sql(f"SELECT sum(read), sum(kept) FROM read_parquet('{out}/manifest/*.parquet')").fetchall()[0]
                rates[engine].append(read / secs)
                print(f"{engine:9s} run {i}: {read} docs read, {kept} kept, {secs:6.1f} s, {read / secs:6.1f} docs/s")
                shutil.rmtree(out)
    dt = sorted(rates["datatrove"])[len(rates["datatrove"]) // 2]
    bm = sorted(rates["beam"])[len(rates["beam"]) // 2]
    print("\n| engine | docs/s (median) |\n| --- | ---: |")
    print(f"| datatrove local ({a.workers} workers) | {dt:.1f} |\n| Beam FnApiRunner ({a.workers} processes) | {bm:.1f} |")
    print(f"\nBeam / datatrove: {bm / dt:.2f}x")


if __name__ == "__main__":
    main()
