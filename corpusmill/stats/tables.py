"""The key tables of a run (overview, sources, languages, funnel, drops, signal quantiles, dedup,
toxicity, shards, tokenizer) as :class:`Section` objects, and their text rendering."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from corpusmill.pipelines.summary import format_table
from corpusmill.stats.thresholds import Thresholds, signal_thresholds, stage_order
from corpusmill.stats.views import BASE_VIEWS, DERIVED_VIEWS, OPTIONAL_VIEWS, QUANTILES, QUANTILE_NAMES, READ_STAGE, Run, has_view

log = logging.getLogger("corpusmill")

# ------------------------------------------------------------------------------------------------
# the key tables


@dataclass
class Section:
    name: str
    title: str
    columns: list[str]
    rows: list[tuple]
    note: str | None = None

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, (jsonable(v) for v in r))) for r in self.rows]


def _q(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
    cur = con.execute(sql, params or [])
    return [d[0] for d in cur.description], cur.fetchall()


def totals(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    cols, rows = _q(con, """
        SELECT count(*) AS shards, coalesce(sum(read), 0) AS read, coalesce(sum(kept), 0) AS kept,
               coalesce(sum(dropped), 0) AS dropped, coalesce(sum(errored), 0) AS errored,
               coalesce(sum(input_bytes), 0) AS input_bytes, coalesce(sum(kept_text_bytes), 0) AS kept_text_bytes
        FROM manifest""")
    return {c: int(v) for c, v in zip(cols, rows[0])}


def overview(con: duckdb.DuckDBPyConnection) -> Section:
    t = totals(con)
    rows = [(k, v) for k, v in t.items()]
    if has_view(con, "shards"):
        n, tok = con.execute("SELECT count(*), coalesce(sum(num_tokens), 0) FROM shards").fetchone()
        rows += [("token_shards", int(n)), ("tokens", int(tok))]
    return Section("overview", "Run totals (from the manifests)", ["quantity", "value"], rows)


def by_source(con: duckdb.DuckDBPyConnection) -> Section:
    tok = has_view(con, "shard_documents")
    tok_cte = """, tok AS (SELECT c.source_kind, sum(sd.num_tokens) AS tokens
                          FROM shard_documents sd JOIN curated c USING (id) GROUP BY 1)""" if tok else ""
    cols, rows = _q(con, f"""
        WITH m AS (SELECT source_kind, sum(read) AS read, sum(kept) AS kept, sum(dropped) AS dropped,
                          sum(errored) AS errored, sum(kept_text_bytes) AS kept_bytes
                   FROM manifest GROUP BY 1){tok_cte}
        SELECT m.source_kind, CAST(read AS BIGINT) AS read, CAST(kept AS BIGINT) AS kept,
               CAST(dropped AS BIGINT) AS dropped, CAST(errored AS BIGINT) AS errored,
               round(100.0 * kept / nullif(read, 0), 1) AS kept_pct, round(kept_bytes / 1e6, 2) AS kept_mb
               {", CAST(tok.tokens AS BIGINT) AS tokens" if tok else ""}
        FROM m {"LEFT JOIN tok USING (source_kind)" if tok else ""} ORDER BY read DESC, 1""")
    return Section("by_source", "Documents by source_kind: read / kept / dropped / errored", cols, rows,
                   "kept_mb: UTF-8 bytes of kept text" + ("; tokens: packed tokens incl. one EOS per document" if tok else ""))


def by_language(con: duckdb.DuckDBPyConnection) -> Section:
    tok = has_view(con, "shard_documents")
    cols, rows = _q(con, f"""
        SELECT c.source_kind, coalesce(c.language, '?') AS language, count(*) AS documents,
               round(sum(strlen(c.text)) / 1e6, 3) AS mb
               {", CAST(sum(sd.num_tokens) AS BIGINT) AS tokens" if tok else ""}
        FROM curated c {"LEFT JOIN shard_documents sd USING (id)" if tok else ""}
        GROUP BY ALL ORDER BY documents DESC, 1, 2""")
    return Section("by_language", "Kept documents, bytes" + (" and tokens" if tok else "") + " by source_kind and language",
                   cols, rows, "language '?': no language ID ran (or it gave none)")


def funnel(con: duckdb.DuckDBPyConnection, run: Run) -> Section:
    """Documents left after each stage: read, then each stage in order, then kept."""
    t = totals(con)
    _, drops = _q(con, "SELECT stage, status, sum(n) FROM drops GROUP BY ALL")
    per: dict[str, list[int]] = {}
    for stage, status, n in drops:
        per.setdefault(stage, [0, 0])[0 if status == "dropped" else 1] += int(n)
    order = stage_order(run, list(per))
    rows = [("read", None, t["read"], 0, 0, 100.0)]
    left = t["read"]
    for s in order:
        d, e = per.get(s, [0, 0])
        if s == READ_STAGE:
            if not (d or e):
                continue
            name = "readable"
        else:
            name = f"after {s}"
        left -= d + e
        rows.append((name, s, left, d, e, round(100.0 * left / t["read"], 1) if t["read"] else None))
    rows.append(("kept", None, t["kept"], None, None, round(100.0 * t["kept"] / t["read"], 1) if t["read"] else None))
    note = None if run.recipe is not None else "stage order guessed: no recipe.json in the run directory"
    if left != t["kept"]:
        note = (note + "; " if note else "") + f"the funnel ends at {left:,} but the manifests say kept={t['kept']:,}"
    return Section("funnel", "Funnel: documents left after each stage", ["step", "stage", "documents", "dropped", "errored", "pct_of_read"], rows, note)


def drops(con: duckdb.DuckDBPyConnection, run: Run) -> Section:
    _, rows = _q(con, "SELECT status, stage, reason, n FROM drops WHERE n > 0")
    read = totals(con)["read"] or 1
    order = {s: i for i, s in enumerate(stage_order(run, [r[1] for r in rows]))}
    rows.sort(key=lambda r: (order.get(r[1], 1e9), -r[3], r[0], r[2]))
    return Section("drops", "Dropped and errored documents by stage and reason (from the manifests)",
                   ["status", "stage", "reason", "documents", "pct_of_read"],
                   [(s, st, r, int(n), round(100.0 * n / read, 2)) for s, st, r, n in rows])


def signal_quantiles(con: duckdb.DuckDBPyConnection, run: Run | None = None, th: Thresholds | None = None) -> Section:
    """Quantiles of every signal by outcome; signals with a threshold first, in stage order."""
    qs = ", ".join(str(q) for q in QUANTILES)
    names = ", ".join(f"q[{i + 1}] AS {n}" for i, n in enumerate(QUANTILE_NAMES))
    cols, rows = _q(con, f"""
        SELECT signal, outcome, n, {names}
        FROM (SELECT signal, outcome, count(*) AS n, quantile_cont(value, [{qs}]) AS q
              FROM signals_long WHERE isfinite(value) GROUP BY ALL)""")
    order = {s: i for i, s in enumerate(stage_order(run, [r[0].split(".", 1)[0] for r in rows]))} if run else {}
    outcome = {"kept": 0, "dropped_here": 1, "dropped_later": 2}
    has = (lambda sig: bool(th.for_signal(sig))) if th is not None else (lambda sig: False)
    rows.sort(key=lambda r: (not has(r[0]), order.get(r[0].split(".", 1)[0], 1e9), r[0], outcome.get(r[1], 3)))
    if th is not None:
        cols = cols + ["threshold"]
        rows = [r + (", ".join(x.label() for x in th.for_signal(r[0])) or "",) for r in rows]
    return Section("signals", "Signal distributions (quantiles) over kept documents, documents dropped by the "
                   "signal's own stage (dropped_here), and documents dropped by a later stage (dropped_later)", cols,
                   [tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in rows],
                   "threshold: the stage's cut-off (min x: documents below x are dropped, max x: above x); blank: informational signal"
                   if rows else "no signals: the recipe ran no filter stage")


def dedup_cluster_sizes(con: duckdb.DuckDBPyConnection) -> Section:
    cols, rows = _q(con, """
        SELECT size, count(*) AS clusters, CAST(sum(documents) AS BIGINT) AS documents,
               CAST(sum(kept) AS BIGINT) AS kept, CAST(sum(removed) AS BIGINT) AS removed_by_dedup
        FROM dedup_clusters GROUP BY 1 ORDER BY 1""")
    return Section("dedup", "Near-duplicate clusters by size", cols, rows,
                   None if rows else "no clusters: no dedup stage ran, or no duplicates were found")


def toxicity_histogram(con: duckdb.DuckDBPyConnection, bins: int = 10) -> Section:
    cols, rows = _q(con, f"""
        SELECT least(floor(toxicity * {bins}), {bins - 1}) / {bins} AS lo,
               count(*) FILTER (WHERE status = 'kept') AS kept,
               count(*) FILTER (WHERE status <> 'kept' AND stage = 'toxicity') AS dropped_here,
               count(*) FILTER (WHERE status <> 'kept' AND stage <> 'toxicity') AS dropped_later
        FROM documents WHERE toxicity IS NOT NULL AND isfinite(toxicity) GROUP BY 1 ORDER BY 1""")
    out = [(f"[{lo:.1f}, {lo + 1 / bins:.1f}{']' if lo >= 1 - 1.5 / bins else ')'}", k, d, dl) for lo, k, d, dl in rows]
    return Section("toxicity", "Toxicity score histogram", ["score", "kept", "dropped_here", "dropped_later"], out,
                   None if rows else "no toxicity scores: no toxicity stage ran")


def shard_tokens(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not has_view(con, "shards"):
        return None
    cols, rows = _q(con, "SELECT split, shard_index, file, num_tokens, num_pieces FROM shards ORDER BY split = 'val', split, shard_index")
    return Section("shards", "Tokens per packed shard", cols, rows)


def tokenizer_compression(con: duckdb.DuckDBPyConnection) -> Section | None:
    if not has_view(con, "tokenizer_compression"):
        return None
    cols, rows = _q(con, """SELECT * FROM tokenizer_compression
                           ORDER BY CASE dimension WHEN 'overall' THEN 0 WHEN 'source_kind' THEN 1 ELSE 2 END, bytes DESC""")
    return Section("tokenizer", "Tokenizer compression on held-out documents (bytes per token, higher = better)", cols, rows)


def all_sections(con: duckdb.DuckDBPyConnection, run: Run) -> list[Section]:
    stages = [r[0] for r in con.execute("SELECT DISTINCT signal_stage FROM signals_long").fetchall()]
    th = signal_thresholds(run, stages, con)
    out = [overview(con), by_source(con), by_language(con), funnel(con, run), drops(con, run),
           signal_quantiles(con, run, th), dedup_cluster_sizes(con), toxicity_histogram(con)]
    out += [s for s in (shard_tokens(con), tokenizer_compression(con)) if s is not None]
    return out


# ------------------------------------------------------------------------------------------------
# output


def jsonable(v: Any) -> Any:
    """A DuckDB value as JSON-able Python (decimals, timestamps, maps, blobs ...)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def _cell(v: Any, max_width: int) -> Any:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:g}"
        return f"{v:,.2f}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, (int, type(None))) and not isinstance(v, bool):
        return v
    if isinstance(v, decimal.Decimal):
        return _cell(jsonable(v), max_width)
    s = json.dumps(jsonable(v), ensure_ascii=False) if isinstance(v, (dict, list, tuple)) else str(v)
    s = s.replace("\r", "").replace("\n", "⏎").replace("\t", " ")
    if max_width and len(s) > max_width:
        s = s[: max_width - 1] + "…"
    return s


