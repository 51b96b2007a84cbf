"""Slurm: prepare (and, where ``sbatch`` exists, submit) a SlurmPipelineExecutor run.

Without ``sbatch`` on the PATH (or with ``dry_run=True``) the launch script and the pickled executor
are written to ``RUN/logs/<phase>/`` and nothing is submitted: copy the run directory to the cluster
or submit the printed script there.
"""

from __future__ import annotations

import logging
import shutil
import sys

log = logging.getLogger("corpusmill")


def make_slurm_executor(recipe, pipeline, logging_dir: str, *, depends=None, dry_run: bool | None = None):
    import datatrove.executor.slurm as dt_slurm
    from datatrove.executor.slurm import SlurmPipelineExecutor

    opts = dict(recipe.slurm)
    ex = SlurmPipelineExecutor(
        pipeline,
        tasks=recipe.tasks,
        workers=recipe.workers,
        time=opts.pop("time", "24:00:00"),
        partition=opts.pop("partition", "cpu"),
        cpus_per_task=opts.pop("cpus_per_task", 1),
        mem_per_cpu_gb=opts.pop("mem_per_cpu_gb", 2),
        job_name=opts.pop("job_name", f"corpusmill-{recipe.name}"),
        venv_path=opts.pop("venv_path", f"{sys.prefix}/bin/activate"),
        logging_dir=logging_dir,
        depends=depends,
        sbatch_args=opts.pop("sbatch_args", None),
        **opts,
    )
    if dry_run is None:
        dry_run = shutil.which("sbatch") is None
    ex.launch_script_path = f"{logging_dir}/launch_script.slurm"
    if dry_run:
        def fake_launch(contents, retriever, *args):
            log.info("slurm dry run (no sbatch here): would submit %s with args %s", ex.launch_script_path, " ".join(args))
            return "dry-run"

        orig = dt_slurm.launch_slurm_job
        dt_slurm.launch_slurm_job = fake_launch
        try:
            ex.launch_merge_stats = lambda: None
            ex.launch_job()
        finally:
            dt_slurm.launch_slurm_job = orig
    else:
        ex.launch_job()
    return ex
