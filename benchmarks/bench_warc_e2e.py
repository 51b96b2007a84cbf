"""WARC -> Parquet end to end: corpusmill ``curate`` vs a datatrove pipeline, with resiliparse and with
trafilatura, each run a fresh process (what a user waits for), the four alternating.

    .venv/bin/python benchmarks/bench_warc_e2e.py [--copies 20] [--repeat 3] [--extractors resiliparse,trafilatura]

Input: the shared CC-MAIN-2020-34 WARC excerpt concatenated ``--copies`` times (gzip members append; 16
HTML responses per copy) plus the whirlwind capture once, in one shard. Both sides: one task, one worker,
read WARC -> extract HTML -> write zstd Parquet.

Like with like:
* resiliparse: datatrove 0.10 ships no resiliparse extractor, so its side is a ``BaseExtractor``
  subclass calling ``extract_plain_text`` with our options (main content, no alt texts / links / forms /
  noscript, list bullets, formatting kept); datatrove runs it in its per-document sandbox process.
* trafilatura: datatrove's ``Trafilatura`` with ``favour_precision=False, deduplicate=False`` and
  ``include_tables=True`` (our settings; its defaults favour precision and deduplicate across documents,
  which drops text and makes the output order-dependent), ``include_comments=False`` on both.
* datatrove's per-document timeout is raised to 30 s so that no page is lost to it on a loaded machine.
* both run with compiled bytecode, as after an install: one untimed warm-up run each fills a bytecode
  cache (``PYTHONPYCACHEPREFIX``) that an environment with ``PYTHONDONTWRITEBYTECODE`` would not keep.
Ours runs the ``curate`` command (reader, extract stage, accounting, curated/dropped/manifest Parquet).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

DATATROVE = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import ParquetWriter
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import BaseExtractor

class Resiliparse(BaseExtractor):
    name = "resiliparse"
    def __init__(self, timeout=30):
        super().__init__(timeout)
    def extract(self, text):
        from resiliparse.extract.html2text import extract_plain_text
        return extract_plain_text(text, main_content=True, alt_texts=False, links=False, form_fields=False,
                                  noscript=False, list_bullets=True, preserve_formatting=True)

data, out, which = sys.argv[1:4]
ext = Resiliparse() if which == "resiliparse" else Trafilatura(favour_precision=False, deduplicate=False, timeout=30,
                                                                 include_tables=True)
LocalPipelineExecutor(pipeline=[WarcReader(data, glob_pattern="*.warc.gz"), ext,
                                ParquetWriter(out + "/out", compression="zstd")],
                      tasks=1, workers=1, logging_dir=out + "/logs").run()
"""

RECIPE = """name: e2e
data_root: {data}
inputs:
  - path: .
    glob: "*.warc.gz"
    reader: warc
stages:
  - stage: extract
    extractor: {which}
output:
  dir: {out}
  compression: zstd
engine:
  executor: local
  tasks: 1
  workers: 1
"""


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO, env=env)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--extractors", default="resiliparse,trafilatura")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    data = work / "data"
    data.mkdir()
    sample = (Path(args.data) / "warc" / "CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    whirl = (Path(args.data) / "warc" / "CC-MAIN-2024-22_whirlwind.warc.gz").read_bytes()
    (data / "in.warc.gz").write_bytes(sample * args.copies + whirl)
    pages = 16 * args.copies + 1
    (work / "dt.py").write_text(DATATROVE)
    # compiled modules as after an install, for both sides: bytecode is cached under the run's folder (an
    # environment with PYTHONDONTWRITEBYTECODE would otherwise recompile every module without a .pyc, i.e.
    # all of corpusmill's, in every run), filled by one untimed warm-up run of each pipeline
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    times: dict[str, list[float]] = {}
    extractors = args.extractors.split(",")
    for r in range(-1, args.repeat):
        if r == 0:
            load0 = os.getloadavg()
        for which in extractors:
            out = work / f"ours-{which}-{r}"
            (work / f"{which}.yaml").write_text(RECIPE.format(data=data, which=which, out=out))
            t_ours = run([PY, "-m", "corpusmill.cli", "curate", str(work / f"{which}.yaml")], env)
            t_dt = run([PY, str(work / "dt.py"), str(data), str(work / f"dt-{which}-{r}"), which], env)
            if r >= 0:
                times.setdefault(f"corpusmill {which}", []).append(t_ours)
                times.setdefault(f"datatrove {which}", []).append(t_dt)
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"input: {pages} HTML pages ({len(sample) * args.copies + len(whirl):,} bytes gzipped), one shard; "
          f"{args.repeat} runs each after one warm-up, alternating; load average {load0[0]:.2f} -> {load1[0]:.2f}; "
          f"{os.cpu_count()} cores")
    print("| pipeline | wall s (median) | runs | pages/s |")
    print("| --- | ---: | --- | ---: |")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} | {pages / med[k]:.1f} |")
    for which in extractors:
        print(f"{which}: corpusmill / datatrove = {med[f'datatrove {which}'] / med[f'corpusmill {which}']:.2f}x")
    import pyarrow.parquet as pq

    for which in extractors:
        ours = pq.read_table(sorted((work / f"ours-{which}-0" / "curated").glob("*.parquet"))).num_rows
        dt = pq.read_table(sorted((work / f"dt-{which}-0" / "out").rglob("*.parquet"))).num_rows
        print(f"{which}: documents written: corpusmill {ours} (+ dropped as empty), datatrove {dt}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
