"""A real S3-protocol server for tests: moto's server mode, started as a process on a free
loopback port (not an in-process mock of a client library)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server(*buckets: str) -> Iterator[str]:
    """Start the server, create `buckets`, yield its URL; stopped on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        for bucket in buckets:
            httpx.put(f"{url}/{bucket}", timeout=10).raise_for_status()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_env(url: str) -> dict[str, str]:
    """The standard settings that point an S3 client at the test server."""
    return {"AWS_ENDPOINT": url, "AWS_ENDPOINT_URL": url, "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test"}
