"""Dataset statistics of a curation run with DuckDB: views over the run's Parquet, and the key tables.

:func:`connect` opens a DuckDB connection (in memory, or a database file) holding these views over a
run directory ``RUN`` (see ``docs/stats.md`` for their columns and example queries):

=====================  ===========================================================================
``curated``            ``RUN/curated/*.parquet``: one row per kept document (``schemas.CURATED_SCHEMA``)
``dropped``            ``RUN/dropped/*.parquet``: dropped and errored documents (``schemas.DROPPED_SCHEMA``)
``manifest``           ``RUN/manifest/*.parquet``: one row per input shard (``schemas.MANIFEST_SCHEMA``)
``documents``          kept and dropped together: ``status`` is ``kept``, ``dropped`` or ``error``
``drops_by_shard``     the manifests' ``dropped_by`` / ``errored_by`` lists, one row per shard/stage/reason
``drops``              (status, stage, reason, n): the same summed over shards
``signals_long``       one row per (document, signal): the ``signals`` map unnested
``dedup_clusters``     one row per near-duplicate cluster (size >= 2)
``shards``             packed token shards (``RUN/shards/manifest.json``), when present
``shard_documents``    the packed documents (``RUN/shards/<split>/documents.parquet``), when present
``tokenizer_compression``  bytes per token by language / source_kind (``RUN/tokenizer/report.json``)
=====================  ===========================================================================

The views read the files in place (DuckDB scans Parquet and JSON directly; nothing is loaded whole
into Python), with absolute paths, so a database written with ``--db`` opens anywhere on this machine.
Only ``RUN/curated``, ``RUN/dropped`` and ``RUN/manifest`` count: the ``_predup``/``_dedup`` working
directories of dedup runs are ignored. Both engines (datatrove and Beam) write the same layout.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import glob as _globmod
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.summary import format_table
from schemas import CURATED_SCHEMA, DROPPED_SCHEMA, MANIFEST_SCHEMA

log = logging.getLogger("corpusmill")

QUANTILES = (0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99)
QUANTILE_NAMES = tuple(f"p{round(q * 100)}" for q in QUANTILES)
DEDUP_STAGES = ("exact_dedup", "minhash_dedup")
#: stages that never appear in a recipe but can drop documents (the readers)
READ_STAGE = "read"

BASE_VIEWS = ("curated", "dropped", "manifest")
DERIVED_VIEWS = ("documents", "drops_by_shard", "drops", "signals_long", "dedup_clusters")
OPTIONAL_VIEWS = ("shards", "shard_documents", "tokenizer_compression")


# ------------------------------------------------------------------------------------------------
# the run directory


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _is_url(p: str) -> bool:
    return "://" in p


def _any_file(pattern: str) -> bool:
    if _is_url(pattern):
        import fsspec

        fs, p = fsspec.core.url_to_fs(pattern)
        return bool(fs.glob(p))
    return bool(_globmod.glob(pattern))


def _load_json(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warning("cannot read %s: %s", path, e)
        return None


@dataclass
class Run:
    """Where the pieces of a run directory are (only ``curated``/``dropped``/``manifest`` are required)."""

    root: str
    shards_manifest: Path | None = None
    shard_documents: list[Path] = field(default_factory=list)
    tokenizer_report: Path | None = None
    recipe: dict | None = None  # recipe.json's "recipe" (the raw YAML as a dict)
    run_info: dict | None = None  # run.json

    def glob(self, sub: str) -> str:
        return f"{self.root}/{sub}/*.parquet"

    @property
    def name(self) -> str:
        return (self.recipe or {}).get("name") or (self.run_info or {}).get("recipe") or Path(self.root).name

    @property
    def recipe_stages(self) -> list[tuple[str, dict]]:
        """(stage name, params) of the recipe, in recipe order ([] when recipe.json is missing)."""
        out = []
        for item in (self.recipe or {}).get("stages") or []:
            if isinstance(item, dict) and item.get("stage"):
                out.append((item["stage"], {k: v for k, v in item.items() if k != "stage"}))
        return out


class StatsError(RuntimeError):
    """The directory is not a curation run (or a --shards directory has no manifest.json)."""


def open_run(run_dir: str | Path, shards: str | Path | None = None) -> Run:
    """Locate the parts of a run directory. ``shards``: a pack directory (or its manifest.json)
    to use instead of ``RUN/shards``."""
    root = str(run_dir).rstrip("/")
    if not _is_url(root):
        p = Path(root).expanduser().resolve()
        if not p.is_dir():
            raise StatsError(f"{run_dir}: not a directory")
        root = str(p)
    if not _any_file(f"{root}/manifest/*.parquet"):
        raise StatsError(
            f"{run_dir}: no manifest/*.parquet: not a curation run directory (expected curated/, dropped/, "
            f"manifest/ as written by `corpusmill curate`), or the run has not finished any shard"
        )
    run = Run(root=root)
    local = None if _is_url(root) else Path(root)
    if shards is not None:
        sp = Path(shards).expanduser().resolve()
        man = sp if sp.is_file() else sp / "manifest.json"
        if not man.is_file():
            raise StatsError(f"--shards {shards}: no manifest.json (written by `corpusmill pack`)")
        run.shards_manifest = man
    elif local is not None and (local / "shards" / "manifest.json").is_file():
        run.shards_manifest = local / "shards" / "manifest.json"
    if run.shards_manifest is not None:
        m = _load_json(run.shards_manifest) or {}
        for split in (m.get("splits") or {}).values():
            f = run.shards_manifest.parent / split.get("documents_file", "")
            if split.get("documents_file") and f.is_file():
                run.shard_documents.append(f)
    if local is not None:
        rep = local / "tokenizer" / "report.json"
        run.tokenizer_report = rep if rep.is_file() else None
        run.recipe = (_load_json(local / "recipe.json") or {}).get("recipe")
        run.run_info = _load_json(local / "run.json")
    return run


# ------------------------------------------------------------------------------------------------
# views


def _empty_select(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> str:
    """A typed, row-less SELECT with ``schema``'s columns (for a table whose glob matches no file)."""
    rel = con.from_arrow(schema.empty_table())
    cols = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in zip(rel.columns, rel.types))
    return f"SELECT {cols} WHERE false"


