"""The report's plots, drawn with matplotlib's Agg backend from SQL over the run's DuckDB views and
returned as base64 PNG strings."""

from __future__ import annotations

import base64
import io
import math
import re
from typing import Any

import duckdb
import pyarrow as pa

from corpusmill.stats.thresholds import Thresholds, stage_order, toxicity_threshold
from corpusmill.stats.views import READ_STAGE, Run, has_view


FuncFormatter = MaxNLocator = Patch = None  # matplotlib classes, imported by _plt()
OUTCOME_COLORS = {"kept": "#2a9d8f", "dropped_here": "#e76f51", "dropped_later": "#b8b8b8"}
OUTCOME_LABELS = {"kept": "kept", "dropped_here": "dropped by this stage", "dropped_later": "dropped by a later stage"}
LINE_COLORS = ("#1d3557", "#e76f51", "#2a9d8f", "#8d5a97")
SIGNAL_BINS = 40
MAX_LANGUAGES = 20


# ------------------------------------------------------------------------------------------------
# plotting helpers


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    global FuncFormatter, MaxNLocator, Patch
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.25, "figure.dpi": 100, "savefig.dpi": 100,
        "svg.fonttype": "none",
    })
    return plt


def _png(fig, tight: bool = True) -> str:
    """The figure as an ``<img>`` with a base64 PNG (then closed). ``tight=False`` saves the figure as
    laid out (half the drawing time: a tight bounding box needs an extra layout pass)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight" if tight else None, pad_inches=0.08,
                metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _colors(keys: list[str]) -> dict[str, str]:
    palette = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576",
               "#457b9d", "#a8dadc", "#9c6644", "#7f7f7f"]
    return {k: palette[i % len(palette)] for i, k in enumerate(keys)}


def _kind_colors(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """One color per source_kind, the same in every plot."""
    kinds = [r[0] for r in con.execute("SELECT DISTINCT coalesce(source_kind, '?') FROM manifest ORDER BY 1").fetchall()]
    return _colors(kinds)


def _natural(s: str) -> list:
    """Sort key putting dup_5 before dup_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _fmt_n(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}"


# ------------------------------------------------------------------------------------------------
# the plots


