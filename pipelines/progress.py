"""A live progress line per task: documents, MB, docs/s, MB/s and ETA when input sizes are known."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("corpusmill")


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    def __init__(self, label: str, total_bytes: int | None, total_shards: int, every: float = 5.0) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.total_shards = total_shards
        self.every = every
        self.start = time.time()
        self.last = 0.0
        self.docs = 0
        self.done_bytes = 0  # bytes of finished shards
        self.shards_done = 0
        self.tty = sys.stderr.isatty()

    def update(self, docs: int, current_bytes: int, force: bool = False) -> None:
        self.docs += docs
        now = time.time()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        mb = (self.done_bytes + current_bytes) / 1e6
        line = f"{self.label}: shard {self.shards_done}/{self.total_shards}, {self.docs:,} docs, {mb:,.1f}"
        if self.total_bytes:
            line += f"/{self.total_bytes / 1e6:,.1f}"
        line += f" MB, {self.docs / elapsed:,.0f} docs/s, {mb / elapsed:,.2f} MB/s"
        if self.total_bytes and mb > 0:
            eta = elapsed * (self.total_bytes / 1e6 - mb) / mb
            line += f", ETA {_fmt_eta(eta)}"
        log.info(line)

    def shard_finished(self, size: int | None) -> None:
        self.shards_done += 1
        self.done_bytes += size or 0
        self.update(0, 0, force=self.shards_done == self.total_shards)
