"""HTML -> text extraction: resiliparse and trafilatura on real Common Crawl pages, against CC's WET."""

from __future__ import annotations

import re

import pytest
from datatrove.data import Document

from corpusmill.curation.document import DROPPED, STATUS, new_document
from corpusmill.curation.extract import Extract
from corpusmill.curation.readers import get_reader
from corpusmill.curation.stage import apply_stage


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.fixture(scope="module")
def whirlwind(shared_data):
    warc = shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.gz"
    wet = shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.wet.gz"
    with open(warc, "rb") as f:
        (page,) = list(get_reader("warc").records(f, str(warc)))
    with open(wet, "rb") as f:
        (text,) = list(get_reader("wet").records(f, str(wet)))
    return page, text


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_extraction_matches_cc_wet(whirlwind, extractor):
    page, wet = whirlwind
    doc = new_document(page.text, "w.warc.gz", 0, **page.metadata)
    assert apply_stage(Extract(extractor), doc) is doc
    assert STATUS not in doc.metadata and "needs_extraction" not in doc.metadata
    assert "<" not in doc.text and "Escopete ye un municipio" in doc.text
    ours, cc = _words(doc.text), _words(wet.text)
    # CC's WET keeps the whole page (menus, language list); the main text is a subset of it
    assert len(ours) > 80
    assert len(ours & cc) / len(ours) > 0.9, extractor
    # and the main content is there: the article's words that CC has
    start = wet.text.index("Escopete ye un municipio")
    article = _words(wet.text[start : wet.text.index("Lista d'alcaldes", start)])
    assert len(article & ours) / len(article) > 0.9, extractor


def test_trafilatura_precision_mode_loses_this_article(whirlwind):
    """Why ``favor_precision`` is not our default (see curation/extract.py)."""
    page, _ = whirlwind
    assert "Escopete ye un municipio" not in Extract("trafilatura", favor_precision=True).extract(page.text)


def test_extract_cc_sample_and_gbk(shared_data):
    path = shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz"
    with open(path, "rb") as f:
        recs = list(get_reader("warc").records(f, str(path)))
    stage = Extract()
    stage.setup()
    docs = [apply_stage(stage, new_document(r.text, "s", r.position, **r.metadata)) for r in recs]
    kept = [d for d in docs if STATUS not in d.metadata]
    assert len(kept) >= 14  # spam pages whose "main content" heuristics leave nothing may be dropped
    gbk = next(d for d in docs if d.metadata["url"] == "http://041696.com/15477/list_6_4.html")
    assert len(re.findall(r"[\u4e00-\u9fff]", gbk.text)) > 50


def test_transform_contract():
    stage = Extract()
    plain = new_document("already text", "f", 0)
    apply_stage(stage, plain)
    assert plain.text == "already text" and STATUS not in plain.metadata
    empty = new_document("<html><body><script>x()</script></body></html>", "f", 1, needs_extraction=True)
    apply_stage(stage, empty)
    assert empty.metadata[STATUS] == DROPPED and empty.metadata["cm_reason"] == "empty_extraction"
    assert "needs_extraction" not in empty.metadata
    # rejected documents and control records are not touched
    rejected = Document(text="<p>x</p>", id="r", metadata={STATUS: DROPPED, "needs_extraction": True})
    apply_stage(stage, rejected)
    assert rejected.metadata["needs_extraction"] is True


def test_options_are_checked():
    with pytest.raises(TypeError):
        Extract("boilerpipe")
    with pytest.raises(TypeError):
        Extract("resiliparse", favor_precision=True)  # a trafilatura option
    assert Extract("trafilatura", include_tables=False).options["include_tables"] is False
    assert Extract("resiliparse", main_content=False).options["main_content"] is False


def _tag_soup():
    from hypothesis import strategies as st

    names = st.sampled_from(["div", "DIV", "br", "Br", "img", "p", "a", "span1", "wbr", "source", "sources",
                             "abcdefgh", "h1", "x", "AREA", "Input", "imgs", "col9", "br-x", "hr\t", "metas", "b"])
    piece = st.one_of(
        st.builds(lambda n: f"<{n}>", names), st.builds(lambda n: f"</{n}>", names),
        st.builds(lambda n: f"<{n}/>", names), st.builds(lambda n, a: f"<{n} {a}>", names, st.text("ab=\"'/< ", max_size=6)),
        st.sampled_from(["<", ">", "/>", "</", "< p>", "<!-- c -->", "<1>", "a<b", "x", " ", "é", "/", "</>", "<a/"]),
    )
    return st.lists(piece, max_size=60).map("".join)


def test_nesting_depth_equals_the_regex_scan():
    """The numpy guard finds the same tags and depth as the one-tag-at-a-time regex scan."""
    from hypothesis import given, settings

    from corpusmill.curation.extract import depth_scan, depth_scan_regex, nesting_depth

    @settings(max_examples=1500, deadline=None)
    @given(_tag_soup(), st_stop())
    def check(html, stop):
        exact = depth_scan_regex(html, stop)
        assert depth_scan(html, stop) == exact
        assert (nesting_depth(html, stop) >= stop) == (exact >= stop)  # the cheap pre-checks are sound

    check()
    for depth in (999, 1000, 1001, 5000):
        deep = "<html><body>" + "<div>" * depth + "<br><img src=x/>" + "</div>" * depth + "</body></html>"
        assert nesting_depth(deep) == depth_scan_regex(deep, 1001) == min(depth + 2, 1001)


def st_stop():
    from hypothesis import strategies as st

    return st.integers(1, 12)


def test_nesting_depth_on_real_pages(shared_data):
    from corpusmill.curation.extract import depth_scan, depth_scan_regex

    pages = []
    for name in ("CC-MAIN-2020-34_sample.warc.gz", "CC-MAIN-2024-22_whirlwind.warc.gz"):
        path = shared_data / "warc" / name
        with open(path, "rb") as f:
            pages += [r.text for r in get_reader("warc").records(f, str(path)) if r.metadata.get("needs_extraction")]
    assert len(pages) >= 17
    for html in pages:
        for stop in (5, 50, 1001):
            assert depth_scan(html, stop) == depth_scan_regex(html, stop)
