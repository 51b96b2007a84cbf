"""Deduplication: exact (normalised-text digest) and near-duplicate (MinHash-LSH) clusters with one
deterministic survivor each, computed in bounded memory over any number of tasks.

See ``docs/dedup.md``. Engine-agnostic pieces:

- :mod:`curation.dedup.normalize` - FineWeb-style normalisation, word n-gram shingle hashes;
- :mod:`curation.dedup.minhash` - :class:`MinHashConfig`, :class:`MinHasher` (signatures, band keys);
- :mod:`curation.dedup.exact` - :func:`exact_key`;
- :mod:`curation.dedup.lsh` - :class:`DedupConfig`, :class:`SignatureWriter`, sorted runs -> edges;
- :mod:`curation.dedup.clusters` - components, survivor rule, :class:`ClusterLookup`.

datatrove steps and the in-process driver: :mod:`curation.dedup.steps`.
"""

from curation.dedup.clusters import ClusterInfo, ClusterLookup, build_clusters, cluster_table, connected_components
from curation.dedup.exact import exact_key
from curation.dedup.lsh import DedupConfig, SignatureWriter, bucket_jobs, run_bucket_job
from curation.dedup.minhash import MinHashConfig, MinHasher, optimal_bands_rows
from curation.dedup.normalize import normalize_text, shingle_hashes
from curation.dedup.steps import (
    DedupBuckets,
    DedupClusters,
    DedupMarker,
    DedupResult,
    DedupSignatures,
    dedup_documents,
    mark_document,
)

__all__ = [
    "ClusterInfo",
    "ClusterLookup",
    "DedupBuckets",
    "DedupClusters",
    "DedupConfig",
    "DedupMarker",
    "DedupResult",
    "DedupSignatures",
    "MinHashConfig",
    "MinHasher",
    "SignatureWriter",
    "bucket_jobs",
    "build_clusters",
    "cluster_table",
    "connected_components",
    "dedup_documents",
    "exact_key",
    "mark_document",
    "normalize_text",
    "optimal_bands_rows",
    "run_bucket_job",
    "shingle_hashes",
]
