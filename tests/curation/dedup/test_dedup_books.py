"""Near-duplicate books: every older Project Gutenberg edition (*.OLD-*.txt) in ../shared/data/books
is caught as a near-duplicate of its newer edition; different books are never merged.

Checked on whole files (PG header and licence footer included) and on the bodies between the PG
start / end markers. The measured Jaccard of each pair and the 14 x 8 detection probability
1-(1-J**8)**14 are printed (pytest -s) and written to the test's tmp dir as books_jaccard.json.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from corpusmill.curation.dedup.minhash import MinHashConfig, MinHasher, jaccard
from corpusmill.curation.dedup.lsh import DedupConfig
from corpusmill.curation.dedup.normalize import normalize_codepoints, shingle_hashes
from corpusmill.pipelines.datatrove_dedup import dedup_documents
from corpusmill.curation.document import is_alive, new_document

_START = re.compile(r"^\*\*\* ?START OF TH|^\*END\*? ?THE SMALL PRINT", re.I)
_END = re.compile(r"^\*\*\* ?END OF TH|^\*?\*?\*? ?END OF (THE |THIS )?PROJECT GUTENBERG", re.I)


def read_book(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # pg24675 is ISO-8859-1


def pg_body(text: str) -> str:
    """Rough Project Gutenberg boilerplate removal: between the start marker (new editions) or the end
    of the old "small print" (old editions) and the end marker."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if _START.match(line)), 0)
    end = next((i for i in range(len(lines) - 1, start, -1) if _END.match(lines[i])), len(lines))
    return "\n".join(lines[start:end])


def newer_of(old_name: str) -> str:
    return old_name.split(".OLD-")[0] + ".txt"


@pytest.fixture(scope="module")
def books(shared_data):
    paths = sorted((shared_data / "books").glob("*.txt"))
    assert any(".OLD-" in p.name for p in paths)
    return {p.name: read_book(p) for p in paths}


@pytest.mark.parametrize("variant", ["whole", "body"])
def test_old_editions_caught_and_books_not_merged(books, variant, tmp_path):
    texts = {name: (t if variant == "whole" else pg_body(t)) for name, t in books.items()}
    docs = [new_document(t, f"books/{name}", 0) for name, t in texts.items()]
    r = dedup_documents(docs, tmp_path / "work")
    by_name = {d.metadata["source_file"].split("/", 1)[1]: d for d in r.docs}
    cluster = {n: (r.clusters[d.id].cluster if d.id in r.clusters else d.id) for n, d in by_name.items()}
    docs2 = [new_document(t, f"books/{name}", 0) for name, t in texts.items()]
    r2 = dedup_documents(docs2, tmp_path / "work-longest", DedupConfig(survivor="longest"))
    by_long = {d.metadata["source_file"].split("/", 1)[1]: d for d in r2.docs}

    cfg = MinHashConfig()
    report = {}
    sh = {n: shingle_hashes(t) for n, t in texts.items()}
    for old in [n for n in texts if ".OLD-" in n]:
        new = newer_of(old)
        j = jaccard(sh[old], sh[new])
        p = cfg.probability(j)
        sizes = [int(sh[old].size), int(sh[new].size)]
        report[f"{old} ~ {new}"] = {"jaccard": round(j, 4), "p_detect_14x8": p, "shingles": sizes}
        print(f"[{variant}] {old} ~ {new}: 5-gram Jaccard {j:.4f}, P(detect | 14x8) = {p:.6f}")
        assert p > 0.999
        assert cluster[old] == cluster[new], f"{old} not merged with {new}"
        # exactly one edition is kept: by default the first in corpus order (the .OLD- file name sorts first)
        assert is_alive(by_name[old]) and not is_alive(by_name[new])
        assert r.clusters[by_name[new].id].cluster == by_name[old].id
        assert r.clusters[by_name[old].id].cluster_size == 2
        # survivor "longest": the edition with more normalised text (not necessarily the newer one)
        longer = max((old, new), key=lambda n: (normalize_codepoints(texts[n]).size, n == old))
        assert is_alive(by_long[longer]) and not is_alive(by_long[old if longer == new else new])
    # different books: never in one cluster, and their similarity is far below the threshold
    for a, b in itertools.combinations(sorted(texts), 2):
        same_book = a.split(".")[0] == b.split(".")[0]
        if not same_book:
            assert cluster[a] != cluster[b], (a, b)
            j = jaccard(sh[a], sh[b])
            report[f"{a} ~ {b}"] = {"jaccard": round(j, 4), "p_detect_14x8": cfg.probability(j)}
            assert j < 0.1 and cfg.probability(j) < 1e-6
    (tmp_path / "books_jaccard.json").write_text(json.dumps(report, indent=1))


def test_estimated_jaccard_of_editions(books):
    mh = MinHasher()
    for old in [n for n in books if ".OLD-" in n]:
        a, b = pg_body(books[old]), pg_body(books[newer_of(old)])
        sa, sb = shingle_hashes(a), shingle_hashes(b)
        est = mh.estimate_jaccard(mh.signature_from_shingles(sa), mh.signature_from_shingles(sb))
        assert abs(est - jaccard(sa, sb)) < 0.1
