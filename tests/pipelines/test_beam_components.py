"""Beam connected components (large-star / small-star rounds over PCollections) give the same clusters,
survivors and verdicts as the datatrove path on a generated graph with one component through every
bundle, for both survivor rules."""

from __future__ import annotations

import sys
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that

from corpusmill.curation.dedup.clusters import ClusterInfo, cluster_table
from corpusmill.pipelines.beam_dedup import components, node

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "curation" / "dedup"))
from test_dedup_components import random_graph  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("survivor", ["first", "longest"])
def test_beam_components_equal_cluster_table(survivor):
    ident, near, exact, _ = random_graph(seed=5, n=900)
    rows = {r["key"]: r for r in ident.to_pylist()}

    def n(k):
        r = rows[int(k)]
        return node((r["source_file"], r["position"], r["id"], r["length"]), survivor)

    edges = [(0, n(a), n(b)) for a, b in near] + [(g, n(a), n(b)) for a, b in exact for g in (0, 1)]
    ref = {r["id"]: ClusterInfo(r["cluster"], r["cluster_size"], r["verdict"], r["exact_cluster"], r["exact_cluster_size"])
           for r in cluster_table(ident, near, exact, survivor=survivor).to_pylist()}
    assert max(i.cluster_size for i in ref.values()) >= 300

    def check(got):
        got = dict(got)
        assert got == ref

    with beam.Pipeline("FnApiRunner") as p:
        infos = components(p | beam.Create(edges) | beam.Reshuffle(), survivor)
        assert_that(infos, check)


def test_beam_components_apply_the_survivor_rule():
    """Identities carry (source_file, position, id, normalised length); the root of a cluster is the
    rule's survivor (the test of the one-combine path this replaced)."""
    a, b, c = ("f1.jsonl", 0, "a", 100), ("f1.jsonl", 5, "b", 300), ("f2.jsonl", 1, "c", 300)
    want = {"first": {"a": ("a", "keep"), "b": ("a", "near_duplicate"), "c": ("a", "near_duplicate")},
            "longest": {"a": ("b", "near_duplicate"), "b": ("b", "keep"), "c": ("b", "near_duplicate")}}  # tie: order
    for rule in ("first", "longest"):
        edges = [(0, node(a, rule), node(b, rule)), (0, node(b, rule), node(c, rule))]

        def check(got, expected=want[rule]):
            assert {i: (v.cluster, v.verdict) for i, v in got} == expected

        with beam.Pipeline("FnApiRunner") as p:
            assert_that(components(p | beam.Create(edges), rule, rounds=2), check)


def test_beam_dedup_has_no_global_step():
    """No CombineGlobally and no side input in the dedup transforms: no worker gets all edges."""
    from corpusmill.curation.dedup.lsh import DedupConfig  # noqa: F401
    from corpusmill.pipelines.beam_dedup import add_dedup
    from corpusmill.pipelines.recipe import StageSpec

    p = beam.Pipeline("FnApiRunner")
    add_dedup(p | beam.Create([]), [StageSpec("exact_dedup", {}), StageSpec("minhash_dedup", {})])
    seen = []

    class V(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            self.visit_transform(node)

        def visit_transform(self, node):
            seen.append(node.full_label)
            assert not isinstance(node.transform, beam.CombineGlobally), node.full_label
            assert not node.side_inputs, node.full_label

    p.visit(V())
    assert any("Dedup:CC" in s for s in seen)


class _Live(tuple):
    """A node that counts how many of its kind are alive (freed by reference counting)."""

    alive = 0
    peak = 0

    def __new__(cls, t):
        o = super().__new__(cls, t)
        _Live.alive += 1
        _Live.peak = max(_Live.peak, _Live.alive)
        return o

    def __del__(self):
        _Live.alive -= 1


class _Paged:
    """A re-iterable GroupByKey value that makes its elements on the fly, as a runner that pages a
    large group through the state API does (Beam's FnApiRunner(use_state_iterables=True))."""

    def __init__(self, n, make):
        self.n, self.make = n, make

    def __iter__(self):
        return (self.make(i) for i in range(self.n))


def _node(i):
    return _Live((0, f"s{i // 1000:03d}.jsonl", i % 1000, f"d{i:06d}"))


def test_beam_star_steps_hold_one_neighbour_at_a_time(monkeypatch):
    """A node of degree 20,000 (a star root, a bucket of 20,000 members): large-star, small-star,
    the label step and the (unverified) bucket step stream the group and hold O(1) of its elements,
    so a worker's memory does not depend on a node's degree when the runner pages its groups."""
    from corpusmill.pipelines import beam_dedup
    from corpusmill.pipelines.beam_dedup import bucket_edges, large_star, small_star, star_label

    n = 20_000
    root = (0, "", -1, "a-root")  # smaller than every _node
    top = (0, "zzz", 0, "z-top")  # larger than every _node
    plain = beam_dedup.node
    monkeypatch.setattr(beam_dedup, "node", lambda ident, survivor: _Live(plain(ident, survivor)))
    middle = tuple(_node(n // 2))
    cases = [  # (step, group, outputs)
        (large_star, ((0, root), _Paged(n, _node)), n),  # root of a star: links every (larger) neighbour
        (large_star, ((0, middle), _Paged(n, _node)), n // 2 - 1),  # neighbours on both sides
        (small_star, ((0, top), _Paged(n, _node)), n),  # every neighbour smaller
        (star_label, ((0, root), _Paged(n, _node)), 1),  # a converged root
        (bucket_edges, (("b", 0, 1, 2), _Paged(n, lambda i: ((f"s{i % 7}", i, f"d{i}", 10 + i % 5), None))), n - 1),
        (bucket_edges, (("x", 1, 2), _Paged(n, lambda i: ((f"s{i % 7}", i, f"d{i}", 10), None))), 2 * (n - 1)),
    ]
    for fn, item, want in cases:
        _Live.alive = _Live.peak = 0
        out = sum(1 for _ in fn(item))
        assert out == want, fn.__name__
        assert _Live.peak <= 4, (fn.__name__, _Live.peak)


@pytest.mark.slow
def test_beam_components_with_paged_groups():
    """The rounds on Beam's runner with state-backed (paged, lazily re-iterated) GroupByKey values, on a
    graph with a component through a third of the nodes: the same clusters as cluster_table."""
    ident, near, exact, _ = random_graph(seed=7, n=600)
    rows = {r["key"]: r for r in ident.to_pylist()}

    def n(k):
        r = rows[int(k)]
        return node((r["source_file"], r["position"], r["id"], r["length"]), "first")

    edges = [(0, n(a), n(b)) for a, b in near] + [(g, n(a), n(b)) for a, b in exact for g in (0, 1)]
    ref = {r["id"]: ClusterInfo(r["cluster"], r["cluster_size"], r["verdict"], r["exact_cluster"], r["exact_cluster_size"])
           for r in cluster_table(ident, near, exact, survivor="first").to_pylist()}

    def check(got):
        assert dict(got) == ref

    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    with beam.Pipeline(runner=FnApiRunner(use_state_iterables=True)) as p:
        assert_that(components(p | beam.Create(edges) | beam.Reshuffle(), "first"), check)
