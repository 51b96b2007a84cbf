"""datatrove PipelineSteps for the dedup phases, and a plain-Python driver.

Four phases share one work directory (see :mod:`corpusmill.curation.dedup.lsh` for its layout)::

    1. DedupSignatures  any number of tasks   docs in -> same docs out; writes sorted signature runs
    2. DedupBuckets     any number of tasks   merges the runs of each band (and exact keys) -> edges
    3. DedupClusters    any number of tasks   edges -> clusters, survivors -> mapping partitions (cluster_phases)
    4. DedupMarker      any number of tasks   docs in -> docs out, marked with their cluster;
                                              non-survivors rejected (corpusmill.curation.document.reject)

Phases 1 and 4 see the same documents (ids must be stable between them, e.g. the pre-dedup
documents written by phase 1's pipeline, or the same readers + stages run again); the task split
of phase 4 need not be phase 1's. Only *alive* documents are signed and marked: documents a stage
already rejected, and control records, pass through untouched.

Every phase writes its outputs atomically and can be rerun; phases 2 and 3 check that the previous
phase finished (all tasks) and raise otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpusmill.curation.dedup.clusters import (
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    ROWS_PER_PARTITION,
    ClusterInfo,
    ClusterLookup,
)
from corpusmill.curation.dedup.components import DEFAULT_MAX_RECORDS, MAX_ROUNDS, converged_round, run_components, run_task
from corpusmill.curation.dedup.storage import join
from corpusmill.curation.dedup.lsh import (
    MAX_BUFFER_DOCS,
    WINDOW_RECORDS,
    DedupConfig,
    SignatureWriter,
    atomic_write_json,
    bucket_jobs,
    check_signatures_complete,
    load_config,
    run_bucket_job,
)
from corpusmill.curation.document import is_alive, reject

__all__ = [
    "DedupSignatures",
    "DedupBuckets",
    "DedupClusters",
    "cluster_phases",
    "DedupMarker",
    "mark_document",
    "dedup_documents",
    "DedupResult",
    "EXACT_STAGE",
    "MINHASH_STAGE",
]

EXACT_STAGE, EXACT_REASON = "exact_dedup", "exact_duplicate"
MINHASH_STAGE, MINHASH_REASON = "minhash_dedup", "near_duplicate"


def _identity(doc: Document) -> tuple[str | None, int | None]:
    md = doc.metadata
    sf = md.get("source_file")
    pos = md.get("position")
    return (None if sf is None else str(sf)), (None if pos is None else int(pos))


class DedupSignatures(PipelineStep):
    """Phase 1: sign every alive document (MinHash band keys and/or exact key) and pass all documents
    through unchanged. Any number of tasks; memory bounded by ``max_buffer_docs``."""

    type = "🫂 - DEDUP"
    name = "🔏 dedup signatures"

    def __init__(self, workdir: str | os.PathLike, config: DedupConfig | None = None, max_buffer_docs: int = MAX_BUFFER_DOCS):
        super().__init__()
        self.workdir = join(workdir)  # a local path or an fsspec URL
        self.config = config or DedupConfig()
        self.max_buffer_docs = max_buffer_docs

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with SignatureWriter(self.workdir, self.config, rank, world_size, self.max_buffer_docs) as writer:
            for doc in data or ():
                if is_alive(doc):
                    with self.track_time():
                        sf, pos = _identity(doc)
                        signed = writer.add(doc.id, doc.text, sf, pos)
                    self.stat_update("signed" if signed else "not_signed")
                yield doc
        st = writer.stats()
        self.stat_update("minhashed", value=st["minhashed"], unit="task")
        self.stat_update("exact_keyed", value=st["exact_keyed"], unit="task")


class DedupBuckets(PipelineStep):
    """Phase 2: merge sorted runs into candidate edges. Jobs: one per band (x ``parts_per_band``
    hash-range parts) plus exact keys; task ``rank`` runs jobs ``rank, rank + world_size, ...``.
    Works when called (not lazily) and passes ``data`` through untouched."""

    type = "🫂 - DEDUP"
    name = "🪣 dedup buckets"

    def __init__(self, workdir: str | os.PathLike, parts_per_band: int = 1, window_records: int = WINDOW_RECORDS):
        super().__init__()
        self.workdir = join(workdir)
        self.parts_per_band = max(1, int(parts_per_band))
        self.window_records = window_records

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        check_signatures_complete(self.workdir)
        config = load_config(self.workdir)
        jobs = bucket_jobs(config, self.parts_per_band)
        atomic_write_json(join(self.workdir, "edges", "jobs.json"), {"jobs": jobs, "parts_per_band": self.parts_per_band})
        with self.track_time(unit="job"):
            for job in jobs[rank::world_size]:
                n = run_bucket_job(self.workdir, job, self.parts_per_band, self.window_records)
                self.stat_update("jobs", unit="task")
                self.stat_update("edges", value=n, unit="job")
        return data


class DedupClusters(PipelineStep):
    """Phase 3: connected components and survivors (:mod:`corpusmill.curation.dedup.components`).

    ``phase=None`` (default): every cluster phase in task 0, one after the other (in-process use).
    ``phase="prepare" | "init" | "round" | "labels" | "survivors" | "mapping"``: that phase, as task
    ``rank`` of ``world_size`` (see :func:`cluster_phases`); a ``round`` after convergence does nothing.
    Passes ``data`` through untouched."""

    type = "🫂 - DEDUP"
    name = "🧩 dedup clusters"

    def __init__(self, workdir: str | os.PathLike, rows_per_partition: int = ROWS_PER_PARTITION, *, phase: str | None = None,
                 round: int = 0, max_records: int = DEFAULT_MAX_RECORDS):
        super().__init__()
        self.workdir = str(workdir)
        self.rows_per_partition = rows_per_partition
        self.phase = phase
        self.round = round
        self.max_records = max_records

    def converged(self, tasks: int) -> bool:
        """A round step with nothing left to do (an earlier round converged)."""
        return self.phase == "round" and converged_round(self.workdir, tasks) is not None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        kw = dict(max_records=self.max_records, rows_per_partition=self.rows_per_partition)
        with self.track_time(unit="run"):
            if self.phase is None:
                if rank == 0:
                    meta = run_components(self.workdir, 1, **kw)
                    for k in ("docs_in_clusters", "clusters", "exact_duplicates", "near_duplicates"):
                        self.stat_update(k, value=meta[k], unit="run")
            else:
                run_task(self.workdir, self.phase, rank, world_size, round=self.round, **kw)
        return data


def cluster_phases(workdir: str, tasks: int, max_rounds: int = MAX_ROUNDS) -> list[tuple[str, list, int]]:
    """(name, pipeline, tasks) of the cluster phase as many tasks: prepare (1 task), init, up to
    ``max_rounds`` rounds (a runner may skip a round whose :meth:`DedupClusters.converged` is true;
    fixed lists such as Slurm's run them as no-ops), labels, survivors, mapping."""
    out = [("clusters-prepare", [DedupClusters(workdir, phase="prepare")], 1),
           ("clusters-init", [DedupClusters(workdir, phase="init")], tasks)]
    out += [(f"clusters-round{r:03d}", [DedupClusters(workdir, phase="round", round=r)], tasks) for r in range(max_rounds)]
    out += [(f"clusters-{p}", [DedupClusters(workdir, phase=p)], tasks) for p in ("labels", "survivors", "mapping")]
    return out


def mark_document(doc: Document, lookup: ClusterLookup) -> ClusterInfo | None:
    """Set ``dedup_cluster`` / ``dedup_cluster_size`` on an alive document and reject it when it is
    not its cluster's survivor. Returns its cluster info (None: in no cluster, size 1)."""
    if not is_alive(doc):
        return None
    sf, _ = _identity(doc)
    info = lookup.get(doc.id, sf)
    md = doc.metadata
    if info is None:
        md["dedup_cluster_size"] = 1
        return None
    md["dedup_cluster"] = info.cluster
    md["dedup_cluster_size"] = info.cluster_size
    if info.verdict == EXACT_DUPLICATE:
        reject(doc, EXACT_STAGE, EXACT_REASON)
    elif info.verdict == NEAR_DUPLICATE:
        reject(doc, MINHASH_STAGE, MINHASH_REASON)
    return info


class DedupMarker(PipelineStep):
    """Phase 4: mark every alive document with its cluster (``dedup_cluster`` = survivor id,
    ``dedup_cluster_size``) and reject non-survivors: ``("exact_dedup", "exact_duplicate")`` or
    ``("minhash_dedup", "near_duplicate")``. Any number of tasks, any split."""

    type = "🫂 - DEDUP"
    name = "🏷 dedup marker"

    def __init__(self, workdir: str | os.PathLike, cache_shards: int = 2):
        super().__init__()
        self.workdir = join(workdir)  # a local path or an fsspec URL
        self.cache_shards = cache_shards

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        lookup = ClusterLookup(self.workdir, self.cache_shards)
        for doc in data or ():
            if is_alive(doc):
                with self.track_time():
                    info = mark_document(doc, lookup)
                self.stat_update("unique" if info is None else info.verdict)
            yield doc


# --- plain-Python driver -----------------------------------------------------------------------------


@dataclass
class DedupResult:
    docs: list[Document]
    clusters: dict[str, ClusterInfo]  # doc id -> info, for the documents in a cluster
    stats: dict

    @property
    def kept(self) -> list[Document]:
        return [d for d in self.docs if is_alive(d)]


def dedup_documents(
    docs: Iterable[Document],
    workdir: str | os.PathLike,
    config: DedupConfig | None = None,
    *,
    num_tasks: int = 1,
    bucket_tasks: int = 1,
    parts_per_band: int = 1,
    max_buffer_docs: int = MAX_BUFFER_DOCS,
    window_records: int = WINDOW_RECORDS,
    rows_per_partition: int = ROWS_PER_PARTITION,
    mark: bool = True,
) -> DedupResult:
    """Run all four phases in this process over ``docs`` (materialised as a list, split into
    ``num_tasks`` contiguous signature tasks). Documents are marked in place when ``mark``.
    ``workdir`` should be new or a previous run of the same config."""
    docs = list(docs)
    workdir = Path(workdir)
    config = config or DedupConfig()
    n = len(docs)
    sig_step = DedupSignatures(workdir, config, max_buffer_docs)
    for rank in range(num_tasks):
        chunk = docs[rank * n // num_tasks : (rank + 1) * n // num_tasks]
        for _ in sig_step.run(iter(chunk), rank, num_tasks):
            pass
    bucket_step = DedupBuckets(workdir, parts_per_band, window_records)
    for rank in range(bucket_tasks):
        bucket_step.run(None, rank, bucket_tasks)
    DedupClusters(workdir, rows_per_partition).run(None, 0, 1)  # all cluster phases, in this process
    lookup = ClusterLookup(workdir)
    table = lookup.table()
    cols = [table[c].to_pylist() for c in ("id", "cluster", "cluster_size", "verdict", "exact_cluster", "exact_cluster_size")]
    clusters = {i: ClusterInfo(c, s, v, ec, es) for i, c, s, v, ec, es in zip(*cols)}
    if mark:
        for doc in docs:
            mark_document(doc, lookup)
    return DedupResult(docs=docs, clusters=clusters, stats=dict(lookup.meta))
