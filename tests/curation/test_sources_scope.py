"""The ``sources:`` scope every per-document stage takes (curation/stage.py, curation/registry.py), on real
book chapters of the shared data: web rules scoped to ``web`` leave a hard-wrapped book chapter alone."""

from __future__ import annotations

import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.readers.books import strip_gutenberg, split_chapters
from corpusmill.curation.registry import build_stage, validate_params
from corpusmill.curation.stage import apply_stage
from corpusmill.pipelines.recipe import RecipeError, parse_recipe


@pytest.fixture(scope="module")
def sherlock_chapter(shared_data) -> str:
    text = (shared_data / "books" / "pg1661_adventures-of-sherlock-holmes.txt").read_text(encoding="utf-8")
    body, _ = strip_gutenberg(text.replace("\r\n", "\n"))
    return split_chapters(body)[1][1]


def _doc(text: str, kind: str | None):
    d = new_document(text, "books/x.txt", 0)
    if kind:
        d.metadata["source_kind"] = kind
    return d


def test_web_rule_skips_books_and_judges_web(sherlock_chapter):
    st = build_stage("fineweb", {"languages": ["en"], "sources": ["web"]})
    assert st.sources == frozenset({"web"})
    book = apply_stage(st, _doc(sherlock_chapter, "book"))
    assert is_alive(book) and not any(k.startswith("fineweb.") for k in signals(book))
    web = apply_stage(st, _doc(sherlock_chapter, "web"))  # the same hard-wrapped text as a web page
    assert web.metadata["cm_reason"] == "line_punct_ratio"
    # no source_kind: only unrestricted stages see it
    assert is_alive(apply_stage(st, _doc(sherlock_chapter, None)))
    assert apply_stage(build_stage("fineweb", {}), _doc(sherlock_chapter, None)).metadata["cm_reason"] == "line_punct_ratio"


def test_sources_with_per_language_and_a_single_name(sherlock_chapter):
    st = build_stage("fineweb", {"per_language": "fineweb2", "sources": "web"})
    assert st.sources == frozenset({"web"})
    assert is_alive(apply_stage(st, _doc(sherlock_chapter, "book")))


def test_bad_sources_are_refused_with_the_key():
    validate_params("gopher_quality", {"sources": ["web", "book"]})
    for bad in ([], [1], {"web": 1}):
        with pytest.raises(TypeError, match="sources"):
            validate_params("c4", {"sources": bad})
    with pytest.raises(TypeError, match="dedup"):
        validate_params("minhash_dedup", {"sources": ["web"]})
    with pytest.raises(RecipeError, match=r"stages\[0\]\.c4: .*sources"):
        parse_recipe({"inputs": [{"path": "x", "reader": "jsonl"}], "stages": [{"stage": "c4", "sources": 3}],
                      "output": {"dir": "/tmp/x"}})