def plot_funnel(con: duckdb.DuckDBPyConnection, run: Run) -> str:
    """Documents left after each stage, stacked by source_kind."""
    plt = _plt()
    read = dict(con.execute("SELECT coalesce(source_kind, '?'), sum(read) FROM manifest GROUP BY 1 ORDER BY 2 DESC").fetchall())
    drops = con.execute("SELECT coalesce(source_kind, '?'), stage, sum(n) FROM drops_by_shard GROUP BY ALL").fetchall()
    kinds = list(read)
    per: dict[str, dict[str, int]] = {}
    for kind, stage, n in drops:
        per.setdefault(stage, {}).setdefault(kind, 0)
        per[stage][kind] += int(n)
    steps = [("read", {k: int(v) for k, v in read.items()}, 0)]
    left = dict(steps[0][1])
    for s in stage_order(run, list(per)):
        d = per.get(s, {})
        if s == READ_STAGE and not d:
            continue
        left = {k: left[k] - d.get(k, 0) for k in kinds}
        steps.append(("readable" if s == READ_STAGE else s, dict(left), sum(d.values())))
    colors = _kind_colors(con)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(steps) + 1.2))
    y = list(range(len(steps)))[::-1]
    total0 = sum(steps[0][1].values()) or 1
    for yi, (name, counts, dropped) in zip(y, steps):
        x0 = 0
        for k in kinds:
            v = counts.get(k, 0)
            ax.barh(yi, v, left=x0, color=colors[k], height=0.7, label=k if yi == y[0] else None)
            x0 += v
        note = f"{x0:,}  ({100 * x0 / total0:.1f}%)" + (f"   −{dropped:,}" if dropped else "")
        ax.text(x0 + total0 * 0.01, yi, note, va="center", fontsize=8)
    ax.set_yticks(y, [("after " + n if n not in ("read", "readable") else n) for n, _, _ in steps])
    ax.set_xlim(0, total0 * 1.3)
    ax.set_xlabel("documents")
    ax.grid(axis="y", visible=False)
    ax.legend(title="source_kind", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.set_title("Documents left after each stage (stage order from the recipe)")
    return _png(fig)


def plot_languages(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute("""
        SELECT coalesce(language, '?') AS language, coalesce(source_kind, '?') AS source_kind,
               count(*) AS docs, sum(strlen(text)) AS bytes
        FROM curated GROUP BY ALL""").fetchall()
    if not rows:
        return None
    plt = _plt()
    tot_docs: dict[str, int] = {}
    for lang, _, d, _ in rows:
        tot_docs[lang] = tot_docs.get(lang, 0) + d
    langs = sorted(tot_docs, key=lambda k: -tot_docs[k])
    other = langs[MAX_LANGUAGES:]
    langs = langs[:MAX_LANGUAGES] + (["other"] if other else [])
    kinds = sorted({r[1] for r in rows})
    colors = _kind_colors(con)
    h = 0.28 * len(langs) + 1.2
    fig, axes = plt.subplots(1, 2, figsize=(11, h), sharey=True)
    fig.subplots_adjust(top=1 - 0.45 / h, bottom=0.5 / h, wspace=0.08)
    for ax, col, label in ((axes[0], 2, "kept documents"), (axes[1], 3, "kept text (MB)")):
        left = [0.0] * len(langs)
        for k in kinds:
            vals = []
            for i, lang in enumerate(langs):
                v = sum(r[col] for r in rows if r[1] == k and (r[0] == lang or (lang == "other" and r[0] in other)))
                vals.append(v / 1e6 if col == 3 else v)
            ax.barh(range(len(langs)), vals, left=left, color=colors[k], label=k, height=0.75)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel(label)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(range(len(langs)), langs)
    axes[0].invert_yaxis()
    axes[1].legend(title="source_kind", fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"Languages of the kept documents (top {MAX_LANGUAGES} by documents" + (f"; {len(other)} more as 'other')" if other else ")"))
    return _png(fig)


def plot_lengths(con: duckdb.DuckDBPyConnection) -> str | None:
    """Histogram of kept documents' UTF-8 length per source_kind (log-spaced bins, 10 per decade)."""
    rows = con.execute("""
        SELECT coalesce(source_kind, '?'), floor(log10(greatest(strlen(text), 1)) * 10) AS b, count(*)
        FROM curated GROUP BY ALL ORDER BY 1, 2""").fetchall()
    if not rows:
        return None
    plt = _plt()
    kinds = sorted({r[0] for r in rows})
    colors = _kind_colors(con)
    lo = min(r[1] for r in rows) / 10
    hi = (max(r[1] for r in rows) + 1) / 10
    n = len(kinds)
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.6 * n + 0.8), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], kinds):
        bs = [(r[1], r[2]) for r in rows if r[0] == k]
        ax.bar([10 ** (b / 10) for b, _ in bs], [c for _, c in bs], width=[10 ** ((b + 1) / 10) - 10 ** (b / 10) for b, _ in bs],
               align="edge", color=colors[k], edgecolor="white", linewidth=0.3)
        ax.set_xscale("log")
        ax.set_ylabel("documents")
        total = sum(c for _, c in bs)
        ax.set_title(f"{k}: {total:,} kept documents", loc="left", fontsize=9)
    axes[-1, 0].set_xlim(10 ** lo, 10 ** hi)
    axes[-1, 0].set_xlabel("text length (UTF-8 bytes, log scale)")
    fig.suptitle("Length of the kept documents per source_kind")
    h = 1.6 * n + 0.8
    fig.subplots_adjust(hspace=0.45, top=1 - 0.45 / h, bottom=0.5 / h)
    return _png(fig)


