"""Report thresholds: every filter stage of the recipe that has thresholds gets lines, token_ratio's
per-language bounds included (for the run's most frequent languages, labelled with the language)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from corpusmill.stats.thresholds import BOUND_LANGUAGES, signal_thresholds
from corpusmill.stats.views import connect, open_run

_spec = importlib.util.spec_from_file_location("_stats_run", Path(__file__).with_name("test_stats.py"))
_stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_stats)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data) -> Path:
    return _stats.build_run(tmp_path_factory, shared_data)


def test_every_filter_with_thresholds_has_lines_token_ratio_per_language(run_dir):
    from corpusmill.curation.registry import build_stage

    run = open_run(run_dir)
    con = connect(run)
    stages = [r[0] for r in con.execute("SELECT DISTINCT signal_stage FROM signals_long").fetchall()]
    th = signal_thresholds(run, stages, con)
    for name, params in run.recipe_stages:
        st = build_stage(name, params)
        own = st.thresholds() if hasattr(st, "thresholds") else {}
        for sig in own:
            assert th.for_signal(f"{name}.{sig}"), f"{name}.{sig} has a threshold but no line"
    assert "token_ratio" in stages
    lines = th.for_signal("token_ratio.tokens_per_word")
    langs = [r[0] for r in con.execute("""SELECT language FROM signals_long WHERE signal_stage = 'token_ratio'
        AND language IS NOT NULL GROUP BY 1 ORDER BY count(DISTINCT id) DESC, 1 LIMIT ?""", [BOUND_LANGUAGES]).fetchall()]
    assert lines and {t.scope for t in lines} <= set(langs) and "en" in {t.scope for t in lines}
    assert {t.kind for t in lines if t.scope == "en"} == {"min", "max"}
    assert all(t.label().endswith(f"({t.scope})") for t in lines)
