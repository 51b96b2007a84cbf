"""``corpusmill stats`` and ``corpusmill report``: DuckDB statistics and an HTML report of a run."""

from __future__ import annotations

import argparse
import json
import sys


def _open(args):
    from corpusmill.stats.views import StatsError, connect, open_run

    try:
        run = open_run(args.run_dir, args.shards)
    except StatsError as e:
        print(f"corpusmill {args.command}: error: {e}", file=sys.stderr)
        return None, None
    return run, connect(run, database=getattr(args, "db", None))


def _thresholded_only(sec):
    """The signal rows that have a threshold (the filter signals); say how many were left out."""
    from dataclasses import replace

    i = sec.columns.index("threshold")
    rows = [r for r in sec.rows if r[i]]
    left = len({r[0] for r in sec.rows}) - len({r[0] for r in rows})
    note = sec.note
    if left:
        note = f"{note}; {left} informational signals without a threshold not shown (--top 0 or --json shows them)"
    return replace(sec, rows=rows, note=note)


def cmd_stats(args: argparse.Namespace) -> int:
    import duckdb

    from corpusmill.stats.tables import all_sections, describe_views, jsonable, render_section, render_table, run_sql

    run, con = _open(args)
    if run is None:
        return 2
    try:
        if args.db:
            print(f"wrote views to {args.db} (open it with: duckdb {args.db})", file=sys.stderr)
        if args.views:
            rows = describe_views(con)
            if args.json:
                print(json.dumps({v: c.split(", ") for v, c in rows}, indent=2))
            else:
                print(render_table(["view", "columns"], rows, max_width=0))
            return 0
        if args.sql:
            try:
                cols, rows = run_sql(con, args.sql)
            except duckdb.Error as e:
                print(f"corpusmill stats --sql: {e}", file=sys.stderr)
                return 1
            if args.json:
                print(json.dumps([dict(zip(cols, map(jsonable, r))) for r in rows], indent=2, ensure_ascii=False))
            elif cols:
                print(render_table(cols, rows, max_width=args.max_width))
                print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
            return 0
        sections = all_sections(con, run)
        if args.json:
            out = {"run_dir": run.root, "recipe": run.name}
            out.update({s.name: s.records() for s in sections})
            print(json.dumps(out, indent=2, ensure_ascii=False))
            return 0
        print(f"Run {run.root} (recipe {run.name})\n")
        top = args.top or None
        for s in sections:
            if s.name == "signals" and top and "threshold" in s.columns:
                s = _thresholded_only(s)
            long_table = s.name in ("by_language", "shards")
            print(render_section(s, max_rows=top if long_table else None, max_width=args.max_width))
            print()
        print("Query these tables yourself: corpusmill stats RUN --sql \"SELECT ...\" (views: corpusmill stats RUN --views)")
        return 0
    finally:
        con.close()


def cmd_report(args: argparse.Namespace) -> int:
    from corpusmill.stats.report import write_report
    from corpusmill.stats.views import StatsError

    try:
        path = write_report(args.run_dir, args.out, shards=args.shards)
    except StatsError as e:
        print(f"corpusmill report: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="dataset statistics of a run with DuckDB (tables, --sql queries, a --db file)",
        description=(
            "Register a run's Parquet (curated, dropped, manifest), packed-shard manifest and tokenizer report as "
            "DuckDB views and print the key tables, or run --sql over them. Views: curated, dropped, manifest, "
            "documents, drops, drops_by_shard, signals_long, dedup_clusters, shards, shard_documents, "
            "tokenizer_compression (--views lists their columns; docs/stats.md in the source repository has example queries)."
        ),
    )
    p.add_argument("run_dir", help="a curation run directory (RUN/curated, RUN/dropped, RUN/manifest)")
    p.add_argument("--sql", help="run this SQL over the views and print the result instead of the tables")
    p.add_argument("--db", metavar="FILE", help="also write the views into this DuckDB database file")
    p.add_argument("--shards", metavar="DIR", help="packed token shards (default: RUN/shards when present)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--views", action="store_true", help="list the views and their columns")
    p.add_argument("--top", type=int, default=30, help="rows shown of the long tables (0: all; default 30)")
    p.add_argument("--max-width", type=int, default=80, help="cut longer cells in tables (0: never; default 80)")
    p.set_defaults(func=cmd_stats)

    r = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a run (funnel, languages, lengths, signals, dedup, tokens)",
        description="Write a self-contained HTML report (inline images, no scripts, no network) of a curation run.",
    )
    r.add_argument("run_dir", help="a curation run directory")
    r.add_argument("--out", "-o", help="output HTML file (default: RUN/report.html)")
    r.add_argument("--shards", metavar="DIR", help="packed token shards (default: RUN/shards when present)")
    r.set_defaults(func=cmd_report)
