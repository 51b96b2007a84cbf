"""Progress of a curation run: per-task counters in the workers, one run-level view in the parent.

Workers: :class:`Progress` counts documents and bytes of its task's shards, logs a line to the task's
log every few seconds and leaves a heartbeat (``RUN/logs/progress/<task>.json``). The parent:
:func:`run_view` polls the run directory (datatrove's ``executor.json`` / ``completions`` per phase,
the shard manifests, the heartbeats) and shows documents, MB, docs/s, shards done / total and the ETA
of the run (per phase for dedup recipes) with ``rich`` on a terminal, one line every ``every`` seconds
otherwise. From the CLI without ``-v`` the workers' and engines' own output (datatrove, Beam) goes to
``RUN/logs/run.log`` instead of the terminal.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("corpusmill")

#: set by the CLI: False -> engine/worker output goes to RUN/logs/run.log; True -> shown; None (library use) -> untouched
VERBOSE: bool | None = None


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """One task's counters (in the worker)."""

    def __init__(self, label: str, total_bytes: int | None, total_shards: int, every: float = 5.0,
                 heartbeat_dir: str | None = None) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.total_shards = total_shards
        self.every = every
        self.start = time.time()
        self.last = 0.0
        self.docs = 0
        self.done_bytes = 0  # bytes of finished shards
        self.current_bytes = 0
        self.shards_done = 0
        self.heartbeat = None
        if heartbeat_dir and "://" not in heartbeat_dir:
            self.heartbeat = Path(heartbeat_dir) / f"{label.replace(' ', '-')}.json"

    def _beat(self) -> None:
        if self.heartbeat is None:
            return
        try:
            from corpusmill.atomic import write_json

            write_json(self.heartbeat, {"docs": self.docs, "bytes": self.done_bytes + self.current_bytes,
                                        "shards_done": self.shards_done, "shards": self.total_shards,
                                        "start": self.start, "time": time.time()}, indent=None)
        except OSError:  # progress is best effort, never a reason to fail a task
            self.heartbeat = None

    def update(self, docs: int, current_bytes: int, force: bool = False) -> None:
        self.docs += docs
        self.current_bytes = current_bytes
        now = time.time()
        if not force and now - self.last < self.every:
            return
        self.last = now
        self._beat()
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
        self.update(0, 0, force=True)


# ------------------------------------------------------------------------------------------------
# the run-level view (in the parent)


def _count(pattern: str) -> int:
    return len(glob.glob(pattern))


class RunState:
    """What the run directory says about a run in progress."""

    def __init__(self, out_dir: str, total_shards: int, total_bytes: int | None) -> None:
        self.out = out_dir.rstrip("/")
        self.total_shards = total_shards
        self.total_bytes = total_bytes
        self.start = time.time()
        self.phase_start: dict[str, float] = {}

    def phases(self) -> list[tuple[str, int, int]]:
        """(phase, tasks done, tasks) of every datatrove phase started so far, in start order."""
        out = []
        files = sorted(glob.glob(f"{self.out}/logs/*/executor.json"), key=lambda f: os.path.getmtime(f))
        for f in files:
            d = os.path.dirname(f)
            try:
                tasks = int(json.loads(Path(f).read_text()).get("world_size") or 0)
            except (OSError, ValueError):
                continue
            name = os.path.basename(d)
            self.phase_start.setdefault(name, time.time())
            out.append((name, _count(f"{d}/completions/*"), tasks))
        return out

    def snapshot(self) -> dict:
        docs = nbytes = 0
        for f in glob.glob(f"{self.out}/logs/progress/*.json") + glob.glob(f"{self.out}/_predup/logs/progress/*.json"):
            try:
                h = json.loads(Path(f).read_text())
            except (OSError, ValueError):
                continue
            docs += h.get("docs", 0)
            nbytes += h.get("bytes", 0)
        phases = self.phases()
        predup = os.path.isdir(f"{self.out}/_predup")
        first = f"{self.out}/_predup/manifest/*.parquet" if predup else f"{self.out}/manifest/*.parquet"
        shards = _count(first)
        now = time.time()
        elapsed = max(now - self.start, 1e-9)
        eta = None
        if self.total_bytes and nbytes:
            eta = elapsed * (self.total_bytes - nbytes) / nbytes
        elif shards:
            eta = elapsed * (self.total_shards - shards) / shards
        cur = phases[-1] if phases else None
        phase_eta = None
        if cur and cur[1]:
            phase_eta = (now - self.phase_start[cur[0]]) * (cur[2] - cur[1]) / cur[1]
        return {"docs": docs, "mb": nbytes / 1e6, "total_mb": (self.total_bytes or 0) / 1e6, "shards": shards,
                "total_shards": self.total_shards, "docs_s": docs / elapsed, "eta": eta, "elapsed": elapsed,
                "phase": cur, "phase_index": len(phases), "phase_eta": phase_eta, "dedup": predup}

    @staticmethod
    def line(s: dict) -> str:
        out = []
        if s["phase"]:
            name, done, tasks = s["phase"]
            out.append(f"[{name}{' (phase %d)' % s['phase_index'] if s['dedup'] else ''}: tasks {done}/{tasks}"
                       + (f", phase ETA {_fmt_eta(s['phase_eta'])}" if s["phase_eta"] is not None and s["dedup"] else "") + "]")
        out.append(f"shards {s['shards']}/{s['total_shards']}, {s['docs']:,} docs, {s['mb']:,.1f}"
                   + (f"/{s['total_mb']:,.1f}" if s["total_mb"] else "") + f" MB, {s['docs_s']:,.0f} docs/s")
        if s["eta"] is not None and s["shards"] < s["total_shards"]:
            out.append(f"ETA {_fmt_eta(s['eta'])}" + (" (reading)" if s["dedup"] else ""))
        out.append(f"elapsed {_fmt_eta(s['elapsed'])}")
        return " ".join(out[:1]) + " " + ", ".join(out[1:]) if s["phase"] else ", ".join(out)


