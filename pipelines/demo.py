"""``corpusmill demo``: the main job end to end on a real sample.

curate (default recipe) -> train a BPE tokenizer on the curated Parquet -> pack token shards ->
train a tiny GPT for a few hundred steps -> DuckDB stats and an HTML report. Each step prints where
its outputs are; the run ends with the summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_input() -> Path | None:
    env = os.environ.get("CORPUSMILL_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    return None


def _cli(argv: list[str]) -> None:
    from corpusmill.cli import main

    print(f"\n$ corpusmill {' '.join(argv)}", flush=True)
    rc = main(argv)
    if rc:
        raise SystemExit(f"corpusmill {argv[0]} failed with exit code {rc}")


def run_demo(args: argparse.Namespace) -> int:
    data = Path(args.input).resolve() if args.input else default_input()
    if data is None or not data.is_dir():
        print(
            "corpusmill demo: no input data. Pass --input DIR, a directory of raw shards laid out like the\n"
            "test data (warc/, wikipedia/, books/, webtext/), or set CORPUSMILL_DATA. Without --input the demo\n"
            f"looks for ../shared/data next to the repository ({REPO.parent / 'shared' / 'data'}: not found).",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out).resolve()
    recipe = args.recipe or str(REPO / "examples" / ("default.yaml" if (REPO / "examples" / "default.yaml").exists() else "mixed.yaml"))
    curated = out  # the curation run directory; later steps write next to curated/ dropped/ manifest/
    argv = ["curate", recipe, "--data-root", str(data), "--output", str(curated), "--workers", str(args.workers)]
    if args.overwrite:
        argv.append("--overwrite")
    _cli(argv)
    outputs = {"curated Parquet": curated / "curated", "dropped Parquet": curated / "dropped",
               "manifests": curated / "manifest"}

    tok = out / "tokenizer"
    shards = out / "shards"
    model = out / "model"
    report = out / "report.html"
    glob = f"{curated}/curated/*.parquet"
    _cli(["train-tokenizer", "--input", glob, "--vocab-size", "4096", "--out", str(tok)])
    _cli(["pack", "--tokenizer", str(tok), "--input", glob, "--out", str(shards), "--val-fraction", "0.05", "--seq-len", "128"])
    fresh = ["--set", "resume=false"] if args.overwrite else []  # else a rerun continues from model/ckpt.pt
    _cli(["train", "tiny", "--set", f"data_dir={shards}", "--set", f"out_dir={model}", "--set", f"max_steps={args.train_steps}",
          *fresh])
    _cli(["sample", "--checkpoint", str(model), "--tokenizer", str(tok / "tokenizer.json"), "--prompt", "The",
          "--max-new-tokens", "40"])
    _cli(["report", str(out), "--out", str(report)])
    outputs.update({"tokenizer": tok, "token shards": shards, "model": model, "report": report})

    result = json.loads((model / "result.json").read_text())
    _cli(["stats", str(out)])
    print("\nDemo outputs:")
    for k, v in outputs.items():
        print(f"  {k:16s} {v}")
    print(f"\ntiny GPT: validation loss {result['initial_val_loss']:.3f} at step 0 -> {result['final_val_loss']:.3f} "
          f"after {result['steps']} steps")
    print(f"report: {report}")
    return 0
