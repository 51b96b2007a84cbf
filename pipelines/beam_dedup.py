"""Distributed dedup on Beam, with the same keys, clusters and survivors as the datatrove path.

    alive docs -> band keys + exact key -> GroupByKey(bucket) -> star edges around each bucket's min
      -> CC_ROUNDS x (large-star, small-star), each a GroupByKey -> star forest: node -> its root
      -> cluster sizes (Count.PerKey) -> ClusterInfo per doc id -> joined to the docs by id -> marked

A node is ordered by the survivor rule, (-length | 0, source_file, position, id), so a cluster's root
(its smallest node) is its survivor. Exact (g = 1) and dedup (g = 0) graphs run together. No combine
over all edges, no side input; the star and (unverified) bucket steps iterate a group twice and hold
O(1) of its elements, so a high-degree node costs memory only where the runner materialises groups.
Rounds are unrolled (a Beam graph is static); the last step fails loudly if they did not suffice.
"""

from __future__ import annotations

from typing import Any, Iterable

import apache_beam as beam
import numpy as np

from corpusmill.curation.dedup.clusters import EXACT_DUPLICATE, KEEP, NEAR_DUPLICATE, ClusterInfo
from corpusmill.curation.dedup.config import dedup_config
from corpusmill.curation.dedup.exact import exact_key, exact_key_from_codepoints
from corpusmill.curation.dedup.lsh import DedupConfig
from corpusmill.curation.dedup.minhash import MinHasher
from corpusmill.curation.dedup.normalize import normalize_codepoints, shingles_from_codepoints
from corpusmill.curation.dedup.verify import fingerprint, required_matches, spanning_pairs, spanning_pairs_exact
from corpusmill.pipelines.datatrove_dedup import mark_document
from corpusmill.curation.document import is_alive


class DedupKeysFn(beam.DoFn):
    """(bucket key, (source_file, position, id, length)) for every band and the exact key of an alive
    doc (length: normalised code points, for the ``longest`` survivor rule)."""

    def __init__(self, config: DedupConfig) -> None:
        self.config = config
        self._hasher = None

    def setup(self) -> None:
        self._hasher = MinHasher(self.config.minhash) if self.config.minhash else None

    def process(self, doc) -> Iterable:
        if not is_alive(doc):
            return
        md = doc.metadata
        z = normalize_codepoints(doc.text)
        ident = (md.get("source_file"), md.get("position"), doc.id, int(z.size))
        if self._hasher is not None and z.size:
            sig = self._hasher.signature_from_codepoints(z)
            if sig is not None:
                # with verification, band members carry what the check compares (curation/dedup/verify.py)
                payload = None
                if self.config.verify == "signature":
                    payload = fingerprint(sig).tobytes()
                elif self.config.verify == "exact":
                    payload = shingles_from_codepoints(z, self.config.minhash.n_grams).tobytes()
                for j, (h, g) in enumerate(self._hasher.band_keys(sig).tolist()):
                    yield (("b", j, h, g), (ident, payload))
        if self.config.exact:
            ek = exact_key_from_codepoints(z) if self.config.exact_mode == "normalized" else exact_key(doc.text, "raw")
            if ek is not None:
                yield (("x", ek[0], ek[1]), (ident, None))


def node(ident, survivor: str) -> tuple:
    """A document as a graph node whose order is the survivor rule: the smallest node of a cluster is
    its survivor, (-length, source_file, position, id) for ``longest``, (0, ...) for ``first``."""
    sf, pos, doc_id, length = ident
    return (-length if survivor == "longest" else 0, sf or "", -1 if pos is None else pos, doc_id)


def bucket_edges(item, survivor: str = "first", config: DedupConfig | None = None) -> Iterable:
    """A bucket of k members -> k-1 edges (g, a, b) of a star around its smallest member; g = 0 is
    the dedup graph (all edges), g = 1 the exact graph (exact-key buckets are in both). With
    verification (``config.verify``), a MinHash bucket gives the edges of a spanning forest of its
    verified pairs instead, as the datatrove path does (same components)."""
    key, members = item
    if key[0] == "b" and config is not None and config.verify != "off":
        uniq = {}
        for ident, payload in members:
            uniq.setdefault(node(ident, survivor), payload)
        nodes = sorted(uniq)
        if config.verify == "signature":
            sigs = np.stack([np.frombuffer(uniq[n], np.uint32) for n in nodes])
            pairs = spanning_pairs(sigs, required_matches(config.threshold, config.minhash.num_perm))
        else:
            pairs = spanning_pairs_exact([np.frombuffer(uniq[n], np.uint64) for n in nodes], config.threshold)
        for i, j in pairs:
            yield (0, nodes[i], nodes[j])
        return
    # two passes over the (re-iterable) group, holding one node: the minimum, then a star around it
    m = min(node(ident, survivor) for ident, _ in members)
    graphs = (0, 1) if key[0] == "x" else (0,)
    for ident, _ in members:
        v = node(ident, survivor)
        if v != m:
            for g in graphs:
                yield (g, m, v)


def _both_ways(e):
    g, a, b = e
    yield (g, a), b
    yield (g, b), a


def _to_larger(e):
    g, a, b = e
    yield ((g, a), b) if a > b else ((g, b), a)


def large_star(item) -> Iterable:
    """Every larger neighbour of u is connected to the minimum of u's closed neighbourhood."""
    (g, u), nbrs = item
    m = min(min(nbrs), u)
    for v in nbrs:
        if v > u:
            yield (g, v, m)


