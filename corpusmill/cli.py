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

# module -> it defines add_subcommands(subparsers); each parser sets `func` (called with args)
COMMAND_MODULES = [
    "corpusmill.pipelines.curate_cli",  # curate, demo
    "corpusmill.tools.cli",  # assets, train-classifier
    "corpusmill.tools.quality_train",  # train-quality
    "corpusmill.tokenizer.cli",  # train-tokenizer, tokenizer-report, pack
    "corpusmill.trainer.cli",  # train, sample
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
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    rc = args.func(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
