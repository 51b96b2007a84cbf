"""Our C4 filter takes the same decisions and keeps the same text as datatrove's ``C4QualityFilter``
on all of dolma's web text, with C4's settings and with FineWeb's (terminal-punctuation rule off)."""

from __future__ import annotations

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter

from corpusmill.curation.filters import C4Quality
from corpusmill.tools.shared_corpus import load_webtext

pytestmark = pytest.mark.slow


def _verdict(r):
    if r is True or (isinstance(r, tuple) and r[0]):
        return ("kept", None)
    return ("dropped", r[1] if isinstance(r, tuple) else None)


@pytest.mark.parametrize("terminal_punct", [True, False], ids=["c4", "fineweb-setting"])
def test_c4_matches_datatrove(shared_data, terminal_punct):
    docs = load_webtext(shared_data)
    dt = C4QualityFilter(filter_no_terminal_punct=terminal_punct)
    ours = C4Quality(filter_no_terminal_punct=terminal_punct)
    disagreements = []
    reasons = set()
    for s in docs:
        a_doc = Document(text=s.text, id=s.id, metadata={})
        b_doc = Document(text=s.text, id=s.id, metadata={})
        a = _verdict(dt.filter(a_doc))
        b = _verdict(ours.filter(b_doc))
        reasons.add(a[1])
        if a != b:
            disagreements.append((s.id, a, b))
        elif a[0] == "kept" and a_doc.text != b_doc.text:
            disagreements.append((s.id, "kept text differs"))
    assert disagreements == [], f"{len(disagreements)} disagreements: {disagreements[:20]}"
    assert "too_few_sentences" in reasons and None in reasons
