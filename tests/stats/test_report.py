"""``corpusmill report``: the HTML report of a real run, opened in a real headless browser.

The run is built once per session (the helper lives in tests/stats/test_stats.py). The browser checks use
Debian's chromium (``apt-get install chromium``), driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: file descriptors 3 and 4, NUL-separated JSON; no websocket, no driver):
no console error, no uncaught exception, no failed load, every embedded plot decodes; then
``chromium --screenshot`` must produce a 1280x2000 PNG that is not blank. Without chromium the browser
tests skip and say so.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import re
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from corpusmill.cli import main
from corpusmill.stats.thresholds import signal_thresholds
from corpusmill.stats.views import Run
try:  # the run builder is shared with tests/stats/test_stats.py (same session: the run is built once)
    from test_stats import build_run
except ImportError:  # tests/ made a package
    from tests.test_stats import build_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get update && apt-get install -y chromium); "
           "the report's browser checks need /usr/bin/chromium",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data) -> Path:
    return build_run(tmp_path_factory, shared_data)


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    """``corpusmill report RUN``: the report at its default place, RUN/report.html."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["report", str(run_dir)]) == 0
    out = run_dir / "report.html"
    assert str(out) in buf.getvalue()
    return out


# ------------------------------------------------------------------------------------------------
# a minimal DevTools-protocol client over --remote-debugging-pipe


