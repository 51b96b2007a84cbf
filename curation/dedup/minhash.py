"""Vectorised MinHash signatures and LSH band keys.

A signature is ``num_bands * rows_per_band`` 64-bit minima (FineWeb / datatrove default: 14 bands x 8
rows = 112, word 5-grams, seed 1). For the shingle set ``X`` of a document (64-bit hashes from
:func:`corpusmill.curation.dedup.normalize.shingle_hashes`), value ``i`` of the signature is::

    min over x in X of  ((a_i * x + b_i) mod 2**64) mod p,     p = 2**61 - 1 (a Mersenne prime)

with ``a_i`` in ``[1, p)`` and ``b_i`` in ``[0, p)`` drawn from ``numpy.random.RandomState(seed)``
(all ``a`` first, then all ``b``). This is exactly the permutation family and parameter draw of
datatrove's ``MinhashDedupSignature`` and datasketch's pre-2.0 MinHash: the product wraps modulo
2**64 in uint64 arithmetic before the reduction modulo ``p``, so it is not the textbook ``mod p``
universal family, but on well-mixed 64-bit inputs it behaves as a random permutation (the tests
check that signature agreement estimates the true Jaccard similarity). Given the same shingle hashes,
our signature is bit-for-bit datatrove's (tested).

The reduction ``mod p`` uses the Mersenne identity ``y mod p = (y & p) + (y >> 61)`` (then one
conditional subtraction), no division. It runs as a compiled loop over shingles x permutations
(numba, vectorised by LLVM: :mod:`corpusmill.curation.dedup.kernels`) or, as a fallback, in numpy: all
permutations at once as an (n_shingles x num_perm) uint64 array, in chunks of 256 shingles so the
working set stays in cache.

Signatures depend only on the text and the config (seeded), never on the engine, worker or task.

Band keys: band ``j`` of a signature (its ``rows_per_band`` values, little-endian uint64 bytes) is
hashed with xxh3-128 into two uint64 (``h``, ``g``). Two documents are LSH candidates when they
share the 128-bit key of at least one band; with 128 bits, unrelated documents never collide by
accident (64-bit band hashes would give ~0.4 false pairs per 10^9 documents).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import xxhash

from corpusmill.curation.dedup.kernels import jit_kernels
from corpusmill.curation.dedup.normalize import normalize_codepoints, shingles_from_codepoints

__all__ = ["MinHashConfig", "MinHasher", "MERSENNE_PRIME", "optimal_bands_rows"]

U64 = np.uint64
MERSENNE_PRIME = (1 << 61) - 1
_P = U64(MERSENNE_PRIME)
_S61 = U64(61)
_CHUNK = 256


@lru_cache(maxsize=64)
def optimal_bands_rows(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) with ``bands * rows <= num_perm`` minimising the weighted false positive and
    false negative areas around ``threshold``: datasketch's own optimiser (``MinHashLSH`` uses it)."""
    try:  # public name in some datasketch releases
        from datasketch.lsh import optimal_param as _opt  # type: ignore[attr-defined]
    except ImportError:
        from datasketch.lsh import _optimal_param as _opt
    b, r = _opt(threshold, num_perm, false_positive_weight, false_negative_weight)
    return int(b), int(r)


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash-LSH parameters. Defaults: FineWeb / datatrove (word 5-grams, 14 bands x 8 rows, seed 1)."""

    n_grams: int = 5
    num_bands: int = 14
    rows_per_band: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        if self.n_grams < 1 or self.num_bands < 1 or self.rows_per_band < 1:
            raise ValueError(f"invalid MinHash config {self}")

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    @classmethod
    def for_threshold(
        cls,
        threshold: float,
        num_perm: int = 112,
        *,
        false_positive_weight: float = 0.5,
        false_negative_weight: float = 0.5,
        n_grams: int = 5,
        seed: int = 1,
    ) -> MinHashConfig:
        """Bands and rows chosen for a Jaccard ``threshold`` by datasketch's optimiser."""
        b, r = optimal_bands_rows(threshold, num_perm, false_positive_weight, false_negative_weight)
        return cls(n_grams=n_grams, num_bands=b, rows_per_band=r, seed=seed)

    @property
    def threshold(self) -> float:
        """The usual S-curve midpoint ``(1/b)**(1/r)`` (0.72 for 14 x 8)."""
        return (1.0 / self.num_bands) ** (1.0 / self.rows_per_band)

    def probability(self, jaccard: float) -> float:
        """P(a pair with this Jaccard similarity shares at least one band) = 1-(1-s**r)**b."""
        return 1.0 - (1.0 - jaccard**self.rows_per_band) ** self.num_bands

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MinHashConfig:
        return cls(**d)


