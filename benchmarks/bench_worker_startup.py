"""Filter-worker start-up: time and memory of a fresh process that builds the filter chain and filters
one document, for two checkouts side by side (e.g. main before a change and this worktree after it).

    .venv/bin/python benchmarks/bench_worker_startup.py [--before /work/main/.venv/bin/python] [--repeat 7]

Each run is a new interpreter (``python -c``): imports, language ID (lid.176.ftz) + Gopher repetition +
Gopher quality + C4 + FineWeb built and set up, one document through all of them. Reported: wall seconds
from process start to the end of that document (median of the runs, the two interpreters alternating),
RSS at that point (VmRSS: the idle worker) and peak (VmHWM), and whether spaCy / torch were imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from corpusmill.curation.registry import build_stage
from corpusmill.curation.stage import apply_stage
from corpusmill.curation.document import new_document
stages = [build_stage(n) for n in ("language_id", "gopher_repetition", "gopher_quality", "c4", "fineweb")]
for s in stages:
    getattr(s, "setup", lambda: None)()
doc = new_document("The quick brown fox jumps over the lazy dog. It was not amused at all!\n"
                   "Another line with enough words to be a real sentence of English text.", "f", 0)
for s in stages:
    apply_stage(s, doc)
status = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("VmRSS", "VmHWM")))
print(json.dumps({"imports_s": time.perf_counter() - t0, "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "hwm_mb": int(status["VmHWM"].split()[0]) / 1024, "spacy": "spacy" in sys.modules,
                  "torch": "torch" in sys.modules}))
"""


def run(python: str) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([python, "-c", CHILD], capture_output=True, text=True, check=True, cwd="/tmp").stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - t0
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="/work/main/.venv/bin/python", help="interpreter of the 'before' checkout")
    ap.add_argument("--after", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    res: dict[str, list[dict]] = {"before": [], "after": []}
    load0 = os.getloadavg()
    for _ in range(args.repeat):
        for name in ("before", "after"):
            res[name].append(run(getattr(args, name)))
    load1 = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load0[0]:.2f} -> {load1[0]:.2f}, "
          f"{args.repeat} runs each, alternating")
    print(f"| worker | wall s (median) | in-process s | RSS MB idle | peak MB | spaCy | torch |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    med = {}
    for name, rs in res.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "imports_s", "rss_mb", "hwm_mb")}
        med[name] = m
        print(f"| {name} ({getattr(args, name)}) | {m['wall_s']:.2f} | {m['imports_s']:.2f} | {m['rss_mb']:.0f} | "
              f"{m['hwm_mb']:.0f} | {rs[0]['spacy']} | {rs[0]['torch']} |")
    print(f"before / after: wall {med['before']['wall_s'] / med['after']['wall_s']:.1f}x, "
          f"RSS {med['before']['rss_mb'] / med['after']['rss_mb']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