class Browser:
    """chromium with the DevTools protocol on fds 3 (commands in) and 4 (replies and events out)."""

    def __init__(self, user_data_dir: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def child_fds():  # runs in the child before exec: put the pipe ends on 3 and 4
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=child_fds,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._next = 0
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                self.messages.put(None)
                return
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for m in msgs:
                self.messages.put(json.loads(m))

    def _pump(self, until, timeout: float):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            msg = self.messages.get(timeout=left)
            if msg is None:
                raise RuntimeError("chromium closed the DevTools pipe")
            if "id" not in msg:
                self.events.append(msg)
            if until(msg):
                return msg

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next += 1
        mid = self._next
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        reply = self._pump(lambda m: m.get("id") == mid, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        return self._pump(lambda m: m.get("method") == method, timeout)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)


def inspect_page(url: str, user_data_dir: Path) -> dict:
    """Load ``url``; return problems (console errors, exceptions, error log entries, failed loads) and
    facts about the page (images, broken images, title, headings)."""
    b = Browser(user_data_dir)
    try:
        page = next(t for t in b.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        sid = b.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(f"{domain}.enable", session=sid)
        b.send("Page.navigate", {"url": url}, session=sid)
        b.wait_event("Page.loadEventFired", timeout=60)
        time.sleep(0.3)  # let late console messages arrive
        facts = json.loads(b.send("Runtime.evaluate", {
            "expression": "JSON.stringify({images: document.images.length,"
                          " broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,"
                          " title: document.title, h2: document.querySelectorAll('h2').length,"
                          " height: document.documentElement.scrollHeight})",
            "returnByValue": True}, session=sid)["result"]["value"])
    finally:
        b.close()
    problems = []
    for e in b.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            problems.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
        elif m == "Runtime.exceptionThrown":
            problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            problems.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            problems.append(f"load failed: {p.get('errorText')}")
    return {"problems": problems, **facts}


def screenshot(url: str, png: Path, user_data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--screenshot={png}",
         "--window-size=1280,2000", url],
        capture_output=True, text=True, timeout=120,
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


# ------------------------------------------------------------------------------------------------
# the report file


def test_report_is_self_contained(report, run_dir):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no script, no external stylesheet, every image inline
    assert "<script" not in page.lower()
    assert not re.search(r"""<link\b""", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(srcs) >= 5  # funnel, languages, lengths, tokenizer, shards (+ signals, toxicity, dedup)
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for anchor in ("funnel", "sources", "drops", "languages", "lengths", "signals", "toxicity", "dedup",
                   "tokenizer", "shards"):
        assert f'id="{anchor}"' in page, anchor
    # the funnel's last row is the manifests' kept total
    kept = sum(r for (r,) in _manifest_col(run_dir, "kept"))
    assert re.search(rf"<td>kept</td><td></td><td class=\"num\">{kept:,}</td>", page)
    assert not list(report.parent.glob(".report.html.tmp-*"))  # atomic write left no temporary


def _manifest_col(run_dir: Path, col: str):
    import pyarrow.parquet as pq

    for f in sorted((run_dir / "manifest").glob("*.parquet")):
        yield from ((v,) for v in pq.read_table(f, columns=[col]).column(0).to_pylist())


def test_out_option_writes_atomically(run_dir, tmp_path, monkeypatch, capsys):
    """--out FILE (parent directories created); a failing build leaves neither the file nor a temporary."""
    import corpusmill.stats.report as report_mod

    monkeypatch.setattr(report_mod, "build_report", lambda run, con: "<!DOCTYPE html><html>stub</html>")
    out = tmp_path / "a" / "b" / "r.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_text() == "<!DOCTYPE html><html>stub</html>"

    def boom(run, con):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report_mod, "build_report", boom)
    other = tmp_path / "c" / "r.html"
    with pytest.raises(RuntimeError):
        main(["report", str(run_dir), "--out", str(other)])
    assert not other.exists()
    assert not other.parent.exists() or not list(other.parent.iterdir())
    assert main(["report", str(tmp_path)]) == 2  # not a run directory
    assert "not a curation run" in capsys.readouterr().err


def test_thresholds_come_from_recipe_params():
    run = Run(root="/nonexistent", recipe={"stages": [
        {"stage": "gopher_quality", "min_doc_words": 77, "max_avg_word_length": None},
        {"stage": "gopher_repetition"},
        {"stage": "fineweb"},
        {"stage": "c4", "min_num_sentences": -1},
        {"stage": "toxicity", "threshold": 0.3},
    ]})
    th = signal_thresholds(run)
    assert th.source == "recipe"
    assert [(t.kind, t.value) for t in th.for_signal("gopher_quality.words")] == [("min", 77), ("max", 100_000)]
    assert [(t.kind, t.value) for t in th.for_signal("gopher_quality.mean_word_length")] == [("min", 3)]  # max is off
    assert [(t.kind, t.value) for t in th.for_signal("gopher_repetition.top_2_gram_char_frac")] == [("max", 0.2)]
    assert [(t.kind, t.value) for t in th.for_signal("fineweb.line_punct_ratio")] == [("min", 0.12)]
    assert th.for_signal("c4.sentences") == []  # rule switched off: no line, and the report says why
    assert th.note("c4.sentences")
    assert [(t.kind, t.value) for t in th.for_signal("toxicity.score")] == [("max", 0.3)]
    # without recipe.json: the stage defaults, flagged as such
    d = signal_thresholds(Run(root="/nonexistent"), ["gopher_quality"])
    assert d.source == "defaults" and [t.value for t in d.for_signal("gopher_quality.words")] == [50, 100_000]
    assert "default" in d.note("gopher_quality.words")


# ------------------------------------------------------------------------------------------------
# in a real browser


@needs_chromium
def test_browser_check_catches_errors(tmp_path):
    """The checks below are not vacuous: a page with a console error and a missing image fails them."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><h2>x</h2><img src="missing.png">'
                   '<script>console.error("boom")</script></body></html>')
    facts = inspect_page(bad.as_uri(), tmp_path / "profile")
    assert any("boom" in p for p in facts["problems"]), facts
    assert any("missing.png" in p or "ERR_FILE_NOT_FOUND" in p for p in facts["problems"]), facts
    assert facts["broken"] == 1


@needs_chromium
def test_report_renders_without_errors(report, tmp_path):
    facts = inspect_page(report.as_uri(), tmp_path / "profile")
    assert facts["problems"] == [], facts["problems"]
    assert facts["images"] >= 5 and facts["broken"] == 0, facts
    assert facts["title"].startswith("corpusmill report")
    assert facts["h2"] >= 10 and facts["height"] > 2000

    png = tmp_path / "report.png"
    p = screenshot(report.as_uri(), png, tmp_path / "profile-shot")
    assert p.returncode == 0, p.stderr[-2000:]
    assert png.is_file() and png_size(png) == (1280, 2000)
    try:
        from PIL import Image
    except ImportError:
        return
    im = Image.open(png).convert("RGB").resize((128, 200))
    assert len(set(im.getdata())) > 20, "the screenshot is (nearly) blank"
    keep = os.environ.get("CORPUSMILL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
