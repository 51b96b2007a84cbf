"""Stage model files with a Dataflow job, so workers never download them from elsewhere.

Before the job is submitted, every local model file a recipe's stages need (the language-ID model —
the cached lid.176.ftz when the recipe names none —, a fastText toxicity classifier, a quality model, a
tokenizer.json for the token-ratio filter) is uploaded once, with its sidecars (``<stem>.metrics.json``,
``<stem>.quality.json``: thresholds, calibration, preprocessing), to
``<temp_location>/corpusmill-assets/<digest>/<name>`` (digest of the model and its sidecars) and the stage
parameter is rewritten to that URL; on the worker, :func:`corpusmill.curation.assets.localize` copies the
model and its sidecars to local disk on first use. With ``--dry_run`` nothing is uploaded (the graph is
built with the URLs it would use).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from pathlib import Path

from corpusmill.curation.assets import sha256_file, sidecars

log = logging.getLogger("corpusmill")

# stage -> parameters that name a model file
ASSET_PARAMS = {
    "language_id": ("model_path",),
    "toxicity": ("model_path",),
    "quality": ("model",),
    "token_ratio": ("tokenizer", "tokenizer_path"),
}


def _upload(local: Path, url: str) -> None:
    """Copy ``local`` to ``url`` (fsspec, or Beam's FileSystems for a scheme fsspec has no backend for)
    unless it is there already (the folder is named by the content digest)."""
    try:
        import fsspec

        fs, p = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError):
        fs = None
    if fs is not None:
        if not fs.exists(p):  # via a part file: a file that is there is complete
            fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(local), p + ".part")
            fs.mv(p + ".part", p)
        return
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(url):
        return
    with open(local, "rb") as src, FileSystems.create(url) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def stage_assets(stages: list, temp_location: str, dry_run: bool = False) -> list:
    """A copy of ``stages`` whose model-file parameters point at staged copies under ``temp_location``."""
    from corpusmill.curation.assets import ensure_lid_model

    staged = copy.deepcopy(stages)
    base = temp_location.rstrip("/") + "/corpusmill-assets"
    for spec in staged:
        names = ASSET_PARAMS.get(spec.stage, ())
        if spec.stage == "language_id" and not spec.params.get("model_path"):
            spec.params["model_path"] = str(ensure_lid_model())
        for name in names:
            value = spec.params.get(name)
            if not value or "://" in str(value) or not os.path.isfile(str(value)):
                continue
            local = Path(value)
            files = [local] + sidecars(local)
            digest = sha256_file(local)
            if len(files) > 1:  # a changed sidecar (a new threshold) must not reuse the old folder
                digest = hashlib.sha256("".join(f.name + sha256_file(f) for f in files).encode()).hexdigest()
            folder = f"{base}/{digest[:16]}"
            for f in files:
                if dry_run:
                    log.info("dry run: would stage %s as %s/%s", f, folder, f.name)
                else:
                    log.info("staging %s as %s/%s", f, folder, f.name)
                    _upload(f, f"{folder}/{f.name}")
            spec.params[name] = f"{folder}/{local.name}"
    return staged
