"""Our Gopher filters take the same decisions as datatrove's on all of dolma's web text (727 docs)."""

from __future__ import annotations

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

from corpusmill.curation.filters import GopherQuality, GopherRepetition
from corpusmill.tools.shared_corpus import load_webtext

pytestmark = pytest.mark.slow


def _verdict(r):
    if r is True or (isinstance(r, tuple) and r[0]):
        return ("kept", None)
    return ("dropped", r[1] if isinstance(r, tuple) else None)


def test_gopher_repetition_and_quality_match_datatrove(shared_data):
    docs = load_webtext(shared_data)
    assert len(docs) == 727
    dt_rep, dt_qual = GopherRepetitionFilter(), GopherQualityFilter()
    rep, qual = GopherRepetition(), GopherQuality()
    disagreements = []
    dropped = {"rep": 0, "qual": 0}
    for s in docs:
        # datatrove caches the word split of the last texts, so running both on one text costs one split
        a = _verdict(dt_rep.filter(Document(text=s.text, id=s.id, metadata={})))
        b = _verdict(dt_qual.filter(Document(text=s.text, id=s.id, metadata={})))
        doc = Document(text=s.text, id=s.id, metadata={})
        ours_rep = _verdict(rep.filter(doc))
        ours_qual = _verdict(qual.filter(doc))  # same document: shares the words computed above
        dropped["rep"] += a[0] == "dropped"
        dropped["qual"] += b[0] == "dropped"
        if a != ours_rep:
            disagreements.append(("gopher_repetition", s.id, a, ours_rep))
        if b != ours_qual:
            disagreements.append(("gopher_quality", s.id, b, ours_qual))
        sig = doc.metadata["signals"]
        assert any(k.startswith("gopher_repetition.") for k in sig) and any(k.startswith("gopher_quality.") for k in sig)
    assert disagreements == [], f"{len(disagreements)} disagreements: {disagreements[:20]}"
    # the data exercise the rules: both filters drop a real share of the web text
    assert dropped["rep"] > 100 and dropped["qual"] > 300
