"""The run directory: refuse to write into the wrong place, mark it as a run, lock it (any engine).

``RUN/recipe.json`` is the marker: it says "corpusmill_run": 1, the run's id, host and start time and
the recipe (hash) that wrote it, and is written atomically. A non-empty directory without a valid
marker is not a run: nothing is written into it. ``--overwrite`` removes only the entries a run writes
(:data:`RUN_ENTRIES`). ``RUN/.lock`` (an OS lock, released when the process dies, even by kill -9)
keeps two runs out of one directory; ``RUN/.lock.json`` says who holds it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import uuid

import fsspec

from corpusmill.pipelines.recipe import Recipe, RecipeError, is_url

log = logging.getLogger("corpusmill")
#: what the user must see even in a quiet run (pipelines/progress.py shows it on the terminal)
notice = logging.getLogger("corpusmill.notice")

MARKER = "recipe.json"
LOCK, LOCK_INFO = ".lock", ".lock.json"
#: what a run writes into its directory (anything else there is left alone by --overwrite)
RUN_ENTRIES = ("curated", "dropped", "manifest", "logs", "_predup", "_dedup", "run.json", MARKER)
_HELD: dict[str, object] = {}  # run directory -> its lock, held until the process ends


def _marker_identity(fs, d: str) -> dict | None:
    """The marker's contents when it is a valid corpusmill marker; None when it is empty or cut short.
    Raises RecipeError for a readable file that is not ours (a foreign recipe.json)."""
    try:
        with fs.open(f"{d}/{MARKER}", "rb") as fh:
            data = fh.read(10 << 20)
        marker = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(marker, dict) and (marker.get("corpusmill_run") == 1 or
                                     {"recipe_hash", "recipe", "source"} <= marker.keys()):  # before markers had an id
        return marker
    raise RecipeError("foreign")


def is_run_dir(output_dir: str) -> bool:
    """Whether ``output_dir`` holds a valid corpusmill marker (a foreign recipe.json does not count)."""
    fs, d = fsspec.core.url_to_fs(output_dir)
    try:
        return fs.exists(f"{d}/{MARKER}") and _marker_identity(fs, d) is not None
    except (RecipeError, OSError):
        return False


def _entries(fs, d: str) -> list[str]:
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(d, detail=False))


def refuse_dangerous_output(output_dir: str, recipe_source: str | None) -> None:
    """Refuse a file-system root, the home directory, and the recipe's directory or any of its parents."""
    if is_url(output_dir):
        path = output_dir.split("://", 1)[1]
        if path.strip("/").strip(".") == "":
            raise RecipeError(f"output.dir: {output_dir} is the root of a file system; choose a directory for the run")
        return
    d = os.path.realpath(output_dir)
    if d == os.path.realpath(os.sep):
        raise RecipeError(f"output.dir: {output_dir} is the root directory; choose a directory for the run")
    home = os.path.realpath(os.path.expanduser("~"))
    if d == home:
        raise RecipeError(f"output.dir: {output_dir} is your home directory; choose a directory for the run")
    if recipe_source:
        rdir = os.path.dirname(os.path.realpath(recipe_source))
        if rdir == d or rdir.startswith(d.rstrip(os.sep) + os.sep):
            raise RecipeError(f"output.dir: {output_dir} holds the recipe {recipe_source}; "
                              "choose a directory of its own for the run")


def _lock(fs, d: str, output_dir: str) -> None:
    """Take RUN/.lock (local directories only) or say who holds it."""
    if not isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        notice.warning("%s: object stores cannot be locked; do not start two runs into it at once", output_dir)
        return
    key = os.path.realpath(d)
    if key in _HELD:
        return
    import fasteners

    from corpusmill.atomic import write_json

    lock = fasteners.InterProcessLock(os.path.join(d, LOCK))
    if not lock.acquire(blocking=False):
        try:
            with open(os.path.join(d, LOCK_INFO)) as fh:
                who = json.load(fh)
            holder = f"pid {who.get('pid')} on {who.get('host')}, started {who.get('started_at')}"
        except (OSError, ValueError):
            holder = "another process"
        raise RecipeError(f"{output_dir} is in use by another run ({holder}); wait for it to finish, or stop it "
                          "and rerun")
    _HELD[key] = lock
    write_json(os.path.join(d, LOCK_INFO), {"pid": os.getpid(), "host": socket.gethostname(),
                                            "started_at": _now()})


