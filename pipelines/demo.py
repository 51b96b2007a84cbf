"""``corpusmill demo``: the main job end to end on a real sample.

curate (default recipe) -> train a BPE tokenizer on the curated Parquet -> pack token shards ->
train a tiny GPT for a few hundred steps -> DuckDB stats and an HTML report. Each step prints where
its outputs are; the run ends with the summary table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

EXAMPLES_PACKAGE = "corpusmill.examples"  # the repository's examples/ folder, shipped in the wheel


def example_files() -> dict[str, Traversable]:
    """Shipped example recipes: name (file stem) -> resource (works from a checkout and from a wheel)."""
    root = resources.files(EXAMPLES_PACKAGE)
    return {f.name[:-5]: f for f in sorted(root.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml")}


def example_path(name: str) -> Path:
    """A real file path for a shipped recipe (wheels and checkouts install examples as plain files)."""
    files = example_files()
    if name not in files:
        raise KeyError(name)
    return Path(str(files[name]))


def _describe(text: str) -> str:
    first = next((ln for ln in text.splitlines() if ln.startswith("#")), "#")
    return first.lstrip("# ").split(" Run:")[0].strip()


def default_input() -> Path | None:
    """$CORPUSMILL_DATA, else ``../shared/data`` from the current directory (the test data's place)."""
    env = os.environ.get("CORPUSMILL_DATA")
    for cand in ([Path(env)] if env else []) + [Path.cwd().parent / "shared" / "data", Path.cwd() / "data"]:
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
            "looks for ../shared/data and ./data from the current directory (neither found).",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out).resolve()
    recipe = args.recipe or str(example_path("default"))
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
    has_torch = importlib.util.find_spec("torch") is not None
    if has_torch:
        fresh = ["--set", "resume=false"] if args.overwrite else []  # else a rerun continues from model/ckpt.pt
        _cli(["train", "tiny", "--set", f"data_dir={shards}", "--set", f"out_dir={model}", "--set", f"max_steps={args.train_steps}",
              *fresh])
        _cli(["sample", "--checkpoint", str(model), "--tokenizer", str(tok / "tokenizer.json"), "--prompt", "The",
              "--max-new-tokens", "40"])
    _cli(["report", str(out), "--out", str(report)])
    outputs.update({"tokenizer": tok, "token shards": shards, "report": report})
    if has_torch:
        outputs["model"] = model

    _cli(["stats", str(out)])
    print("\nDemo outputs:")
    for k, v in outputs.items():
        print(f"  {k:16s} {v}")
    if has_torch:
        result = json.loads((model / "result.json").read_text())
        print(f"\ntiny GPT: validation loss {result['initial_val_loss']:.3f} at step 0 -> {result['final_val_loss']:.3f} "
              f"after {result['steps']} steps")
    else:
        print("\ntiny GPT: not trained (torch is not installed: pip install 'corpusmill[train]')")
    print(f"report: {report}")
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    files = example_files()
    if args.action == "list" or args.action is None:
        for name, f in files.items():
            print(f"{name:14s} {_describe(f.read_text(encoding='utf-8'))}")
        print("\ncopy one:  corpusmill examples copy NAME [DEST]   (then: corpusmill curate DEST/NAME.yaml --data-root RAW)")
        return 0
    name = (args.name or "").removesuffix(".yaml")
    if name not in files:
        print(f"corpusmill examples: no example {args.name!r}; choose one of {', '.join(files)}", file=sys.stderr)
        return 2
    text = files[name].read_text(encoding="utf-8")
    if args.action == "show":
        print(text, end="")
        return 0
    dest = Path(args.dest or ".")
    target = dest / f"{name}.yaml" if dest.is_dir() or not dest.suffix else dest
    if target.exists():
        print(f"corpusmill examples: {target} already exists; pass another DEST (nothing is overwritten)", file=sys.stderr)
        return 2
    from corpusmill.atomic import write_text

    write_text(target, text)
    print(f"{target}  (raw data: set CORPUSMILL_DATA, or pass --data-root to corpusmill curate)")
    return 0


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("examples", help="list, show or copy the example recipes shipped with corpusmill")
    p.add_argument("action", nargs="?", choices=["list", "show", "copy"], default="list")
    p.add_argument("name", nargs="?", help="example name (see `corpusmill examples`)")
    p.add_argument("dest", nargs="?", help="copy: a directory or a .yaml file name (default: the current directory)")
    p.set_defaults(func=cmd_examples)