class _Viewer(threading.Thread):
    def __init__(self, state: RunState, stream, every: float) -> None:
        super().__init__(daemon=True, name="corpusmill-progress")
        self.state, self.stream, self.every = state, stream, every
        self.stop = threading.Event()

    def run(self) -> None:
        if getattr(self.stream, "isatty", lambda: False)():
            self._rich()
        else:
            while not self.stop.wait(self.every):
                self._print(RunState.line(self.state.snapshot()))

    def _print(self, text: str) -> None:
        try:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        with RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                          TimeElapsedColumn(), console=Console(file=self.stream), transient=False,
                          redirect_stdout=False, redirect_stderr=False) as bar:  # other output: the log file
            task = bar.add_task("curate", total=self.state.total_shards, info="")
            while True:
                s = self.state.snapshot()
                name = s["phase"][0] if s["phase"] else "starting"
                info = (f"{s['shards']}/{s['total_shards']} shards  {s['docs']:,} docs  {s['mb']:,.1f} MB  "
                        f"{s['docs_s']:,.0f} docs/s  ETA {_fmt_eta(s['eta']) if s['eta'] is not None else '?'}")
                if s["dedup"] and s["phase"]:
                    info += f"  | {name}: tasks {s['phase'][1]}/{s['phase'][2]}"
                    if s["phase_eta"] is not None:
                        info += f", ETA {_fmt_eta(s['phase_eta'])}"
                bar.update(task, completed=s["shards"], description=name, info=info)
                if self.stop.wait(0.5):
                    break


@contextmanager
def run_view(out_dir: str, total_shards: int, total_bytes: int | None, every: float | None = None):
    """Show the run's progress while the block runs. From the CLI without -v, fd 2 (worker and engine
    output) goes to a temporary file meanwhile, moved to ``RUN/logs/run.log`` at the end (the run
    directory is checked and created by the engine, so nothing is written into it before that)."""
    import shutil
    import tempfile

    every = every or float(os.environ.get("CORPUSMILL_PROGRESS_EVERY", "10"))
    local = "://" not in out_dir
    quiet = VERBOSE is False and local
    saved = tmp = None
    stream = sys.stderr
    if quiet:
        fd, tmp = tempfile.mkstemp(prefix="corpusmill-run-", suffix=".log")
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
        stream = os.fdopen(os.dup(saved), "w", buffering=1)
    handler = None
    if quiet:  # notices for the user (pipelines/run_dir.py) still reach the terminal; the chatter goes to the log file
        handler = logging.StreamHandler(stream)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logging.getLogger("corpusmill.notice").addHandler(handler)
    viewer = _Viewer(RunState(out_dir, total_shards, total_bytes), stream, every) if local else None
    if viewer is not None:
        viewer.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        if viewer is not None:
            viewer.stop.set()
            viewer.join(timeout=5)
            if ok and not getattr(stream, "isatty", lambda: False)():
                viewer._print(RunState.line(viewer.state.snapshot()))
        if handler is not None:
            logging.getLogger("corpusmill.notice").removeHandler(handler)
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            where = tmp
            from corpusmill.pipelines.run_dir import is_run_dir

            if is_run_dir(out_dir):  # our run directory (not a foreign recipe.json): keep the log with it
                Path(out_dir, "logs").mkdir(exist_ok=True)
                where = str(Path(out_dir, "logs", "run.log"))
                shutil.move(tmp, where)
            stream.write(f"{'the run failed; ' if not ok else ''}engine and worker output: {where} (-v shows it here)\n")
            stream.close()
