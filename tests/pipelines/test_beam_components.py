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
