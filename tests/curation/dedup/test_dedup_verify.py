"""Candidate verification (``verify: true`` / ``exact`` on minhash_dedup): recipe checks, the spanning
forest of a bucket, the books (old editions still caught, different books never merged) and the
ground truth of the generated corpus (benchmarks/dedup_corpus.py, a small one)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from corpusmill.curation.dedup.lsh import RECORD, DedupConfig
from corpusmill.curation.dedup.verify import required_matches, spanning_pairs, spanning_pairs_exact, verified_edges
from corpusmill.curation.document import is_alive, new_document
from corpusmill.curation.registry import validate_params
from corpusmill.pipelines.datatrove_dedup import dedup_documents
from corpusmill.pipelines.recipe import RecipeError, parse_recipe

REPO = Path(__file__).resolve().parents[3]


def _corpus_module():
    spec = importlib.util.spec_from_file_location("dedup_corpus", REPO / "benchmarks" / "dedup_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "params, message",
    [
        ({"verify": "yes"}, "verify: expected true, false or exact"),
        ({"verify_threshold": 0.8}, "verify_threshold: only used with verify"),
        ({"verify": True, "verify_threshold": 1.5}, "verify_threshold: expected a number in (0, 1]"),
    ],
)
def test_recipe_rejects_bad_verify_parameters(params, message, tmp_path):
    recipe = {"inputs": [{"path": str(tmp_path), "reader": "jsonl"}], "output": {"dir": str(tmp_path / "out")},
              "stages": [{"stage": "minhash_dedup", **params}]}
    with pytest.raises(RecipeError) as e:
        parse_recipe(recipe)
    assert message in str(e.value) and "minhash_dedup" in str(e.value) and "\n" not in str(e.value)


def test_recipe_verify_values_reach_the_config():
    from corpusmill.curation.dedup.config import dedup_config
    from corpusmill.pipelines.recipe import StageSpec

    validate_params("minhash_dedup", {"verify": True})
    assert dedup_config([StageSpec("minhash_dedup", {})]).verify == "off"
    c = dedup_config([StageSpec("minhash_dedup", {"verify": True})])
    assert c.verify == "signature" and abs(c.threshold - 0.7190) < 1e-3  # (1/14)**(1/8)
    c = dedup_config([StageSpec("minhash_dedup", {"verify": "exact", "verify_threshold": 0.8})])
    assert (c.verify, c.threshold) == ("exact", 0.8)
    assert DedupConfig.from_dict({"minhash": None, "exact": True}).verify == "off"  # older work directories


def _components(m: int, pairs) -> set[frozenset]:
    parent = list(range(m))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict = {}
    for x in range(m):
        groups.setdefault(find(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def test_spanning_pairs_have_the_components_of_all_verified_pairs():
    rng = np.random.default_rng(3)
    for _ in range(40):
        m = int(rng.integers(2, 12))
        base = rng.integers(0, 2**32, size=(3, 16), dtype=np.uint32)
        sig = base[rng.integers(0, 3, m)].copy()
        flip = rng.random(sig.shape) < rng.random() * 0.5
        sig[flip] = rng.integers(0, 2**32, size=int(flip.sum()), dtype=np.uint32)
        need = int(rng.integers(6, 16))
        brute = [(i, j) for i, j in itertools.combinations(range(m), 2) if np.count_nonzero(sig[i] == sig[j]) >= need]
        got = spanning_pairs(sig, need)
        assert len(got) < m and all(p in brute for p in got)
        assert _components(m, got) == _components(m, brute)
        order = rng.permutation(m)  # another member order (another engine): same components
        assert _components(m, [(order[i], order[j]) for i, j in spanning_pairs(sig[order], need)]) == _components(m, brute)


def test_spanning_pairs_exact_and_identical_members():
    a = np.arange(0, 100, dtype=np.uint64)
    b = np.arange(10, 110, dtype=np.uint64)  # Jaccard 90/110 = 0.818 with a
    c = np.arange(60, 160, dtype=np.uint64)  # 0.25 with a, 0.333 with b
    assert spanning_pairs_exact([a, b, c, a.copy()], 0.8) == [(0, 3), (0, 1)]
    assert spanning_pairs_exact([a, c], 0.3) == []
    assert required_matches(0.7190, 112) == 81 and required_matches(0.75, 112) == 84


class _Store:
    num_perm = 8

    def __init__(self, sigs: dict):
        self.sigs = sigs

    def signatures(self, keys):
        return np.stack([self.sigs[int(k)] for k in keys])


def test_verified_edges_cut_weak_candidates():
    """One bucket of three documents: 0 ~ 1 (7 of 8 values equal), 2 shares only the band values
    with them (4 of 8); a second bucket holds 0 and 2 only. Only 0-1 is an edge."""
    s0 = np.arange(8, dtype=np.uint32)
    s1 = s0.copy()
    s1[7] = 99
    s2 = s0.copy()
    s2[4:] = 50
    rec = np.zeros(5, dtype=RECORD)
    rec["h"] = [1, 1, 1, 2, 2]
    rec["key"] = [0, 1, 2, 0, 2]
    e = verified_edges(rec, _Store({0: s0, 1: s1, 2: s2}), "signature", 0.75)
    assert e.tolist() == [(0, 1)]


def _read_book(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@pytest.mark.parametrize("verify", ["signature", "exact"])
def test_books_old_editions_still_caught(shared_data, tmp_path, verify):
    paths = sorted((shared_data / "books").glob("*.txt"))
    docs = [new_document(_read_book(p), f"books/{p.name}", 0) for p in paths]
    r = dedup_documents(docs, tmp_path / "work", DedupConfig(verify=verify))
    cluster = {d.metadata["source_file"].split("/", 1)[1]: r.clusters[d.id].cluster if d.id in r.clusters else d.id
               for d in r.docs}
    olds = [p.name for p in paths if ".OLD-" in p.name]
    assert olds
    for old in olds:
        new = old.split(".OLD-")[0] + ".txt"
        assert cluster[old] == cluster[new]
    assert len(set(cluster.values())) == len(paths) - len(olds)  # no other book merged
    assert sum(is_alive(d) for d in r.docs) == len(paths) - len(olds)


def test_generated_corpus_ground_truth(tmp_path):
    """2,500 generated documents (5 % exact copies, 10 % near copies): every mode finds the exact
    copies; verification keeps precision at 1 and near recall high."""
    dc = _corpus_module()
    corpus = dc.Corpus(seed=7)
    n = 2500
    made = [corpus.doc(i) for i in range(n)]
    group = np.array([g for _, _, g in made])
    kind = np.array([k for _, k, _ in made])
    results = {}
    for verify in ("off", "signature", "exact"):
        docs = [new_document(t, f"gen/part-{i // 1000:05d}.jsonl", i % 1000) for i, (t, _, _) in enumerate(made)]
        r = dedup_documents(docs, tmp_path / verify, DedupConfig(verify=verify), num_tasks=2)
        index = {d.id: i for i, d in enumerate(docs)}
        surv = np.array([index[r.clusters[d.id].cluster] if d.id in r.clusters else i for i, d in enumerate(docs)])
        results[verify] = dc.evaluate(surv, group, kind)
    print(results)
    for verify, m in results.items():
        assert m["recall_exact"] == 1.0, verify
        assert m["recall_near"] >= 0.95, verify
    assert results["signature"]["precision"] >= 0.99 and results["exact"]["precision"] >= 0.99
