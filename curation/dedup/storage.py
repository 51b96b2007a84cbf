"""Work-directory I/O of the dedup phases, for a local path or any fsspec URL (``s3://``, ``gs://``, ...).

Local paths keep the fast path (``os.pread``, write to a temporary name then ``os.replace``); other
file systems go through fsspec: a file is written whole and appears when it is closed (object
stores publish an object only on completion), positioned reads become ranged reads.
"""

from __future__ import annotations

import json
import os
import fsspec

__all__ = ["join", "is_local", "fs_of", "RandomReader", "AtomicWriter", "write_bytes", "write_json", "read_json",
           "exists", "listdir", "remove", "size", "makedirs"]


def join(*parts) -> str:
    """A URL or path as a string without a trailing slash, parts joined with "/"."""
    s = "/".join(str(p).rstrip("/") for p in parts)
    return s


def fs_of(url: str):
    """(file system, path inside it)."""
    fs, path = fsspec.core.url_to_fs(str(url))
    return fs, path


def is_local(url: str) -> bool:
    s = str(url)
    return "://" not in s or s.startswith("file://")


def _local(url: str) -> str:
    s = str(url)
    return s[len("file://"):] if s.startswith("file://") else s


def _tmp(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp-{os.getpid()}")


class AtomicWriter:
    """A binary file that appears under its name only when :meth:`commit` is called."""

    def __init__(self, url: str) -> None:
        self.url = str(url)
        if is_local(self.url):
            self.path = _local(self.url)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self.tmp = _tmp(self.path)
            self.f = open(self.tmp, "wb")
        else:
            fs, path = fs_of(self.url)
            self.path, self.tmp = path, None
            self.f = fs.open(path, "wb")

    def write(self, data) -> None:
        self.f.write(data)

    def commit(self) -> None:
        self.f.close()
        if self.tmp is not None:
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.tmp is not None:
            self.f.close()
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
        elif hasattr(self.f, "discard"):
            self.f.discard()  # fsspec buffered files: the object is never created
        else:  # pragma: no cover
            self.f.close()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_bytes(url: str, data: bytes) -> None:
    with AtomicWriter(url) as w:
        w.write(data)


def write_json(url: str, obj) -> None:
    write_bytes(url, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_bytes(url: str) -> bytes:
    if is_local(url):
        with open(_local(url), "rb") as f:
            return f.read()
    fs, path = fs_of(url)
    return fs.cat_file(path)


def read_json(url: str):
    return json.loads(read_bytes(url))


def exists(url: str) -> bool:
    if is_local(url):
        return os.path.exists(_local(url))
    fs, path = fs_of(url)
    return fs.exists(path)


def size(url: str) -> int:
    if is_local(url):
        return os.stat(_local(url)).st_size
    fs, path = fs_of(url)
    return int(fs.size(path))


def makedirs(url: str) -> None:
    if is_local(url):
        os.makedirs(_local(url), exist_ok=True)
    # object stores have no directories


def listdir(url: str, recursive: bool = False) -> list[str]:
    """Full URLs/paths of the files under ``url`` (sorted; hidden temporary files excluded); [] if absent."""
    base = str(url).rstrip("/")
    if is_local(base):
        root = _local(base)
        if not os.path.isdir(root):
            return []
        out = []
        if recursive:
            for d, _, files in os.walk(root):
                out += [os.path.join(d, f) for f in files if not f.startswith(".")]
        else:
            out = [os.path.join(root, f) for f in os.listdir(root)
                   if not f.startswith(".") and os.path.isfile(os.path.join(root, f))]
        prefix = "file://" if base.startswith("file://") else ""
        return sorted(prefix + p for p in out)
    fs, path = fs_of(base)
    fs.invalidate_cache(path)  # other tasks wrote files since the listing was cached
    try:
        found = fs.find(path) if recursive else [i["name"] for i in fs.ls(path, detail=True) if i.get("type") == "file"]
    except FileNotFoundError:
        return []
    root = path.rstrip("/")
    return sorted(base + p[len(root):] for p in found
                  if p.startswith(root + "/") and not p.rsplit("/", 1)[-1].startswith("."))


def remove(url: str) -> None:
    if is_local(url):
        try:
            os.unlink(_local(url))
        except FileNotFoundError:
            pass
        return
    fs, path = fs_of(url)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


class RandomReader:
    """Positioned reads of one file: ``os.pread`` locally, ranged reads elsewhere."""

    def __init__(self, url: str) -> None:
        self.url = str(url)
        if is_local(self.url):
            self.fd = os.open(_local(self.url), os.O_RDONLY)
            self.size = os.fstat(self.fd).st_size
            self.f = None
        else:
            fs, path = fs_of(self.url)
            self.fd = None
            self.f = fs.open(path, "rb", cache_type="readahead", block_size=1 << 20)
            self.size = int(self.f.size)

    def read_range(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n <= 0:
            return b""
        if self.fd is None:
            self.f.seek(lo)
            data = self.f.read(n)
            if len(data) != n:
                raise OSError(f"{self.url}: unexpected end of file")
            return data
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:  # pread may return short reads
            k = os.preadv(self.fd, [view[got:]], lo + got)
            if k <= 0:
                raise OSError(f"{self.url}: unexpected end of file")
            got += k
        return bytes(buf) if n < 4096 else buf

    def read_rows(self, rows, width: int, span: int = 1) -> bytes:
        """Rows ``r .. r+span-1`` (``width`` bytes each) for each r of sorted ``rows``, concatenated;
        consecutive rows are read in one request."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return b""
        if span == 1:
            brk = np.flatnonzero(np.diff(rows) != 1) + 1
            starts = np.concatenate(([0], brk))
            ends = np.concatenate((brk, [rows.size]))
            return b"".join(bytes(self.read_range(int(rows[s]) * width, (int(rows[e - 1]) + 1) * width))
                            for s, e in zip(starts.tolist(), ends.tolist()))
        return b"".join(bytes(self.read_range(int(r) * width, (int(r) + span) * width)) for r in rows.tolist())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        elif self.f is not None:
            self.f.close()
            self.f = None
