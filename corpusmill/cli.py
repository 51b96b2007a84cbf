"""The ``corpusmill`` command line.

Each subcommand lives next to the code it drives and registers itself through an
``add_subcommands(subparsers)`` function in one of the modules below; this file only assembles them,
importing each lazily enough that ``corpusmill --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from corpusmill.preflight import UsageError

# what a user's mistake raises (a missing path, a bad value): one line and exit code 2; anything else is a bug
USER_ERRORS = (UsageError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)

# module -> it defines add_subcommands(subparsers); each parser sets `func` (called with args)
COMMAND_MODULES = [
    "corpusmill.pipelines.curate_cli",  # curate, demo
    "corpusmill.tools.cli",  # assets, train-classifier
    "corpusmill.tools.export_dataset",  # export-dataset
    "corpusmill.pipelines.demo",  # examples
    "corpusmill.tools.quality_train",  # train-quality
    "corpusmill.tokenizer.cli",  # train-tokenizer, tokenizer-report, pack
    "corpusmill.trainer.cli",  # train, sample
    "corpusmill.trainer.export",  # export
    "corpusmill.stats.cli",  # stats, report
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corpusmill",
        description="Curate LLM pretraining corpora: raw shards -> curated Parquet -> tokens -> model.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:  # that part is not built yet
                continue
            raise
        m.add_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "accepts_extra_args", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.extra_args = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from corpusmill.pipelines import progress

    progress.VERBOSE = bool(args.verbose)  # quiet engines/workers during runs unless -v
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except USER_ERRORS as e:
        if args.verbose:
            raise
        print(f"corpusmill {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    return int(rc or 0)


def one_line(e: BaseException) -> str:
    """An exception as one line: what was wrong, and where (the file it names)."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({e.strerror}) writing {e.filename or 'the output'}; free space and rerun the same command"
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if isinstance(e, UsageError) else f"{msg} (run with -v for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