def release_output_dir(output_dir: str) -> None:
    """Give up this process's lock on ``output_dir`` (a run in a long-lived process, e.g. a notebook)."""
    fs, d = fsspec.core.url_to_fs(output_dir)
    lock = _HELD.pop(os.path.realpath(d.rstrip("/") or "/"), None) if isinstance(
        fs, fsspec.implementations.local.LocalFileSystem) else None
    if lock is not None:
        try:
            os.unlink(os.path.join(d, LOCK_INFO))
        except OSError:
            pass
        lock.release()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _remove_run_entries(fs, d: str, output_dir: str) -> None:
    entries = _entries(fs, d)
    for name in entries:
        if name in RUN_ENTRIES:
            fs.rm(f"{d}/{name}", recursive=True)
    foreign = [n for n in entries if n not in RUN_ENTRIES and n not in (LOCK, LOCK_INFO)]
    (notice.warning if foreign else log.info)("--overwrite: removed the previous run's files from %s%s", output_dir,
                                           f" (left alone: {', '.join(foreign)})" if foreign else "")


def _write_marker(fs, d: str, recipe: Recipe, previous: dict | None) -> None:
    same = previous if previous and previous.get("corpusmill_run") == 1 else {}  # a rerun keeps the run's identity
    marker = {"corpusmill_run": 1, "run_id": same.get("run_id") or uuid.uuid4().hex,
              "host": same.get("host") or socket.gethostname(), "created_at": same.get("created_at") or _now(),
              "recipe_hash": recipe.hash(), "recipe": recipe.raw, "source": recipe.source}
    text = json.dumps(marker, indent=2, default=str) + "\n"
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        from corpusmill.atomic import write_text

        write_text(os.path.join(d, MARKER), text)
    else:  # object stores: a put is atomic
        fs.pipe_file(f"{d}/{MARKER}", text.encode())


def check_output_dir(recipe: Recipe, overwrite: bool) -> None:
    """Make ``recipe.output_dir`` this run's directory, or raise RecipeError saying why it cannot be."""
    out = recipe.output_dir
    refuse_dangerous_output(out, recipe.source)
    fs, d = fsspec.core.url_to_fs(out)
    d = d.rstrip("/") or "/"
    marker = None
    if fs.exists(d):
        if not fs.isdir(d):
            raise RecipeError(f"output.dir: {out} is a file, not a directory")
        entries = [n for n in _entries(fs, d) if n not in (LOCK, LOCK_INFO)]
        not_a_run = RecipeError(f"output.dir: {out} is not empty and is not a corpusmill run directory (no valid "
                                f"{MARKER} marker); choose an empty or new directory (nothing there was changed)")
        if entries:
            if MARKER not in entries:
                raise not_a_run
            try:
                marker = _marker_identity(fs, d)
            except RecipeError:
                raise not_a_run from None
            if marker is None:  # cut short by a crash: a run only if nothing foreign is there
                if not set(entries) <= set(RUN_ENTRIES):
                    raise not_a_run
                notice.warning("%s/%s was empty or cut short (a crash while it was written); rewriting it", out, MARKER)
    fs.makedirs(d, exist_ok=True)
    _lock(fs, d, out)
    if overwrite and fs.ls(d):
        _remove_run_entries(fs, d, out)
        marker = None
    if marker is not None and marker.get("recipe_hash") != recipe.hash():
        raise RecipeError(f"{out} holds a run of a different recipe (hash {marker.get('recipe_hash')} != "
                          f"{recipe.hash()}); pass --overwrite or choose another output directory")
    _write_marker(fs, d, recipe, marker)
