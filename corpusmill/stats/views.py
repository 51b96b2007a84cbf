"""Dataset statistics of a curation run with DuckDB: views over the run's Parquet, and the key tables.

:func:`connect` opens a DuckDB connection (in memory, or a database file) holding views over a run
directory: ``curated``, ``dropped``, ``manifest``, ``documents``, ``drops_by_shard``, ``drops``,
``signals_long``, ``dedup_clusters``, and, when present, ``shards``, ``shard_documents`` and
``tokenizer_compression``. The views read the files in place with absolute paths (nothing is loaded
whole into Python; a ``--db`` file opens anywhere on this machine); only ``RUN/curated``,
``RUN/dropped`` and ``RUN/manifest`` count. Columns and example queries: docs/stats.md.
"""

from __future__ import annotations

import glob as _globmod
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA, MANIFEST_SCHEMA

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


def _signals_as_map(con: duckdb.DuckDBPyConnection, src: str) -> str:
    """``src`` with a schema-2.x ``signals`` column (a list of key/value structs) turned into the
    ``MAP(VARCHAR, DOUBLE)`` that schema 1.x stored, so queries read ``signals['stage.x']`` either way."""
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {src})").fetchall())
    t = types.get("signals", "")
    if t.startswith("STRUCT") and t.endswith("[]"):
        return f"SELECT * REPLACE (map_from_entries(signals) AS signals) FROM ({src})"
    return src


def create_views(con: duckdb.DuckDBPyConnection, run: Run) -> list[str]:
    """(Re)create every view of ``run`` in ``con``; return the names created."""
    made = []
    for name in BASE_VIEWS:
        pattern = run.glob(name)
        if _any_file(pattern):
            src = f"SELECT * FROM read_parquet({_sql_str(pattern)}, union_by_name = true, hive_partitioning = false)"
        else:  # e.g. a run that kept nothing: an empty view with the right columns
            src = _empty_select(con, _SCHEMAS[name])
        src = _signals_as_map(con, src)
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