_SCHEMAS = {"curated": CURATED_SCHEMA, "dropped": DROPPED_SCHEMA, "manifest": MANIFEST_SCHEMA}

_DERIVED_SQL = {
    "documents": """
        SELECT id, 'kept' AS status, CAST(NULL AS VARCHAR) AS stage, CAST(NULL AS VARCHAR) AS reason,
               source_kind, language, language_score, toxicity, signals, dedup_cluster, dedup_cluster_size,
               source_file, position, url, title, strlen(text) AS text_bytes
        FROM curated
        UNION ALL
        SELECT id, status, stage, reason,
               source_kind, language, language_score, toxicity, signals, dedup_cluster, dedup_cluster_size,
               source_file, position, url, title, strlen(text) AS text_bytes
        FROM dropped""",
    "drops_by_shard": """
        SELECT shard, source_kind, 'dropped' AS status, d.stage AS stage, d.reason AS reason, d.count AS n
        FROM (SELECT shard, source_kind, unnest(dropped_by) AS d FROM manifest)
        UNION ALL
        SELECT shard, source_kind, 'error' AS status, e.stage AS stage, e.reason AS reason, e.count AS n
        FROM (SELECT shard, source_kind, unnest(errored_by) AS e FROM manifest)""",
    "drops": """
        SELECT status, stage, reason, CAST(sum(n) AS BIGINT) AS n
        FROM drops_by_shard GROUP BY ALL""",
    "signals_long": """
        SELECT id, status, stage AS drop_stage, reason AS drop_reason, source_kind, language,
               split_part(e.key, '.', 1) AS signal_stage, e.key AS signal, e.value AS value,
               CASE WHEN status = 'kept' THEN 'kept'
                    WHEN stage = split_part(e.key, '.', 1) THEN 'dropped_here'
                    ELSE 'dropped_later' END AS outcome
        FROM (SELECT id, status, stage, reason, source_kind, language, unnest(map_entries(signals)) AS e
              FROM documents WHERE signals IS NOT NULL)""",
    "dedup_clusters": """
        SELECT dedup_cluster AS cluster, max(dedup_cluster_size) AS size, count(*) AS documents,
               count(*) FILTER (WHERE status = 'kept') AS kept,
               count(*) FILTER (WHERE status <> 'kept' AND stage IN ('exact_dedup', 'minhash_dedup')) AS removed,
               any_value(source_kind ORDER BY status = 'kept' DESC) AS source_kind
        FROM documents WHERE dedup_cluster IS NOT NULL AND dedup_cluster_size > 1 GROUP BY 1""",
}


