r"""Dynamic batching: requests that arrive within a short window share one forward pass.

A model on a CPU or GPU does a batch of :math:`B` inputs in much less than :math:`B` times the
time of one, because one matrix product over :math:`B` rows reuses each weight :math:`B` times.
A server receives requests one by one, so it waits a little to collect them:

1. the first request that finds the model idle opens a batch;
2. the batch closes when it holds ``max_batch_size`` requests **or** ``batch_window_ms`` has
   passed since it opened, whichever comes first;
3. one worker thread runs the model on the batch while the event loop keeps accepting requests,
   which queue for the next batch.

The window bounds the latency a lone request pays (at most ``batch_window_ms``); the maximum
bounds memory. ``max_queue`` bounds the requests waiting or running: one more is refused at once
with :class:`QueueFullError` (HTTP 503), so an overloaded server answers "busy" instead of
letting latency grow without limit. ``max_batch_size=1`` switches batching off.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..utils import check_int

__all__ = ["QueueFullError", "BatcherStats", "DynamicBatcher"]


class QueueFullError(RuntimeError):
    """The batcher already holds ``max_queue`` requests; the client should retry later."""


@dataclass
class BatcherStats:
    requests: int = 0          # accepted
    rejected: int = 0          # refused because the queue was full
    cancelled: int = 0         # abandoned by their client before their batch ran
    batches: int = 0
    largest_batch: int = 0
    busy_seconds: float = 0.0  # time spent inside the model function

    def as_dict(self) -> dict:
        done = self.requests - self.cancelled
        return {**self.__dict__, "busy_seconds": round(self.busy_seconds, 3),
                "mean_batch_size": round(done / self.batches, 2) if self.batches else 0.0}


class DynamicBatcher:
    """Collect items submitted from the event loop into batches for ``fn(list_of_items) -> list_of_results``.

    Parameters
    ----------
    fn : callable
        Runs in one worker thread, one batch at a time; returns one result per item, in order.
        An exception fails every request of that batch with that exception.
    max_batch_size : int
        Largest batch (1 = no batching).
    batch_window_ms : float
        How long an open batch waits for more requests.
    max_queue : int
        Most requests waiting or running; :meth:`submit` raises :class:`QueueFullError` beyond it.
    """

    def __init__(self, fn: Callable[[list], list], max_batch_size: int = 16, batch_window_ms: float = 5.0,
                 max_queue: int = 64, name: str = "batcher"):
        if not callable(fn):
            raise TypeError(f"fn must be a callable taking a list of items, got {type(fn).__name__}")
        self.fn, self.name = fn, name
        self.max_batch_size = check_int("max_batch_size", max_batch_size, minimum=1)
        self.max_queue = check_int("max_queue", max_queue, minimum=1)
        if not isinstance(batch_window_ms, (int, float)) or not 0 <= batch_window_ms <= 1000:
            raise ValueError(f"batch_window_ms must be a number of milliseconds in [0, 1000], got {batch_window_ms!r}")
        self.batch_window_ms = float(batch_window_ms)
        self.stats = BatcherStats()
        self.pending = 0                 # requests accepted and not yet answered
        self._loop = self._queue = self._task = self._executor = None

    def _ensure_worker(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._executor is None:        # one thread: batches run one after another
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=self.name)
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run(), name=f"{self.name}-worker")
        return loop

    def submit(self, item) -> asyncio.Future:
        """Queue ``item``; returns a future for its result. Call from the event loop.

        Raises :class:`QueueFullError` at once (nothing queued) when ``max_queue`` requests are pending.
        """
        loop = self._ensure_worker()
        if self.pending >= self.max_queue:
            self.stats.rejected += 1
            raise QueueFullError(f"the {self.name} queue is full ({self.pending} requests waiting or running, "
                                 f"max_queue={self.max_queue}); retry in a moment")
        future = loop.create_future()
        self.pending += 1
        self.stats.requests += 1
        future.add_done_callback(self._finished)
        self._queue.put_nowait((item, future))
        return future

    def _finished(self, future: asyncio.Future) -> None:
        self.pending -= 1
        if future.cancelled():
            self.stats.cancelled += 1

    async def _collect(self) -> list:
        batch = [await self._queue.get()]                          # block until a request opens a batch
        deadline = time.perf_counter() + self.batch_window_ms / 1000
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        return [(item, fut) for item, fut in batch if not fut.done()]   # drop requests whose client left

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            items = [item for item, _ in batch]
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"{self.name}: fn returned {len(results)} results for {len(items)} items")
            except Exception as exc:                               # noqa: BLE001 - handed to every caller
                results, error = None, exc
            self.stats.busy_seconds += time.perf_counter() - start
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for k, (_, fut) in enumerate(batch):
                if fut.done():                                     # cancelled while the batch ran
                    continue
                if results is None:
                    fut.set_exception(error)
                else:
                    fut.set_result(results[k])

    async def close(self) -> None:
        """Stop the worker (pending requests are cancelled) and the thread."""
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                fut.cancel()
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
