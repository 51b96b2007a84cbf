"""Distributed dedup on Beam, with the same keys, clusters and survivors as the datatrove path.

    docs -> (stages before dedup) -+-> alive docs -> band keys + exact key   (same functions as
                                   |                 -> GroupByKey(key)      corpusmill.curation.dedup.lsh)
                                   |                 -> chain edges of each bucket
                                   |                 -> CombineGlobally: connected components and
                                   |                    survivors (corpusmill.curation.dedup.clusters.cluster_table)
                                   +-> mark each doc with its cluster (side input) -> stages after -> sink

Exact dedup groups on the exact key, MinHash on (band, band hash) — Beam's GroupByKey replaces the
sorted runs on disk. Connected components run in one combine: the edges (at most one per document per
band, usually far fewer) and the identities of the documents that have an edge must fit in one
worker's memory (~100 bytes each: 10 M duplicate documents ~ 1-2 GB). Past that, replace the combine
by iterative large-star/small-star rounds. The survivor rule is the datatrove path's
(``DedupConfig.survivor``: the smallest (source_file, position, id), or the longest normalised text
first), applied by the same function.
"""

from __future__ import annotations

from typing import Any, Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa

from corpusmill.curation.dedup.clusters import ClusterInfo, cluster_table
from corpusmill.curation.dedup.config import dedup_config
from corpusmill.curation.dedup.exact import exact_key, exact_key_from_codepoints
from corpusmill.curation.dedup.lsh import DedupConfig
from corpusmill.curation.dedup.minhash import MinHasher
from corpusmill.curation.dedup.normalize import normalize_codepoints
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
                for j, (h, g) in enumerate(self._hasher.band_keys(sig).tolist()):
                    yield (("b", j, h, g), ident)
        if self.config.exact:
            ek = exact_key_from_codepoints(z) if self.config.exact_mode == "normalized" else exact_key(doc.text, "raw")
            if ek is not None:
                yield (("x", ek[0], ek[1]), ident)


def bucket_edges(item) -> Iterable:
    """A bucket of k members -> the k-1 edges of a path through them (connects them all)."""
    key, members = item
    members = sorted(set(members), key=lambda m: (m[0] or "", m[1] if m[1] is not None else -1, m[2]))
    kind = "exact" if key[0] == "x" else "near"
    for a, b in zip(members, members[1:]):
        yield (kind, a, b)


class ClustersFn(beam.CombineFn):
    """All edges -> {doc id: ClusterInfo} for every document in a cluster."""

    def __init__(self, survivor: str = "first") -> None:
        self.survivor = survivor

    def create_accumulator(self):
        return []

    def add_input(self, acc, edge):
        acc.append(edge)
        return acc

    def merge_accumulators(self, accs):
        return [e for a in accs for e in a]

    def extract_output(self, edges) -> dict[str, ClusterInfo]:
        if not edges:
            return {}
        idents = sorted({m for _, a, b in edges for m in (a, b)}, key=lambda m: (m[0] or "", m[1] if m[1] is not None else -1, m[2]))
        key_of = {m: i for i, m in enumerate(idents)}
        near = np.array([(key_of[a], key_of[b]) for k, a, b in edges if k == "near"], dtype=np.uint64).reshape(-1, 2)
        exact = np.array([(key_of[a], key_of[b]) for k, a, b in edges if k == "exact"], dtype=np.uint64).reshape(-1, 2)
        identities = pa.table(
            {
                "key": pa.array(np.arange(len(idents), dtype=np.uint64)),
                "id": [m[2] for m in idents],
                "source_file": [m[0] for m in idents],
                "position": pa.array([m[1] for m in idents], type=pa.int64()),
                "length": pa.array([m[3] for m in idents], type=pa.int64()),
            }
        )
        t = cluster_table(identities, near, exact, survivor=self.survivor).to_pylist()
        return {
            r["id"]: ClusterInfo(r["cluster"], r["cluster_size"], r["verdict"], r["exact_cluster"], r["exact_cluster_size"])
            for r in t
        }


class _DictLookup:
    def __init__(self, mapping: dict[str, ClusterInfo]) -> None:
        self.mapping = mapping

    def get(self, doc_id: str, source_file: str | None = None) -> ClusterInfo | None:
        return self.mapping.get(doc_id)


def _mark(doc, mapping: dict[str, ClusterInfo]):
    mark_document(doc, _DictLookup(mapping))
    return doc


def add_dedup(docs, dedup_stages: list) -> Any:
    """Insert the dedup transforms after ``docs``; returns the marked documents."""
    config = dedup_config(dedup_stages)
    mapping = (
        docs
        | "Dedup:Keys" >> beam.ParDo(DedupKeysFn(config))
        | "Dedup:GroupByBucket" >> beam.GroupByKey()
        | "Dedup:Edges" >> beam.FlatMap(bucket_edges)
        | "Dedup:Clusters" >> beam.CombineGlobally(ClustersFn(config.survivor))
    )
    return docs | "Dedup:Mark" >> beam.Map(_mark, mapping=beam.pvalue.AsSingleton(mapping))
