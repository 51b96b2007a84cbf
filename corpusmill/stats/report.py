"""``corpusmill report``: a self-contained HTML report of a curation run.

Every number comes from the DuckDB views of :mod:`corpusmill.stats.views` (histograms are binned in SQL, so no
table is ever loaded whole); plots are drawn with matplotlib's Agg backend and embedded as base64 PNG
``<img>`` tags. The page has no script, no stylesheet or font from elsewhere and no link that needs a
network: it opens the same from a laptop, a cluster's file browser or an e-mail attachment.

Sections: run summary, the document funnel through the stages (stacked by source_kind), drops by
reason, languages, text length per source_kind, each signal's distribution (kept / dropped by its own
stage / dropped later) with the stage's threshold marked, toxicity scores, near-duplicate cluster sizes,
tokenizer compression and tokens per packed shard (when those steps ran).
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import duckdb

from corpusmill import atomic
from corpusmill.stats.plots import plot_dedup, plot_funnel, plot_languages, plot_lengths, plot_shards, plot_signals, plot_tokenizer, plot_toxicity
from corpusmill.stats.tables import Section, all_sections
from corpusmill.stats.thresholds import signal_thresholds
from corpusmill.stats.views import Run, connect, open_run


FuncFormatter = MaxNLocator = Patch = None  # matplotlib classes, imported by _plt()
OUTCOME_COLORS = {"kept": "#2a9d8f", "dropped_here": "#e76f51", "dropped_later": "#b8b8b8"}
OUTCOME_LABELS = {"kept": "kept", "dropped_here": "dropped by this stage", "dropped_later": "dropped by a later stage"}
SIGNAL_BINS = 40
MAX_LANGUAGES = 20


# ------------------------------------------------------------------------------------------------
# HTML


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 16px 24px 48px; color: #1b1b1b; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 2px solid #e6e6e6; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.meta { color: #555; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card .v { font-size: 1.35em; font-weight: 600; }
.card .k { color: #666; font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.03em; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.82em; margin: 8px 0 4px; }
th, td { border-bottom: 1px solid #eee; padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; font-size: 0.85em; margin: 2px 0 8px; }
.scroll { max-height: 520px; overflow: auto; border: 1px solid #eee; display: inline-block; max-width: 100%; }
nav a { margin-right: 12px; font-size: 0.9em; color: #1d3557; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; font-size: 0.9em; }
"""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return f"<td>{_esc(v if v is not None else '')}</td>"
    if isinstance(v, int):
        return f'<td class="num">{v:,}</td>'
    if isinstance(v, float):
        s = f"{v:,.2f}" if abs(v) >= 1000 else f"{v:.4g}"
        return f'<td class="num">{s}</td>'
    return f"<td>{_esc(v)}</td>"


def html_table(sec: Section, scroll: bool = False) -> str:
    if not sec.rows:
        return f'<p class="note">{_esc(sec.note or "none")}</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in sec.columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in sec.rows)
    t = f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
    if scroll and len(sec.rows) > 20:
        t = f'<div class="scroll">{t}</div>'
    return t + (f'<p class="note">{_esc(sec.note)}</p>' if sec.note else "")


