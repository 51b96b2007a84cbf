"""A pytest fixture: a real S3-compatible server (moto in server mode) on 127.0.0.1, for tests that
import it (``from s3_server import s3_server``). Not a conftest.py: the tests here import the root
conftest as ``conftest``, which a second conftest module would shadow."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """``(endpoint, env)``: a moto S3 server started for this module (stopped by its pid afterwards),
    and the environment that points boto/s3fs clients (this process's and subprocesses') at it."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    s3fs = pytest.importorskip("s3fs", reason="s3fs is in the dev extra")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    env = {"AWS_ACCESS_KEY_ID": "corpusmill-test", "AWS_SECRET_ACCESS_KEY": "corpusmill-test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
           "FSSPEC_S3_ENDPOINT_URL": endpoint}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ, **env))
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        s3fs.S3FileSystem.clear_instance_cache()
        yield endpoint, env
    finally:
        for k, v in locals().get("old", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