def create_views(con: duckdb.DuckDBPyConnection, run: Run) -> list[str]:
    """(Re)create every view of ``run`` in ``con``; return the names created."""
    made = []
    for name in BASE_VIEWS:
        pattern = run.glob(name)
        if _any_file(pattern):
            src = f"SELECT * FROM read_parquet({_sql_str(pattern)}, union_by_name = true, hive_partitioning = false)"
        else:  # e.g. a run that kept nothing: an empty view with the right columns
            src = _empty_select(con, _SCHEMAS[name])
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {src}")
        made.append(name)
    for name, sql in _DERIVED_SQL.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        made.append(name)
    if run.shards_manifest is not None:
        m = _sql_str(str(run.shards_manifest))
        con.execute(f"""
            CREATE OR REPLACE VIEW shards AS
            WITH m AS (SELECT CAST(json AS JSON) AS j FROM read_json_objects({m}, format = 'auto')),
                 sp AS (SELECT unnest(map_entries(CAST(j->'splits' AS MAP(VARCHAR, JSON)))) AS e FROM m),
                 sh AS (SELECT e.key AS split, unnest(CAST(e.value->'shards' AS JSON[])) AS s,
                               generate_subscripts(CAST(e.value->'shards' AS JSON[]), 1) - 1 AS shard_index
                        FROM sp)
            SELECT split, shard_index, s->>'file' AS file, CAST(s->>'num_tokens' AS BIGINT) AS num_tokens,
                   TRY_CAST(s->>'num_pieces' AS BIGINT) AS num_pieces
            FROM sh""")
        made.append("shards")
        if run.shard_documents:
            files = "[" + ", ".join(_sql_str(str(p)) for p in run.shard_documents) + "]"
            con.execute(f"""
                CREATE OR REPLACE VIEW shard_documents AS
                SELECT parse_path(filename)[-2] AS split, id, num_tokens, text_bytes, source_file
                FROM read_parquet({files}, filename = true, union_by_name = true)""")
            made.append("shard_documents")
    if run.tokenizer_report is not None:
        r = _sql_str(str(run.tokenizer_report))
        groups = "MAP(VARCHAR, STRUCT(documents BIGINT, bytes BIGINT, tokens BIGINT, bytes_per_token DOUBLE))"
        con.execute(f"""
            CREATE OR REPLACE VIEW tokenizer_compression AS
            WITH m AS (SELECT CAST(json AS JSON) AS j FROM read_json_objects({r}, format = 'auto')),
                 g AS (SELECT 'language' AS dimension, unnest(map_entries(CAST(j->'by_language' AS {groups}))) AS e FROM m
                       UNION ALL
                       SELECT 'source_kind', unnest(map_entries(CAST(j->'by_source_kind' AS {groups}))) FROM m)
            SELECT 'overall' AS dimension, 'all' AS value, CAST(j->>'heldout_documents' AS BIGINT) AS documents,
                   CAST(j->>'heldout_bytes' AS BIGINT) AS bytes, CAST(j->>'heldout_tokens' AS BIGINT) AS tokens,
                   TRY_CAST(j->>'bytes_per_token' AS DOUBLE) AS bytes_per_token
            FROM m
            UNION ALL
            SELECT dimension, e.key, e.value.documents, e.value.bytes, e.value.tokens, e.value.bytes_per_token FROM g""")
        made.append("tokenizer_compression")
    for name in OPTIONAL_VIEWS:  # a --db file reused for another run must not keep stale views
        if name not in made:
            con.execute(f"DROP VIEW IF EXISTS {name}")
    return made