def small_star(item) -> Iterable:
    """u and its smaller neighbours are connected to the minimum of them."""
    (g, u), nbrs = item
    m = min(nbrs)
    for v in nbrs:
        if v != m:
            yield (g, v, m)
    yield (g, u, m)


def star_label(item) -> Iterable:
    """On a star forest (converged): ((g, root), node) for every node; raises when not converged."""
    (g, u), nbrs = item
    m = min(nbrs)
    if m > u:
        yield (g, u), u
        return
    if any(v != m for v in nbrs):  # a leaf has one (smaller) neighbour: its root
        raise RuntimeError(f"dedup connected components did not converge in {CC_ROUNDS} rounds: "
                           "raise corpusmill.pipelines.beam_dedup.CC_ROUNDS")
    yield (g, m), u


#: large-star + small-star round pairs, unrolled (a Beam graph is static). Converged rounds cost one
#: shuffle of the (star) edges each; the last step checks convergence.
CC_ROUNDS = 12


def components(edges, survivor: str, rounds: int | None = None):
    """(g, a, b) edges -> (doc id, ClusterInfo) for every document in a cluster, by iterated
    large-star / small-star rounds (Kiveris et al. 2014) over PCollections: no worker holds the graph."""
    for r in range(rounds or CC_ROUNDS):
        edges = (
            edges
            | f"Dedup:CC{r:02d}:LargeRoute" >> beam.FlatMap(_both_ways)
            | f"Dedup:CC{r:02d}:LargeGroup" >> beam.GroupByKey()
            | f"Dedup:CC{r:02d}:Large" >> beam.FlatMap(large_star)
            | f"Dedup:CC{r:02d}:LargeDistinct" >> beam.Distinct()
            | f"Dedup:CC{r:02d}:SmallRoute" >> beam.FlatMap(_to_larger)
            | f"Dedup:CC{r:02d}:SmallGroup" >> beam.GroupByKey()
            | f"Dedup:CC{r:02d}:Small" >> beam.FlatMap(small_star)
            | f"Dedup:CC{r:02d}:SmallDistinct" >> beam.Distinct()
        )
    members = (
        edges
        | "Dedup:CCLabelRoute" >> beam.FlatMap(_both_ways)
        | "Dedup:CCLabelGroup" >> beam.GroupByKey()
        | "Dedup:CCLabel" >> beam.FlatMap(star_label)
    )
    sizes = members | "Dedup:CCSize" >> beam.combiners.Count.PerKey()

    def per_node(item):  # streams the group twice (Beam re-iterates it lazily), holds nothing
        (g, root), tagged = item
        size = next(v for tag, v in tagged if tag == "size")
        for tag, u in tagged:
            if tag == "member":
                yield u[3], (g, root[3], size, u)

    def info(item):
        doc_id, parts = item
        by_g = {g: (root, size, u) for g, root, size, u in parts}
        root, size, u = by_g[0]
        eroot, esize, _ = by_g.get(1, (doc_id, 1, u))
        verdict = KEEP if root == doc_id else (EXACT_DUPLICATE if eroot != doc_id else NEAR_DUPLICATE)
        return doc_id, ClusterInfo(root, size, verdict, eroot, esize)

    return (
        (
            members | "Dedup:CCTagMember" >> beam.MapTuple(lambda k, u: (k, ("member", u))),
            sizes | "Dedup:CCTagSize" >> beam.MapTuple(lambda k, n: (k, ("size", n))),
        )
        | "Dedup:CCFlatten" >> beam.Flatten()
        | "Dedup:CCJoinSize" >> beam.GroupByKey()
        | "Dedup:CCPerNode" >> beam.FlatMap(per_node)
        | "Dedup:CCGroupNode" >> beam.GroupByKey()
        | "Dedup:CCInfo" >> beam.Map(info)
    )


class Clusters(beam.PTransform):
    """(g, a, b) edges -> (doc id, ClusterInfo): :func:`components` as one named transform."""

    def __init__(self, survivor: str, rounds: int | None = None) -> None:
        super().__init__()
        self.survivor, self.rounds = survivor, rounds

    def expand(self, edges):
        return components(edges, self.survivor, self.rounds)


def _mark(item) -> Iterable:
    doc_id, grouped = item
    infos = list(grouped["info"])  # one ClusterInfo, or none (the document is in no cluster)
    mapping = _DictLookup({doc_id: infos[0]} if infos else {})
    for doc in grouped["docs"]:
        mark_document(doc, mapping)
        yield doc


class _DictLookup:
    def __init__(self, mapping: dict[str, ClusterInfo]) -> None:
        self.mapping = mapping

    def get(self, doc_id: str, source_file: str | None = None) -> ClusterInfo | None:
        return self.mapping.get(doc_id)


def add_dedup(docs, dedup_stages: list) -> Any:
    """Insert the dedup transforms after ``docs``; returns the marked documents."""
    config = dedup_config(dedup_stages)
    edges = (
        docs
        | "Dedup:Keys" >> beam.ParDo(DedupKeysFn(config))
        | "Dedup:GroupByBucket" >> beam.GroupByKey()
        | "Dedup:Edges" >> beam.FlatMap(bucket_edges, survivor=config.survivor, config=config)
    )
    infos = edges | "Dedup:Clusters" >> Clusters(config.survivor)
    return (
        {"docs": docs | "Dedup:KeyById" >> beam.Map(lambda d: (d.id, d)), "info": infos}
        | "Dedup:JoinClusters" >> beam.CoGroupByKey()
        | "Dedup:Mark" >> beam.FlatMap(_mark)
    )
