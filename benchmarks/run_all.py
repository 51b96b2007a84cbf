"""Run every benchmark in this folder, one after the other, and print their tables.

    .venv/bin/python benchmarks/run_all.py [NAME ...]     # e.g. readers filters

Each ``bench_<name>.py`` runs corpusmill side by side with its peer tool (datatrove, datasketch,
sentencepiece, HF tokenizers, a nanoGPT-style loop) on the same input in one process and prints the
ratio. Results with the commands that produced them are in ``benchmarks/RESULTS.md``. Run them on an
idle machine: the numbers are wall-clock rates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    rc = 0
    for s in scripts:
        print(f"\n===== {s.name} =====", flush=True)
        rc |= subprocess.call([sys.executable, str(s)], cwd=HERE.parent)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