def connect(run: Run | str | Path, database: str | Path | None = None, shards: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views of ``run``. ``database``: a DuckDB file to (re)write the views
    into, so that ``duckdb FILE`` can query the run later (the views point at the Parquet files by path)."""
    if not isinstance(run, Run):
        run = open_run(run, shards)
    if database is not None:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database) if database is not None else ":memory:")
    create_views(con, run)
    return con


def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]).fetchone()[0])


# ------------------------------------------------------------------------------------------------
# stage order and thresholds


def stage_order(run: Run, seen: list[str] | None = None) -> list[str]:
    """Stages in the order documents went through them: ``read`` first, then the recipe's stages in
    recipe order (dedup runs where the recipe places it). Stages that dropped documents but are not
    in the recipe (recipe.json missing) follow in name order, dedup stages last."""
    order = [READ_STAGE] + [s for s, _ in run.recipe_stages if s != READ_STAGE]
    extra = sorted({s for s in (seen or []) if s and s not in order}, key=lambda s: (s in DEDUP_STAGES, s))
    out: list[str] = []
    for s in order + extra:
        if s not in out:
            out.append(s)
    return out


@dataclass
class Threshold:
    """Where a stage cuts a signal: documents ``below`` a ``min`` (or ``above`` a ``max``) are dropped."""

    kind: str  # "min" | "max"
    value: float
    param: str  # the stage parameter it comes from
    scope: str = ""  # set when the value applies to some documents only (per_language recipes)

    def label(self) -> str:
        return f"{self.kind} {self.value:g}" + (f" ({self.scope})" if self.scope else "")


def _on(v: Any) -> bool:
    """Stages switch a rule off with None / 0 (datatrove's convention) or -1 (C4)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v not in (0, -1) and math.isfinite(v)


# signal (without the stage prefix) -> [(kind, stage attribute)]; stage-specific extras in _dynamic()
_THRESHOLD_ATTRS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "gopher_quality": {
        "words": [("min", "min_doc_words"), ("max", "max_doc_words")],
        "mean_word_length": [("min", "min_avg_word_length"), ("max", "max_avg_word_length")],
        "hash_ratio": [("max", "max_symbol_word_ratio")],
        "ellipsis_ratio": [("max", "max_symbol_word_ratio")],
        "bullet_lines_ratio": [("max", "max_bullet_lines_ratio")],
        "end_ellipsis_lines_ratio": [("max", "max_ellipsis_lines_ratio")],
        "alpha_words_ratio": [("min", "min_alpha_words_ratio")],
        "stop_words": [("min", "min_stop_words")],
    },
    "gopher_repetition": {
        "dup_para_frac": [("max", "dup_para_frac")],
        "dup_para_char_frac": [("max", "dup_para_char_frac")],
        "dup_line_frac": [("max", "dup_line_frac")],
        "dup_line_char_frac": [("max", "dup_line_char_frac")],
    },
    "c4": {"sentences": [("min", "min_num_sentences")]},
    "fineweb": {
        "line_punct_ratio": [("min", "line_punct_thr")],
        "short_line_ratio": [("max", "short_line_thr")],
        "char_dup_ratio": [("max", "char_duplicates_ratio")],
        "new_line_ratio": [("max", "new_line_ratio")],
    },
    "stop_words": {"count": [("min", "min_stop_words")], "ratio": [("min", "min_stop_word_ratio")]},
    "language_id": {"score": [("min", "min_score")]},
    "toxicity": {"score": [("max", "threshold")]},
}

_NOTES = {
    "token_ratio.tokens_per_word": "per-language bounds (token_ratio thresholds file): no single line",
    "language_id.score": "min_score_by_language overrides, if any, are not drawn",
}


def _dynamic(stage_name: str, st: Any) -> dict[str, list[Threshold]]:
    out: dict[str, list[Threshold]] = {}
    if stage_name == "gopher_repetition":
        for n, f in getattr(st, "top_n_grams", ()) or ():
            if _on(f):
                out[f"top_{n}_gram_char_frac"] = [Threshold("max", float(f), "top_n_grams")]
        for n, f in getattr(st, "dup_n_grams", ()) or ():
            if _on(f):
                out[f"dup_{n}_gram_char_frac"] = [Threshold("max", float(f), "dup_n_grams")]
    return out


@dataclass
class Thresholds:
    """Thresholds per signal (``stage.signal``), with a note for signals/stages without one."""

    lines: dict[str, list[Threshold]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    source: str = "recipe"  # "recipe" | "defaults"

    def for_signal(self, signal: str) -> list[Threshold]:
        return self.lines.get(signal, [])

    def note(self, signal: str) -> str | None:
        if signal in self.notes:
            return self.notes[signal]
        if signal in self.lines:
            return None
        return self.notes.get(signal.split(".", 1)[0]) or "no threshold: informational signal (or the rule is off)"


def signal_thresholds(run: Run, signal_stages: list[str] | None = None) -> Thresholds:
    """The cut-offs each filter applies to its signals, read from the stage objects built with the
    recipe's parameters (``curation.registry.build_stage``). Without recipe.json the stages named by
    ``signal_stages`` are built with their defaults (and the result says so)."""
    from curation.registry import STAGES, build_stage

    specs = run.recipe_stages
    th = Thresholds(source="recipe" if run.recipe is not None else "defaults")
    if run.recipe is None:
        specs = [(s, {}) for s in (signal_stages or []) if s in STAGES]
    for stage_name, params in specs:
        attrs = _THRESHOLD_ATTRS.get(stage_name)
        if attrs is None and stage_name != "gopher_repetition":
            continue
        try:
            st = build_stage(stage_name, params)
        except Exception as e:  # a stage that cannot be built here (missing optional dependency ...)
            th.notes[stage_name] = f"thresholds unknown: cannot build stage {stage_name!r} here ({type(e).__name__}: {e})"
            continue
        for sig, specs_ in (attrs or {}).items():
            lines = []
            for kind, attr in specs_:
                v = getattr(st, attr, None)
                if _on(v):
                    lines.append(Threshold(kind, float(v), attr))
            if lines:
                th.lines[f"{stage_name}.{sig}"] = lines
        for sig, lines in _dynamic(stage_name, st).items():
            th.lines[f"{stage_name}.{sig}"] = lines
        if params.get("per_language") is not None:  # the stage's own values; listed languages have theirs
            scope = "stage value; per-language values for the languages in per_language"
            if isinstance(params["per_language"], str):
                scope = f"stage value; {params['per_language']} values for the languages in its table"
            for sig, lines in th.lines.items():
                if sig.startswith(stage_name + "."):
                    for t in lines:
                        t.scope = scope
    for sig, note in _NOTES.items():
        th.notes.setdefault(sig, note)
    if th.source == "defaults":
        for sig in list(th.lines):
            th.notes.setdefault(sig, "stage default (no recipe.json in the run directory)")
    return th


def toxicity_threshold(th: Thresholds) -> float | None:
    lines = th.for_signal("toxicity.score")
    return lines[0].value if lines else None


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
    th = signal_thresholds(run, stages)
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
    """A plain-text table (``pipelines.summary.format_table``), long cells cut to ``max_width``."""
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

