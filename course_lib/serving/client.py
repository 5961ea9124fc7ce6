"""Client side: start and stop the server as a subprocess, call it, and load-test it.

:class:`ServerProcess` picks a free loopback port, starts ``python -m course_lib.serving`` there,
waits for ``/health`` and, on :meth:`~ServerProcess.stop`, sends SIGINT (uvicorn's graceful
shutdown), waits for the process to exit and checks that the port is closed.
:func:`load_test` runs ``concurrency`` clients that share a fixed list of requests, so every run
sends the same work, and reports throughput and latency percentiles.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

__all__ = ["free_port", "port_open", "ServerProcess", "load_test", "stream_completion"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class ServerProcess:
    """``python -m course_lib.serving ARGS`` on a free port, as a context manager.

    Parameters
    ----------
    args : list of str
        Extra command-line options, e.g. ``["--models", "embeddings", "--max-batch-size", "1"]``.
    """

    def __init__(self, args: list[str] = (), port: int | None = None, start_timeout: float = 300.0):
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")
        self.start_timeout = start_timeout
        cmd = [sys.executable, "-m", "course_lib.serving", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_ready(self) -> float:
        """Block until ``/health`` answers; returns the seconds it took (start-up: imports and models)."""
        import httpx
        start = time.perf_counter()
        while time.perf_counter() - start < self.start_timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2.0).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"the server did not answer /health within {self.start_timeout} s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (graceful shutdown), then SIGKILL after ``timeout`` s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def _load(url: str, payloads: list[dict], concurrency: int, timeout: float) -> tuple[list, list, float]:
    import httpx
    queue = list(enumerate(payloads))[::-1]
    latencies, statuses, retried = [0.0] * len(payloads), [0] * len(payloads), [0]
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        async def worker():
            while queue:
                i, body = queue.pop()
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, json=body)
                except (httpx.ReadError, httpx.RemoteProtocolError):   # a kept-alive connection closed under us:
                    retried[0] += 1                                     # send once more on a fresh one, as
                    r = await client.post(url, json=body)               # HTTP clients do for idempotent calls
                latencies[i], statuses[i] = time.perf_counter() - t0, r.status_code
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return latencies, statuses, wall, retried[0]


def load_test(url: str, payloads: list[dict], concurrency: int = 8, timeout: float = 120.0) -> dict:
    """POST every payload to ``url`` with ``concurrency`` clients; throughput and latency percentiles.

    Returns ``{"requests", "concurrency", "ok", "retried", "wall_s", "throughput_rps", "p50_ms", "p99_ms"}``
    (``retried``: requests sent a second time after their connection was closed before the answer).
    """
    if not payloads or concurrency < 1:
        raise ValueError("load_test needs at least one payload and concurrency >= 1")
    coro = _load(url, payloads, concurrency, timeout)
    try:
        asyncio.get_running_loop()             # inside Jupyter: a loop already runs in this thread
    except RuntimeError:
        latencies, statuses, wall, retried = asyncio.run(coro)
    else:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            latencies, statuses, wall, retried = pool.submit(asyncio.run, coro).result()
    lat = np.array(latencies) * 1000
    return {"requests": len(payloads), "concurrency": concurrency, "ok": sum(s == 200 for s in statuses),
            "retried": retried,
            "wall_s": wall, "throughput_rps": len(payloads) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def stream_completion(base_url: str, body: dict, timeout: float = 120.0):
    """POST a streamed completion; yields each event's JSON (dict) until ``[DONE]``."""
    import httpx
    with httpx.stream("POST", base_url + "/v1/completions", json={**body, "stream": True}, timeout=timeout) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text}")
        for line in r.iter_lines():
            if line.startswith("data: "):
                if line == "data: [DONE]":
                    return
                yield json.loads(line[len("data: "):])
