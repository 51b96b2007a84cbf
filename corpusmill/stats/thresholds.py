"""Stage order and each filter's thresholds for a run, read from the stage objects built with its recipe."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from corpusmill.stats.views import DEDUP_STAGES, READ_STAGE, Run


log = logging.getLogger("corpusmill")

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


#: per-language bounds (a stage with ``bounds(language)``) are drawn for this many of the run's languages
BOUND_LANGUAGES = 3

_NOTES = {
    "token_ratio.tokens_per_word": "per-language bounds (token_ratio thresholds file): no language of the run has one",
    "language_id.score": "min_score_by_language overrides, if any, are not drawn",
}


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


def _top_languages(con, stage: str) -> list[str]:
    """The run's most frequent languages among documents that have a signal of ``stage``."""
    if con is None:
        return []
    rows = con.execute("""SELECT language, count(DISTINCT id) AS n FROM signals_long
                          WHERE signal_stage = ? AND language IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?""",
                       [stage, BOUND_LANGUAGES]).fetchall()
    return [r[0] for r in rows]


def _language_bounds(st, stage_name: str, con, th: Thresholds) -> None:
    """Stages with one (low, high) pair per language (token_ratio): lines for the run's top languages,
    each labelled with its language (the histogram mixes languages; the bounds do not)."""
    try:
        langs = [(lang, st.bounds(lang)) for lang in _top_languages(con, stage_name)]
    except Exception as e:  # thresholds file or tokenizer not readable here
        th.notes[stage_name] = f"thresholds unknown: {type(e).__name__}: {e}"
        return
    for sig in getattr(st, "BOUNDED_SIGNALS", ("tokens_per_word",)):
        lines = []
        for lang, b in langs:
            if b is not None:
                lines += [Threshold("min", b[0], f"thresholds[{lang}].low", scope=lang),
                          Threshold("max", b[1], f"thresholds[{lang}].high", scope=lang)]
        if lines:
            th.lines[f"{stage_name}.{sig}"] = lines


def signal_thresholds(run: Run, signal_stages: list[str] | None = None, con=None) -> Thresholds:
    """The cut-offs each filter applies to its signals, read from the stage objects built with the
    recipe's parameters (``corpusmill.curation.registry.build_stage``). Without recipe.json the stages named by
    ``signal_stages`` are built with their defaults (and the result says so). With ``con`` (the run's
    views), per-language bounds are given for the run's most frequent languages."""
    from corpusmill.curation.registry import STAGES, build_stage

    specs = run.recipe_stages
    th = Thresholds(source="recipe" if run.recipe is not None else "defaults")
    if run.recipe is None:
        specs = [(s, {}) for s in (signal_stages or []) if s in STAGES]
    for stage_name, params in specs:
        if stage_name not in STAGES:
            continue
        try:
            st = build_stage(stage_name, params)
        except Exception as e:  # a stage that cannot be built here (missing optional dependency ...)
            th.notes[stage_name] = f"thresholds unknown: cannot build stage {stage_name!r} here ({type(e).__name__}: {e})"
            continue
        thresholds = getattr(st, "thresholds", None)
        for sig, lines in (thresholds() if thresholds else {}).items():
            th.lines[f"{stage_name}.{sig}"] = [Threshold(kind, value, param) for kind, value, param in lines]
        if callable(getattr(st, "bounds", None)):
            _language_bounds(st, stage_name, con, th)
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