def _signal_ranges(con: duckdb.DuckDBPyConnection, th: Thresholds) -> dict[str, dict[str, Any]]:
    """Per signal: the plotted range (robust to outliers, widened to show thresholds) and the x scale."""
    rows = con.execute("""
        SELECT signal, quantile_cont(value, [0.0, 0.01, 0.5, 0.99, 1.0]) FROM signals_long
        WHERE isfinite(value) GROUP BY 1""").fetchall()
    out = {}
    for sig, (mn, p1, p50, p99, mx) in rows:
        lo, hi = mn, mx
        if p99 > p1 and (mx - mn) > 5 * (p99 - p1):  # long tails: plot the middle 98 %
            lo, hi = p1, p99
        log = mn >= 0 and p50 >= 1 and (mx + 1) / (mn + 1) > 100
        f = (lambda v: math.log10(max(v, 0) + 1)) if log else (lambda v: v)
        shown, outside = [], []
        for t in sorted(th.for_signal(sig), key=lambda t: t.value):
            a, b = min(f(lo), f(t.value)), max(f(hi), f(t.value))
            # widen the range to show the threshold unless that squeezes the data into a corner
            if (mn <= t.value <= mx) or (b - a) <= 4 * max(f(hi) - f(lo), 1e-12):
                lo, hi = min(lo, t.value), max(hi, t.value)
                shown.append(t)
            else:
                outside.append(t)
        a, b = f(lo), f(hi)
        if b <= a:
            a, b = a - 0.5, b + 0.5
        out[sig] = {"lo": a, "hi": b, "log": log, "shown": shown, "outside": outside,
                    "clipped": lo > mn or hi < mx, "min": mn, "max": mx}
    return out


