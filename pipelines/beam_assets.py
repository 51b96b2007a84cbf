"""Stage model files with a Dataflow job, so workers never download them.

Before the job is submitted, every local model file a recipe's stages need (the language-ID model —
the cached lid.176.ftz when the recipe names none —, a fastText toxicity classifier, a tokenizer.json
for the token-ratio filter) is uploaded once to ``<temp_location>/corpusmill-assets/<sha256>/<name>``
and the stage parameter is rewritten to that URL; on the worker, :func:`corpusmill.curation.assets.localize`
copies it to local disk on first use. With ``--dry_run`` nothing is uploaded (the graph is built with
the URLs it would use).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

from corpusmill.curation.assets import sha256_file

log = logging.getLogger("corpusmill")

# stage -> parameters that name a model file
ASSET_PARAMS = {
    "language_id": ("model_path",),
    "toxicity": ("model_path",),
    "token_ratio": ("tokenizer", "tokenizer_path"),
}


def _upload(local: Path, url: str) -> None:
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
            url = f"{base}/{sha256_file(local)[:16]}/{local.name}"
            if dry_run:
                log.info("dry run: would stage %s as %s", local, url)
            else:
                log.info("staging %s as %s", local, url)
                _upload(local, url)
            spec.params[name] = url
    return staged
