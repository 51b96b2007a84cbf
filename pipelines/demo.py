"""``corpusmill demo``: the main job end to end on a real sample.

curate (default recipe) -> train a BPE tokenizer on the curated Parquet -> pack token shards ->
train a tiny GPT for a few hundred steps -> DuckDB stats and an HTML report. Each step prints where
its outputs are; the run ends with the summary table.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _cli(argv: list[str]) -> None:
    from pipelines.cli import main

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

    if _have("tokenizer.cli"):
        tok = out / "tokenizer"
        shards = out / "shards"
        _cli(["train-tokenizer", "--input", f"{curated}/curated/*.parquet", "--vocab-size", "4096", "--out", str(tok)])
        _cli(["pack", "--tokenizer", str(tok), "--input", f"{curated}/curated/*.parquet", "--out", str(shards),
              "--val-fraction", "0.05", "--seq-len", "128"])
        outputs.update({"tokenizer": tok, "token shards": shards})
        if _have("trainer.cli"):
            model = out / "model"
            _cli(["train", "tiny", "--set", f"data_dir={shards}", "--set", f"out_dir={model}",
                  "--set", f"max_steps={args.train_steps}"])
            _cli(["sample", "--checkpoint", str(model), "--tokenizer", str(tok / "tokenizer.json"),
                  "--prompt", "The", "--max-new-tokens", "40"])
            outputs["model"] = model
    if _have("pipelines.stats_cli"):
        report = out / "report.html"
        _cli(["stats", str(out)])
        _cli(["report", str(out), "--out", str(report)])
        outputs["report"] = report

    print("\nDemo outputs:")
    for k, v in outputs.items():
        print(f"  {k:14s} {v}")
    from pipelines.summary import check_run, print_summary
    from pipelines.recipe import load_recipe
    from pipelines.inputs import list_shards

    rec = load_recipe(recipe, {"data_root": str(data), "output_dir": str(curated)})
    print_summary(str(curated), check_run(str(curated), [s.source_file for s in list_shards(rec)]))
    return 0
