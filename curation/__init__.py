"""Engine-agnostic curation stages: readers, extractors, filters, scorers, dedup.

Every stage works on :class:`datatrove.data.Document` and knows nothing about executors; the
engines in :mod:`pipelines` (datatrove local/Ray/Slurm, Apache Beam) run the very same objects.
"""
