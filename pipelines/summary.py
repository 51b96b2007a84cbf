"""After a run: check the accounting over every shard, summarise with DuckDB, write run.json."""

from __future__ import annotations

import json
import logging
from typing import Any

import fsspec

from corpusmill.curation.accounting import AccountingError, manifest_path

log = logging.getLogger("corpusmill")


def _glob(output_dir: str, sub: str) -> str:
    return f"{output_dir.rstrip('/')}/{sub}/*.parquet"


def _connect(output_dir: str) -> "duckdb.DuckDBPyConnection":  # noqa: F821
    """A DuckDB connection that reads ``output_dir``; object stores go through fsspec (DuckDB's own
    httpfs extension would be downloaded at run time)."""
    import duckdb  # here, not at import: the engines import this module at start-up

    con = duckdb.connect()
    fs = fsspec.core.url_to_fs(output_dir)[0]
    if fs.protocol not in ("file", ("file", "local")):
        con.register_filesystem(fs)
    return con


def check_run(output_dir: str, shard_names: list[str]) -> dict[str, Any]:
    """Every shard has a manifest, every manifest adds up, and the Parquet row counts match it."""
    missing = []
    for sf in shard_names:
        fs, p = fsspec.core.url_to_fs(manifest_path(output_dir, sf))
        if not fs.exists(p):
            missing.append(sf)
    if missing:
        raise AccountingError(f"{len(missing)} shard(s) have no manifest (did a task fail?): {', '.join(missing[:10])}")
    con = _connect(output_dir)
    m = con.execute(
        f"""SELECT count(*), sum(read), sum(kept), sum(dropped), sum(errored),
                   count(*) FILTER (WHERE read != kept + dropped + errored)
            FROM read_parquet('{_glob(output_dir, "manifest")}') WHERE shard IN (SELECT unnest(?))""",
        [shard_names],
    ).fetchone()
    n, read, kept, dropped, errored, bad = (int(x or 0) for x in m)
    if bad:
        raise AccountingError(f"{bad} manifest row(s) where read != kept + dropped + errored")
    files_kept = con.execute(f"SELECT count(*) FROM read_parquet('{_glob(output_dir, 'curated')}')").fetchone()[0]
    files_rej = con.execute(
        f"SELECT count(*) FILTER (WHERE status='dropped'), count(*) FILTER (WHERE status='error') "
        f"FROM read_parquet('{_glob(output_dir, 'dropped')}')"
    ).fetchone()
    if (files_kept, files_rej[0], files_rej[1]) != (kept, dropped, errored):
        raise AccountingError(
            f"Parquet rows (kept={files_kept}, dropped={files_rej[0]}, errored={files_rej[1]}) "
            f"differ from the manifest (kept={kept}, dropped={dropped}, errored={errored})"
        )
    return {"shards": n, "read": read, "kept": kept, "dropped": dropped, "errored": errored, "identity_holds": True}


def summary_tables(output_dir: str) -> dict[str, list[tuple]]:
    con = _connect(output_dir)
    by_source = con.execute(
        f"""SELECT source_kind, sum(read) AS read, sum(kept) AS kept, sum(dropped) AS dropped,
                   sum(errored) AS errored, round(sum(kept_text_bytes)/1e6, 2) AS kept_mb
            FROM read_parquet('{_glob(output_dir, "manifest")}') GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    by_reason = con.execute(
        f"""SELECT d.status, d.stage, d.reason, count(*) AS n
            FROM read_parquet('{_glob(output_dir, "dropped")}') d GROUP BY ALL ORDER BY 1, 4 DESC, 2, 3"""
    ).fetchall()
    return {"by_source": by_source, "by_reason": by_reason}


def format_table(headers: list[str], rows: list[tuple]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else (f"{v:,}" if isinstance(v, int) else str(v)) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if j and c.replace(",", "").replace(".", "").isdigit() else c.ljust(w) for c, w in zip(r, widths)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_summary(output_dir: str, totals: dict[str, Any], out=print) -> None:
    t = summary_tables(output_dir)
    out(f"\nRun output: {output_dir}")
    out(f"  curated  {_glob(output_dir, 'curated')}")
    out(f"  dropped  {_glob(output_dir, 'dropped')}")
    out(f"  manifest {_glob(output_dir, 'manifest')}\n")
    out(format_table(["source_kind", "read", "kept", "dropped", "errored", "kept_MB"], t["by_source"]))
    out("")
    if t["by_reason"]:
        out(format_table(["status", "stage", "reason", "documents"], t["by_reason"]))
        out("")
    out(
        f"accounting: read {totals['read']:,} = kept {totals['kept']:,} + dropped {totals['dropped']:,} "
        f"+ errored {totals['errored']:,} over {totals['shards']} shards: OK"
    )


def write_run_json(output_dir: str, payload: dict[str, Any]) -> str:
    fs, d = fsspec.core.url_to_fs(output_dir)
    tmp, final = f"{d}/.tmp-run.json", f"{d}/run.json"
    with fs.open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)
    fs.mv(tmp, final)
    return final


def finish_run(recipe, shards: list, engine: str, started: float) -> dict[str, Any]:
    """Check the accounting over every shard of ``recipe`` and write ``run.json``; returns the summary."""
    import time

    out = recipe.output_dir.rstrip("/")
    summary = {
        "recipe": recipe.name,
        "recipe_hash": recipe.hash(),
        "engine": engine,
        "output_dir": out,
        "totals": check_run(out, [s.source_file for s in shards]),
    }
    summary["seconds"] = round(time.time() - started, 2)
    write_run_json(out, summary)
    return summary