def plot_signals(con: duckdb.DuckDBPyConnection, run: Run, th: Thresholds) -> list[tuple[str, str]]:
    """One figure per stage: a stacked histogram per signal (kept / dropped here / dropped later),
    thresholds as dashed lines. Returns [(stage, html)]."""
    ranges = _signal_ranges(con, th)
    if not ranges:
        return []
    plt = _plt()
    nb = SIGNAL_BINS
    rt = pa.table({
        "signal": list(ranges),
        "lo": [r["lo"] for r in ranges.values()],
        "hi": [r["hi"] for r in ranges.values()],
        "is_log": [r["log"] for r in ranges.values()],
    })
    con.register("_report_ranges", rt)
    try:
        rows = con.execute(f"""
            SELECT s.signal, s.outcome,
                   CAST(least({nb - 1}, greatest(0, floor(
                       ((CASE WHEN r.is_log THEN log10(greatest(s.value, 0) + 1) ELSE s.value END) - r.lo)
                       / (r.hi - r.lo) * {nb}))) AS INTEGER) AS bin,
                   count(*) AS n
            FROM signals_long s JOIN _report_ranges r USING (signal)
            WHERE isfinite(s.value) GROUP BY ALL""").fetchall()
    finally:
        con.unregister("_report_ranges")
    hist: dict[str, dict[str, list[int]]] = {}
    for sig, outcome, b, n in rows:
        hist.setdefault(sig, {}).setdefault(outcome, [0] * nb)[b] += n
    by_stage: dict[str, list[str]] = {}
    for sig in sorted(hist, key=lambda s: (not th.for_signal(s), _natural(s))):
        by_stage.setdefault(sig.split(".", 1)[0], []).append(sig)
    out = []
    for stage in stage_order(run, list(by_stage)):
        sigs = by_stage.get(stage)
        if not sigs:
            continue
        cols = 3
        nrows = math.ceil(len(sigs) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.6 * nrows + 0.7), squeeze=False)
        for ax in axes.flat[len(sigs):]:
            ax.set_visible(False)
        for ax, sig in zip(axes.flat, sigs):
            r = ranges[sig]
            w = (r["hi"] - r["lo"]) / nb
            edges = [r["lo"] + i * w for i in range(nb + 1)]
            bottom = [0] * nb
            for outcome in ("kept", "dropped_here", "dropped_later"):
                h = hist[sig].get(outcome)
                if h is None:
                    continue
                top = [a + b for a, b in zip(bottom, h)]
                # one filled step patch per outcome (bars would be 40 patches each: slow to draw)
                ax.stairs(top, edges, baseline=bottom, fill=True, color=OUTCOME_COLORS[outcome],
                          label=OUTCOME_LABELS[outcome], linewidth=0)
                bottom = top
            ax.set_xlim(edges[0], edges[-1])
            spiky = max(bottom) > 0.4 * sum(bottom) and sum(1 for v in bottom if v) > 1
            if spiky:  # most documents in one bin: a linear axis would hide everything else
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(0, max(bottom) * 2)
            else:
                ax.set_ylim(0, max(bottom) * 1.15 or 1)
            scopes = sorted({t.scope for t in r["shown"] if t.scope and len(t.scope) <= 8})  # per-language bounds
            for t in r["shown"]:
                x = math.log10(max(t.value, 0) + 1) if r["log"] else t.value
                k = scopes.index(t.scope) if t.scope in scopes else 0
                ax.axvline(x, color=LINE_COLORS[k % len(LINE_COLORS)], linestyle="--", linewidth=1.2)
                if scopes:  # one "lang: min - max" key per language below, not a label per line
                    continue
                right = (x - r["lo"]) > 0.8 * (r["hi"] - r["lo"])  # label left of a line near the right edge
                ax.annotate(t.label(), (x, 1), xycoords=("data", "axes fraction"), xytext=(-3 if right else 3, -2 - 9 * k),
                            textcoords="offset points", va="top", ha="right" if right else "left", fontsize=7.5,
                            color=LINE_COLORS[k % len(LINE_COLORS)])
            for k, scope in enumerate(scopes):
                b = sorted(t.value for t in r["shown"] if t.scope == scope)
                ax.annotate(f"{scope}: {b[0]:.3g} – {b[-1]:.3g}" if len(b) > 1 else f"{scope}: {b[0]:.3g}", (1, 1),
                            xycoords="axes fraction", xytext=(-3, -2 - 10 * k), textcoords="offset points", va="top",
                            ha="right", fontsize=7.5, color=LINE_COLORS[k % len(LINE_COLORS)])
            notes = []
            if r["log"]:
                ticks = [v for v in (0, 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7) if r["lo"] <= math.log10(v + 1) <= r["hi"]]
                ax.set_xticks([math.log10(v + 1) for v in ticks], [_fmt_n(v) for v in ticks])
            ax.set_ylabel("documents" + (" (symlog scale)" if spiky else ""), fontsize=7.5)
            if scopes:
                notes.append(f"per-language bounds, {len(scopes)} most frequent languages")
            if r["clipped"]:
                notes.append("tails in end bins")
            if r["outside"]:
                notes.append("; ".join(f"{t.label()}: beyond all values" for t in r["outside"]))
            if not r["shown"] and not r["outside"]:
                note = th.note(sig) or "no threshold"
                notes.append(note if len(note) < 48 else "no threshold")
            ax.set_title(sig.split(".", 1)[1], fontsize=9)
            # the quantity on the axis; notes under it, where no bar or threshold line can hide them
            quantity = sig.split(".", 1)[1] + (" (log scale)" if r["log"] else "")
            ax.set_xlabel(quantity + ("\n" + " · ".join(notes) if notes else ""), fontsize=7, color="#333333", labelpad=2)
            ax.tick_params(labelsize=7.5)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", ncol=3, fontsize=8, frameon=False)
        h = 2.6 * nrows + 0.7
        # fixed spacing: tight_layout would cost a full text layout pass per figure
        fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.6 / h, bottom=0.6 / h, hspace=0.75, wspace=0.18)
        out.append((stage, _png(fig, tight=False)))
    return out


def plot_toxicity(con: duckdb.DuckDBPyConnection, th: Thresholds) -> str | None:
    nb = 20
    rows = con.execute(f"""
        SELECT CAST(least(floor(toxicity * {nb}), {nb - 1}) AS INTEGER) AS b,
               CASE WHEN status = 'kept' THEN 'kept' WHEN stage = 'toxicity' THEN 'dropped_here' ELSE 'dropped_later' END AS o,
               count(*)
        FROM documents WHERE toxicity IS NOT NULL AND isfinite(toxicity) GROUP BY ALL""").fetchall()
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3))
    bottom = [0] * nb
    for o in ("kept", "dropped_here", "dropped_later"):
        h = [0] * nb
        for b, oo, n in rows:
            if oo == o:
                h[max(0, b)] += n
        if any(h):
            ax.bar([i / nb for i in range(nb)], h, width=1 / nb, bottom=bottom, align="edge", color=OUTCOME_COLORS[o],
                   label=OUTCOME_LABELS[o].replace("this stage", "toxicity"), linewidth=0)
            bottom = [a + b for a, b in zip(bottom, h)]
    t = toxicity_threshold(th)
    if t is not None:
        ax.axvline(t, color="#1d3557", linestyle="--", linewidth=1.2)
        ax.annotate(f"threshold {t:g}", (t, 1), xycoords=("data", "axes fraction"), xytext=(3, -2),
                    textcoords="offset points", va="top", fontsize=8, color="#1d3557")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("toxicity score")
    ax.set_ylabel("documents (symlog)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Toxicity scores of every scored document")
    return _png(fig)


