"""Deduplication: exact (normalised-text digest) and near-duplicate (MinHash-LSH) clusters with one
deterministic survivor each, computed in bounded memory over any number of tasks.

See ``docs/dedup.md``. Engine-agnostic pieces:

- :mod:`corpusmill.curation.dedup.normalize` - FineWeb-style normalisation, word n-gram shingle hashes;
- :mod:`corpusmill.curation.dedup.minhash` - :class:`MinHashConfig`, :class:`MinHasher` (signatures, band keys);
- :mod:`corpusmill.curation.dedup.exact` - :func:`exact_key`;
- :mod:`corpusmill.curation.dedup.lsh` - :class:`DedupConfig`, :class:`SignatureWriter`, sorted runs -> edges;
- :mod:`corpusmill.curation.dedup.verify` - candidate verification (``verify: true`` / ``exact``);
- :mod:`corpusmill.curation.dedup.storage` - work-directory I/O, local or any fsspec URL;
- :mod:`corpusmill.curation.dedup.clusters` - one-task components, survivor rule, :class:`ClusterLookup`;
- :mod:`corpusmill.curation.dedup.stars` / :mod:`~corpusmill.curation.dedup.components` - the same as many tasks.

The datatrove steps and the in-process driver live with the engine: :mod:`corpusmill.pipelines.datatrove_dedup`.
"""

from corpusmill.curation.dedup.clusters import ClusterInfo, ClusterLookup, build_clusters, cluster_table, connected_components
from corpusmill.curation.dedup.exact import exact_key
from corpusmill.curation.dedup.lsh import DedupConfig, SignatureWriter, bucket_jobs, run_bucket_job
from corpusmill.curation.dedup.minhash import MinHashConfig, MinHasher, optimal_bands_rows
from corpusmill.curation.dedup.normalize import normalize_text, shingle_hashes

__all__ = [
    "ClusterInfo",
    "ClusterLookup",
    "DedupConfig",
    "MinHashConfig",
    "MinHasher",
    "SignatureWriter",
    "bucket_jobs",
    "build_clusters",
    "cluster_table",
    "connected_components",
    "exact_key",
    "normalize_text",
    "optimal_bands_rows",
    "run_bucket_job",
    "shingle_hashes",
]
