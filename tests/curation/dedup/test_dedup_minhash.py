"""MinHash signatures (corpusmill.curation.dedup.minhash): datatrove parity, determinism, estimates, parameters."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpusmill.curation.dedup.minhash import MinHashConfig, MinHasher, detection_probability, jaccard, optimal_bands_rows
from corpusmill.curation.dedup.normalize import shingle_hashes

REPO = Path(__file__).resolve().parents[3]
DOLMA = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


@pytest.fixture(scope="module")
def texts(shared_data):
    with gzip.open(shared_data / DOLMA, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_permutations_match_datatrove_bit_for_bit(texts, tmp_path):
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    theirs = MinhashDedupSignature(output_folder=str(tmp_path))  # 14 x 8, seed 1, 64-bit
    ours = MinHasher()
    checked = 0
    for t in texts[:120]:
        sh = shingle_hashes(t)
        if sh.size == 0:
            assert ours.signature_from_shingles(sh) is None
            continue
        expected = np.concatenate([np.array(b, dtype=np.uint64) for b in theirs.get_signature(sh.reshape(-1, 1))])
        assert np.array_equal(ours.signature_from_shingles(sh), expected)
        checked += 1
    assert checked > 80
    # long documents go through several chunks
    big = shingle_hashes(" ".join(texts[:60]))
    assert big.size > 5000
    expected = np.concatenate([np.array(b, dtype=np.uint64) for b in theirs.get_signature(big.reshape(-1, 1))])
    assert np.array_equal(ours.signature_from_shingles(big), expected)


def test_mersenne_edge_values_exact():
    """Values whose folded form lands on p..p+7 are reduced exactly (the rare branch)."""
    mh = MinHasher(MinHashConfig(num_bands=14, rows_per_band=8))
    p = (1 << 61) - 1
    j = next(i for i in range(mh.a.size) if int(mh.a[i]) % 2)  # an odd a is invertible mod 2**64
    a, b = int(mh.a[j]), int(mh.b[j])
    # x with (a*x + b) mod 2**64 = 2p: folds to p, true value 2p mod p = 0
    x = ((2 * p - b) * pow(a, -1, 1 << 64)) % (1 << 64)
    xs = np.array([x, 12345, 987654321], dtype=np.uint64)
    got = mh.signature_from_shingles(xs)
    expected = [min(((int(ai) * int(v) + int(bi)) % (1 << 64)) % p for v in xs) for ai, bi in zip(mh.a, mh.b)]
    assert got.tolist() == expected and expected[j] == 0


def test_signature_deterministic_across_processes(texts, shared_data):
    mh = MinHasher()
    sigs = [mh.signature(t) for t in texts[:40]]
    local = np.stack([s for s in sigs if s is not None])
    code = (
        "import gzip, json, sys, numpy as np\n"
        "from corpusmill.curation.dedup.minhash import MinHasher\n"
        "texts = [json.loads(l)['text'] for l in gzip.open(sys.argv[1], 'rt')][:40]\n"
        "mh = MinHasher(); s = [mh.signature(t) for t in texts]\n"
        "np.save(sys.stdout.buffer, np.stack([x for x in s if x is not None]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(shared_data / DOLMA)], cwd=REPO, capture_output=True, check=True
    ).stdout
    assert np.array_equal(local, np.load(io.BytesIO(out)))


def test_estimates_track_true_jaccard(texts):
    mh = MinHasher()
    rng = np.random.default_rng(0)
    words = " ".join(texts[:200]).split()
    errs = []
    for k in range(40):
        start = int(rng.integers(0, len(words) - 3000))
        base = words[start : start + 1500]
        other = list(base)
        # replace a fraction of words -> a spread of Jaccard values
        frac = (k % 10) / 20
        for i in rng.choice(len(other), int(frac * len(other)), replace=False):
            other[i] = f"w{rng.integers(1 << 30)}"
        a, b = shingle_hashes(" ".join(base)), shingle_hashes(" ".join(other))
        true = jaccard(a, b)
        est = mh.estimate_jaccard(mh.signature_from_shingles(a), mh.signature_from_shingles(b))
        errs.append(est - true)
    errs = np.array(errs)
    # 112 permutations: standard error <= sqrt(0.25/112) = 0.047
    assert abs(errs.mean()) < 0.03
    assert np.abs(errs).max() < 0.2


def test_band_keys_shape_and_sensitivity():
    mh = MinHasher()
    s1 = mh.signature("the quick brown fox jumps over the lazy dog again and again")
    k1 = mh.band_keys(s1)
    assert k1.shape == (14, 2) and k1.dtype == np.uint64
    s2 = s1.copy()
    s2[17] += np.uint64(1)  # band 2 (rows 16..23)
    k2 = mh.band_keys(s2)
    assert (k1 != k2).any(axis=1).tolist() == [j == 2 for j in range(14)]


def test_config_defaults_and_threshold_choice():
    c = MinHashConfig()
    assert (c.n_grams, c.num_bands, c.rows_per_band, c.seed, c.num_perm) == (5, 14, 8, 1, 112)
    assert c.threshold == pytest.approx(0.719, abs=1e-3)
    assert c.probability(0.8) == pytest.approx(0.924, abs=1e-3)  # recipes.md
    assert detection_probability(0.8, 14, 8) == c.probability(0.8)
    from datasketch import MinHashLSH

    for thr, perm in [(0.7, 112), (0.8, 128), (0.9, 128)]:
        lsh = MinHashLSH(threshold=thr, num_perm=perm)
        assert optimal_bands_rows(thr, perm) == (lsh.b, lsh.r)
        cfg = MinHashConfig.for_threshold(thr, perm)
        assert (cfg.num_bands, cfg.rows_per_band) == (lsh.b, lsh.r)
        assert cfg.num_perm <= perm
    assert MinHashConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError):
        MinHashConfig(num_bands=0)


def test_other_seed_other_signature():
    t = "a fairly ordinary sentence with enough words to make several shingles"
    assert not np.array_equal(MinHasher(MinHashConfig(seed=1)).signature(t), MinHasher(MinHashConfig(seed=2)).signature(t))
    assert MinHasher().signature("") is None