def render_table(columns: list[str], rows: list[tuple], max_width: int = 80) -> str:
    """A plain-text table (``corpusmill.pipelines.summary.format_table``), long cells cut to ``max_width``."""
    return format_table(columns, [tuple(_cell(v, max_width) for v in r) for r in rows])


def render_section(sec: Section, max_rows: int | None = None, max_width: int = 80) -> str:
    lines = [f"== {sec.title}"]
    rows = sec.rows if max_rows is None else sec.rows[:max_rows]
    if rows:
        lines.append(render_table(sec.columns, rows, max_width))
    if max_rows is not None and len(sec.rows) > max_rows:
        lines.append(f"... {len(sec.rows) - max_rows} more rows (--top 0 shows all, --json gives every row)")
    if sec.note:
        lines.append(f"({sec.note})")
    elif not rows:
        lines.append("(none)")
    return "\n".join(lines)


def run_sql(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one or more ``;``-separated statements; the result of the last one (empty for DDL)."""
    cur = con.execute(sql)
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], cur.fetchall()


def describe_views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(view, columns) of every corpusmill view present."""
    out = []
    for name in BASE_VIEWS + DERIVED_VIEWS + OPTIONAL_VIEWS:
        if has_view(con, name):
            cols = con.execute(f"DESCRIBE {name}").fetchall()
            out.append((name, ", ".join(c[0] for c in cols)))
    return out