class MinHasher:
    """Computes signatures and band keys for one :class:`MinHashConfig`. Cheap to build; keeps two
    scratch buffers, so use one instance per thread."""

    def __init__(self, config: MinHashConfig | None = None):
        self.config = config or MinHashConfig()
        n = self.config.num_perm
        gen = np.random.RandomState(self.config.seed)
        self.a = gen.randint(1, MERSENNE_PRIME, dtype=U64, size=n)
        self.b = gen.randint(0, MERSENNE_PRIME, dtype=U64, size=n)
        self._y = np.empty((_CHUNK, n), dtype=U64)
        self._t = np.empty((_CHUNK, n), dtype=U64)

    # -- signatures -----------------------------------------------------------------------------------

    def signature_from_shingles(self, shingles: np.ndarray) -> np.ndarray | None:
        """uint64[num_perm] signature of a shingle-hash array (None when it is empty)."""
        x = np.asarray(shingles, dtype=U64).ravel()
        if x.size == 0:
            return None
        jit = jit_kernels()
        if jit is not None:
            return jit.signature(x, self.a, self.b)
        return self._signature_numpy(x)

    def _signature_numpy(self, x: np.ndarray) -> np.ndarray:
        a, b = self.a, self.b
        acc = np.full(a.size, np.iinfo(U64).max, dtype=U64)
        with np.errstate(over="ignore"):
            for s in range(0, x.size, _CHUNK):
                xs = x[s : s + _CHUNK]
                m = xs.size
                y = self._y[:m]
                t = self._t[:m]
                np.multiply(xs[:, None], a, out=y)
                y += b
                np.right_shift(y, _S61, out=t)
                y &= _P
                y += t  # == (a*x+b mod 2**64) mod p, or that plus p (only when it is >= p)
                lo = y.min(axis=0)
                if (y.max(axis=0) >= _P).any():  # probability ~ 8/2**61 per value: exact all the same
                    y[y >= _P] -= _P
                    lo = y.min(axis=0)
                np.minimum(acc, lo, out=acc)
        return acc

    def shingles(self, text: str) -> np.ndarray:
        return shingles_from_codepoints(normalize_codepoints(text), self.config.n_grams)

    def signature_from_codepoints(self, z: np.ndarray) -> np.ndarray | None:
        """Signature of a normalised text (:func:`~corpusmill.curation.dedup.normalize.normalize_codepoints`).
        Repeated shingles are not removed first: they cannot change a minimum."""
        return self.signature_from_shingles(shingles_from_codepoints(z, self.config.n_grams, unique=False))

    def signature(self, text: str) -> np.ndarray | None:
        """Signature of a raw text (normalised and shingled here); None when it has no words."""
        return self.signature_from_codepoints(normalize_codepoints(text))

    # -- LSH ------------------------------------------------------------------------------------------

    def band_keys(self, signature: np.ndarray) -> np.ndarray:
        """(num_bands, 2) uint64: the xxh3-128 of each band's values, split into (high, low) halves."""
        r = self.config.rows_per_band
        sig = np.ascontiguousarray(signature, dtype="<u8")
        raw = sig.tobytes()
        width = 8 * r
        out = np.empty((self.config.num_bands, 2), dtype=U64)
        h128 = xxhash.xxh3_128_intdigest
        for j in range(self.config.num_bands):
            v = h128(raw[j * width : (j + 1) * width])
            out[j, 0] = v >> 64
            out[j, 1] = v & 0xFFFFFFFFFFFFFFFF
        return out

    @staticmethod
    def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
        """Fraction of equal signature values: an unbiased estimate of the shingle-set Jaccard."""
        return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle-hash sets (1.0 for two empty sets)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def detection_probability(jaccard_value: float, num_bands: int, rows_per_band: int) -> float:
    return 1.0 - (1.0 - jaccard_value**rows_per_band) ** num_bands


__all__ += ["jaccard", "detection_probability"]
