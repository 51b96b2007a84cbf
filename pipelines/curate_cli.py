"""``corpusmill curate RECIPE`` and ``corpusmill demo``."""

from __future__ import annotations

import argparse
import errno
import logging
import sys

log = logging.getLogger("corpusmill")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="run a curation recipe (YAML) end to end")
    p.add_argument("recipe", help="recipe file, e.g. examples/mixed.yaml")
    p.add_argument("--engine", choices=["datatrove", "beam"], default="datatrove")
    p.add_argument("--executor", choices=["local", "ray", "slurm"], help="datatrove executor (default: the recipe's)")
    p.add_argument("--tasks", type=int, help="number of tasks (input shards are dealt round-robin)")
    p.add_argument("--workers", type=int, help="tasks running at once")
    p.add_argument("--output", "-o", help="output directory (default: the recipe's output.dir)")
    p.add_argument("--data-root", help="directory the recipe's relative input paths resolve against")
    p.add_argument("--overwrite", action="store_true", help="delete the output directory first")
    p.add_argument("--slurm-dry-run", action="store_true", default=None,
                   help="write the sbatch script without submitting (automatic when sbatch is not installed)")
    p.set_defaults(func=cmd_curate, accepts_extra_args=True)  # other flags go to Beam (--runner ...)

    d = sub.add_parser("demo", help="the whole path on a real sample: curate -> tokenizer -> pack -> train -> stats")
    d.add_argument("--input", help="directory of raw shards (default: ../shared/data when it exists)")
    d.add_argument("--out", default="runs/demo", help="where everything is written (default: runs/demo)")
    d.add_argument("--recipe", help="curation recipe (default: examples/default.yaml)")
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("--train-steps", type=int, default=300)
    d.set_defaults(func=cmd_demo)


def cmd_curate(args: argparse.Namespace, argv_rest: list[str] | None = None) -> int:
    from corpusmill.curation.accounting import AccountingError
    from corpusmill.pipelines.recipe import RecipeError, load_recipe
    from corpusmill.pipelines.run import run_recipe
    from corpusmill.pipelines.summary import print_summary

    overrides = dict(
        data_root=args.data_root, output_dir=args.output, executor=args.executor, tasks=args.tasks, workers=args.workers
    )
    _short_disk_full_logs()
    try:
        recipe = load_recipe(args.recipe, overrides)
        check_inputs(recipe)
        summary = run_recipe(recipe, engine=args.engine, overwrite=args.overwrite,
                             beam_args=getattr(args, "extra_args", None), slurm_dry_run=args.slurm_dry_run)
    except (RecipeError, AccountingError) as e:
        print(f"corpusmill curate: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        out = args.output or (recipe.output_dir if "recipe" in locals() else "the output directory")
        print(f"corpusmill curate: error: disk full ({e.strerror}) while writing {e.filename or out}; free space "
              f"under {out} and rerun the same command (finished shards are kept)", file=sys.stderr)
        return 2
    if "totals" in summary:
        print_summary(summary["output_dir"], summary["totals"])
        print(f"\nfinished in {summary['seconds']:.1f} s; summary in {summary['output_dir']}/run.json")
    elif summary.get("dry_run"):
        graph = summary["result"].job.proto_pipeline
        print(f"dry run: job graph built with {len(graph.components.transforms)} transforms; nothing was submitted or written")
    else:
        for s in summary.get("launch_scripts") or []:
            print(f"slurm launch script: {s}")
    return 0


def check_inputs(recipe) -> None:
    """Before work starts: every input pattern matches a file, no compressed file has a plain name, and
    the language-ID model a stage needs is there (fetched once here, not by every worker)."""
    from corpusmill.pipelines.inputs import list_shards
    from corpusmill.pipelines.recipe import RecipeError
    from corpusmill.preflight import compressed_but_named_plain, compressed_suffix

    try:
        shards = list_shards(recipe)
    except OSError as e:  # an object store that cannot be listed
        raise RecipeError(f"inputs: {' '.join(str(e).split())}") from None
    for sh in shards:
        if "://" in sh.path:
            continue
        kind = compressed_but_named_plain(sh.path)
        if kind:
            raise RecipeError(f"input {sh.path} looks {kind}-compressed but its name says plain text; rename it to "
                              f"{sh.path}{compressed_suffix(kind)} (its lines would all be undecodable)")
    for i, spec in enumerate(recipe.stages):
        if spec.stage == "language_id" and "://" not in str(spec.params.get("model_path") or ""):
            from corpusmill.curation.assets import AssetError, ensure_lid_model

            try:
                ensure_lid_model(spec.params.get("model_path"))
            except AssetError as e:
                raise RecipeError(f"stages[{i}].language_id: {e}") from None


def _short_disk_full_logs() -> None:
    """A full disk is logged by datatrove's tasks as one line, not a traceback (the command says what to do)."""
    try:
        from loguru import logger
    except ImportError:  # pragma: no cover - datatrove depends on loguru
        return

    def patch(record) -> None:
        exc = record["exception"]
        if exc is not None and isinstance(exc.value, OSError) and exc.value.errno in (errno.ENOSPC, errno.EDQUOT):
            record["exception"] = None

    logger.configure(patcher=patch)


def cmd_demo(args: argparse.Namespace) -> int:
    from corpusmill.pipelines.demo import run_demo
    from corpusmill.preflight import need_dir, need_file

    if args.input:
        need_dir(args.input, "--input", "give a directory of raw shards (warc/, wikipedia/, books/, webtext/)")
    if args.recipe:
        need_file(args.recipe, "--recipe")

    return run_demo(args)
