"""Engines that run the stages in :mod:`curation`: datatrove (local, Ray, Slurm) and Apache Beam,
plus the recipe loader and the ``corpusmill`` command line."""
