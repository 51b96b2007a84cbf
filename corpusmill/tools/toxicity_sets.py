"""The labelled toxicity sets of the shared data, read with the split rules their PROVENANCE.md gives.

:func:`load_set` returns ``(text, toxic, split)`` rows, split in ``train`` / ``dev`` / ``test``: ``test``
is the set's own test split (never trained on); ``dev`` is a deterministic part of the training split used
only to calibrate scores and choose the threshold; the default scorer trains on ``train``. Every rule is
a hash of a stable key, so the split does not depend on row order; docs/toxicity.md lists the rules.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

#: set name -> language
SETS = {
    "davidson": "en",
    "germeval": "de",
    "told_br": "pt",
    "wikitox": "en",
    "hatecheck": "en",
}


@dataclass(frozen=True)
class Row:
    text: str
    toxic: bool
    split: str  # "train" | "dev" | "test"
    group: str = ""  # e.g. the HateCheck functionality


def bucket(key: str) -> int:
    """The PROVENANCE rule: ``int(sha1(key).hexdigest()[:8], 16) % 5`` (0 = test)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 5


def split_of(key: str) -> str:
    """bucket 0 = test (PROVENANCE); bucket 1 = dev (ours, for calibration); others = train."""
    b = bucket(key)
    return "test" if b == 0 else "dev" if b == 1 else "train"


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_davidson(root: Path) -> list[Row]:
    # PROVENANCE gives no split for Davidson: we use the rule of the other tweet sets, sha1(text) % 5 == 0.
    # toxic = class 0 (hate) or 1 (offensive), as in docs/toxicity.md.
    return [Row(r["tweet"], r["class"] in ("0", "1"), split_of(r["tweet"])) for r in _csv(root / "davidson2017_labeled_data.csv")]


def load_germeval(root: Path) -> list[Row]:
    rows = []
    for name, official in (("germeval2018_training.txt", "train"), ("germeval2018_test.txt", "test")):
        with open(root / name, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2:
                    continue
                text = parts[0]
                split = official
                if official == "train" and bucket(text) == 0:  # PROVENANCE's dev rule inside training
                    split = "dev"
                rows.append(Row(text.replace("|LBR|", "\n"), parts[1] == "OFFENSE", split, parts[2] if len(parts) > 2 else ""))
    return rows


def load_told_br(root: Path) -> list[Row]:
    cats = ("homophobia", "obscene", "insult", "racism", "misogyny", "xenophobia")
    out = []
    for r in _csv(root / "told-br_ToLD-BR.csv"):
        toxic = any(float(r[c] or 0) >= 1 for c in cats)  # the authors' binary rule, N = 1
        out.append(Row(r["text"], toxic, split_of(r["text"])))
    return out


def load_wikitox(root: Path) -> list[Row]:
    # an evaluation set (Wikipedia Toxicity TEST comments); PROVENANCE's split when one is needed: by rev_id
    return [
        Row(r["comment"].replace("NEWLINE_TOKEN", "\n"), r["toxic"] == "True", split_of(r["rev_id"]))
        for r in _csv(root / "wikitox_toxicity_nonfuzzed_testset.csv")
    ]


def load_hatecheck(root: Path) -> list[Row]:
    # an evaluation suite; PROVENANCE's split when one is needed: by template, so near-identical cases stay together
    return [
        Row(r["test_case"], r["label_gold"] == "hateful", split_of(r["templ_id"]), r["functionality"])
        for r in _csv(root / "hatecheck_test_suite_cases.csv")
    ]


LOADERS = {
    "davidson": load_davidson,
    "germeval": load_germeval,
    "told_br": load_told_br,
    "wikitox": load_wikitox,
    "hatecheck": load_hatecheck,
}


def default_root() -> Path:
    env = os.environ.get("CORPUSMILL_SHARED_DATA")
    base = Path(env) if env else Path.cwd().parent / "shared" / "data"
    return base / "toxicity"


def load_set(name: str, root: str | os.PathLike | None = None) -> list[Row]:
    if name not in LOADERS:
        raise ValueError(f"unknown labelled set {name!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[name](Path(root) if root else default_root())
