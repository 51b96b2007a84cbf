"""CPU and peak RSS of one dedup task for a buffer size (one process; run one per setting).

    # bucket phase (all jobs) over a copy of a run's work directory, for a window size
    .venv/bin/python benchmarks/bench_dedup_buffers.py window RUN/_dedup 100000
    # signature task over the first DOCS documents of a generated corpus, for a buffer size
    .venv/bin/python benchmarks/bench_dedup_buffers.py buffer CORPUS 50000 --docs 150000

Prints one JSON line: CPU seconds of this process and its VmHWM (peak RSS).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def hwm_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def window(src: Path, size: int) -> dict:
    from corpusmill.curation.dedup.lsh import bucket_jobs, load_config, run_bucket_job

    work = Path(tempfile.mkdtemp(prefix="bench-window-"))
    try:
        shutil.copytree(src / "sig", work / "sig")
        shutil.copy(src / "config.json", work / "config.json")
        h0, t0 = hwm_mb(), time.process_time()
        edges = sum(run_bucket_job(work, job, 1, size) for job in bucket_jobs(load_config(work)))
        return {"window_records": size, "cpu_s": round(time.process_time() - t0, 2), "edges": edges,
                "hwm_before_mb": h0, "hwm_mb": hwm_mb()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def buffer(corpus: Path, size: int, docs: int, shard_docs: int = 10_000) -> dict:
    from corpusmill.curation.dedup.lsh import DedupConfig, SignatureWriter

    work = tempfile.mkdtemp(prefix="bench-buffer-")
    try:
        with SignatureWriter(work, DedupConfig(verify="signature"), 0, 1, size) as w:
            w.add("warm-up", "warm up the kernels and tables")
            h0, t0 = hwm_mb(), time.process_time()
            i = 0
            for k in range(docs // shard_docs):
                for line in open(corpus / "docs" / f"part-{k:05d}.jsonl", encoding="utf-8"):
                    d = json.loads(line)
                    w.add(d["id"], d["text"], f"part-{k:05d}", i)
                    i += 1
        return {"max_buffer_docs": size, "docs": docs, "cpu_s": round(time.process_time() - t0, 1),
                "hwm_after_imports_mb": h0, "hwm_mb": hwm_mb()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["window", "buffer"])
    ap.add_argument("path", type=Path)
    ap.add_argument("size", type=int)
    ap.add_argument("--docs", type=int, default=150_000)
    a = ap.parse_args(argv)
    print(json.dumps(window(a.path, a.size) if a.what == "window" else buffer(a.path, a.size, a.docs)))


if __name__ == "__main__":
    main()
