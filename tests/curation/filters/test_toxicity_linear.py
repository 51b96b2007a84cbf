"""The hashed n-gram logistic model of the shipped toxicity scorer (curation/filters/toxicity_linear.py)."""

from __future__ import annotations

import numpy as np

from corpusmill.curation.filters.toxicity import prepare_text
from corpusmill.curation.filters.toxicity_linear import HashedLinear, fit, hashed_features
from corpusmill.tools.toxicity_sets import load_set


def test_features_are_distinct_hashed_ngrams():
    idx, v = hashed_features("you are an idiot", 1 << 16)
    assert len(idx) == 7 and v == 1 / np.sqrt(7)  # 4 words + 3 bigrams
    assert list(idx) == sorted(set(idx))
    idx2, _ = hashed_features("you are an idiot", 1 << 16, char=(3, 4))
    assert set(idx) < set(idx2)
    assert hashed_features("", 8)[0].size == 0


def test_fit_is_deterministic_separates_and_round_trips(shared_data, tmp_path):
    rows = [r for r in load_set("davidson", shared_data / "toxicity") if r.split != "test"][:3000]
    texts = [prepare_text(r.text, mask=True) for r in rows]
    labels = [r.toxic for r in rows]
    weights = [1.0 / (sum(labels) if t else len(labels) - sum(labels)) for t in labels]  # classes weigh the same
    a = fit(texts[:2500], labels[:2500], weights[:2500], dim=1 << 16, iters=60)
    b = fit(texts[:2500], labels[:2500], weights[:2500], dim=1 << 16, iters=60)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias
    held = a.margin(texts[2500:])
    pos = [z for z, t in zip(held, labels[2500:]) if t]
    neg = [z for z, t in zip(held, labels[2500:]) if not t]
    assert np.mean(pos) > np.mean(neg) + 1.0
    a.save(tmp_path / "m.npz")
    c = HashedLinear.load(tmp_path / "m.npz")
    assert np.allclose(c.margin(texts[2500:2600]), a.margin(texts[2500:2600]), atol=0.02)  # float16 on disk
