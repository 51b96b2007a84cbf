"""Which implementation runs the dedup hot loops: numba-compiled (the default) or numpy (the fallback).

The compiled kernels (:mod:`corpusmill.curation.dedup._jit`) and the numpy code in :mod:`corpusmill.curation.dedup.normalize`
and :mod:`corpusmill.curation.dedup.minhash` compute the same integers (tested on all the shared data), so
signatures, band keys and exact keys do not depend on which one a worker runs. numpy is used when

- ``CORPUSMILL_JIT=0`` is set in the environment (also ``false``/``no``/``off``), or
- numba cannot be imported or fails to compile the kernels (a warning says why; e.g. a Python
  release numba does not support yet).

Compiled code is cached on disk by numba (``__pycache__`` beside the source, or ``NUMBA_CACHE_DIR``),
so a worker process loads it in well under a second instead of compiling (~2 s).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

__all__ = ["jit_kernels", "jit_enabled"]

log = logging.getLogger(__name__)
_STATE: ModuleType | bool | None = None


def _load() -> ModuleType | bool:
    if os.environ.get("CORPUSMILL_JIT", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import numpy as np

        from corpusmill.curation.dedup import _jit

        # compile (or load from the cache) now, so that a failure falls back here and not mid-run
        z, _ = _jit.normalize(np.array([65, 32, 49], dtype=np.uint32), np.arange(128, dtype=np.uint32),
                              np.zeros(128, dtype=np.uint8), True)
        one = np.ones(8, dtype=np.uint64)
        _jit.signature(_jit.shingles(z, np.arange(128, dtype=np.uint64), one, one, 5), np.ones(2, dtype=np.uint64),
                       np.zeros(2, dtype=np.uint64))
        return _jit
    except Exception as e:  # ImportError, numba's compile errors
        log.warning("corpusmill: numba kernels unavailable (%s: %s); dedup uses the slower numpy code "
                    "(same results)", type(e).__name__, e)
        return False


def jit_kernels() -> ModuleType | None:
    """The compiled kernel module, or None when the numpy code should run."""
    global _STATE
    if _STATE is None:
        _STATE = _load()
    return _STATE or None


def jit_enabled() -> bool:
    return jit_kernels() is not None