def plot_dedup(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute("SELECT size, count(*) FROM dedup_clusters GROUP BY 1 ORDER BY 1").fetchall()
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.bar(range(len(rows)), [n for _, n in rows], color="#457b9d", width=0.6)
    ax.set_xticks(range(len(rows)), [str(s) for s, _ in rows])
    ax.set_xlim(-0.7, max(len(rows), 4) - 0.3)
    ax.grid(axis="x", visible=False)
    for i, (_, n) in enumerate(rows):
        ax.annotate(f"{n:,}", (i, n), ha="center", va="bottom", fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    if max(n for _, n in rows) > 100 * max(1, min(n for _, n in rows)):
        ax.set_yscale("log")
    ax.set_title("Near-duplicate clusters by size (one survivor kept per cluster)")
    return _png(fig)


def plot_tokenizer(con: duckdb.DuckDBPyConnection) -> str | None:
    if not has_view(con, "tokenizer_compression"):
        return None
    rows = con.execute("SELECT dimension, value, documents, bytes, bytes_per_token FROM tokenizer_compression "
                       "WHERE bytes_per_token IS NOT NULL ORDER BY bytes DESC").fetchall()
    groups = {d: [r for r in rows if r[0] == d][:MAX_LANGUAGES] for d in ("source_kind", "language")}
    groups = {d: g for d, g in groups.items() if g}
    if not groups:
        return None
    plt = _plt()
    overall = next((r[4] for r in rows if r[0] == "overall"), None)
    n = max(len(g) for g in groups.values())
    h = 0.3 * n + 1.6
    fig, axes = plt.subplots(1, len(groups), figsize=(11, h), squeeze=False)
    for ax, (d, g) in zip(axes[0], groups.items()):
        ax.barh(range(len(g)), [r[4] for r in g], color="#6d597a", height=0.7)
        ax.set_yticks(range(len(g)), [f"{r[1]} ({r[2]} docs)" for r in g], fontsize=8)
        ax.invert_yaxis()
        for i, r in enumerate(g):
            ax.annotate(f"{r[4]:.2f}", (r[4], i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7.5)
        if overall:
            ax.axvline(overall, color="#1d3557", linestyle="--", linewidth=1)
        ax.set_xlabel("bytes per token (higher = better compression)")
        ax.set_title(f"by {d}")
        ax.grid(axis="y", visible=False)
    fig.suptitle("Tokenizer compression on held-out documents" + (f" (overall {overall:.2f}, dashed)" if overall else ""))
    fig.subplots_adjust(wspace=0.45, top=1 - 0.75 / h, bottom=0.6 / h)
    return _png(fig)


def plot_shards(con: duckdb.DuckDBPyConnection) -> str | None:
    if not has_view(con, "shards"):
        return None
    rows = con.execute("SELECT split, shard_index, num_tokens FROM shards ORDER BY split = 'val', split, shard_index").fetchall()
    if not rows:
        return None
    plt = _plt()
    splits = list(dict.fromkeys(r[0] for r in rows))
    colors = _colors(splits)
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.bar(range(len(rows)), [r[2] for r in rows], color=[colors[r[0]] for r in rows])
    step = max(1, len(rows) // 30)
    ax.set_xticks(range(0, len(rows), step), [f"{r[0]}/{r[1]}" for r in rows][::step], rotation=60, fontsize=7, ha="right")
    ax.set_ylabel("tokens")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_n(v)))
    ax.legend(handles=[Patch(color=colors[s], label=s) for s in splits], fontsize=8, frameon=False, loc="upper right")
    ax.set_title(f"Tokens per packed shard ({len(rows)} shards, {sum(r[2] for r in rows):,} tokens)")
    return _png(fig)