def build_report(run: Run, con: duckdb.DuckDBPyConnection) -> str:
    """The report's HTML."""
    t0 = time.time()
    secs = {s.name: s for s in all_sections(con, run)}
    stages = [r[0] for r in con.execute("SELECT DISTINCT signal_stage FROM signals_long").fetchall()]
    th = signal_thresholds(run, stages, con)
    engines = [r[0] for r in con.execute("SELECT DISTINCT engine FROM manifest WHERE engine IS NOT NULL ORDER BY 1").fetchall()]
    hashes = [r[0] for r in con.execute("SELECT DISTINCT recipe_hash FROM manifest WHERE recipe_hash IS NOT NULL ORDER BY 1").fetchall()]
    tot = dict(secs["overview"].rows)

    parts: list[str] = []
    nav: list[tuple[str, str]] = []

    def section(anchor: str, title: str, *body: str | None) -> None:
        nav.append((anchor, title))
        parts.append(f'<h2 id="{anchor}">{_esc(title)}</h2>')
        parts.extend(b for b in body if b)

    def note(text: str) -> str:
        return f'<p class="note">{_esc(text)}</p>'

    section("funnel", "Document funnel", plot_funnel(con, run), html_table(secs["funnel"]),
            note("Documents left after each stage, in the recipe's stage order (read first; 'readable' removes the "
                 "records the readers dropped: redirects, non-article pages, unreadable records)."))
    section("sources", "Sources", html_table(secs["by_source"]))
    section("drops", "Drops by stage and reason", html_table(secs["drops"], scroll=True))
    section("languages", "Languages", plot_languages(con) or note("no kept documents"),
            html_table(secs["by_language"], scroll=True))
    section("lengths", "Text length", plot_lengths(con) or note("no kept documents"),
            note("UTF-8 bytes of the kept text. Dropped documents are not shown: their stored text is truncated "
                 "(output.dropped_text_chars)."))
    sig_plots = plot_signals(con, run, th)
    sig_body = [note("Each histogram stacks the documents that were kept, dropped by the stage that computed the signal, "
                     "and dropped by a later stage. Dashed lines: the stage's thresholds "
                     + ("from the recipe's parameters" if th.source == "recipe" else "(stage defaults: no recipe.json found)")
                     + " (min x: below x is dropped; max x: above x is dropped). Signals without a threshold are "
                     "informational, or their rule is per-language (e.g. token_ratio) or switched off.")]
    for stage, img in sig_plots:
        sig_body.append(f'<h3 id="signals-{_esc(stage)}">{_esc(stage)}</h3>{img}')
    if not sig_plots:
        sig_body.append(note("no signals: the recipe ran no filter stage"))
    sig_body.append("<h3>Quantiles</h3>" + html_table(secs["signals"], scroll=True))
    section("signals", "Filter signals", *sig_body)
    section("toxicity", "Toxicity", plot_toxicity(con, th) or note(secs["toxicity"].note or "no toxicity scores"),
            html_table(secs["toxicity"]) if secs["toxicity"].rows else None)
    section("dedup", "Near-duplicate clusters", plot_dedup(con) or note(secs["dedup"].note or "no clusters"),
            html_table(secs["dedup"]) if secs["dedup"].rows else None)
    if "tokenizer" in secs:
        heldout = next((r[2] for r in secs["tokenizer"].rows if r[0] == "overall"), None)
        section("tokenizer", "Tokenizer compression", plot_tokenizer(con), html_table(secs["tokenizer"]),
                note(f"From RUN/tokenizer/report.json: {heldout} held-out documents" +
                     (" (few: groups with 1-2 documents are noisy)" if heldout is not None and heldout < 30 else "")))
    else:
        section("tokenizer", "Tokenizer compression", note("no RUN/tokenizer/report.json (run corpusmill train-tokenizer --out RUN/tokenizer)"))
    if "shards" in secs:
        section("shards", "Packed token shards", plot_shards(con), html_table(secs["shards"], scroll=True))
    else:
        section("shards", "Packed token shards", note("no RUN/shards/manifest.json (run corpusmill pack --out RUN/shards, or pass --shards DIR)"))

    cards = [("documents read", tot.get("read")), ("kept", tot.get("kept")), ("dropped", tot.get("dropped")),
             ("errored", tot.get("errored")), ("input shards", tot.get("shards")),
             ("kept text MB", round((tot.get("kept_text_bytes") or 0) / 1e6, 2))]
    if "tokens" in tot:
        cards.append(("tokens packed", tot["tokens"]))
    if tot.get("read"):
        cards.insert(2, ("kept %", round(100 * tot["kept"] / tot["read"], 1)))
    card_html = "".join(
        f'<div class="card"><div class="v">{_esc(f"{v:,}" if isinstance(v, int) else v)}</div><div class="k">{_esc(k)}</div></div>'
        for k, v in cards
    )
    info = run.run_info or {}
    meta = [f"run directory <code>{_esc(run.root)}</code>", f"engine {_esc(', '.join(engines) or info.get('engine', '?'))}",
            f"recipe hash {_esc(', '.join(hashes) or '?')}"]
    if info.get("seconds") is not None:
        meta.append(f"last curate invocation took {_esc(info['seconds'])} s (a resumed rerun skips finished shards)")
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    nav_html = "<nav>" + "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t in nav) + "</nav>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>corpusmill report: {_esc(run.name)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>corpusmill report: {_esc(run.name)}</h1>
<p class="meta">{" · ".join(meta)}<br>generated {_esc(generated)} in {time.time() - t0:.1f} s by <code>corpusmill report</code>;
query the same numbers with <code>corpusmill stats {_esc(run.root)} --sql "..."</code></p>
<div class="cards">{card_html}</div>
{nav_html}
{chr(10).join(parts)}
</body>
</html>
"""


def write_report(run_dir: str | Path, out: str | Path | None = None, shards: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN/report.html``) atomically; return its path."""
    run = open_run(run_dir, shards)
    target = Path(out).expanduser().resolve() if out else Path(run.root) / "report.html"
    con = connect(run)
    try:
        page = build_report(run, con)
    finally:
        con.close()
    atomic.write_text(target, page)
    return target
