"""Recipe-facing parameters of the two dedup stages, turned into one :class:`DedupConfig`.

```yaml
stages:
  - stage: exact_dedup        # hash of the normalised text (or the raw text: mode: raw)
    mode: normalized
  - stage: minhash_dedup      # word 5-grams, 14 bands x 8 rows (FineWeb) ...
    survivor: first           # which copy a cluster keeps: first in corpus order (default) or longest
    n_grams: 5
    num_bands: 14
    rows_per_band: 8
    seed: 1
    verify: false             # false: join every LSH candidate (FineWeb parity); true: only pairs whose
                              # estimated Jaccard (equal signature values) >= verify_threshold; exact:
                              # word-shingle Jaccard >= verify_threshold
    # verify_threshold: 0.72  # default: the band scheme's own threshold (1/bands)**(1/rows)
  # ... or bands/rows chosen by datasketch's optimiser for a Jaccard threshold:
  # - stage: minhash_dedup
  #   threshold: 0.8
  #   num_perm: 128
```
"""

from __future__ import annotations

from corpusmill.curation.dedup.exact import EXACT_MODES
from corpusmill.curation.dedup.lsh import SURVIVOR_RULES, DedupConfig
from corpusmill.curation.dedup.minhash import MinHashConfig


class ExactDedupConfig:
    name = "exact_dedup"

    def __init__(self, mode: str = "normalized", survivor: str | None = None) -> None:
        if mode not in EXACT_MODES:
            raise ValueError(f"mode must be one of {', '.join(EXACT_MODES)}, got {mode!r}")
        self.mode = mode
        self.survivor = _check_survivor(survivor)


class MinhashDedupConfig:
    name = "minhash_dedup"

    def __init__(
        self,
        n_grams: int = 5,
        num_bands: int | None = None,
        rows_per_band: int | None = None,
        seed: int = 1,
        threshold: float | None = None,
        num_perm: int = 112,
        survivor: str | None = None,
        verify: bool | str = False,
        verify_threshold: float | None = None,
    ) -> None:
        self.survivor = _check_survivor(survivor)
        if verify is False or verify is None:
            self.verify = "off"
        elif verify is True:
            self.verify = "signature"
        elif verify == "exact":
            self.verify = "exact"
        else:
            raise ValueError(f"verify: expected true, false or exact, got {verify!r}")
        if verify_threshold is not None:
            if self.verify == "off":
                raise ValueError("verify_threshold: only used with verify: true or verify: exact")
            if isinstance(verify_threshold, bool) or not isinstance(verify_threshold, (int, float)) \
                    or not 0.0 < verify_threshold <= 1.0:
                raise ValueError(f"verify_threshold: expected a number in (0, 1], got {verify_threshold!r}")
            verify_threshold = float(verify_threshold)
        self.verify_threshold = verify_threshold
        if threshold is not None:
            if num_bands is not None or rows_per_band is not None:
                raise ValueError("give either threshold (and num_perm) or num_bands and rows_per_band, not both")
            if not 0.0 < threshold < 1.0:
                raise ValueError(f"threshold must be in (0, 1), got {threshold}")
            self.minhash = MinHashConfig.for_threshold(threshold, num_perm, n_grams=n_grams, seed=seed)
        else:
            self.minhash = MinHashConfig(n_grams=n_grams, num_bands=num_bands or 14, rows_per_band=rows_per_band or 8, seed=seed)


def _check_survivor(survivor: str | None) -> str | None:
    if survivor is not None and survivor not in SURVIVOR_RULES:
        raise ValueError(f"survivor must be one of {', '.join(SURVIVOR_RULES)}, got {survivor!r}")
    return survivor


def dedup_config(stages: list) -> DedupConfig:
    """One DedupConfig from the recipe's dedup stage specs (``StageSpec`` with ``.stage``/``.params``).
    Exact and MinHash dedup share one clustering, so they share one ``survivor`` rule: it may be given
    on either stage (or on both, the same)."""
    exact = [ExactDedupConfig(**s.params) for s in stages if s.stage == "exact_dedup"]
    mh = [MinhashDedupConfig(**s.params) for s in stages if s.stage == "minhash_dedup"]
    rules = {c.survivor for c in exact + mh if c.survivor is not None}
    if len(rules) > 1:
        raise ValueError(f"exact_dedup and minhash_dedup give different survivor rules {sorted(rules)}: "
                         "they share one clustering, give one rule")
    return DedupConfig(
        minhash=mh[0].minhash if mh else None,
        exact=bool(exact),
        exact_mode=exact[0].mode if exact else "normalized",
        survivor=rules.pop() if rules else "first",
        verify=mh[0].verify if mh else "off",
        verify_threshold=mh[0].verify_threshold if mh else None,
    )
