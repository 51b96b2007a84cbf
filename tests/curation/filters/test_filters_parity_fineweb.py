"""Our FineWeb filter takes the same decisions as datatrove's ``FineWebQualityFilter`` on all of dolma's
web text, on the raw documents and on the text C4 (FineWeb setting) keeps, as in FineWeb's pipeline.
(That the C4 step itself keeps the same text as datatrove's is tests/curation/filters/test_filters_parity_c4.py.)"""

from __future__ import annotations

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import FineWebQualityFilter

from corpusmill.curation.filters import C4Quality, FineWebQuality
from corpusmill.tools.shared_corpus import load_webtext

pytestmark = pytest.mark.slow


def _verdict(r):
    if r is True or (isinstance(r, tuple) and r[0]):
        return ("kept", None)
    return ("dropped", r[1] if isinstance(r, tuple) else None)


def test_fineweb_matches_datatrove(shared_data):
    docs = load_webtext(shared_data)
    dt, ours, c4 = FineWebQualityFilter(), FineWebQuality(), C4Quality(filter_no_terminal_punct=False)
    disagreements = []
    reasons = set()
    n_after_c4 = 0
    for s in docs:
        a = _verdict(dt.filter(Document(text=s.text, id=s.id, metadata={})))
        b = _verdict(ours.filter(Document(text=s.text, id=s.id, metadata={})))
        reasons.add(a[1])
        if a != b:
            disagreements.append(("raw", s.id, a, b))
        # FineWeb's order: C4 (rewrites the text it keeps), then this filter on that text
        doc = Document(text=s.text, id=s.id, metadata={})
        if c4.filter(doc) is True:
            n_after_c4 += 1
            a = _verdict(dt.filter(Document(text=doc.text, id=s.id, metadata={})))
            b = _verdict(ours.filter(doc))  # same document object: the stats are rebuilt for the new text
            if a != b:
                disagreements.append(("after c4", s.id, a, b))
    assert disagreements == [], f"{len(disagreements)} disagreements: {disagreements[:20]}"
    assert {"line_punct_ratio", "short_line_ratio", "char_dup_ratio"} <= reasons
    assert n_after_c4 > 100
